"""KL(base || post) per token, exactly: a sum over the whole vocabulary at each position, from the two models' final
hidden states and lm-head weights (methods reference §9, RL's Razor).

Why exact: the Monte Carlo estimate ``log p_base(y_t) - log p_post(y_t)`` at the sampled token is unbiased but
noisy, and per sample it can come out negative; ``KL_t = sum_v p_base(v) (log p_base(v) - log p_post(v))`` at the
same positions (same base samples, same prefixes) is never negative and has lower variance (it averages the
log-ratio over every token instead of one drawn token). Both come from the same logits here, so the Monte Carlo
figure stays beside the exact one as a check.

Memory: logits are ``positions x vocab``; with Qwen3's 151,936 tokens a full sequence's float64 logits would be
gigabytes. Positions are taken in chunks so that the float64 working set (about four ``chunk x vocab`` arrays)
stays under ``budget_bytes``; when even one position's vocabulary row would not fit, the vocabulary is split too
(two passes: the log-normalisers first, then the sum).

Precision: the lm-head matmul takes the bf16 hidden states and weights upcast to float32 (so float32 copies of both
heads exist during a call: 2 x vocab x hidden x 4 bytes, 6 GB for Qwen3-14B) and everything after it runs in
float64. Rounding the logits to bf16, as the model's own forward does, would add rounding noise of up to half a bf16
step (0.06 for logits between 16 and 32) to each model's logits independently, and with it a spurious KL floor of
the order of 1e-4 per token or more: as large as the KL of a gentle fine-tune.

Each term is written ``p (log p - log q) - p + q``: the terms add up to the KL (both distributions sum to one) and
each is analytically >= 0 (``log x <= x - 1``), so rounding cannot push a position's KL below zero once every
term is clipped at zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

BUDGET_BYTES = 1 << 30  # float64 working set of one chunk (GPU or CPU memory)
ARRAYS = 4  # float64 (chunk x vocab) arrays alive at once: two logits and the terms, with room for a temporary


@dataclass
class TokenKL:
    """Per position: the exact KL (float64, >= 0) and the log-probability of the sampled token under each model."""

    kl: torch.Tensor
    base_logprob: torch.Tensor
    post_logprob: torch.Tensor


def chunk_sizes(vocab: int, budget_bytes: int = BUDGET_BYTES) -> tuple[int, int]:
    """(positions, vocabulary columns) per chunk so that ``ARRAYS`` float64 arrays of that shape fit the budget."""
    per_column = 8 * ARRAYS
    columns = min(vocab, max(1, budget_bytes // per_column))
    return max(1, budget_bytes // (per_column * columns)), columns


def _logits(h: torch.Tensor, w: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    return (h @ w[lo:hi].t()).double()


def _wide(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def token_kl(h_base: torch.Tensor, w_base: torch.Tensor, h_post: torch.Tensor, w_post: torch.Tensor,
             targets: torch.Tensor, *, budget_bytes: int = BUDGET_BYTES) -> TokenKL:
    """Exact KL(base || post) at each of T positions, given hidden states (T, d_base) and (T, d_post), lm-head
    weights (V, d_base) and (V, d_post) on one device, and the sampled tokens (T,)."""
    if w_base.shape[0] != w_post.shape[0]:
        raise ValueError(f"base and post have different vocabularies ({w_base.shape[0]} vs {w_post.shape[0]} rows "
                         "in their lm heads): KL over the vocabulary needs the same one")
    if not (h_base.shape[0] == h_post.shape[0] == targets.shape[0]):
        raise ValueError(f"positions differ: {h_base.shape[0]}, {h_post.shape[0]} hidden states, "
                         f"{targets.shape[0]} targets")
    vocab = w_base.shape[0]
    rows, cols = chunk_sizes(vocab, budget_bytes)
    w_base, w_post = _wide(w_base), _wide(w_post)
    h_base = h_base.to(w_base.device, w_base.dtype)
    h_post = h_post.to(w_post.device, w_post.dtype)
    targets = targets.to(w_base.device)
    spans = [(lo, min(lo + cols, vocab)) for lo in range(0, vocab, cols)]
    kls, base_lp, post_lp = [], [], []
    for start in range(0, h_base.shape[0], rows):
        hb, hq, t = h_base[start:start + rows], h_post[start:start + rows], targets[start:start + rows]
        kept = None
        lse_p = torch.full((hb.shape[0],), -math.inf, dtype=torch.float64, device=hb.device)
        lse_q = lse_p.clone()
        pick_p = torch.zeros_like(lse_p)
        pick_q = torch.zeros_like(lse_p)
        for lo, hi in spans:  # pass 1: log-normalisers and the sampled tokens' logits
            a_p, a_q = _logits(hb, w_base, lo, hi), _logits(hq, w_post, lo, hi)
            lse_p = torch.logaddexp(lse_p, torch.logsumexp(a_p, dim=-1))
            lse_q = torch.logaddexp(lse_q, torch.logsumexp(a_q, dim=-1))
            inside = (t >= lo) & (t < hi)
            at = (t - lo).clamp(0, hi - lo - 1)[:, None]
            pick_p = torch.where(inside, a_p.gather(1, at).squeeze(1), pick_p)
            pick_q = torch.where(inside, a_q.gather(1, at).squeeze(1), pick_q)
            kept = (a_p, a_q) if len(spans) == 1 else None
            del a_p, a_q
        total = torch.zeros_like(lse_p)
        for lo, hi in spans:  # pass 2: the sum of non-negative terms (the logits of pass 1 when they fit)
            a_p, a_q = kept if kept is not None else (_logits(hb, w_base, lo, hi), _logits(hq, w_post, lo, hi))
            kept = None
            lp, lq = a_p.sub_(lse_p[:, None]), a_q.sub_(lse_q[:, None])
            term = lp - lq
            p, q = lp.exp_(), lq.exp_()  # in place: three arrays at most
            total += term.mul_(p).sub_(p).add_(q).clamp_min_(0.0).sum(dim=-1)
            del a_p, a_q, lp, lq, p, q, term
        kls.append(total)
        base_lp.append(pick_p - lse_p)
        post_lp.append(pick_q - lse_q)
    empty = torch.zeros(0, dtype=torch.float64)
    return TokenKL(torch.cat(kls).cpu() if kls else empty, torch.cat(base_lp).cpu() if base_lp else empty,
                   torch.cat(post_lp).cpu() if post_lp else empty)


def mean_stderr(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and standard error of the mean (sample standard deviation / sqrt(n)); None where undefined."""
    n = len(values)
    if n == 0:
        return None, None
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)
