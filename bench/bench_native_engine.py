"""Benchmark: the native engine vs a naive padded loop, SFT on GSM8K-length rows of a Qwen3-1.7B-shaped model.

Why: the engine is the substrate of all six methods, so its speed decides what a GPU-hour buys. Short rows
(GSM8K: a few hundred tokens) waste a padded loop; the engine packs them into full rows with per-document
attention (varlen flash), computes log-probs in vocabulary chunks and compiles each decoder layer. Both loops run
here in one process on the same data (same lengths, same random tokens), same optimizer (AdamW, fp32 master
weights, bf16 autocast), so the figures compare side by side:

- real tokens/s (padding excluded), MFU = (6 N tokens + 12 L h sum(len^2)) / time / 989 TFLOP/s (the nominal
  dense bf16 peak of H100 and H200, as in the infra reference), and peak memory;
- a correctness check first: packed log-probs against per-document transformers forward passes.

Usage: ``python bench/bench_native_engine.py --out DIR`` on the GPU box; ``--tiny`` runs a CPU smoke version
with the tiny model shape (what the test suite runs). Results: ``DIR/native_engine.json`` and ``.md``.
``--gpus N`` runs the native variants under ``torchrun`` on N GPUs (FSDP2 over NCCL; the same global batches, so
per-step losses and gradient norms can be set beside a one-GPU run with the same ``--lr``); MFU is then per GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PEAK_FLOPS = 989e12  # nominal dense bf16, H100 SXM and H200 (infra reference convention)

QWEN3_1P7B = {"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28,
                  "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 40960,
                  "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True}
TINY = {"vocab_size": 151936, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": 32, "max_position_embeddings": 1024, "tie_word_embeddings": True}


def build_model(shape: dict, device, seed: int = 0):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(**shape, pad_token_id=151643, eos_token_id=151645, bos_token_id=None)
    config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen3ForCausalLM(config)
    return model.float()


def sample_lengths(n: int, mean: float, cap: int, seed: int) -> list[int]:
    """Log-normal lengths (sigma 0.6) with the given mean, clipped to [16, cap]: GSM8K-like rows."""
    import random

    rng = random.Random(seed)
    sigma = 0.6
    mu = math.log(mean) - sigma ** 2 / 2
    return [min(cap, max(16, int(rng.lognormvariate(mu, sigma)))) for _ in range(n)]


def make_rows(lengths: list[int], vocab: int, seed: int) -> list[list[int]]:
    import torch

    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab - 300, (n,), generator=g).tolist() for n in lengths]


def model_flops(n_params: int, layers: int, attn_dim: int, lengths: list[int]) -> float:
    return 6.0 * n_params * sum(lengths) + 12.0 * layers * attn_dim * sum(n * n for n in lengths)


def batches_by_tokens(rows: list[list[int]], tokens: int) -> list[list[int]]:
    """Consecutive rows, as many as fit ``tokens`` (the engine's ``global_batch_tokens`` rule)."""
    out, cur, acc = [], [], 0
    for i, r in enumerate(rows):
        if cur and acc + len(r) > tokens:
            out.append(cur)
            cur, acc = [], 0
        cur.append(i)
        acc += len(r)
    return out


def check_packed_logprobs(trainer, rows: list[list[int]]) -> dict:
    """Max |packed - per-document| log-prob over a few documents (bf16 noise expected on GPU)."""
    import torch

    from stages.lm.engine import Sample
    from stages.lm.engine.model import set_attention

    docs = rows[:4]
    groups = [[Sample(d, [False] + [True] * (len(d) - 1))] for d in docs]
    eager = torch.compiler.set_stance("force_eager") if hasattr(torch.compiler, "set_stance") else contextlib.nullcontext()
    with eager:
        packed = trainer.logprobs(groups)
    lm = trainer.module.causal_lm
    set_attention(lm, "sdpa")
    diffs = []
    try:
        with torch.no_grad(), trainer._autocast(), eager:
            for d, got in zip(docs, packed):
                x = torch.tensor([d], device=trainer.info.device)
                ref = lm(x).logits[0].float().log_softmax(-1)[:-1].gather(1, x[0, 1:, None]).squeeze(1).cpu()
                diffs.append((torch.tensor(got[0][1:]) - ref).abs())
    finally:
        set_attention(lm, "lm_packed")
    allv = torch.cat(diffs)
    return {"max_abs_diff": float(allv.max()), "mean_abs_diff": float(allv.mean()), "tokens": int(allv.numel())}


def run_native(args, shape, rows, device, compile_: bool, micro: int, fsdp: str = "auto") -> dict:
    import torch

    from stages.lm.engine import Sample, TrainConfig, Trainer
    from stages.lm.engine.attention import varlen_kernel_name
    from stages.lm.losses.nll import NLLLoss

    world = int(os.environ.get("WORLD_SIZE", "1"))
    model = build_model(shape, device)
    n_params = sum(p.numel() for p in model.parameters())
    config = TrainConfig(lr=args.lr, schedule="cosine", warmup_ratio=0.0, micro_batch_tokens=micro,
                         max_length=args.max_len, compile=compile_, precision="bf16-mixed" if device.type == "cuda" else "fp32",
                         logprob_chunk_tokens=args.chunk, grad_clip=1.0, seed=0, fsdp=fsdp, grad_sync=args.grad_sync)
    batches = batches_by_tokens(rows, args.global_tokens)[: args.warmup + args.steps]
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(config, model, run_dir, total_steps=len(batches))
        samples = [Sample(r, [False] * max(1, int(len(r) * 0.4)) + [True] * (len(r) - max(1, int(len(r) * 0.4)))) for r in rows]
        check = check_packed_logprobs(trainer, rows) if device.type == "cuda" and world == 1 else None
        loss = NLLLoss()
        times, tokens, losses, flops, norms = [], [], [], [], []
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for i, idx in enumerate(batches):
            t0 = time.perf_counter()
            rec = trainer.train_step([[samples[j]] for j in idx], loss)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            dt = time.perf_counter() - t0
            losses.append(rec["loss"])
            norms.append(rec["grad_norm"])
            if i >= args.warmup:
                times.append(dt)
                tokens.append(sum(len(rows[j]) for j in idx))
                flops.append(model_flops(n_params, shape["num_hidden_layers"],
                                         shape["num_attention_heads"] * shape["head_dim"], [len(rows[j]) for j in idx]))
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
        kernel = varlen_kernel_name(device)
        if args.profile and device.type == "cuda" and world == 1:
            profile_step(trainer, [[samples[j]] for j in batches[-1]], loss,
                         Path(args.out) / f"native_profile_{'compiled' if compile_ else 'eager'}_{micro}.txt")
        used_fsdp = trainer.use_fsdp
        trainer.close()
        del trainer, model
        if world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    total = sum(times)
    mode = ("FSDP2 bf16 params, fp32 master" if device.type == "cuda" else "FSDP2 fp32") if used_fsdp \
        else ("autocast bf16" if device.type == "cuda" else "fp32")
    gpus = f", {world} GPUs" if world > 1 else ""
    if args.grad_sync != "auto":
        gpus += f", grad_sync {args.grad_sync}"
    return {"loop": f"native ({'compiled' if compile_ else 'eager'}, {mode}, packed {micro} tokens{gpus})",
            "attention": kernel, "params": n_params, "timed_steps": len(times), "real_tokens_per_s": sum(tokens) / total,
            "mfu": sum(flops) / total / PEAK_FLOPS / world, "peak_mem_gib": peak, "step_time_s": total / len(times),
            "tokens_per_step": sum(tokens) / len(tokens), "first_loss": losses[0], "last_loss": losses[-1],
            "world_size": world, "lr": args.lr, "losses": [round(x, 5) for x in losses],
            "grad_norms": [round(x, 5) for x in norms],
            "packing_check": check, "step_times_s": [round(t, 3) for t in times]}


def profile_step(trainer, groups, loss, path: Path) -> None:
    """One more step under the profiler; the top CUDA kernels go to ``path``."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        trainer.train_step(groups, loss)
        torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=40, max_name_column_width=90)
    path.parent.mkdir(parents=True, exist_ok=True)
    trace = path.with_suffix(".trace.json")
    prof.export_chrome_trace(str(trace))
    from trace_gaps import summarize

    path.write_text(table + "\n" + summarize(json.loads(trace.read_text())))
    trace.unlink()


def run_naive(args, shape, rows, device) -> dict:
    """HF model, padded batches of ``--naive-batch`` rows (to the batch's longest), HF loss, fused AdamW.

    As the infra reference's naive baseline: bf16 weights on the GPU (fp32 master weights with a full-vocabulary
    loss do not fit 80 GB at batch 8 with 1024-token rows), no packing, SDPA with a padding mask.
    """
    import torch

    model = build_model(shape, device)
    if device.type == "cuda":
        model = model.to(torch.bfloat16)
    n_params = sum(p.numel() for p in model.parameters())
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda" or None)
    bs = args.naive_batch
    times, tokens, flops, padded = [], [], [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for step in range(args.warmup + args.naive_steps):
        chunk = rows[step * bs:(step + 1) * bs]
        width = max(len(r) for r in chunk)
        ids = torch.full((len(chunk), width), 151643, dtype=torch.long)
        att = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, r in enumerate(chunk):
            ids[i, :len(r)] = torch.tensor(r)
            att[i, :len(r)] = 1
        labels = ids.masked_fill(att == 0, -100)
        t0 = time.perf_counter()
        out = model(input_ids=ids.to(device), attention_mask=att.to(device), labels=labels.to(device))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dt = time.perf_counter() - t0
        if step >= args.warmup:
            times.append(dt)
            lens = [len(r) for r in chunk]
            tokens.append(sum(lens))
            padded.append(width * len(chunk))
            flops.append(model_flops(n_params, shape["num_hidden_layers"], shape["num_attention_heads"] * shape["head_dim"], lens))
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
    del model, opt
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    total = sum(times)
    return {"loop": f"naive (HF, bf16 weights, padded batches of {bs})", "attention": "sdpa (padding mask)", "params": n_params,
            "timed_steps": len(times), "real_tokens_per_s": sum(tokens) / total, "mfu": sum(flops) / total / PEAK_FLOPS,
            "peak_mem_gib": peak, "step_time_s": total / len(times), "tokens_per_step": sum(tokens) / len(tokens),
            "padding_fraction": 1 - sum(tokens) / sum(padded)}


def card_name(device) -> str:
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()})"


def write_results(out_dir: Path, payload: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = payload["args"].get("tag") or "native_engine"
    (out_dir / f"{tag}.json").write_text(json.dumps(payload, indent=1))
    lines = [f"# Native engine vs naive loop ({payload['shape']}, {payload['card']})", "",
             (f"torch {payload['torch']}, transformers {payload['transformers']}; rows: {payload['rows']} "
              f"(mean {payload['mean_len']:.0f} tokens, max {payload['max_len']}); MFU vs {PEAK_FLOPS / 1e12:.0f} TFLOP/s."), "",
             "| loop | attention | real tokens/s | MFU | peak GiB | step s | tokens/step |", "|---|---|---|---|---|---|---|"]
    for r in payload["results"]:
        if "error" in r:
            lines.append(f"| {r['loop']} | failed: {r['error'][:120]} | | | | | |")
            continue
        peak = f"{r['peak_mem_gib']:.1f}" if r.get("peak_mem_gib") is not None else "-"
        lines.append(f"| {r['loop']} | {r['attention']} | {r['real_tokens_per_s']:,.0f} | {100 * r['mfu']:.1f}% | {peak} | "
                     f"{r['step_time_s']:.3f} | {r['tokens_per_step']:,.0f} |")
    if payload.get("speedup") is not None:
        lines += ["", f"Best native / naive real tokens/s: **{payload['speedup']:.1f}x**."]
    checks = [r["packing_check"] for r in payload["results"] if r.get("packing_check")]
    if checks:
        lines.append(f"Packed vs per-document log-probs (bf16): max |diff| {checks[0]['max_abs_diff']:.3g}, "
                     f"mean {checks[0]['mean_abs_diff']:.3g} over {checks[0]['tokens']} tokens.")
    (out_dir / f"{tag}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run on the tiny model shape")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--naive-steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--mean-len", type=float, default=300)
    parser.add_argument("--max-len", type=int, default=1024)
    parser.add_argument("--global-tokens", type=int, default=65280, help="upper bound per step (8 x 8192 less slack)")
    parser.add_argument("--micro", default="8192", help="comma-separated micro-batch token budgets (native)")
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--naive-batch", type=int, default=8)
    parser.add_argument("--variants", default="native-compiled,naive",
                        help="native-compiled, native-compiled-autocast, native-eager, naive")
    parser.add_argument("--profile", action="store_true", help="profile one extra native step (GPU, one GPU only)")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs for the native variants (torchrun, FSDP2)")
    parser.add_argument("--lr", type=float, default=1e-5, help="learning rate of the native variants")
    parser.add_argument("--tag", default="native_engine", help="result file names: TAG.json and TAG.md")
    parser.add_argument("--grad-sync", default="auto", choices=["auto", "every_micro_batch", "last_micro_batch"],
                        help="the engine's grad_sync (FSDP2 gradient reduction per micro-batch or per step)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per variant")
    parser.add_argument("--only", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    import torch
    import transformers

    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    if device.type == "cuda" and args.only:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    shape = TINY if args.tiny else QWEN3_1P7B
    if args.tiny:
        args.rows, args.mean_len, args.max_len, args.global_tokens = 64, 40, 128, 512
        args.steps, args.naive_steps, args.warmup, args.micro, args.chunk = 2, 2, 1, "256", 128
    lengths = sample_lengths(args.rows, args.mean_len, args.max_len, seed=0)
    if args.only:
        rows = make_rows(lengths, shape["vocab_size"], seed=0)
        variant, micro = args.only.split(":")
        res = run_variant(args, shape, rows, device, variant, int(micro))
        if os.environ.get("RANK", "0") == "0":
            print("RESULT " + json.dumps(res), flush=True)
        return
    results = []
    for variant in args.variants.split(","):
        micros = [int(m) for m in args.micro.split(",")] if variant.startswith("native") else [0]
        for micro in micros:
            res = run_in_subprocess(variant, micro, args.timeout, args.gpus if variant.startswith("native") else 1)
            print(json.dumps(res), flush=True)
            results.append(res)
            ok = [r for r in results if "error" not in r]
            best = max((r["real_tokens_per_s"] for r in ok if r["loop"].startswith("native")), default=None)
            naive = next((r["real_tokens_per_s"] for r in ok if r["loop"].startswith("naive")), None)
            payload = {"card": card_name(device), "shape": "tiny Qwen3" if args.tiny else "Qwen3-1.7B (random init)",
                       "torch": torch.__version__, "transformers": transformers.__version__, "rows": args.rows,
                       "mean_len": sum(lengths) / len(lengths), "max_len": args.max_len, "peak_flops": PEAK_FLOPS,
                       "speedup": best / naive if best and naive else None, "results": results,
                       "varlen_signature": varlen_signature(), "args": vars(args)}
            write_results(Path(args.out), payload)  # after every variant, so a timeout keeps what finished
    print(Path(args.out, f"{args.tag}.md").read_text())


def run_variant(args, shape, rows, device, variant: str, micro: int) -> dict:
    compiled = variant.startswith("native-compiled") and device.type == "cuda"
    if variant == "naive":
        return run_naive(args, shape, rows, device)
    return run_native(args, shape, rows, device, compiled, micro, fsdp="off" if variant.endswith("autocast") else "auto")


def run_in_subprocess(variant: str, micro: int, timeout: float, gpus: int = 1) -> dict:
    """Each variant in a fresh process (``torchrun`` ranks for several GPUs): no memory or compiled-graph state
    leaks from one into the next."""
    import subprocess

    env = {**os.environ, "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
    launcher = [sys.executable] if gpus <= 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                   f"--nproc_per_node={gpus}"]
    cmd = [*launcher, str(Path(__file__).resolve()), *sys.argv[1:], "--only", f"{variant}:{micro}"]
    name = f"{variant} {micro or ''}".strip()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"loop": name, "error": f"timed out after {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout)[-600:].replace("\n", " | ")
    return {"loop": name, "error": f"exit {proc.returncode}: {tail}"}


def varlen_signature() -> str | None:
    try:
        import inspect

        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return str(inspect.signature(varlen_attn))


if __name__ == "__main__":
    main()
