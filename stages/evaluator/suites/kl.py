"""KL(base || post) on target prompts, the RL's Razor predictor (methods reference §9).

KL_target = E_x E_{y ~ pi_base(.|x)} sum_t KL(pi_base(.|x, y_<t) || pi_post(.|x, y_<t)). ``kl_samples`` samples per
prompt come from the base at temperature 1 (no top-p/top-k: the base's own distribution); both models are run
teacher-forced on them, and at every position of every sample the KL is summed exactly over the vocabulary
(``stages.evaluator.metrics.kl``: never negative, lower variance). The Monte Carlo figure, the sum of the sampled
tokens' log-ratios ``log pi_base(y_t) - log pi_post(y_t)``, comes from the same logits and stays beside it as a
check (it estimates the same quantity; per sample it can be negative).

The two models are never in memory together: the base's final hidden states at the completion positions (tokens x
hidden size, in the model's dtype, kept on the CPU) and a copy of its lm head outlive it, and the post model's are
computed batch by batch against them.

Reported: ``kl_target_exact`` (mean over samples of the per-sample sum) with its standard error over samples, and
the Monte Carlo ``kl_target`` with its own, both over the same ``kl_target_n`` samples; per item (a prompt, its
samples averaged) under ``samples/kl_target.jsonl``: both sums and both per-token figures, and per sample the
summed log-probabilities under each model and the exact sum.
"""

from __future__ import annotations

import logging
from typing import Any

from stages.core.errors import InputError
from stages.evaluator.items import ItemRecord
from stages.evaluator.session import Session
from stages.evaluator.suites import generation
from stages.evaluator.suites.target import doc_hash, open_items

TASK = "kl_target"
log = logging.getLogger("stages.evaluator")


def _causal_lm(backend: Any) -> Any:
    return backend.model.get_base_model() if hasattr(backend.model, "get_base_model") else backend.model


def _states(backend: Any, pairs: list[tuple[list[int], list[int]]]) -> Any:
    """Final hidden states at the positions that predict each completion token (one (len(c), d) tensor a pair)."""
    import torch

    lm = _causal_lm(backend)
    seqs = [list(p) + list(c) for p, c in pairs]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), backend.pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)  # right padding: causal masking hides the pads from real positions
    with torch.no_grad():
        hidden = lm.model(input_ids=ids.to(backend.device), use_cache=False).last_hidden_state
    return [hidden[i, len(p) - 1:len(p) - 1 + len(c)] for i, (p, c) in enumerate(pairs)]


def _head(backend: Any) -> Any:
    return _causal_lm(backend).get_output_embeddings().weight.detach()


def _batches(n: int, size: int) -> list[range]:
    return [range(s, min(s + size, n)) for s in range(0, n, size)]


def run(session: Session) -> None:
    inputs = session.ctx.inputs
    if "base_model" not in inputs or not session.phase("kl"):
        return
    if "target_data" not in inputs or session.params.target_env_id is None:
        raise InputError("KL(base || post) is computed on target prompts: give target_data and target_env_id",
                         "$.spec.inputs")
    import torch

    from stages.evaluator.metrics.kl import mean_stderr, token_kl
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
        batches = _batches(len(pairs), p.batch_size)
        base_states = [h.to("cpu", copy=True) for b in batches for h in _states(base, [pairs[i] for i in b])]
        w_base = _head(base).clone()
        tokenizer = base.tokenizer
    finally:
        base.close()
    post = generation.scorer(session, session.model_dir, tokenizer)  # the base's token ids are scored
    exact, base_lp, post_lp = [], [], []
    try:
        w_post = _head(post)
        if w_post.shape[0] != w_base.shape[0]:
            raise InputError(f"base_model has {w_base.shape[0]} output tokens and model {w_post.shape[0]}: KL over "
                             "the vocabulary needs the same vocabulary", "$.spec.inputs.base_model")
        for b in batches:
            chunk = [pairs[i] for i in b]
            lengths = [len(c) for _, c in chunk]
            targets = torch.tensor([t for _, c in chunk for t in c], dtype=torch.long)
            res = token_kl(torch.cat([base_states[i] for i in b]), w_base.to(w_post.device),
                           torch.cat(_states(post, chunk)), w_post, targets)
            for part, dest in ((res.kl, exact), (res.base_logprob, base_lp), (res.post_logprob, post_lp)):
                dest.extend(float(x.sum()) for x in torch.split(part, lengths))
    finally:
        post.close()
    mc = [b - q for b, q in zip(base_lp, post_lp)]
    tokens = [len(c) for _, c in pairs]
    records, i = [], 0
    for it, out in zip(items, outputs):
        n = len(out.completions)
        sl = slice(i, i + n)
        count = max(1, sum(tokens[sl]))
        records.append(ItemRecord(
            task=TASK, item_id=str(it.index), kind="gen", score=sum(exact[sl]) / n, metric="kl_exact_sum",
            metrics={"kl_exact_sum": sum(exact[sl]) / n, "kl_exact_per_token": sum(exact[sl]) / count,
                     "kl_sum": sum(mc[sl]) / n, "kl_per_token": sum(mc[sl]) / count},
            doc_hash=doc_hash(it), responses=[c.text for c in out.completions], response_tokens=tokens[sl],
            extra={"base_logprob": base_lp[sl], "post_logprob": post_lp[sl], "kl_exact": exact[sl]},
        ))
        i += n
    session.save_records(TASK, records)
    r = session.results
    r.kl_target, r.kl_target_stderr = mean_stderr(mc)
    r.kl_target_exact, r.kl_target_exact_stderr = mean_stderr(exact)
    r.kl_target_n = len(exact)
    if r.kl_target_stderr and abs(r.kl_target - r.kl_target_exact) > 4 * r.kl_target_stderr:
        log.warning("KL check: Monte Carlo %.4g is %.1f standard errors from the exact %.4g", r.kl_target,
                    abs(r.kl_target - r.kl_target_exact) / r.kl_target_stderr, r.kl_target_exact)
    session.finish("kl")
