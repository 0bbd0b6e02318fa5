"""``study rehearse``: a study as written, run end to end on this machine with tiny stand-ins, before it costs anything.

Why: ``study check`` proves each manifest is valid on its own; only running the whole DAG proves the study works as a
study (collector outputs that the trainers accept, trained models the evaluator loads, results the analyzer can put
in every method x domain cell). The rehearsal changes exactly what a CPU cannot afford and keeps everything else as
the study file says:

- every checkpoint (students and teachers) becomes the tiny fixture model of the same family (its size label stays,
  so per-size resources and hyperparameters are looked up as written);
- datasets and benchmark rows come from the fixture folders, collections capped to a few rows;
- resources become one CPU; the scale keys of each method (steps, batch sizes, lengths, tokens per sample) are
  capped by the table below; methods, learning rates, betas, alphas, group sizes, seeds, suites, thinking, LoRA and
  tracking stay as written;
- an engine that cannot run on a CPU is replaced by the stage's CPU engine (verl's GRPO needs GPUs; vLLM too);
- the judge models become string matching (a tiny random model judges nothing); attack and refusal-direction
  budgets shrink to a few behaviours, steps and instructions;
- lm-eval tasks whose data lives on the Hugging Face hub (tiers A-C) are replaced by the project's tasks over local
  rows of the same kinds (multiple choice, generative math and QA, sandboxed code), since no hub is reachable.

Every replacement is written into each manifest's ``notes`` and into ``<root>/<study>/rehearsal.json``, and printed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stages.study.definition import StudyDef, _read_raw, parse_study, resolve_study_path
from stages.study.errors import StudyError
from stages.study.merge import deep_merge

# Engines that run on a CPU, per stage (the first is the replacement); why the others cannot.
CPU_ENGINES: dict[str, tuple[str, ...]] = {
    "collector": ("hf", "openai"),
    "sft-trainer": ("native", "verl"),
    "grpo-trainer": ("native",),
    "spin": ("native",),
    "pi-distill": ("native",),
    "evaluator": ("hf",),
    "analyzer": ("native",),
}
WHY_NOT_CPU: dict[str, str] = {
    "vllm": "vLLM's engine here needs a GPU",
    "verl": "verl's main_ppo needs GPUs (Ray workers with vLLM rollouts)",
}

CPU_RESOURCES = {"gpus_per_node": 0, "nodes": 1, "cpus_per_task": 1, "mem_gb": 4, "time_minutes": 30}

# What a CPU rehearsal must shrink, per method: steps, batch sizes, lengths, sampled tokens. Nothing else (checkpoint
# cadences stay as written: with a few steps, only the final checkpoint is written, as on the cluster's last step).
_SFT = {"max_steps": 2, "global_batch_size": 4, "micro_batch_tokens": 1024, "max_length": 512, "truncation": "right"}
SCALE: dict[str, dict[str, Any]] = {
    "GT-SFT": _SFT,
    "SF-SFT": _SFT,
    "CF-SFT": _SFT,
    "SELF": {"epochs_per_iteration": 1, "global_batch_size": 4, "max_length": 640, "max_prompt_length": 512,
             "sampling": {"max_new_tokens": 16}},
    "ON-RL": {"max_steps": 1, "prompts_per_step": 2, "mini_batch_size": 2, "micro_batch_size_per_gpu": 2,
              "max_prompt_length": 512, "sampling": {"max_new_tokens": 16}, "drop_zero_variance_groups": False},
    "PI": {"max_steps": 1, "prompts_per_step": 2, "max_prompt_length": 512, "sampling": {"max_new_tokens": 16},
           "drop_zero_variance_groups": False, "ppo_epochs": 1},
}
SELF_ITERATIONS = 2  # a cap, not a setting: a study's single iteration stays one
COLLECTION_SCALE = {
    "all": {"max_items": 8, "batch_size": 8},
    # the tiny random teacher never answers correctly: keep its wrong samples so the SFT runs get rows
    "generate": {"n_samples": 2, "sampling": {"max_new_tokens": 16}, "sft_correct_only": False},
}
EVAL_SCALE = {
    "limit": 4, "batch_size": 8, "greedy": {"temperature": 0.0, "max_new_tokens": 16}, "target_limit": 2,
    "target_samples": 2, "pass_k": [1, 2], "target_sampling": {"temperature": 1.0, "max_new_tokens": 16},
    "diversity_prompts": 3, "diversity_samples": 3, "diversity_sampling": {"temperature": 1.0, "max_new_tokens": 16},
    "max_safety_items": 6, "safety_max_new_tokens": 16, "kl_prompts": 2, "kl_samples": 2, "kl_max_new_tokens": 8,
}
# The safety blocks' budgets on a CPU: a few behaviours, steps and candidates; a few instructions for the direction.
ATTACK_SCALE = {"n_behaviours": 2, "max_new_tokens": 16, "allow_refusal_fallback": True,
                "gcg": {"num_steps": 2, "search_width": 8, "topk": 8},
                "autodan": {"num_steps": 2, "population": 4, "eval_steps": 1, "check_max_new_tokens": 8,
                            "forward_batch_size": 4}}
# A random stand-in never passes the paper's induce filter (its refusal score stays near -11), so the rehearsal lowers it.
DIRECTION_SCALE = {"n_train": 4, "n_val": 2, "n_eval": 2, "max_new_tokens": 8, "induce_threshold": -1000.0}
# The project's tasks over local rows that stand in for lm-eval's hub tasks: tier A (multiple choice by
# log-likelihood), tier B (generative math and QA, and code scored in the sandbox).
LOCAL_TASKS = ["fllm_gsm8k_mc", "fllm_nq_mc", "fllm_gsm8k", "fllm_nq_open", "fllm_humaneval"]


@dataclass
class StandIns:
    model: str = ".fixtures/tiny-qwen3"
    datasets: str = ".fixtures/datasets"
    benchmarks: str = ".fixtures/benchmarks"


@dataclass
class Rehearsal:
    study: StudyDef
    stand_ins: StandIns
    replaced: dict[str, str] = field(default_factory=dict)  # setting -> "as written -> rehearsal (why)"

    def to_json(self) -> str:
        doc = {"study": self.study.study, "stand_ins": asdict(self.stand_ins), "replaced": self.replaced}
        return json.dumps(doc, indent=2) + "\n"


REHEARSAL_FILE = "rehearsal.json"


def recorded_stand_ins(study_dir: Path) -> StandIns | None:
    """The stand-ins of a rehearsal folder (``status``/``retry`` on it plan the rehearsal, not the study as written)."""
    path = study_dir / REHEARSAL_FILE
    if not path.is_file():
        return None
    try:
        return StandIns(**json.loads(path.read_text(encoding="utf-8"))["stand_ins"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StudyError(f"{path} is not a rehearsal record ({e}); remove it or use another --root") from None


def _engines(raw: dict[str, Any], replaced: dict[str, str]) -> dict[str, str]:
    out = {}
    for stage, engine in (raw.get("engines") or {}).items():
        cpu = CPU_ENGINES.get(stage, ())
        if not cpu or engine in cpu:
            out[stage] = engine
            continue
        out[stage] = cpu[0]
        replaced[f"engines.{stage}"] = f"{engine} -> {cpu[0]} ({WHY_NOT_CPU.get(engine, 'needs a GPU')})"
    return out


def _scaled(written: dict[str, Any], scale: dict[str, Any], where: str, replaced: dict[str, str]) -> dict[str, Any]:
    out = deep_merge(written, scale)
    for key, value in scale.items():
        before = written.get(key, "stage default")
        if before != value and not isinstance(value, dict):
            replaced[f"{where}.{key}"] = f"{before} -> {value}"
        elif isinstance(value, dict):
            for sub, v in value.items():
                prior = (written.get(key) or {}).get(sub, "stage default") if isinstance(written.get(key), dict) \
                    else "stage default"
                if prior != v:
                    replaced[f"{where}.{key}.{sub}"] = f"{prior} -> {v}"
    return out


def rehearsal_of(ref: str, stand_ins: StandIns) -> Rehearsal:
    """The study file ``ref`` with the rehearsal's replacements, validated like any study."""
    from stages.study.paths import absolute

    raw = _read_raw(resolve_study_path(ref))
    raw.pop("extends", None)
    replaced: dict[str, str] = {}
    model = absolute(stand_ins.model)
    ckpts = (raw.get("models") or {}).get("checkpoints") or {}
    raw["models"] = {"checkpoints": {
        name: {k: v for k, v in ck.items() if k in ("repo_id", "size", "folder")} | {"path": model}
        for name, ck in ckpts.items()}}
    if ckpts:
        replaced["models"] = f"{', '.join(ckpts)} -> the tiny fixture model {stand_ins.model} (sizes kept as labels)"
    raw["data"] = {"root": absolute(stand_ins.datasets), "benchmarks": absolute(stand_ins.benchmarks)}
    replaced["data"] = f"datasets -> {stand_ins.datasets}, benchmark rows -> {stand_ins.benchmarks}"
    raw["resources"] = {"default": dict(CPU_RESOURCES)}
    replaced["resources"] = "every stage -> 1 CPU, no GPU"
    raw["engines"] = _engines(raw, replaced)
    coll = raw.get("collection") or {}
    raw["collection"] = {k: _scaled(coll.get(k) or {}, v, f"collection.{k}", replaced)
                         for k, v in COLLECTION_SCALE.items()} | {k: v for k, v in coll.items()
                                                                  if k not in COLLECTION_SCALE}
    hyper = raw.get("hyperparameters") or {}
    raw["hyperparameters"] = {m: _scaled(hyper.get(m) or {}, SCALE[m], f"hyperparameters.{m}", replaced)
                              for m in raw.get("methods") or [] if m in SCALE} | \
        {m: v for m, v in hyper.items() if m not in (raw.get("methods") or [])}
    self_params = raw["hyperparameters"].get("SELF")
    if self_params and int(self_params.get("iterations") or 1) > SELF_ITERATIONS:
        # two iterations still rehearse what a later one adds (sampling from the previous iteration's export)
        replaced["hyperparameters.SELF.iterations"] = f"{self_params['iterations']} -> {SELF_ITERATIONS}"
        self_params["iterations"] = SELF_ITERATIONS
    for size, per in (raw.get("hyperparameters_by_size") or {}).items():
        for m, params in per.items():
            capped = {k: v for k, v in SCALE.get(m, {}).items() if k in params}
            per[m] = _scaled(params, capped, f"hyperparameters_by_size.{size}.{m}", replaced)
    ev = dict(raw.get("evaluation") or {})
    params = dict(ev.get("params") or {})
    if params.get("tasks") is None:
        tiers = params.pop("tiers", ["A"])
        params["tasks"] = list(LOCAL_TASKS)
        replaced["evaluation.params.tiers"] = (f"{tiers} -> tasks {LOCAL_TASKS} (lm-eval's hub datasets are not "
                                               "reachable here; the project's tasks read local rows)")
    ev["params"] = _scaled(params, EVAL_SCALE, "evaluation.params", replaced)
    if ev.get("judges") or params.get("refusal_classifier", "string-match") != "string-match":
        ev.pop("judges", None)
        ev["params"]["refusal_classifier"] = "string-match"
        replaced["evaluation.judges"] = ("the judge models -> string matching (the tiny stand-in is no judge, and "
                                         "the HarmBench classifier's prompt comes from its own model card)")
    raw["evaluation"] = ev
    if raw.get("attacks"):
        attacks = dict(raw["attacks"], resources={})
        attacks["params"] = _scaled(attacks.get("params") or {}, ATTACK_SCALE, "attacks.params", replaced)
        raw["attacks"] = attacks
    direction = raw.get("refusal_direction")
    if isinstance(direction, dict):
        direction = dict(direction, resources={})
        direction["params"] = _scaled(direction.get("params") or {}, DIRECTION_SCALE, "refusal_direction.params",
                                      replaced)
        raw["refusal_direction"] = direction
    return Rehearsal(parse_study(raw, f"rehearsal of {ref}"), stand_ins, replaced)


def notes_for(stage: str, method: str | None, rehearsal: Rehearsal) -> str:
    """What one run's manifest was changed by: the global replacements, its stage's engine and its own scale keys."""
    own = {"collector": ("collection.",), "evaluator": ("evaluation.", "attacks.", "refusal_direction.")}.get(stage) \
        or ((f"hyperparameters.{method}.",) if method else ())
    items = [f"{k}: {v}" for k, v in rehearsal.replaced.items()
             if k in ("models", "data", "resources", f"engines.{stage}") or k.startswith(own)]
    return f"Rehearsal of study {rehearsal.study.study} (`study rehearse`); replaced: " + "; ".join(items)
