"""The pi-distill stage: PI, π-Distill (arXiv 2602.04942). One set of weights plays a teacher that sees privileged
information (the reference solution) and a student that does not; rollouts come from the teacher, and the
objective mixes the teacher's KL-penalised reward term with the student's importance-weighted term by α. The same
paper's OPSD is ``variant: opsd``: the student samples and is trained by GRPO on the reward shaped by its reverse KL
to the privileged teacher.

Two engines compute the same objective. ``native`` (``run``, ``step``, ``rollout``, ``objective``: the shared
``stages.lm`` engine, CPU or one GPU) is the reference. ``verl`` (``verl_run``, ``verl_data``, ``verl_overrides``,
``verl_rules``, ``verl_main``, ``verl_trainer``, ``verl_rows``, ``verl_metrics``) is verl 0.9.1's PPO trainer with one
method overridden, for 8B-14B on 1-4 nodes: vLLM rollouts, FSDP, Ray, grpo-trainer's launcher and reward file.
``tests/pi_distill/test_verl_parity.py`` shows the two give the same per-token terms and the same update.

Decisions:

- **OPSD's extra term is left out, on both engines.** The authors' code adds ``β · mean(sg(log π_T) − log π_S)``
  to the OPSD loss. Its gradient is ``−β ∇ log π_S`` on every sampled token: a constant ``+β`` advantage on every
  student token, whatever the teacher says. It is likelihood training on the student's own samples (verl's own
  on-policy distillation config refuses exactly this "k1 backprop" as incorrect), not distillation. The paper's
  objective, ``R − β · KL(π_S ‖ π_T)`` as a shaped reward whose score-function gradient does depend on the teacher,
  is what both engines train. Adding the term would give OPSD a self-SFT push that no other arm of the study has,
  and self-SFT on the model's own samples is itself one of the forgetting effects under study (methods E2), so it
  would confound the comparison. Reproducing the code exactly is one constant: ``+β`` added to every kept student
  token's advantage (``verl_rows.shape`` / ``rollout.shape``).
- **The KL terms enter as reward shaping** ``A − β · Σ_t (log π_sampler − log π_other)``, once per rollout batch, as
  in the reference code (not as a separate loss term).
- **verl's dual clip is off** (``clip_ratio_c`` above verl's own ratio clamp): the paper's student term is not capped
  for negative advantages, and neither engine caps the teacher's.

Where the engines differ by construction (documented, not hidden): verl scores log-probs at the rollout
temperature, as the authors' verl fork does, the native engine at temperature 1 (identical at ``temperature: 1``);
within one rollout step, verl's later mini-batches and PPO epochs take the student's ratio against the teacher's
rollout-time log-probs, the native engine against its live teacher (identical for the first update); verl's
mini-batches are rows balanced over the GPUs, the native engine's whole prompt groups (identical with one
mini-batch per step, the default); the held-out student reward is measured on the first ``student_eval_prompts``
held-out prompts every step on verl, on a rotating slice of the held-out set natively.
"""
