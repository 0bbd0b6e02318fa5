"""Exact per-token KL(base || post) at Qwen3's real vocabulary (151,936) on one GPU: time, peak memory, agreement
with a brute-force float64 softmax, and the variance of the exact vs the Monte Carlo per-sample sums.

The evaluator's KL suite (``stages.evaluator.suites.kl``) feeds ``stages.evaluator.metrics.kl.token_kl`` the two
models' final hidden states at every completion position and their lm heads; throughput and memory depend on the
shapes, not on the values, so random bf16 heads and hidden states stand in for the models (post = base plus a
small perturbation, so the KL is small as after fine-tuning). Per shape (hidden size of Qwen3 1.7B, 4B, 8B, 14B):
one batch of ``--samples`` x ``--tokens`` positions, timed after a warm-up, with ``torch.cuda.max_memory_allocated``
beyond the inputs (the float32 copies of both heads included); the chunk budget (1 GiB by default) is what keeps a
151,936-token vocabulary in memory. The Monte Carlo figure uses tokens drawn from the base's own distributions at
every position. Two perturbation levels (gentle, clear); on the first 32 positions the KL is also computed from
bf16-rounded logits (the model's own forward), to show the rounding floor that the float32 logits avoid.

    python bench/bench_kl_exact.py [--samples 8] [--tokens 2048] [--budget-mb 1024]

Writes $OUT/kl_exact.json (or bench/results/kl_exact.json) and prints it. Needs CUDA (runs on CPU with --cpu, for
a smoke check only, at a small size).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from stages.evaluator.metrics.kl import mean_stderr, token_kl  # noqa: E402

VOCAB = 151936
HIDDEN = {"1.7B": 2048, "4B": 2560, "8B": 4096, "14B": 5120}


LEVELS = {"gentle": (2e-4, 0.01), "clear": (2e-3, 0.1)}  # post = base + noise on (head weights, hidden states)


def brute_force(hb, wb, hq, wq, wide: bool = True) -> torch.Tensor:
    """KL from the full softmax in float64; ``wide=False`` rounds the logits to the inputs' dtype first (bf16)."""
    def logits(h, w):
        return (h.float() @ w.float().t()) if wide else (h @ w.t())

    lp = torch.log_softmax(logits(hb, wb).double(), dim=-1)
    lq = torch.log_softmax(logits(hq, wq).double(), dim=-1)
    return (lp.exp() * (lp - lq)).sum(dim=-1)


def one(shape: str, level: str, samples: int, tokens: int, budget: int, device: str, dtype: torch.dtype) -> dict:
    d = HIDDEN[shape]
    w_noise, h_noise = LEVELS[level]
    gen = torch.Generator(device=device).manual_seed(0)
    wb = (torch.randn(VOCAB, d, generator=gen, device=device) * 0.02).to(dtype)
    wq = (wb.float() + torch.randn(VOCAB, d, generator=gen, device=device) * w_noise).to(dtype)
    t = samples * tokens
    hb = (torch.randn(t, d, generator=gen, device=device) * 3).to(dtype)
    hq = (hb.float() + torch.randn(t, d, generator=gen, device=device) * h_noise).to(dtype)
    with torch.no_grad():  # tokens sampled from the base at every position, in chunks
        targets = torch.cat([torch.multinomial(torch.softmax((hb[i:i + 256] @ wb.t()).float(), -1), 1).squeeze(1)
                             for i in range(0, t, 256)])
    token_kl(hb[:64], wb, hq[:64], wq, targets[:64], budget_bytes=budget)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    res = token_kl(hb, wb, hq, wq, targets, budget_bytes=budget)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() - before) if device == "cuda" else None
    ref = brute_force(hb[:32], wb, hq[:32], wq).cpu()
    rounded = brute_force(hb[:32], wb, hq[:32], wq, wide=False).cpu()
    exact = [float(x.sum()) for x in res.kl.view(samples, tokens)]
    mc = [float(x.sum()) for x in (res.base_logprob - res.post_logprob).view(samples, tokens)]
    (e_mean, e_se), (m_mean, m_se) = mean_stderr(exact), mean_stderr(mc)
    return {
        "shape": shape, "level": level, "hidden": d, "vocab": VOCAB, "positions": t, "dtype": str(dtype).replace("torch.", ""),
        "seconds": round(seconds, 4), "positions_per_s": round(t / seconds),
        "peak_extra_mib": None if peak is None else round(peak / 2**20, 1), "budget_mib": budget // 2**20,
        "min_token_kl": float(res.kl.min()), "max_abs_diff_vs_brute_force": float((res.kl[:32] - ref).abs().max()),
        "mean_token_kl": float(res.kl.mean()),
        "first32_mean_token_kl": float(ref.mean()), "first32_mean_token_kl_bf16_logits": float(rounded.mean()),
        "exact_per_sample": {"mean": e_mean, "stderr": e_se},
        "monte_carlo_per_sample": {"mean": m_mean, "stderr": m_se},
        "stderr_ratio_mc_over_exact": None if not e_se else m_se / e_se,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--budget-mb", type=int, default=1024)
    ap.add_argument("--shapes", nargs="*", default=list(HIDDEN))
    ap.add_argument("--cpu", action="store_true", help="smoke check on the CPU (small sizes, float32)")
    a = ap.parse_args()
    device = "cpu" if a.cpu else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device (use --cpu for a smoke check)")
    dtype = torch.float32 if a.cpu else torch.bfloat16
    rows = [one(s, lv, a.samples, a.tokens, a.budget_mb * 2**20, device, dtype) for s in a.shapes for lv in LEVELS]
    doc = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__,
           "results": rows}
    out = Path(os.environ.get("OUT") or REPO / "bench" / "results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "kl_exact.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc, indent=1))
    bad = [r["shape"] for r in rows if r["min_token_kl"] < 0 or not math.isfinite(r["mean_token_kl"])]
    if bad:
        sys.exit(f"negative or non-finite KL for {bad}")


if __name__ == "__main__":
    main()
