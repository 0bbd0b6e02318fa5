"""π-Distill (and OPSD) as a verl ``RayPPOTrainer`` subclass: verl's own rollout, reward, GRPO advantages, old-log-
prob pass, actor update and checkpoints, with one method changed: ``_update_actor``.

Why a subclass and not a fork (reference/scale.md §1.5): verl 0.9's legacy trainer (``trainer.use_v1=False``) calls
``_update_actor(batch)`` after ``compute_advantage``, so the batch already holds the rollout (sampled from the
sampling view's prompt: the teacher's for π-Distill, the student's for OPSD), GRPO ``advantages`` and the sampler's
``old_log_probs``. The override (rows, shaping and weights: ``verl_rows``):

1. tokenizes every row's other-view prompt (``extra_info.pi_distill_other_prompt``, written by ``verl_data``) the way
   verl's agent loop tokenized the sampled one (its Continuous Token builder with the run's chat-template kwargs);
2. scores the same responses under it with verl's own old-log-prob pass (``_compute_old_log_prob``);
3. shapes the advantages by beta times the per-response log-ratio, drops zero-variance groups when asked;
4. hands verl's stock update the duplicated rows (π-Distill) or the shaped rows (OPSD), with the PPO mini-batch
   scaled by the number of row kinds so every teacher/student pair shares its mini-batch.

Settings come from the top-level ``pi_distill`` block of the config (``+pi_distill.*`` overrides: verl's own
dataclass configs reject unknown keys, the top level does not). What is logged besides verl's metrics, under
``pi_distill/``: the per-token KL of the sampler from the other view, the GRPO and shaped advantages, the shaping
penalty, the dropped groups, and the teacher and student loss terms with the student's importance ratio and clip
fraction as they stand at the start of the update (where the native engine reports them too).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from verl import DataProto
from verl.trainer.ppo.core_algos import compute_policy_loss_vanilla
from verl.trainer.ppo.ray_trainer import RayPPOTrainer
from verl.utils.config import omega_conf_to_dataclass

from stages.pi_distill import verl_rows as V
from stages.pi_distill.verl_data import OTHER_PROMPT


@dataclass(frozen=True)
class PiSettings:
    """The method's settings, read from the config's ``pi_distill`` block."""

    variant: str = "pi-distill"
    alpha: float = 0.5
    beta: float = 0.1
    drop_zero_variance_groups: bool = True

    @property
    def weights(self) -> tuple[float, float]:
        """(sampler rows, other-view rows): π-Distill alpha / 1 - alpha; OPSD trains its own samples only."""
        return (self.alpha, 1.0 - self.alpha) if self.variant == "pi-distill" else (1.0, 0.0)

    @classmethod
    def from_config(cls, config: Any) -> PiSettings:
        block = config.get("pi_distill") or {}
        out = cls(**{k: block[k] for k in ("variant", "alpha", "beta", "drop_zero_variance_groups") if k in block})
        if out.variant not in ("pi-distill", "opsd") or not 0.0 <= out.alpha <= 1.0 or out.beta < 0:
            raise ValueError(f"pi_distill settings out of range: {out}")
        return out


def check_supported(config: Any) -> None:
    """Settings under which the duplicated rows would not compute π-Distill's terms: refuse them."""
    algo = config.algorithm
    corr = algo.get("rollout_correction") or {}
    problems = []
    if corr.get("rollout_is") or corr.get("rollout_rs") or corr.get("bypass_mode"):
        problems.append("algorithm.rollout_correction (its weights would scale the student rows too)")
    if algo.get("use_kl_in_reward") or config.actor_rollout_ref.actor.get("use_kl_loss"):
        problems.append("a KL-to-reference term (π-Distill's KL is the teacher-student shaping)")
    if algo.adv_estimator != "grpo":
        problems.append(f"algorithm.adv_estimator={algo.adv_estimator} (π-Distill uses GRPO advantages)")
    if config.actor_rollout_ref.rollout.multi_turn.get("enable"):
        problems.append("multi-turn rollouts (the stage is single-turn)")
    if problems:
        raise ValueError("pi-distill on verl cannot honour: " + "; ".join(problems))


@contextmanager
def mini_batch_scaled(config: Any, k: int) -> Iterator[None]:
    """``actor.ppo_mini_batch_size`` times k while the update runs on k row kinds (verl reads it from the config)."""
    actor = config.actor_rollout_ref.actor
    base = actor.ppo_mini_batch_size
    actor.ppo_mini_batch_size = base * k
    try:
        yield
    finally:
        actor.ppo_mini_batch_size = base


