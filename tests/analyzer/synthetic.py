"""A synthetic study of evaluator results with known structure, written as a real study folder would be: one folder
per evaluator run holding its ``manifest.json`` (succeeded, digest recorded) and ``results.json``, unfinished runs,
and training manifests the analyzer must ignore or follow for labels.

Every trained run moves all non-target tasks of its base by exactly ``retained`` and its target task by ``gain``
(plus a per-seed offset for the seeded condition), so retained change, target gain, seed means and intervals, Pareto
fronts and the KL fit are known in advance (``EXPECTED_*`` below). Pareto ties are avoided on purpose so that
floating point cannot decide membership.

Write it with ``python -m tests.analyzer.synthetic <folder>`` (the analyzer's fixture manifest points its
``study_dir`` there).
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "forgetting-llms/manifest/v1"
RESULTS = "forgetting-llms/eval-results/v1"

# task -> (capability, primary metric); arc also reports a second, non-primary metric
TASKS = {
    "mmlu": ("knowledge", "acc"),
    "arc_challenge": ("reasoning", "acc_norm"),
    "hellaswag": ("commonsense", "acc_norm"),
    "ifeval": ("instruction_following", "prompt_level_strict_acc"),
}
TARGET_TASK = {"math": "eval:MATH500", "code": "eval:CodeContest", "qa": "eval:NaturalQuestions"}
BASE_SCORES = {"mmlu": 0.60, "arc_challenge": 0.50, "hellaswag": 0.70, "ifeval": 0.40,
               "eval:MATH500": 0.30, "eval:CodeContest": 0.10, "eval:NaturalQuestions": 0.20}
SIZE_OFFSET = {"1.7B": -0.10, "4B": 0.0, "8B": 0.05}
START_OFFSET = {"BASE": 0.0, "SAFE": 0.02}
BASE_ECE = 0.10
BASE_POLICY = {"self_bleu": 0.30, "distinct_2": 0.50, "mean_length": 200.0, "ece": BASE_ECE}
SAFE_BASE_SAFETY = (0.10, 0.05)  # harmbench ASR, XSTest under-refusal -> safety score 0.925
LR = {"GT-SFT": 1e-5, "SF-SFT": 1e-5, "CF-SFT": 1e-5, "SELF": 5e-7, "ON-RL": 1e-6, "PI": 1e-6}
T_975_DF2 = 4.302652729911275  # Student t 0.975 quantile, 2 degrees of freedom (tables)


@dataclass(frozen=True)
class Cond:
    start: str
    size: str
    method: str
    domain: str
    gain: float
    retained: float
    seeds: tuple[int, ...] = (1,)
    lr: float | None = None
    safety: tuple[float, float] | None = None  # (harmbench ASR, XSTest under-refusal)

    @property
    def lr_value(self) -> float:
        return self.lr if self.lr is not None else LR[self.method]


CONDITIONS = [
    # BASE 4B math: the E1 panel
    Cond("BASE", "4B", "GT-SFT", "math", 0.20, -0.08),
    Cond("BASE", "4B", "GT-SFT", "math", 0.10, -0.02, lr=5e-6),
    Cond("BASE", "4B", "SF-SFT", "math", 0.15, -0.05),
    Cond("BASE", "4B", "CF-SFT", "math", 0.18, -0.10),
    Cond("BASE", "4B", "SELF", "math", 0.05, -0.012),
    Cond("BASE", "4B", "ON-RL", "math", 0.17, -0.01, seeds=(1, 2, 3)),
    Cond("BASE", "4B", "PI", "math", 0.12, -0.03),
    # BASE 4B code: SF-SFT and CF-SFT never run, PI still running
    Cond("BASE", "4B", "GT-SFT", "code", 0.10, -0.06),
    Cond("BASE", "4B", "ON-RL", "code", 0.08, -0.01),
    Cond("BASE", "4B", "SELF", "code", 0.02, 0.0),
    # BASE 4B qa
    Cond("BASE", "4B", "GT-SFT", "qa", 0.05, -0.04),
    Cond("BASE", "4B", "ON-RL", "qa", 0.04, -0.025),
    Cond("BASE", "4B", "PI", "qa", 0.06, -0.02),
    # scale
    Cond("BASE", "1.7B", "GT-SFT", "math", 0.15, -0.12),
    Cond("BASE", "1.7B", "ON-RL", "math", 0.12, -0.02),
    Cond("BASE", "8B", "GT-SFT", "math", 0.22, -0.05),
    Cond("BASE", "8B", "ON-RL", "math", 0.20, -0.005),
    # SAFE 4B math: safety vs task
    Cond("SAFE", "4B", "GT-SFT", "math", 0.20, -0.06, safety=(0.40, 0.20)),
    Cond("SAFE", "4B", "ON-RL", "math", 0.15, -0.01, safety=(0.10, 0.10)),
    Cond("SAFE", "4B", "PI", "math", 0.10, -0.02, safety=(0.06, 0.10)),
    Cond("SAFE", "4B", "SF-SFT", "math", 0.12, -0.04, safety=(0.25, 0.15)),
]
SEED_TARGET_OFFSET = 0.02  # seeded condition: target gain = gain + offset * (seed - 2)
SEED_F_OFFSET = 0.01  # and its sample-level F on mmlu = 0.05 + offset * (seed - 2)
# unfinished evaluator runs, with the labels the conductor planned for them (their cells must read missing)
PENDING = [
    ("eval.base.4b.code.pi.lr1e-06.s1", "running",
     {"method": "PI", "domain": "code", "start": "BASE", "model_size": "4B", "seed": 1, "lr": 1e-6,
      "engine": "native"}),
    ("eval.safe.4b.math.self.lr5e-07.s1", "failed",
     {"method": "SELF", "domain": "math", "start": "SAFE", "model_size": "4B", "seed": 1, "lr": 5e-7,
      "engine": "native"}),
]
LABELS_FROM_TRAINING = ("BASE", "4B", "PI", "qa")  # its results carry no method/seed/lr/engine labels
TRAINING_FACTS = {"seed": 7, "lr": 2e-6, "engine": "native"}
NO_BASE_ID = ("BASE", "4B", "SELF", "code")  # no base_run_id: matched by start and size
SPLIT_SUITES = ("BASE", "8B", "ON-RL", "math")  # scored in two results (forgetting, target): one checkpoint
OTHER_ITEMS = ("BASE", "4B", "CF-SFT", "math")  # scored mmlu on other items than its base
OTHER_PROTOCOL = ("BASE", "4B", "SF-SFT", "math")  # evaluated with 5-shot where its base had 0
PROTOCOL = {"chat_template": "qwen3", "num_fewshot": 0}

# (start, size, domain) -> {(method, lr)} on the front of target gain vs retained change
EXPECTED_TARGET_FRONTS = {
    ("BASE", "4B", "math"): {("GT-SFT", 1e-5), ("ON-RL", 1e-6)},
    ("BASE", "4B", "code"): {("GT-SFT", 1e-5), ("ON-RL", 1e-6), ("SELF", 5e-7)},
    ("BASE", "4B", "qa"): {("PI", 2e-6)},  # its lr comes from the training manifest
    ("BASE", "1.7B", "math"): {("GT-SFT", 1e-5), ("ON-RL", 1e-6)},
    ("BASE", "8B", "math"): {("GT-SFT", 1e-5), ("ON-RL", 1e-6)},
    ("SAFE", "4B", "math"): {("GT-SFT", 1e-5), ("ON-RL", 1e-6)},
}
EXPECTED_SAFETY_FRONTS = {("SAFE", "4B", "math"): {("GT-SFT", 1e-5), ("ON-RL", 1e-6), ("PI", 1e-6)}}


def run_id(c: Cond, seed: int) -> str:
    return f"eval.{c.start}.{c.size}.{c.domain}.{c.method}.lr{c.lr_value:g}.s{seed}".lower()


def base_id(start: str, size: str) -> str:
    return f"eval.{start}.{size}.base".lower()


def base_value(task: str, start: str, size: str) -> float:
    return BASE_SCORES[task] + SIZE_OFFSET[size] + START_OFFSET[start]


def _score(task: str, value: float, capability: str, metric: str, **kw) -> dict:
    return {"task": task, "metric": metric, "value": round(value, 10), "capability": capability, "n": 100, **kw}


def _scores(start: str, size: str, retained: float, targets: dict[str, float]) -> list[dict]:
    rows = []
    for task, (cap, metric) in TASKS.items():
        rows.append(_score(task, base_value(task, start, size) + retained, cap, metric, stderr=0.01))
        if task == "arc_challenge":  # a second metric that must not be double counted
            rows.append(_score(task, 0.99, cap, "acc"))
    rows.append(_score("calibration_mmlu", BASE_ECE - retained, "calibration", "ece", higher_is_better=False))
    for task, value in targets.items():
        rows.append(_score(task, value, "target", "pass@1", tier="target"))
    return rows


def _results(rid: str, labels: dict, scores: list[dict], model_uri: str | None = None, **extra) -> dict:
    return {"schema": RESULTS, "run_id": rid, "model_uri": model_uri or f"/models/{rid}", "labels": labels,
            "suites": ["forgetting", "target"], "scores": scores, "created_at": "2025-01-01T00:00:00Z", **extra}


def _sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _write_run(root: Path, rid: str, results: dict | None, state: str = "succeeded", model: dict | None = None,
               labels: dict | None = None) -> Path:
    d = root / rid
    d.mkdir(parents=True, exist_ok=True)
    outputs = {}
    if results is not None:
        (d / "results.json").write_text(json.dumps(results, indent=1))
        f = d / "results.json"
        outputs["results"] = {"uri": str(f), "kind": "eval_results", "digest": _sha(f)}
    manifest = {
        "schema": MANIFEST, "stage": "evaluator", "run_id": rid,
        "spec": {"inputs": {"model": model or {"uri": f"/models/{rid}", "kind": "hf_model"}},
                 "params": {"labels": labels if labels is not None else (results or {}).get("labels", {})},
                 "output_dir": str(d)},
        "status": {"state": state, "ended_at": "2025-01-01T00:00:00Z" if state == "succeeded" else None,
                   "message": "boom" if state == "failed" else None},
        "provenance": {"git_commit": "0123456789abcdef0123", "package_version": "0.1.0"},
        "outputs": outputs,
    }
    (d / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return d / "manifest.json"


def _training_manifest(root: Path, name: str, stage: str, seed: int, lr: float, engine: str) -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    m = {"schema": MANIFEST, "stage": stage, "run_id": name,
         "spec": {"inputs": {}, "params": {"optim": {"lr": lr}}, "output_dir": str(d), "runtime": {"seed": seed}},
         "status": {"state": "succeeded"}, "provenance": {"engine": engine},
         "outputs": {"model": {"uri": str(d / "model"), "kind": "hf_model"}}}
    (d / "manifest.json").write_text(json.dumps(m, indent=1))
    return d / "manifest.json"


def write_study(root: Path) -> dict[str, Path]:
    """Write the study under ``root``; return run id -> evaluator manifest path (succeeded runs)."""
    root.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    pairs = sorted({(c.start, c.size) for c in CONDITIONS})
    for start, size in pairs:
        rid = base_id(start, size)
        targets = {t: base_value(t, start, size) for t in TARGET_TASK.values()}
        extra = {"policy": dict(BASE_POLICY)}
        if start == "SAFE":
            extra["safety"] = {"harmbench_asr": SAFE_BASE_SAFETY[0], "xstest_under_refusal": SAFE_BASE_SAFETY[1],
                               "xstest_over_refusal": 0.04, "harmbench_classifier": "refusal-fallback"}
        extra.update(item_subset_hash={"mmlu": "items-a"}, protocol=dict(PROTOCOL))
        labels = {"study": "synthetic", "method": "BASE", "start": start, "model_size": size}
        written[rid] = _write_run(root, rid, _results(rid, labels, _scores(start, size, 0.0, targets), **extra))
    # an unrelated training run in the study folder: must be ignored by the scan
    _training_manifest(root, "train.base.4b.math.gt-sft", "sft-trainer", 1, 1e-5, "verl")
    for c in CONDITIONS:
        for seed in c.seeds:
            rid = run_id(c, seed)
            offset = SEED_TARGET_OFFSET * (seed - 2) if len(c.seeds) > 1 else 0.0
            task = TARGET_TASK[c.domain]
            scores = _scores(c.start, c.size, c.retained, {task: base_value(task, c.start, c.size) + c.gain + offset})
            labels = {"study": "synthetic", "method": c.method, "domain": c.domain, "start": c.start,
                      "model_size": c.size, "seed": seed, "lr": c.lr_value, "engine": "native",
                      "base_run_id": base_id(c.start, c.size)}
            f = 0.05 + SEED_F_OFFSET * (seed - 2) if len(c.seeds) > 1 else round(0.02 - c.retained / 2, 6)
            extra = {
                "kl_target": round(-2.0 * c.retained, 10),
                "forgetting": [{"task": "mmlu", "n": 100, "forgetting": f, "backward_transfer": 0.03,
                                "retention": 0.6 - f, "non_acquisition": 0.37, "forgetting_conditional": f / 0.6}],
                "policy": {"self_bleu": 0.30 - c.retained, "distinct_2": 0.50 + c.retained,
                           "mean_length": 200.0 + 1000.0 * c.gain, "ece": BASE_ECE - c.retained},
            }
            if c.safety:
                extra["safety"] = {"harmbench_asr": c.safety[0], "xstest_under_refusal": c.safety[1]}
            model = None
            key = (c.start, c.size, c.method, c.domain)
            if key == LABELS_FROM_TRAINING:
                for k in ("method", "seed", "lr", "engine"):
                    labels.pop(k)
                train = _training_manifest(root, f"train.{rid}", "pi-distill", **TRAINING_FACTS)
                model = {"from": f"{train}#outputs.model"}
            if key == NO_BASE_ID:
                labels.pop("base_run_id")
            extra["item_subset_hash"] = {"mmlu": "items-b" if key == OTHER_ITEMS else "items-a"}
            extra["protocol"] = {**PROTOCOL, "num_fewshot": 5 if key == OTHER_PROTOCOL else 0}
            if key == SPLIT_SUITES:  # the target suite in a second results document of the same model
                target = [x for x in scores if x["capability"] == "target"]
                scores = [x for x in scores if x["capability"] != "target"]
                t_extra = {"kl_target": extra.pop("kl_target")}
                doc = _results(rid + ".target", labels, target, model_uri=f"/models/{rid}", **t_extra)
                written[rid + ".target"] = _write_run(root, rid + ".target", doc)
            written[rid] = _write_run(root, rid, _results(rid, labels, scores, **extra), model=model)
    for rid, state, labels in PENDING:
        _write_run(root, rid, None, state=state, labels=labels)
    return written


def retained_of(method: str, domain: str, start: str = "BASE", size: str = "4B") -> float:
    key = (method, domain, start, size)
    return next(c.retained for c in CONDITIONS if (c.method, c.domain, c.start, c.size) == key)


if __name__ == "__main__":
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else ".fixtures/eval-results")
    runs = write_study(dest)
    print(f"wrote {len(runs)} evaluator results and {len(PENDING)} unfinished runs under {dest}")
