"""The target suite: the domain's eval env (``eval:MATH500``, ``eval:CodeContest``, ``eval:NaturalQuestions``)
through ``stages.envs`` (its prompt templates and graders, the same ones the RL reward and the collector use),
with pass@k from ``target_samples`` samples per prompt (greedy when it is 1).

Items are the first ``target_limit`` rows of the eval split in file order, the same for every checkpoint; each
item's ``correct`` is its pass@1 estimate >= 0.5 (methods reference §9), so sample-level forgetting against the
base covers the target too.
"""

from __future__ import annotations

import hashlib
import json

from stages.core.errors import InputError
from stages.core.results import Score
from stages.evaluator.items import ItemRecord
from stages.evaluator.metrics.passk import mean_pass_at_k
from stages.evaluator.session import Session
from stages.evaluator.suites import generation
from stages.evaluator.suites.lm_tasks import compare_flat


def open_items(session: Session, limit: int | None) -> list:
    from stages.envs import DEFAULT_TEMPLATE, EnvError, open_env

    p = session.params
    try:
        ds = open_env(p.target_env_id, session.ctx.inputs["target_data"].path,
                      template=p.target_template or DEFAULT_TEMPLATE, thinking=session.ctx.runtime.thinking)
        return list(ds.items(seed=None, start=0, stop=limit))
    except EnvError as e:
        raise InputError(str(e), "$.spec.inputs.target_data") from None


def doc_hash(item) -> str:
    blob = json.dumps({"question": item.question, "ground_truth": item.ground_truth}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def run(session: Session) -> None:
    if not session.phase("target"):
        return
    from stages.envs import grade_many
    from stages.lm.generation import SamplingParams

    p = session.params
    env_id = p.target_env_id
    items = open_items(session, p.target_limit)
    s = p.greedy if p.target_samples == 1 else p.target_sampling
    params = SamplingParams(n=p.target_samples, temperature=0.0 if p.target_samples == 1 else s.temperature,
                            top_p=s.top_p, top_k=max(s.top_k, 0), max_tokens=s.max_new_tokens,
                            seed=session.ctx.runtime.seed)
    session.close()
    backend = generation.generator(session, session.model_dir)
    try:
        outputs = backend.generate([it.messages for it in items], params)
    finally:
        backend.close()
    texts = [c.text for out in outputs for c in out.completions]
    truths = [it.ground_truth for it, out in zip(items, outputs) for _ in out.completions]
    verdicts = iter(grade_many(env_id, texts, truths))
    records, outcomes = [], []
    for it, out in zip(items, outputs):
        vs = [next(verdicts) for _ in out.completions]
        ok = [v.correct for v in vs]
        outcomes.append(ok)
        rate = sum(ok) / len(ok)
        records.append(ItemRecord(
            task=env_id, item_id=str(it.index), kind="gen", correct=rate >= 0.5, score=rate, metric="pass@1",
            metrics={"pass@1": rate}, doc_hash=doc_hash(it), responses=[c.text for c in out.completions],
            response_tokens=[len(c.token_ids or []) for c in out.completions], prompt=it.messages[-1]["content"],
            extra={"verdicts": [v.verdict for v in vs]},
        ))
    session.save_records(env_id, records)
    session.results.target_env_id = env_id
    session.results.item_selection[env_id] = f"first:{len(items)}" if p.target_limit else "all"
    for k in sorted(set(p.pass_k)):
        session.results.scores.append(Score(task=env_id, metric=f"pass@{k}", value=mean_pass_at_k(outcomes, k),
                                            n=len(items), capability="target", tier="target"))
    compare_flat(session, [env_id])
    session.finish("target")
