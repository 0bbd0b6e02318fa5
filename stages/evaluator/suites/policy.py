"""The policy suite: diversity of sampled responses, response lengths and their shift against the base, and
calibration of multiple-choice answers (methods reference §9).

Diversity comes from a separate sampled run (``diversity_samples`` per prompt at the diversity temperature) of one
generative task: Self-BLEU within each prompt's samples (mean over prompts) and across all responses, and
distinct-1/2/3 over all responses, all on the answer part (after ``</think>``). Lengths and calibration reuse the
greedy records of the lm-eval phase: lengths per generative task, calibration per multiple-choice task with one
gold answer, pooled numbers in ``Policy``.
"""

from __future__ import annotations

from stages.core.errors import InputError
from stages.core.results import CalibrationRow, LengthRow, Policy
from stages.evaluator.comparison import load_results
from stages.evaluator.items import ItemRecord
from stages.evaluator.lmeval.catalog import info
from stages.evaluator.metrics.calibration import calibration, choice_probabilities
from stages.evaluator.metrics.distinct import distinct_n
from stages.evaluator.metrics.lengths import length_shift, length_stats, split_thinking
from stages.evaluator.metrics.self_bleu import self_bleu, self_bleu_grouped
from stages.evaluator.session import Session
from stages.evaluator.suites import lm_tasks

DIVERSITY_PREFIX = "diversity:"


def run(session: Session) -> None:
    if session.results.policy is None:
        session.results.policy = Policy()
    if session.phase("diversity"):
        diversity(session)
        session.finish("diversity")
    if session.phase("calibration_lengths"):
        groups = session.results.task_groups
        calibrate(session, groups)
        lengths(session, groups)
        session.finish("calibration_lengths")


def diversity(session: Session) -> None:
    p = session.params
    tasks = lm_tasks.load(session, [p.diversity_task])
    if any(kind != "gen" for kind in tasks.kinds.values()):
        raise InputError(f"diversity_task {p.diversity_task!r} is not generative", "$.spec.params.diversity_task")
    items = {leaf: list(range(min(p.diversity_prompts, n))) for leaf, n in tasks.sizes.items()}
    call = lm_tasks.settings(session, sampling=p.diversity_sampling, repeats=p.diversity_samples)
    thinking = session.ctx.runtime.thinking
    records, _ = session.lmeval("diversity", tasks, items, call, thinking)
    groups, everything = [], []
    for leaf, recs in records.items():
        session.save_records(DIVERSITY_PREFIX + leaf, recs)
        for r in recs:
            answers = [split_thinking(t)[1] for t in r.responses or []]
            groups.append(answers)
            everything.extend(answers)
    policy = session.results.policy
    assert policy is not None
    policy.self_bleu = self_bleu_grouped(groups)
    policy.self_bleu_across = self_bleu(everything) if len(everything) >= 2 else None
    policy.distinct_1, policy.distinct_2, policy.distinct_3 = (distinct_n(everything, n) for n in (1, 2, 3))
    policy.diversity_responses = len(everything)


def calibrate(session: Session, groups: dict[str, list[str]]) -> None:
    p = session.params
    pooled_probs, pooled_labels = [], []
    for name in sorted(groups):
        probs, labels = [], []
        for leaf in groups[name]:
            if not info(leaf).calibration:
                continue
            for r in session.records(leaf):
                if r.kind != "mc" or not r.choice_logliks or r.label is None:
                    continue
                lengths = r.choice_lengths if p.length_normalized_calibration else None
                probs.append(choice_probabilities(r.choice_logliks, lengths))
                labels.append(r.label)
        if not labels:
            continue
        c = calibration(probs, labels, p.ece_bins)
        session.results.calibration.append(CalibrationRow(task=name, n=c.n, accuracy=c.accuracy, ece=c.ece,
                                                          adaptive_ece=c.adaptive_ece, brier=c.brier, nll=c.nll))
        pooled_probs += probs
        pooled_labels += labels
    if pooled_labels:
        c = calibration(pooled_probs, pooled_labels, p.ece_bins)
        policy = session.results.policy
        assert policy is not None
        policy.ece, policy.adaptive_ece, policy.brier, policy.nll = c.ece, c.adaptive_ece, c.brier, c.nll


def _answer_lengths(session: Session, records: list[ItemRecord]) -> tuple[list[int], list[int]]:
    """Token lengths of the answer and thinking parts of every greedy response."""
    answers, thoughts = [], []
    for r in records:
        for i, text in enumerate(r.responses or []):
            thinking, answer = split_thinking(text)
            if thinking or "</think>" in text:
                answers.append(session.count_tokens(answer))
                thoughts.append(session.count_tokens(thinking))
            else:
                answers.append(r.response_tokens[i] if r.response_tokens else session.count_tokens(text))
    return answers, thoughts


def lengths(session: Session, groups: dict[str, list[str]]) -> None:
    inputs = session.ctx.inputs
    base = load_results(inputs["base_results"].path, "base_results") if "base_results" in inputs else None
    budget = session.params.greedy.max_new_tokens
    all_post, all_base = [], []
    for name in sorted(groups):
        recs = [r for leaf in groups[name] for r in session.records(leaf) if r.kind == "gen"]
        if not recs:
            continue
        answers, thoughts = _answer_lengths(session, recs)
        base_answers = None
        if base is not None and all(leaf in base.results.samples_files for leaf in groups[name]):
            base_answers, _ = _answer_lengths(session, [r for leaf in groups[name] for r in base.records(leaf)])
            all_base += base_answers
        all_post += answers
        for part, values in (("answer", answers), ("thinking", thoughts)):
            if not values:
                continue
            s = length_stats(values, budget if part == "answer" and not thoughts else None)
            w1, ks = length_shift(base_answers, values) if part == "answer" and base_answers else (None, None)
            session.results.lengths.append(LengthRow(task=name, part=part, n=s.n, mean=s.mean, median=s.median,
                                                     p90=s.p90, truncation_rate=s.truncation_rate, w1_log=w1, ks=ks))
    policy = session.results.policy
    assert policy is not None
    if all_post:
        s = length_stats(all_post, budget)
        policy.mean_length, policy.median_length, policy.p90_length = s.mean, s.median, s.p90
        policy.truncation_rate = s.truncation_rate
        if all_base:
            policy.length_w1_log, policy.length_ks = length_shift(all_base, all_post)
