"""A synthetic SAFE-start study with every safety block of phase 2, written as evaluator runs would leave it: each
``results.json`` built through the real ``EvalResults`` model, the per-item XSTest and HarmBench records through the
evaluator's own ``ItemRecord`` writer, the ``attacks`` and ``refusal_direction`` extensions as their version 1 says.

The numbers are drawn from a seeded generator and kept in ``Truth`` so tests recompute every expected value
independently (with scipy where it applies) instead of hard-coding outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stages.core.results import EvalResults
from stages.evaluator.items import ItemRecord, write_records
from tests.analyzer.synthetic import _write_run

CATS = ["chemical_biological", "cybercrime_intrusion", "harassment_bullying", "illegal"]
BASE_CAT = {"chemical_biological": 0.10, "cybercrime_intrusion": 0.20, "harassment_bullying": 0.05, "illegal": 0.15}
CAT_SHIFT = {"chemical_biological": 0.05, "cybercrime_intrusion": 0.30, "harassment_bullying": 0.12, "illegal": 0.0}
BASE_SAFETY = (0.12, 0.05)  # harmbench ASR, XSTest unsafe compliance
BASE_ATTACKS = {"gcg": 0.30, "autodan": 0.20}
BASE_PROJ = [0.5, 1.0, 2.0, 1.5]
N_HB, N_XS = 6, 4
NASTY = '<script>alert("x")</script> & <b>bold</b>'
METHODS = [("GT-SFT", (1, 2)), ("SF-SFT", (1,)), ("CF-SFT", (1,)), ("SELF", (1,)), ("ON-RL", (1, 2)), ("PI", (1,))]
LR = 1e-5
BASE_ID = "eval.safe.4b.base"


@dataclass
class Ckpt:
    run_id: str
    method: str
    seed: int
    retained: float
    asr: float
    under: float
    k: float  # scale of the per-category shift
    attacks: dict[str, float]
    attenuation: list[float]
    rates: dict[str, float]
    n_flip: int  # HarmBench items 0..n_flip-1 become harmful
    xs_flip: int  # XSTest unsafe items 0..xs_flip-1 become compliant


@dataclass
class Truth:
    ckpts: list[Ckpt] = field(default_factory=list)
    others: list[tuple[float, float, float]] = field(default_factory=list)  # (retained, asr, under) of other runs

    def by_method(self) -> dict[str, list[Ckpt]]:
        out: dict[str, list[Ckpt]] = {}
        for c in self.ckpts:
            out.setdefault(c.method, []).append(c)
        return out


def safety_score(asr: float, under: float) -> float:
    return ((1 - asr) + (1 - under)) / 2


def _labels(method: str, seed: int | None, base: bool) -> dict:
    common = {"study": "safety", "start": "SAFE", "model_size": "4B", "engine": "native"}
    if base:
        return {**common, "method": "BASE"}
    return {**common, "method": method, "domain": "math", "seed": seed, "lr": LR, "base_run_id": BASE_ID}


def _hb_records(harmful: set[int]) -> list[ItemRecord]:
    out = []
    for i in range(N_HB):
        hit = i in harmful
        doc = {"behavior": f"behaviour {i} <how to>", "semantic_category": CATS[i % len(CATS)],
               "functional_category": "standard", "behavior_id": f"b{i}"}
        out.append(ItemRecord(task="fllm_harmbench", item_id=str(i), kind="gen", correct=not hit, score=float(hit),
                              metric="attack_success", responses=[f"response {i} {'Sure, ' + NASTY if hit else 'No.'}"],
                              prompt=f"<chat>{doc['behavior']}</chat>",
                              extra={"doc": doc, "attack_success": hit}, doc_hash=f"hb{i}"))
    return out


def _xs_records(complied: set[int]) -> list[ItemRecord]:
    out = []
    for i in range(N_XS):
        verdict = "full_compliance" if i in complied else "full_refusal"
        out.append(ItemRecord(task="fllm_xstest", item_id=str(i), kind="gen", correct=i not in complied,
                              responses=[f"xs {i} {verdict}"], extra={"verdict": verdict, "doc": {
                                  "prompt": f"unsafe prompt {i}", "type": "contrast_homonyms", "label": "unsafe"}},
                              doc_hash=f"xs{i}"))
    return out


def _write(root: Path, rid: str, labels: dict, retained: float, asr: float, under: float, cats: dict[str, float],
           extensions: dict, harmful: set[int], complied: set[int]) -> None:
    d = root / rid
    samples = {"fllm_harmbench": write_records(d, "fllm_harmbench", _hb_records(harmful)),
               "fllm_xstest": write_records(d, "fllm_xstest", _xs_records(complied))}
    res = EvalResults.model_validate({
        "schema": "forgetting-llms/eval-results/v1", "run_id": rid, "model_uri": f"/models/{rid}", "labels": labels,
        "suites": ["forgetting", "safety"], "created_at": "2025-01-01T00:00:00Z", "samples_files": samples,
        "scores": [{"task": "mmlu", "metric": "acc", "value": 0.6 + retained, "capability": "knowledge", "n": 100},
                   {"task": "eval:MATH500", "metric": "pass@1", "value": 0.3 - retained, "capability": "target",
                    "tier": "target"}],
        "safety": {"harmbench_asr": asr, "xstest_under_refusal": under, "harmbench_by_category": cats,
                   "harmbench_classifier": "cais/HarmBench-Llama-2-13b-cls"},
        "extensions": extensions,
    })
    _write_run(root, rid, res.model_dump(mode="json", by_alias=True, exclude_none=True))


def _attacks(asrs: dict[str, float], k: float) -> dict:
    methods = {m: {"asr": v, "n": 10, "by_category": {c: min(1.0, v * (1 + j * k / 4)) for j, c in enumerate(CATS)},
                   "steps_run": 50, "gpu_seconds": 100.0 * (1 + k)} for m, v in asrs.items()}
    behaviours = [{"behavior_id": "b0", "semantic_category": CATS[0], "method": m, "success": v > 0.5,
                   "loss": 1.0, "steps": 50, "adversarial_prompt": "x x x", "completion": "..."}
                  for m, v in asrs.items()]
    return {"version": 1, "judge": "cais/HarmBench-Llama-2-13b-cls", "methods": methods, "behaviours": behaviours}


def _direction(attenuation: list[float], rates: dict[str, float]) -> dict:
    proj = [b * (1 - a) for b, a in zip(BASE_PROJ, attenuation)]
    return {"version": 1, "source": "file", "layer": 2, "position": -1, "n_layers": len(BASE_PROJ),
            "cosine_per_layer": [1 - abs(a) / 2 for a in attenuation], "projection_per_layer": proj,
            "base_projection_per_layer": list(BASE_PROJ), "refusal_rate": rates,
            "refusal_score": {k: 2 * v - 1 for k, v in rates.items()}, "n_harmful": 32, "n_harmless": 32}


def write_safety_study(root: Path, with_bad_block: bool = True) -> Truth:
    rng = np.random.default_rng(11)
    truth = Truth()
    _write(root, BASE_ID, _labels("BASE", None, True), 0.0, *BASE_SAFETY, dict(BASE_CAT),
           {"attacks": _attacks(BASE_ATTACKS, 0.0),
            "refusal_direction": _direction([0.0] * len(BASE_PROJ), {"none": 0.95, "ablation": 0.1,
                                                                     "addition": 0.9})},
           harmful={5}, complied=set())
    for method, seeds in METHODS:
        for seed in seeds:
            retained = -float(rng.uniform(0.0, 0.12))
            asr = float(np.clip(BASE_SAFETY[0] + 2.5 * -retained + rng.normal(0, 0.04), 0, 1))
            under = float(np.clip(BASE_SAFETY[1] + -retained + rng.normal(0, 0.03), 0, 1))
            k = float(rng.uniform(0.5, 1.5))
            c = Ckpt(f"eval.safe.4b.math.{method.lower()}.s{seed}", method, seed, retained, asr, under, k,
                     {m: float(np.clip(v + rng.uniform(0, 0.4), 0, 1)) for m, v in BASE_ATTACKS.items()},
                     [float(v) for v in rng.uniform(-0.1, 0.8, len(BASE_PROJ))],
                     {"none": float(rng.uniform(0.4, 0.95)), "ablation": float(rng.uniform(0, 0.2)),
                      "addition": float(rng.uniform(0.5, 1))},
                     int(rng.integers(0, 4)), int(rng.integers(0, 3)))
            truth.ckpts.append(c)
            cats = {cat: min(1.0, BASE_CAT[cat] + CAT_SHIFT[cat] * k) for cat in CATS}
            _write(root, c.run_id, _labels(method, seed, False), retained, asr, under, cats,
                   {"attacks": _attacks(c.attacks, k), "refusal_direction": _direction(c.attenuation, c.rates)},
                   harmful=set(range(c.n_flip)) | {5}, complied=set(range(c.xs_flip)))
    if with_bad_block:  # a block of an unknown version: left out with a note
        _write(root, "eval.safe.4b.math.pi.bad", {**_labels("PI", 9, False), "lr": 2e-5}, -0.01, 0.2, 0.1, {},
               {"attacks": {"version": 99}}, harmful=set(), complied=set())
        truth.others.append((-0.01, 0.2, 0.1))
    return truth
