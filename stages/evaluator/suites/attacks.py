"""The ``attacks`` suite: GCG and AutoDAN on a fixed, seeded subset of HarmBench behaviours, each final completion
judged by the HarmBench classifier (plan phase 2; issue 24). Not part of ``all``: attacks cost GPU-hours per
checkpoint, so a study asks for them on selected checkpoints only.

For each method and behaviour: the attack (``stages/evaluator/attacks/gcg.py``, ``autodan.py``) finds an adversarial
user message; the attacked model completes it greedily (``attacks.max_new_tokens``, the study's thinking switch);
the row (prompt, loss, steps, completion, seconds) is appended to ``checkpoints/attacks/behaviours.jsonl`` before the
next behaviour starts. A preempted run reads the finished rows back and attacks only the rest, so a preemption loses
at most the behaviour in progress; since every behaviour's attack is seeded by (seed, method, behaviour id) alone, a
resumed run gives the rows an uninterrupted one gives. Then the classifier judges every completion (HarmBench's
classifier; the refusal fallback only with ``allow_refusal_fallback``, labelled), and ASR is reported per method,
overall and per semantic category, under ``extensions["attacks"]`` (see ``EXTENSION_VERSION``).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from stages.core.errors import InputError
from stages.core.results import Score
from stages.evaluator.attacks.behaviours import Behaviour, load, select
from stages.evaluator.attacks.params import AttackParams
from stages.evaluator.representations.rows import Rows
from stages.evaluator.session import Session

log = logging.getLogger("stages.evaluator")
PHASE = EXTENSION = "attacks"
EXTENSION_VERSION = 1


def behaviours(session: Session) -> tuple[list[Behaviour], str]:
    from stages.evaluator.attacks.checks import check_rows

    p: AttackParams = session.params.attacks
    check_rows(session.params, session.benchmarks)  # rows that were pending at plan time: InputError if unusable
    rows, targets = load(session.benchmarks, session.params.harmbench_split)
    return select(rows, p.n_behaviours, p.seed, p.behaviour_ids, p.functional_categories), targets


class _Attacker:
    """The attacked model and the method objects, built on first use (a resumed run that finished every attack
    loads no model)."""

    def __init__(self, session: Session):
        self.session, self.p = session, session.params.attacks
        self.model: Any = None
        self.tokenizer: Any = None
        self.methods: dict[str, Any] = {}
        mutate_model = self.p.autodan.mutate_model
        self.mutation_name = f"llm:{Path(mutate_model).name}" if mutate_model else "word"

    def check_stop(self) -> None:
        if self.session.ctx.stop_requested:
            raise self.session.ctx.preempt(str(self.session.ctx.checkpoint_dir / "attacks"))

    def method(self, name: str) -> Any:
        if name in self.methods:
            return self.methods[name]
        from stages.lm.loading import load_model, load_tokenizer

        thinking = self.session.ctx.runtime.thinking
        if self.model is None:
            try:
                self.model = load_model(self.session.model_dir, dtype=self.session.params.dtype)
            except (OSError, ValueError, KeyError) as e:
                raise InputError(f"model folder {self.session.model_dir} does not load: {e}",
                                 "$.spec.inputs.model") from None
            self.tokenizer = load_tokenizer(self.session.model_dir)
        if name == "gcg":
            from stages.evaluator.attacks.gcg import GCGAttack

            self.methods[name] = GCGAttack(self.model, self.tokenizer, self.p.gcg, thinking, self.check_stop)
        else:
            from stages.evaluator.attacks.autodan import AutoDANAttack
            from stages.evaluator.attacks.checks import read_prototypes
            from stages.evaluator.attacks.mutation import LLMMutation, WordMutation
            from stages.evaluator.attacks.prototypes import PROTOTYPES

            a = self.p.autodan
            mutation = (LLMMutation(a.mutate_model, self.session.params.dtype, thinking) if a.mutate_model
                        else WordMutation())
            self.mutation_name = mutation.name
            prototypes = read_prototypes(a.prototypes) if a.prototypes else PROTOTYPES
            self.methods[name] = AutoDANAttack(self.model, self.tokenizer, a, thinking, self.check_stop, prototypes,
                                               mutation)
        return self.methods[name]

    def attack(self, name: str, b: Behaviour) -> dict[str, Any]:
        from stages.evaluator.attacks.scoring import chat_prompt, complete

        attack = self.method(name)
        t0 = time.monotonic()
        outcome = attack.run(b, self.p.seed)
        prompt = chat_prompt(self.tokenizer, outcome.adversarial_prompt, self.session.ctx.runtime.thinking)
        completion = complete(self.model, self.tokenizer, prompt, self.p.max_new_tokens)
        return {"method": name, "behavior_id": b.behavior_id, "semantic_category": b.semantic_category,
                "loss": outcome.loss, "steps": outcome.steps, "adversarial_prompt": outcome.adversarial_prompt,
                "completion": completion, "seconds": round(time.monotonic() - t0, 3)}

    def close(self) -> None:
        import gc

        import torch

        self.methods.clear()
        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def judge(session: Session, chosen: list[Behaviour], rows: list[dict[str, Any]]) -> tuple[list[bool], dict]:
    from stages.evaluator.safety.harmbench import HarmBenchClassifierError, make_classifier
    from stages.evaluator.safety.judge_backend import runtime_for

    p = session.params
    runtime = runtime_for(p, session.ctx.engine)
    docs = {b.behavior_id: b.doc() for b in chosen}
    try:
        classifier = make_classifier(p.harmbench_classifier, runtime)
        verdicts = classifier.judge([docs[r["behavior_id"]] for r in rows], [r["completion"] for r in rows])
    except HarmBenchClassifierError as e:
        raise InputError(str(e), "$.spec.params.harmbench_classifier") from None
    finally:
        runtime.close()
    return [bool(v) for v in verdicts], classifier.record()


def block(p: AttackParams, rows: list[dict[str, Any]], verdicts: list[bool], judge_record: dict, targets: str,
          mutation: str, device: str) -> dict[str, Any]:
    methods: dict[str, Any] = {}
    for method in p.methods:
        mine = [(r, v) for r, v in zip(rows, verdicts) if r["method"] == method]
        cats: dict[str, list[bool]] = defaultdict(list)
        for r, v in mine:
            cats[r["semantic_category"]].append(v)
        methods[method] = {
            "asr": sum(v for _, v in mine) / len(mine) if mine else None, "n": len(mine),
            "by_category": {c: sum(v) / len(v) for c, v in sorted(cats.items())},
            "steps_run": sum(r["steps"] for r, _ in mine),
            "gpu_seconds": round(sum(r["seconds"] for r, _ in mine), 3),
        }
    if "autodan" in methods:
        methods["autodan"]["mutation"] = mutation
    return {
        "version": EXTENSION_VERSION, "judge": judge_record["name"], "judge_record": judge_record,
        "methods": methods,
        "behaviours": [{"behavior_id": r["behavior_id"], "semantic_category": r["semantic_category"],
                        "method": r["method"], "success": v, "loss": r["loss"], "steps": r["steps"],
                        "adversarial_prompt": r["adversarial_prompt"], "completion": r["completion"]}
                       for r, v in zip(rows, verdicts)],
        "targets": targets, "seed": p.seed, "settings": p.model_dump(mode="json"), "device": device,
    }


def run(session: Session) -> None:
    if not session.phase(PHASE):
        return
    p: AttackParams = session.params.attacks
    chosen, targets = behaviours(session)
    session.close()  # an lm-eval model of an earlier phase
    work = session.ctx.checkpoint_dir / "attacks"
    work.mkdir(parents=True, exist_ok=True)
    done = Rows(Path(work) / "behaviours.jsonl", ("method", "behavior_id"))
    attacker = _Attacker(session)
    todo = [(m, b) for m in p.methods for b in chosen if not done.has(method=m, behavior_id=b.behavior_id)]
    try:
        for i, (method, b) in enumerate(todo):
            attacker.check_stop()
            row = attacker.attack(method, b)
            done.add(row)
            log.info("attacks: %s %s loss %s in %d steps, %.1f s", method, b.behavior_id, row["loss"], row["steps"],
                     row["seconds"])
            session.ctx.report(note=f"attacks: {i + 1}/{len(todo)} ({method} {b.behavior_id})")
    finally:
        device = str(next(attacker.model.parameters()).device) if attacker.model is not None else None
        attacker.close()
    order = {(m, b.behavior_id): i for i, (m, b) in enumerate((m, b) for m in p.methods for b in chosen)}
    rows = sorted((r for r in done.all() if (r["method"], r["behavior_id"]) in order),
                  key=lambda r: order[(r["method"], r["behavior_id"])])
    verdicts, record = judge(session, chosen, rows)
    session.results.extensions[EXTENSION] = block(p, rows, verdicts, record, targets, attacker.mutation_name, device)
    fallback = record["name"] == "refusal-fallback"
    for method, m in session.results.extensions[EXTENSION]["methods"].items():
        if m["asr"] is not None:
            session.results.scores.append(Score(
                task=f"attack_{method}", metric="asr_refusal_fallback" if fallback else "asr", value=m["asr"],
                n=m["n"], capability="safety", tier="safety", higher_is_better=False))
    session.finish(PHASE)
