"""The forgetting suite's lm-eval tasks: tier, capability, and which per-item metric decides correctness.

Tiers (methods reference §7): A on every checkpoint (log-likelihood multiple choice: cheap, and the per-choice
log-likelihoods give calibration), B every few checkpoints and on final ones (generative), C on final checkpoints.
Task ids were checked against lm-eval 0.4.13's registry. ``subset`` is the size of the seeded item subset used
when a manifest sets no ``limit`` (hellaswag and triviaqa are sampled to 2,000 as the plan has it). Tasks not listed
here can still be named explicitly; their metric is then lm-eval's first reported one, capability "other".
Code tasks (``runs_code``) are scored in the project's sandbox (``stages.evaluator.codeexec``).
"""

from __future__ import annotations

from dataclasses import dataclass

from stages.evaluator.tasks import project_task_names


@dataclass(frozen=True)
class TaskInfo:
    name: str
    capability: str
    tier: str | None  # "A" | "B" | "C" | None (explicit only)
    metric: str | None = None  # lm-eval per-item metric deciding correctness; None = the first one reported
    filter: str | None = None  # lm-eval filter whose output is scored; None = the first one reported
    subset: int | None = None  # default seeded subset size
    calibration: bool = True  # multiple choice with one gold index (softmax calibration makes sense)
    runs_code: bool = False  # scored by running model-written code (in the sandbox; in-process: allow_unsafe_code)


CATALOG: dict[str, TaskInfo] = {
    t.name: t
    for t in (
        # tier A: log-likelihood multiple choice
        TaskInfo("mmlu", "knowledge", "A", "acc"),
        TaskInfo("arc_challenge", "reasoning", "A", "acc"),
        TaskInfo("hellaswag", "commonsense", "A", "acc_norm", subset=2000),
        TaskInfo("winogrande", "commonsense", "A", "acc"),
        TaskInfo("truthfulqa_mc2", "truthfulness", "A", "acc", calibration=False),
        TaskInfo("piqa", "commonsense", None, "acc"),  # optional in the plan: name it explicitly
        # tier B: generative
        TaskInfo("ifeval", "instruction_following", "B", "prompt_level_strict_acc"),
        TaskInfo("gsm8k_cot_zeroshot", "math", "B", "exact_match", "flexible-extract"),
        TaskInfo("hendrycks_math500", "math", "B", "exact_match"),
        TaskInfo("triviaqa", "qa", "B", "exact_match", subset=2000),
        TaskInfo("nq_open", "qa", "B", "exact_match"),
        TaskInfo("humaneval_instruct", "code", "B", "pass@1", runs_code=True),
        TaskInfo("mbpp", "code", "B", "pass_at_1", runs_code=True),
        TaskInfo("gsm8k", "math", None, "exact_match", "flexible-extract"),
        TaskInfo("minerva_math500", "math", None, "math_verify"),
        TaskInfo("humaneval", "code", None, "pass@1", runs_code=True),
        TaskInfo("mbpp_plus_instruct", "code", None, "pass_at_1", runs_code=True),
        # tier C: expensive, final checkpoints
        TaskInfo("bbh_cot_fewshot", "reasoning", "C", "exact_match", "get-answer"),
        TaskInfo("gpqa_diamond_cot_zeroshot", "reasoning", "C", "exact_match", "flexible-extract"),
        TaskInfo("mmlu_pro", "knowledge", "C", "exact_match", "custom-extract"),
        TaskInfo("aime24", "math", "C", "exact_match"),
        TaskInfo("aime25", "math", "C", "exact_match"),
        # the project's own tasks over local rows (explicit only)
        TaskInfo("fllm_gsm8k", "math", None, "exact_match"),
        TaskInfo("fllm_gsm8k_mc", "math", None, "acc"),
        TaskInfo("fllm_nq_open", "qa", None, "exact_match"),
        TaskInfo("fllm_nq_mc", "qa", None, "acc"),
        TaskInfo("fllm_xstest", "safety", None, "refusal"),
        TaskInfo("fllm_harmbench", "safety", None, "refusal"),
        TaskInfo("fllm_humaneval", "code", None, "pass@1", runs_code=True),
    )
}
SAFETY_TASKS = ("fllm_xstest", "fllm_harmbench")


def tier_tasks(tiers: list[str]) -> list[str]:
    return [t.name for t in CATALOG.values() if t.tier in tiers]


def info(name: str) -> TaskInfo:
    """Catalog entry of a task or a leaf of a catalogued group (``mmlu_astronomy`` -> mmlu's entry)."""
    if name in CATALOG:
        return CATALOG[name]
    for prefix in ("mmlu_pro", "mmlu", "bbh_cot_fewshot"):
        if name.startswith(prefix + "_"):
            base = CATALOG[prefix]
            return TaskInfo(name, base.capability, base.tier, base.metric, base.filter, base.subset, base.calibration)
    return TaskInfo(name, "other", None)


def known_without_lm_eval(name: str) -> bool:
    """True when ``name`` is certainly a task (catalogued or one of the project's YAMLs)."""
    return name in CATALOG or name in project_task_names()
