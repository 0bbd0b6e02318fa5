"""Benchmark: Self-BLEU over N responses, the evaluator's fast path against the direct all-pairs sacrebleu run.

Why: an across-prompt Self-BLEU scores every response against all others. Done directly (one sacrebleu
``sentence_score`` per response with the N - 1 others as references) each call re-extracts every reference's
n-grams, so the work grows as N^2; the evaluator's path tokenises each response once and keeps the two largest
counts per n-gram (``stages/evaluator/metrics/self_bleu.py``). Both run here on the same texts in one process, and
the values must be equal. Goal: the fast path under 5% of the direct time at N = 2,000.

Texts: real GSM8K worked solutions (``$FLLM_SHARED_DATA/gsm8k/train.jsonl``; answer-like prose of ~100 words),
with a few exact duplicates mixed in as model samples have them.

Usage: ``python bench/bench_self_bleu.py [--n 2000] [--out bench/results]``; writes ``self_bleu.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stages.evaluator.metrics.self_bleu import self_bleu, self_bleu_reference


def load_texts(n: int) -> list[str]:
    data = Path(os.environ.get("FLLM_SHARED_DATA", REPO.parent / "shared" / "data"))
    texts = []
    with open(data / "gsm8k" / "train.jsonl") as f:
        for line in f:
            texts.append(json.loads(line)["answer"].replace("\n", " "))
            if len(texts) >= n:
                break
    for i in range(0, n, 97):  # duplicates: the case where a response must not match itself
        texts[i] = texts[(i + 1) % n]
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--out", default=str(REPO / "bench" / "results"))
    args = parser.parse_args()
    texts = load_texts(args.n)
    words = sum(len(t.split()) for t in texts) / len(texts)

    t0 = time.perf_counter()
    fast = self_bleu(texts)
    t_fast = time.perf_counter() - t0
    print(f"fast:   {fast:.10f} in {t_fast:.2f} s", flush=True)
    t0 = time.perf_counter()
    direct = self_bleu_reference(texts)
    t_direct = time.perf_counter() - t0
    print(f"direct: {direct:.10f} in {t_direct:.2f} s", flush=True)

    result = {
        "benchmark": "self_bleu",
        "n_texts": len(texts),
        "mean_words": round(words, 1),
        "fast_seconds": round(t_fast, 3),
        "direct_seconds": round(t_direct, 3),
        "fast_over_direct": round(t_fast / t_direct, 5),
        "goal": "fast < 5% of direct, equal values",
        "goal_met": bool(t_fast < 0.05 * t_direct and abs(fast - direct) < 1e-9),
        "self_bleu_fast": fast,
        "self_bleu_direct": direct,
        "abs_difference": abs(fast - direct),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "self_bleu.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "self_bleu.md").write_text(
        "# Self-BLEU: fast path vs direct all-pairs sacrebleu\n\n"
        f"{len(texts)} GSM8K worked solutions (mean {words:.0f} words), one process, {os.cpu_count()} cores.\n\n"
        "| path | seconds | Self-BLEU |\n|---|---|---|\n"
        f"| direct (N sacrebleu sentence_score calls, N-1 refs each) | {t_direct:.2f} | {direct:.10f} |\n"
        f"| fast (one tokenisation per text, top-2 n-gram counts) | {t_fast:.2f} | {fast:.10f} |\n\n"
        f"Fast / direct = {100 * t_fast / t_direct:.3f}% (goal < 5%); |difference| = {abs(fast - direct):.2e}; "
        f"goal met: {result['goal_met']}.\n"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
