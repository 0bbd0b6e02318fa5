"""KL(base || post) on target prompts, the RL's Razor predictor (methods reference §9).

KL_target = E_x E_{y ~ pi_base(.|x)} sum_t [log pi_base(y_t | x, y_<t) - log pi_post(y_t | x, y_<t)], estimated by
Monte Carlo: ``kl_samples`` samples per prompt from the base at temperature 1 (no top-p/top-k: the base's own
distribution), each scored teacher-forced by both models with the same code (``HFBackend.score``), so the two
log-probabilities differ only by the weights. Reported: the mean per sample (``kl_target``), its standard error,
and per-item values under ``samples/kl_target.jsonl``. The exact per-token version (a sum over the vocabulary) is
not built.
"""

from __future__ import annotations

from stages.core.errors import InputError
from stages.evaluator.items import ItemRecord
from stages.evaluator.session import Session
from stages.evaluator.suites import generation
from stages.evaluator.suites.target import doc_hash, open_items

TASK = "kl_target"


def _score(backend, pairs: list[tuple[list[int], list[int]]], batch: int) -> list[float]:
    """Summed log-probability of each completion given its prompt."""
    out = []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start:start + batch]
        lps = backend.score([p for p, _ in chunk], [c for _, c in chunk])
        out.extend(float(sum(lp)) for lp in lps)
    return out


def run(session: Session) -> None:
    inputs = session.ctx.inputs
    if "base_model" not in inputs or not session.phase("kl"):
        return
    if "target_data" not in inputs or session.params.target_env_id is None:
        raise InputError("KL(base || post) is computed on target prompts: give target_data and target_env_id",
                         "$.spec.inputs")
    from stages.lm.generation import SamplingParams

    p = session.params
    items = open_items(session, p.kl_prompts)
    sampling = SamplingParams(n=p.kl_samples, temperature=1.0, top_p=1.0, top_k=0, max_tokens=p.kl_max_new_tokens,
                              seed=session.ctx.runtime.seed)
    session.close()
    base = generation.scorer(session, str(inputs["base_model"].path))
    try:
        outputs = base.generate([it.messages for it in items], sampling)
        prompt_ids = [base.format.prompt_ids(base.tokenizer, it.messages) for it in items]
        pairs = [(prompt_ids[i], list(c.token_ids or [])) for i, out in enumerate(outputs) for c in out.completions]
        base_lp = _score(base, pairs, p.batch_size)
    finally:
        base.close()
    post = generation.scorer(session, session.model_dir)
    try:
        post_lp = _score(post, pairs, p.batch_size)
    finally:
        post.close()
    kls = [b - q for b, q in zip(base_lp, post_lp)]
    tokens = [len(c) for _, c in pairs]
    records, i = [], 0
    for it, out in zip(items, outputs):
        n = len(out.completions)
        mine = kls[i:i + n]
        records.append(ItemRecord(
            task=TASK, item_id=str(it.index), kind="gen", score=sum(mine) / n, metric="kl_sum",
            metrics={"kl_sum": sum(mine) / n, "kl_per_token": sum(mine) / max(1, sum(tokens[i:i + n]))},
            doc_hash=doc_hash(it), responses=[c.text for c in out.completions], response_tokens=tokens[i:i + n],
            extra={"base_logprob": base_lp[i:i + n], "post_logprob": post_lp[i:i + n]},
        ))
        i += n
    session.save_records(TASK, records)
    mean = sum(kls) / len(kls)
    var = sum((k - mean) ** 2 for k in kls) / (len(kls) - 1) if len(kls) > 1 else 0.0
    session.results.kl_target = mean
    session.results.kl_target_n = len(kls)
    session.results.kl_target_stderr = (var / len(kls)) ** 0.5 if len(kls) > 1 else None
    session.finish("kl")
