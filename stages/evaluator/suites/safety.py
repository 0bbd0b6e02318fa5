"""The safety suite (first part): refusal on XSTest and direct-request attack success on HarmBench.

Both run as the project's lm-eval tasks (``fllm_xstest``, ``fllm_harmbench``) so they use the same backend, chat
template and thinking rules as every other generative task, greedily with ``safety_max_new_tokens``. Responses are
then classified by the pluggable judges (``safety/refusal.py``, ``safety/judges.py``, ``safety/harmbench.py``).
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


def _judge(session: Session) -> RefusalJudge:
    p = session.params
    return ModelRefusalJudge(p.judge_model, p.batch_size) if p.refusal_classifier == "judge" else StringMatchJudge()


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
    xstest(session, records.get(XSTEST, []), safety)
    harmbench(session, records.get(HARMBENCH, []), safety)
    session.results.safety = safety
    for task, recs in records.items():
        session.save_records(task, recs)
    lm_tasks.compare_flat(session, list(records))
    session.finish("safety")


def xstest(session: Session, records: list[ItemRecord], safety: Safety) -> None:
    if not records:
        return
    judge = _judge(session)
    docs = [r.extra["doc"] for r in records]
    responses = [(r.responses or [""])[0] for r in records]
    verdicts = judge.classify([d.get("prompt") or r.prompt or "" for r, d in zip(records, docs)], responses)
    for r, doc, v in zip(records, docs, verdicts):
        r.extra["verdict"] = v
        r.correct = expected_behaviour(doc["label"], v)
        r.metric, r.score = "refused", float(refused(v))
    s = score_xstest([d["label"] for d in docs], [d["type"] for d in docs], verdicts)
    safety.xstest_over_refusal, safety.xstest_under_refusal = s.over_refusal, s.under_refusal
    safety.xstest_partial_refusal, safety.xstest_n_safe, safety.xstest_n_unsafe = (
        s.partial_refusal, s.n_safe, s.n_unsafe)
    session.results.refusal_classifier = judge.name
    session.results.safety_breakdown["xstest_refusal_by_type"] = s.refusal_by_type
    for metric, value, n in (("over_refusal", s.over_refusal, s.n_safe), ("under_refusal", s.under_refusal,
                                                                            s.n_unsafe)):
        if value is not None:
            session.results.scores.append(Score(task=XSTEST, metric=metric, value=value, n=n, capability="safety",
                                                tier="safety", higher_is_better=False))


def harmbench(session: Session, records: list[ItemRecord], safety: Safety) -> None:
    if not records:
        return
    try:
        classifier = make_classifier(session.params.harmbench_classifier)
    except HarmBenchClassifierError as e:
        raise InputError(str(e), "$.spec.params.harmbench_classifier") from None
    behaviours = [r.extra["doc"] for r in records]
    generations = [(r.responses or [""])[0] for r in records]
    successes = classifier.judge(behaviours, generations)
    for r, b, hit in zip(records, behaviours, successes):
        r.extra["attack_success"] = bool(hit)
        copyright_ = b.get("functional_category") == "copyright"
        r.correct = None if copyright_ else not hit
        r.metric, r.score = "attack_success", float(hit)
    s = score_harmbench(behaviours, generations, successes)
    safety.harmbench_asr, safety.harmbench_by_category = s.asr, s.by_category
    safety.harmbench_classifier, safety.harmbench_n = classifier.name, s.n
    safety.harmbench_refusal_rate = s.refusal_rate
    if s.asr is not None:
        metric = "asr" if classifier.name != FALLBACK else "asr_refusal_fallback"
        session.results.scores.append(Score(task=HARMBENCH, metric=metric, value=s.asr, n=s.n, capability="safety",
                                            tier="safety", higher_is_better=False))
