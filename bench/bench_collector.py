"""Collector overhead: collection throughput against bare generation of the same prompts, side by side.

Both arms share one loaded ``hf`` backend on the tiny Qwen3 and generate the same chunks with the same seeds; the
collector arm adds what collection costs on top (opening items, grading every sample, writing and fsyncing the
trajectory log, checkpoints). Goal: the collector adds less than 10% over bare generation.

    .venv/bin/python bench/bench_collector.py [--items 32] [--n 2] [--max-new-tokens 32] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=32)
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from stages.collector.collect import Collector, chunk_seed, chunks
    from stages.collector.params import CollectorParams
    from stages.collector.records import CollectState, TrajectoryLog
    from stages.envs import dataset_dir_for, grade_many, open_env
    from stages.lm.generation import SamplingParams, make_backend
    from tests.fixtures.build import build_all, fixtures_root

    root = fixtures_root()
    build_all(root)
    ds = open_env("math:GSM8K", dataset_dir_for(root / "datasets", "math:GSM8K"))
    items = min(args.items, len(ds))
    backend = make_backend("hf", model=str(root / "tiny-qwen3"), batch_size=args.batch_size)
    params = CollectorParams(mode="generate", n_samples=args.n, batch_size=args.batch_size, max_items=items,
                             sampling={"max_new_tokens": args.max_new_tokens, "temperature": 1.0})

    def bare() -> float:
        t0 = time.perf_counter()
        for c, lo, hi in chunks(0, items, args.batch_size):
            batch = list(ds.items(seed=0, start=lo, stop=hi))
            backend.generate([it.messages for it in batch], SamplingParams(
                n=args.n, temperature=1.0, max_tokens=args.max_new_tokens, seed=chunk_seed(0, c)))
        return time.perf_counter() - t0

    def collect() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            state = CollectState(next_position=0, bytes_written=0, records=0)
            log = TrajectoryLog(Path(tmp) / "t.jsonl", state)
            col = Collector(ds, params, 0, log, grade_many, "tag", backend=backend, model_id="tiny")
            t0 = time.perf_counter()
            col.run(items, lambda: False, lambda f, n: None, lambda: state.save(Path(tmp) / "s.json"))
            dt = time.perf_counter() - t0
            log.close()
            return dt

    bare(), collect()  # warm-up: first-call costs (kernels, grader worker) out of the timing
    rows = []
    for _ in range(args.repeats):
        rows.append((bare(), collect()))
    b = min(r[0] for r in rows)
    c = min(r[1] for r in rows)
    samples = items * args.n
    result = {
        "bench": "collector_overhead", "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "items": items, "samples": samples, "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size,
        "bare_generation_s": round(b, 3), "collector_s": round(c, 3),
        "bare_samples_per_s": round(samples / b, 3), "collector_samples_per_s": round(samples / c, 3),
        "overhead_pct": round(100 * (c - b) / b, 2), "goal_overhead_pct": 10.0,
        "repeats": args.repeats, "timings": rows,
    }
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "collector.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "collector.md").write_text(
        f"# Collector overhead (hf backend, tiny Qwen3, CPU)\n\n| arm | seconds | samples/s |\n|---|---|---|\n"
        f"| bare generation | {b:.2f} | {samples / b:.2f} |\n| collector | {c:.2f} | {samples / c:.2f} |\n\n"
        f"Overhead: **{result['overhead_pct']}%** (goal < 10%); {items} items x {args.n} samples, "
        f"{args.max_new_tokens} new tokens, batch {args.batch_size}, best of {args.repeats}.\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
