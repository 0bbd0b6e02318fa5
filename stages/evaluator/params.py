"""Parameters of the evaluator. Tiers follow the methods reference §7: A (log-likelihood multiple choice) on every
checkpoint, B (generative) every few checkpoints, C (expensive) on final checkpoints. Greedy decoding for
sample-level forgetting; a separate sampled run for diversity. Thinking off unless the study says otherwise
(``runtime.thinking``; tier A always runs with thinking off).

Everything that changes which items are scored or how they are prompted (tasks, limit, subset seed, samples,
few-shot, chat template) must be the same for a model and the base it is compared to: the evaluator records it in
``results.json`` and refuses a ``base_results`` made differently.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stages.core.common_params import EnvId, Sampling
from stages.core.model_base import StrictModel
from stages.core.results import Labels
from stages.envs.sandbox.gate import UNISOLATED_CODE_HELP
from stages.evaluator.attacks.params import AttackParams
from stages.evaluator.refusal.params import DirectionParams
from stages.evaluator.representations.params import RepresentationsParams
from stages.evaluator.safety.judge_params import JudgeEndpoint


def _greedy() -> Sampling:
    return Sampling(temperature=0.0, top_p=1.0, max_new_tokens=1024)


def _diverse() -> Sampling:
    return Sampling(temperature=1.0, top_p=1.0, max_new_tokens=512)


class EvaluatorParams(StrictModel):
    suite: Literal["forgetting", "safety", "policy", "target", "all", "representations",
                   "refusal_direction", "attacks"] = Field(
        "forgetting", description="Which part of the profile to compute ('all' = the first four; 'representations' "
        "= CKA, probes and weight deltas against base_model, its own run; 'refusal_direction' = the SAFE "
        "baseline's refusal direction and its attenuation, its own run; 'attacks' = GCG and AutoDAN on "
        "HarmBench behaviours, judged by the HarmBench classifier, its own run)."
    )
    tiers: list[Literal["A", "B", "C"]] = Field(default_factory=lambda: ["A"], description="lm-eval task tiers.")
    tasks: list[str] | None = Field(None, description="Explicit lm-eval task names (overrides tiers).")
    limit: int | None = Field(None, ge=1, description="Items per (leaf) task: the first N, or N drawn with subset_seed.")
    subset_seed: int | None = Field(
        None, ge=0, description="Draw the `limit` items (and the catalog's default subsets) at random with this seed."
    )
    samples: dict[str, list[int]] | None = Field(
        None, description="Explicit item indices per leaf task ({task: [indices]}), pinning the same items everywhere."
    )
    num_fewshot: int | None = Field(None, ge=0, le=64, description="Few-shot examples; None keeps each task's own.")
    apply_chat_template: bool = Field(
        True, description="Prompt through the model's chat template (post-trained checkpoints); off for few-shot base."
    )
    fewshot_as_multiturn: bool = Field(True, description="With the chat template, few-shot examples as turns.")
    allow_unsafe_code: bool = Field(
        False, description="Opt in to lm-eval's own in-process execution of model-written code (HF code_eval, "
        "HF_ALLOW_CODE_EVAL=1; needs code_eval in the HF modules cache) instead of the project's sandbox, which "
        "scores the code tasks (humaneval*, mbpp*) by default. Recorded as protocol.code_execution; as it runs "
        "code unisolated, it needs allow_unisolated_code too.",
    )
    allow_unisolated_code: bool = Field(False, description=UNISOLATED_CODE_HELP)
    target_env_id: EnvId | None = Field(None, description="The domain's eval env for the target suite.")
    target_template: str | None = Field(None, description="Prompt template version of stages.envs (None: default).")
    target_limit: int | None = Field(None, ge=1, description="Target prompts to score (the first N); None = all.")
    pass_k: list[int] = Field(default_factory=lambda: [1], description="k values for pass@k on the target env.")
    target_samples: int = Field(1, ge=1, le=1024, description="Samples per target prompt (>= max pass_k).")
    target_sampling: Sampling = Field(
        default_factory=_diverse, description="Sampling for the target suite when target_samples > 1 (else greedy)."
    )
    greedy: Sampling = Field(default_factory=_greedy, description="Decoding of every generative lm-eval task.")
    diversity_task: str = Field(
        "fllm_gsm8k", description="Generative lm-eval task whose prompts are sampled for Self-BLEU and distinct-n."
    )
    diversity_prompts: int = Field(64, ge=1, le=100000, description="Prompts of diversity_task to sample.")
    diversity_sampling: Sampling = Field(
        default_factory=_diverse, description="Sampling of the diversity run (the training temperature)."
    )
    diversity_samples: int = Field(8, ge=2, le=256, description="Samples per prompt for Self-BLEU/distinct-n.")
    ece_bins: int = Field(15, ge=2, le=1000, description="Equal-width bins for ECE.")
    length_normalized_calibration: bool = Field(
        False, description="Softmax over per-character log-likelihoods instead of summed ones for ECE/Brier."
    )
    batch_size: int = Field(8, ge=1, le=4096, description="Batch size for the backend.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Model dtype: auto = bf16 on GPU, fp32 on CPU."
    )
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0, description="vLLM's share of GPU memory.")
    max_model_len: int | None = Field(None, ge=128, description="vLLM context length; None = the model's.")
    refusal_classifier: Literal["string-match", "judge"] = Field(
        "string-match", description="How XSTest/HarmBench refusals are classified."
    )
    judge_model: str | None = Field(
        None, description="Local folder of the XSTest judge model (refusal 'judge'); with judge_backend openai, "
        "the served model's name may stand instead.",
    )
    harmbench_classifier: str | None = Field(
        None, description="Local path of a HarmBench classifier; None falls back to refusal-based ASR (labelled)."
    )
    judge_backend: Literal["hf", "vllm", "openai"] | None = Field(
        None, description="How the XSTest judge and the HarmBench classifier run: None follows runtime.engine (vllm "
        "on GPU, hf on CPU); openai asks judge_endpoint.",
    )
    judge_endpoint: JudgeEndpoint = Field(
        default_factory=JudgeEndpoint, description="The OpenAI-compatible endpoint of judge_backend openai."
    )
    harmbench_split: Literal["test", "val"] = Field("test", description="HarmBench behaviours split.")
    safety_max_new_tokens: int = Field(512, ge=1, le=8192, description="Generation budget for safety prompts.")
    max_safety_items: int | None = Field(None, ge=1, description="Cap on safety prompts per benchmark.")
    kl_prompts: int = Field(64, ge=1, le=100000, description="Target prompts for KL(base || post).")
    kl_samples: int = Field(
        1, ge=1, le=64, description="Base samples per prompt (temperature 1) on which KL is summed exactly over the "
        "vocabulary at every position (kl_target_exact), with the Monte Carlo log-ratio sum beside it (kl_target).",
    )
    kl_max_new_tokens: int = Field(256, ge=1, le=8192, description="Length of the base samples for KL.")
    representations: RepresentationsParams = Field(
        default_factory=RepresentationsParams, description="Settings of the representations suite."
    )
    refusal_direction: DirectionParams = Field(
        default_factory=DirectionParams, description="Settings of the refusal_direction suite."
    )
    attacks: AttackParams = Field(default_factory=AttackParams, description="Settings of the attacks suite.")
    labels: Labels = Field(
        default_factory=Labels,
        description="What the evaluated model is (study, method, domain, start, model_size, seed, lr, engine, "
        "base_run_id): the analyzer's grouping keys, written by the conductor and copied into results.json.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> EvaluatorParams:
        if self.pass_k and max(self.pass_k) > self.target_samples:
            raise ValueError(f"pass@{max(self.pass_k)} needs target_samples >= {max(self.pass_k)}")
        if any(k < 1 for k in self.pass_k):
            raise ValueError("pass_k values must be >= 1")
        if self.tasks is not None and not self.tasks:
            raise ValueError("tasks, when given, must name at least one task")
        if self.refusal_classifier == "judge" and not self.judge_model:
            raise ValueError("refusal_classifier 'judge' needs judge_model (a local model folder)")
        return self
