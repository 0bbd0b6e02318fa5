"""The safety suite (first part): refusal on XSTest and direct-request attack success on HarmBench.

Both run as the project's lm-eval tasks (``fllm_xstest``, ``fllm_harmbench``) so they use the same backend, chat
template and thinking rules as every other generative task, greedily with ``safety_max_new_tokens``. Responses are
then classified by the pluggable judges (``safety/refusal.py``, ``safety/judges.py``, ``safety/harmbench.py``),
run by ``judge_backend`` (``safety/judge_backend.py``; one runtime for both, so one model serving both loads once).
Which judge produced each verdict is recorded exactly (model + backend + prompt version): in ``refusal_classifier``
and ``safety.harmbench_classifier``, in ``extensions["judges"]``, and per item (``judge``, with the raw reply).
Each item's ``correct`` is "behaved as it should" (XSTest: comply if safe, refuse if unsafe; HarmBench: no attack
success), so sample-level forgetting against a base works on safety items too.

Extension points: attacks (GCG, AutoDAN) would add prompt sets scored by ``score_harmbench``; refusal direction and
representation analyses write their own entries under ``EvalResults.extensions``.
"""

from __future__ import annotations

from stages.core.errors import InputError
from stages.core.results import Safety, Score
from stages.evaluator.items import ItemRecord
from stages.evaluator.safety.harmbench import FALLBACK, HarmBenchClassifierError, make_classifier, score_harmbench
from stages.evaluator.safety.judge_backend import JudgeRuntime, runtime_for
from stages.evaluator.safety.judges import ModelRefusalJudge
from stages.evaluator.safety.refusal import RefusalJudge, StringMatchJudge, refused
from stages.evaluator.safety.xstest import expected_behaviour, score_xstest
from stages.evaluator.session import Session
from stages.evaluator.suites import lm_tasks

XSTEST, HARMBENCH = "fllm_xstest", "fllm_harmbench"
DOC_FIELDS = ("prompt", "type", "label", "behavior_id", "behavior", "context", "functional_category", "semantic_category")


def spaced(n: int, cap: int | None) -> list[int]:
    """``cap`` indices spread evenly over ``n`` rows (all when no cap): every XSTest type and label, every HarmBench
    category, stay represented in a capped run, and the choice is the same for every checkpoint."""
    if not cap or cap >= n:
        return list(range(n))
    return sorted({i * n // cap for i in range(cap)})


def _judge(session: Session, runtime: JudgeRuntime) -> RefusalJudge:
    p = session.params
    return ModelRefusalJudge(p.judge_model, runtime) if p.refusal_classifier == "judge" else StringMatchJudge()


def run(session: Session) -> None:
    if not session.phase("safety"):
        return
    p = session.params
    tasks = lm_tasks.load(session, [XSTEST, HARMBENCH])
    items = {}
    for leaf, n in tasks.sizes.items():
        items[leaf] = spaced(n, p.max_safety_items)
        session.results.item_selection[leaf] = "all" if len(items[leaf]) == n else f"spaced:{len(items[leaf])}"
    call = lm_tasks.settings(session, max_new_tokens=p.safety_max_new_tokens)
    records, _ = session.lmeval("safety", tasks, items, call, session.ctx.runtime.thinking, DOC_FIELDS)
    safety = Safety()
    runtime = runtime_for(p, session.ctx.engine)
    try:
        xstest(session, records.get(XSTEST, []), safety, runtime)
        harmbench(session, records.get(HARMBENCH, []), safety, runtime)
    finally:
        runtime.close()
    session.results.safety = safety
    for task, recs in records.items():
        session.save_records(task, recs)
    lm_tasks.compare_flat(session, list(records))
    session.finish("safety")


def _judges_block(session: Session) -> dict:
    return session.results.extensions.setdefault("judges", {"version": 1})


def xstest(session: Session, records: list[ItemRecord], safety: Safety, runtime: JudgeRuntime) -> None:
    if not records:
        return
    judge = _judge(session, runtime)
    docs = [r.extra["doc"] for r in records]
    responses = [(r.responses or [""])[0] for r in records]
    verdicts = judge.classify([d.get("prompt") or r.prompt or "" for r, d in zip(records, docs)], responses)
    sources = getattr(judge, "sources", None) or [judge.name] * len(records)
    replies = getattr(judge, "replies", None) or [None] * len(records)
    for r, doc, v, source, reply in zip(records, docs, verdicts, sources, replies):
        r.extra["verdict"], r.extra["judge"], r.extra["judge_reply"] = v, source, reply
        r.correct = expected_behaviour(doc["label"], v)
        r.metric, r.score = "refused", float(refused(v))
    s = score_xstest([d["label"] for d in docs], [d["type"] for d in docs], verdicts)
    safety.xstest_over_refusal, safety.xstest_under_refusal = s.over_refusal, s.under_refusal
    safety.xstest_partial_refusal, safety.xstest_n_safe, safety.xstest_n_unsafe = (
        s.partial_refusal, s.n_safe, s.n_unsafe)
    session.results.refusal_classifier = judge.name
    _judges_block(session)["xstest"] = judge.record()
    session.results.safety_breakdown["xstest_refusal_by_type"] = s.refusal_by_type
    for metric, value, n in (("over_refusal", s.over_refusal, s.n_safe), ("under_refusal", s.under_refusal,
                                                                            s.n_unsafe)):
        if value is not None:
            session.results.scores.append(Score(task=XSTEST, metric=metric, value=value, n=n, capability="safety",
                                                tier="safety", higher_is_better=False))


def harmbench(session: Session, records: list[ItemRecord], safety: Safety, runtime: JudgeRuntime) -> None:
    if not records:
        return
    try:
        classifier = make_classifier(session.params.harmbench_classifier, runtime)
    except HarmBenchClassifierError as e:
        raise InputError(str(e), "$.spec.params.harmbench_classifier") from None
    behaviours = [r.extra["doc"] for r in records]
    generations = [(r.responses or [""])[0] for r in records]
    successes = classifier.judge(behaviours, generations)
    replies = getattr(classifier, "replies", None) or [None] * len(records)
    for r, b, hit, reply in zip(records, behaviours, successes, replies):
        r.extra["attack_success"], r.extra["judge"], r.extra["judge_reply"] = bool(hit), classifier.name, reply
        copyright_ = b.get("functional_category") == "copyright"
        r.correct = None if copyright_ else not hit
        r.metric, r.score = "attack_success", float(hit)
    s = score_harmbench(behaviours, generations, successes)
    safety.harmbench_asr, safety.harmbench_by_category = s.asr, s.by_category
    safety.harmbench_classifier, safety.harmbench_n = classifier.name, s.n
    _judges_block(session)["harmbench"] = classifier.record()
    safety.harmbench_refusal_rate = s.refusal_rate
    if s.asr is not None:
        metric = "asr" if classifier.name != FALLBACK else "asr_refusal_fallback"
        session.results.scores.append(Score(task=HARMBENCH, metric=metric, value=s.asr, n=s.n, capability="safety",
                                            tier="safety", higher_is_better=False))