def _mean(values: torch.Tensor) -> float:
    return float(values.double().mean()) if values.numel() else 0.0


def step_metrics(batch: DataProto, shaped: V.Shaped, other_lp: torch.Tensor, pi: PiSettings,
                 actor_config: Any) -> dict[str, float]:
    """The step's ``pi_distill/*`` numbers (loss terms at the start of the update, on the kept responses)."""
    mask = batch.batch["response_mask"].bool()
    kept = mask & shaped.keep[:, None]
    sampler_lp = batch.batch["old_log_probs"]
    per_token = (sampler_lp - other_lp)[mask]
    name = "kl_teacher_student" if pi.variant == "pi-distill" else "kl_student_teacher"
    groups = len(set(batch.non_tensor_batch["uid"]))
    dropped = groups - len({u for u, k in zip(batch.non_tensor_batch["uid"], shaped.keep.tolist()) if k})
    out = {f"pi_distill/{name}": _mean(per_token), "pi_distill/advantage_mean": _mean(shaped.outcome[shaped.keep]),
           "pi_distill/shaped_advantage_mean": _mean((shaped.outcome - pi.beta * shaped.gap)[shaped.keep]),
           "pi_distill/kl_penalty_mean": _mean(pi.beta * shaped.gap), "pi_distill/dropped_groups": float(dropped),
           "pi_distill/dropped_group_share": dropped / max(groups, 1)}
    if not kept.any():
        return out
    sampler_name = "teacher" if pi.variant == "pi-distill" else "student"
    loss, _ = compute_policy_loss_vanilla(sampler_lp, sampler_lp, shaped.advantages, kept, "token-mean", actor_config)
    out[f"pi_distill/{sampler_name}_loss"] = float(loss)
    if pi.variant == "pi-distill":
        loss, terms = compute_policy_loss_vanilla(sampler_lp, other_lp, shaped.advantages, kept, "token-mean",
                                                  actor_config)
        out["pi_distill/student_loss"] = float(loss)
        out["pi_distill/student_clip_fraction"] = float(terms["actor/pg_clipfrac"])
        out["pi_distill/student_ratio"] = _mean(torch.exp(other_lp - sampler_lp)[kept])
    return out


class PiDistillTrainer(RayPPOTrainer):
    """verl's PPO trainer whose actor update trains π-Distill's teacher and student terms (or OPSD's)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pi = PiSettings.from_config(self.config)
        check_supported(self.config)

    def other_prompt_ids(self, batch: DataProto) -> list[list[int]]:
        """Every row's other-view prompt, tokenized as verl's agent loop tokenizes the sampled one."""
        from verl.utils.tokenizer.continuous_token import ContinuousTokenBuilder

        kwargs = dict(self.config.data.get("apply_chat_template_kwargs") or {})
        builder = ContinuousTokenBuilder(self.tokenizer, chat_template_kwargs=kwargs)
        return [builder.build_initial_tokens(json.loads(info[OTHER_PROMPT]))
                for info in batch.non_tensor_batch["extra_info"]]

    def _update_actor(self, batch: DataProto) -> DataProto:
        pad = self.tokenizer.pad_token_id
        other = V.view_rows(batch, self.other_prompt_ids(batch), pad)
        scored, _ = self._compute_old_log_prob(other)
        other_lp = scored.batch["old_log_probs"]
        shaped = V.shape(batch, other_lp, self.pi.beta, self.pi.drop_zero_variance_groups)
        actor_config = omega_conf_to_dataclass(self.config.actor_rollout_ref.actor)
        metrics = step_metrics(batch, shaped, other_lp, self.pi, actor_config)
        if not bool(shaped.keep.any()):  # every group had equal rewards: no update this step (as native)
            return DataProto(meta_info={"metrics": {**metrics, "pi_distill/skipped_update": 1.0}})
        rows, k = V.update_rows(batch, other, batch.batch["old_log_probs"], shaped, pad, *self.pi.weights)
        with mini_batch_scaled(self.config, k):
            output = super()._update_actor(rows)
        output.meta_info["metrics"].update({**metrics, "pi_distill/skipped_update": 0.0,
                                            "pi_distill/row_kinds": float(k)})
        return output
