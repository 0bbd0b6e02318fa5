"""Benchmark: the ``hf`` generation backend (transformers ``generate``) on a Qwen3-1.7B-shaped model.

Why: ``hf`` is the embedded backend (CPU, tests, the GPU box without vLLM). Its throughput says how far it is
from usable for rollouts, and so when a stage must use vLLM instead. It runs the backend's own code path
(length-sorted batches, left padding, seeded sampling) with random prompts of GSM8K question length and a fixed
number of new tokens (``ignore_eos``), at batch 64 and 256.

Usage: ``python bench/bench_hf_generate.py --out DIR`` (``--tiny`` for a CPU smoke run). Results:
``DIR/hf_generate.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_native_engine import QWEN3_1P7B, TINY, build_model, card_name, make_rows, sample_lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--prompt-mean", type=float, default=120)
    args = parser.parse_args()

    import torch
    import transformers

    from stages.lm.generation import SamplingParams
    from stages.lm.generation.hf_backend import HFBackend

    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    shape = TINY if args.tiny else QWEN3_1P7B
    if args.tiny:
        args.batches, args.new_tokens, args.prompt_mean = "4,8", 8, 20
    model = build_model(shape, device)
    if device.type == "cuda":
        model = model.to(torch.bfloat16)
    backend = HFBackend(model, tokenizer=None)
    results = []
    for batch in [int(b) for b in args.batches.split(",")]:
        prompts = make_rows(sample_lengths(batch, args.prompt_mean, 512, seed=batch), shape["vocab_size"], seed=batch)
        backend.batch_size = batch
        params = SamplingParams(n=1, temperature=1.0, max_tokens=args.new_tokens, seed=0, ignore_eos=True)
        backend.generate_from_ids(prompts[: min(4, batch)], SamplingParams(max_tokens=4, ignore_eos=True))  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = backend.generate_from_ids(prompts, params)
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        generated = sum(len(c.token_ids or []) for r in out for c in r.completions)
        res = {"batch": batch, "new_tokens": args.new_tokens, "generated_tokens": generated, "seconds": dt,
               "tokens_per_s": generated / dt, "decode_steps_per_s": args.new_tokens / dt,
               "mean_prompt_len": sum(map(len, prompts)) / len(prompts),
               "peak_mem_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else None}
        print(json.dumps(res), flush=True)
        results.append(res)
    payload = {"card": card_name(device), "shape": "tiny Qwen3" if args.tiny else "Qwen3-1.7B (random init, bf16)",
               "torch": torch.__version__, "transformers": transformers.__version__, "results": results}
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "hf_generate.json").write_text(json.dumps(payload, indent=1))
    lines = [f"# hf backend generation ({payload['shape']}, {payload['card']})", "",
             (f"torch {payload['torch']}, transformers {payload['transformers']}; sampling at temperature 1, "
              f"{args.new_tokens} new tokens per row (ignore_eos), prompts of mean length ~{args.prompt_mean:.0f}."), "",
             "| batch | generated tokens/s | decode steps/s | seconds | peak GiB |", "|---|---|---|---|---|"]
    for r in results:
        peak = f"{r['peak_mem_gib']:.1f}" if r["peak_mem_gib"] is not None else "-"
        lines.append(f"| {r['batch']} | {r['tokens_per_s']:,.0f} | {r['decode_steps_per_s']:.1f} | {r['seconds']:.2f} | {peak} |")
    (out_dir / "hf_generate.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
