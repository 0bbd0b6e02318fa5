"""Benchmark: one SPIN iteration on a Qwen3-1.7B-shaped model (random init) on one GPU, phase by phase.

Why: SELF at 1.7B-14B is planned from what an iteration costs. The phases run as the stage runs them:

- generation: every prompt sampled once (``max_new_tokens``, ``ignore_eos``: a random model never stops) through a
  vLLM server started on the model folder and asked with token-id prompts (``stages.lm.launch.vllm_server`` and the
  ``openai`` backend's ``generate_from_ids``, SPIN's route on GPUs); transformers ``generate`` (the ``hf``
  backend) when no Python here imports vllm, or with ``--hf``. Server start-up is timed apart;
- reference log-probs: the trainer's no-grad pass over every pair (chosen + rejected) before any update;
- training: the SPIN loss over the pairs (``stages.spin.pairs``), global batch 64 pairs, bf16-mixed FSDP2 on one
  GPU with activation checkpointing (the stage's defaults); real tokens/s over the steps after the first, and peak
  GPU memory (allocated and reserved) of the training process; ``--offload both`` repeats it with
  ``optimizer_offload``;
- export of the trained model to a Hugging Face folder.

Random token ids stand in for prompts and ground-truth responses (GSM8K-like log-normal lengths): the model is
random too, so only torch, transformers and, for the vLLM route, vllm and httpx are needed (no tokenizer: the
server runs with ``--skip-tokenizer-init``).

Usage: ``python bench/bench_spin.py --out DIR`` [``--prompts 512 --max-new-tokens 256 --offload both``];
``--tiny`` is a CPU smoke run (tiny shape). Results: ``DIR/spin_iteration.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_native_engine import QWEN3_1P7B, TINY, build_model, card_name, make_rows, sample_lengths

PAD_ID = 151643


def write_model(shape: dict, folder: Path, bf16: bool) -> int:
    """The random-init model as a Hugging Face folder (no tokenizer); returns its parameter count."""
    import torch

    model = build_model(shape, "cpu")
    n_params = sum(p.numel() for p in model.parameters())
    if bf16:
        model = model.to(torch.bfloat16)
    model.config.dtype = torch.bfloat16 if bf16 else torch.float32
    model.save_pretrained(str(folder), safe_serialization=True)
    del model
    gc.collect()
    return n_params


def generate_vllm(args, model_dir: Path, prompts: list[list[int]], gpu: bool, log: Path) -> dict:
    from stages.lm.generation.openai_backend import OpenAIBackend
    from stages.lm.generation.types import SamplingParams
    from stages.lm.launch.vllm_server import ServerSettings, VLLMServer, find_vllm_python

    python = find_vllm_python()
    version = subprocess.run([python, "-c", "import vllm; print(vllm.__version__)"], capture_output=True, text=True,
                             check=False).stdout.strip()
    settings = ServerSettings(dtype="bfloat16" if gpu else "float32", max_model_len=args.max_length,
                              gpu_memory_utilization=0.85 if gpu else None, max_num_seqs=256, enforce_eager=not gpu,
                              extra_args=("--skip-tokenizer-init",))
    started = time.perf_counter()
    with VLLMServer(model_dir, settings, log, python=python, served_name="bench") as server:
        startup = time.perf_counter() - started
        backend = OpenAIBackend(server.base_url, "bench", server="vllm", max_concurrency=min(512, len(prompts)),
                                timeout_s=3600.0)
        backend.generate_from_ids(prompts[:4], SamplingParams(max_tokens=4, ignore_eos=True))  # warm-up
        t0 = time.perf_counter()
        out = backend.generate_from_ids(prompts, SamplingParams(temperature=1.0, max_tokens=args.max_new_tokens,
                                                                seed=0, ignore_eos=True))
        seconds = time.perf_counter() - t0
        backend.close()
    return {"backend": f"vllm {version} server", "startup_s": startup, "seconds": seconds,
            "rejected": [r.completions[0].token_ids for r in out]}


def generate_hf(args, shape: dict, prompts: list[list[int]], device) -> dict:
    import torch

    from stages.lm.generation.hf_backend import HFBackend
    from stages.lm.generation.types import SamplingParams

    started = time.perf_counter()
    model = build_model(shape, device)
    if device.type == "cuda":
        model = model.to(torch.bfloat16)
    backend = HFBackend(model, tokenizer=None, batch_size=args.hf_batch)
    startup = time.perf_counter() - started
    backend.generate_from_ids(prompts[:4], SamplingParams(max_tokens=4, ignore_eos=True))  # warm-up
    t0 = time.perf_counter()
    out = backend.generate_from_ids(prompts, SamplingParams(temperature=1.0, max_tokens=args.max_new_tokens, seed=0,
                                                            ignore_eos=True))
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    backend.close()
    del model, backend
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"backend": f"hf generate (batch {args.hf_batch})", "startup_s": startup, "seconds": seconds,
            "rejected": [r.completions[0].token_ids for r in out]}


def train(args, model_dir: Path, work: Path, prompts, chosen, rejected, offload: bool, device) -> dict:
    """Reference pass, training steps and export, as the stage's score/train/export phases run them."""
    import torch

    from stages.lm.engine import EpochBatches, TrainConfig, Trainer
    from stages.spin.loss import SPINLoss
    from stages.spin.pairs import pair_group, response_logprob_sums

    gpu = device.type == "cuda"
    steps = math.ceil(len(prompts) / args.batch)
    config = TrainConfig(lr=5e-7, schedule="linear", warmup_ratio=0.1, weight_decay=0.0, epochs=1,
                         global_batch_groups=args.batch, micro_batch_tokens=args.micro_batch_tokens,
                         max_length=args.max_length, activation_checkpointing=True, optimizer_offload=offload,
                         compile=args.compile and gpu, seed=0, log_every=1)
    no_tokenizer = SimpleNamespace(pad_token_id=PAD_ID, save_pretrained=lambda *a, **k: None)
    if gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    run_dir = work / f"run-offload-{offload}"
    trainer = Trainer(config, model_dir, run_dir, total_steps=steps, tokenizer=no_tokenizer)
    try:
        groups = [pair_group(p, c, r) for p, c, r in zip(prompts, chosen, rejected)]
        tokens = sum(len(s) for g in groups for s in g)
        t0 = time.perf_counter()
        sums = response_logprob_sums(trainer.logprobs(groups), groups)
        if gpu:
            torch.cuda.synchronize()
        ref_s = time.perf_counter() - t0
        pairs = [pair_group(p, c, r, a, b) for p, c, r, (a, b) in zip(prompts, chosen, rejected, sums)]
        data = EpochBatches(pairs, epochs=1, seed=0, batch_groups=args.batch)
        loss = SPINLoss(beta=0.1)
        records = []
        while (batch := data.next_batch()) is not None:
            records.append(trainer.train_step(batch, loss))
        timed = records[1:] or records
        peak_alloc = torch.cuda.max_memory_allocated() / 2 ** 30 if gpu else None
        peak_reserved = torch.cuda.max_memory_reserved() / 2 ** 30 if gpu else None
        t0 = time.perf_counter()
        trainer.export_hf(work / f"export-offload-{offload}")
        export_s = time.perf_counter() - t0
    finally:
        trainer.close()
        del trainer
        gc.collect()
        if gpu:
            torch.cuda.empty_cache()
    train_tokens = sum(r["tokens"] for r in timed)
    train_s = sum(r["step_time_s"] for r in timed)
    return {"optimizer_offload": offload, "pairs": len(pairs), "pair_tokens": tokens,
            "reference_s": ref_s, "reference_tokens_per_s": tokens / ref_s,
            "steps": len(records), "timed_steps": len(timed), "tokens_per_step": train_tokens / len(timed),
            "train_tokens_per_s": train_tokens / train_s, "step_time_s": train_s / len(timed),
            "first_step_s": records[0]["step_time_s"], "losses": [r["loss"] for r in records],
            "peak_allocated_gib": peak_alloc, "peak_reserved_gib": peak_reserved, "export_s": export_s}


def write_results(out_dir: Path, payload: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "spin_iteration.json").write_text(json.dumps(payload, indent=1))
    g = payload["generation"]
    lines = [f"# One SPIN iteration ({payload['shape']}, {payload['card']})", "",
             (f"torch {payload['torch']}, transformers {payload['transformers']}; {payload['prompts']} prompts "
              f"(mean {payload['mean_prompt_len']:.0f} tokens), ground truths of mean {payload['mean_chosen_len']:.0f} "
              f"tokens, {payload['max_new_tokens']} sampled tokens each; global batch {payload['batch']} pairs, "
              f"{payload['micro_batch_tokens']}-token micro-batches, {payload['precision']}, activation "
              "checkpointing."), "",
             "| phase | backend / setting | seconds | tokens/s | peak GiB (alloc / reserved) |",
             "|---|---|---|---|---|",
             f"| generation start-up | {g['backend']} | {g['startup_s']:.1f} | - | - |",
             f"| generation | {g['backend']} | {g['seconds']:.1f} | {g['tokens_per_s']:,.0f} (generated) | - |"]
    if "vllm_error" in payload:
        lines.append(f"| (vLLM failed: {payload['vllm_error'].splitlines()[-1][:80]}) | | | | |")
    for t in payload["training"]:
        tag = "optimizer_offload" if t["optimizer_offload"] else "default"
        if "error" in t:
            lines.append(f"| training | {tag} | failed: {t['error'].splitlines()[-1][:80]} | | |")
            continue
        peak = "-" if t["peak_allocated_gib"] is None else \
            f"{t['peak_allocated_gib']:.1f} / {t['peak_reserved_gib']:.1f}"
        lines += [f"| reference log-probs | {tag} | {t['reference_s']:.1f} | {t['reference_tokens_per_s']:,.0f} | - |",
                  f"| training ({t['timed_steps']} of {t['steps']} steps) | {tag} | {t['step_time_s']:.2f} per step "
                  f"| {t['train_tokens_per_s']:,.0f} | {peak} |",
                  f"| export | {tag} | {t['export_s']:.1f} | - | - |"]
    (out_dir / "spin_iteration.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run with the tiny shape")
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--prompt-mean", type=float, default=150, help="mean prompt length (GSM8K with template)")
    parser.add_argument("--chosen-mean", type=float, default=180, help="mean ground-truth response length")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=64, help="pairs per optimizer step")
    parser.add_argument("--micro-batch-tokens", type=int, default=8192)
    parser.add_argument("--offload", choices=("off", "on", "both"), default="both")
    parser.add_argument("--hf", action="store_true", help="generate with transformers even when vllm is there")
    parser.add_argument("--hf-batch", type=int, default=64)
    parser.add_argument("--compile", action="store_true", help="compile the decoder layers (engine option)")
    args = parser.parse_args()

    import torch
    import transformers

    from stages.lm.launch.vllm_server import find_vllm_python

    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    shape = TINY if args.tiny else QWEN3_1P7B
    if args.tiny:
        args.prompts, args.prompt_mean, args.chosen_mean, args.max_new_tokens = 8, 20, 20, 8
        args.max_length, args.batch, args.micro_batch_tokens, args.hf_batch = 128, 4, 512, 8
    vocab, cap = shape["vocab_size"], min(512, args.max_length // 2)  # SPIN: prompts up to 512 of 1024 tokens
    if cap + args.max_new_tokens > args.max_length:
        parser.error(f"--max-new-tokens {args.max_new_tokens} does not fit --max-length {args.max_length}")
    prompts = make_rows(sample_lengths(args.prompts, args.prompt_mean, cap, seed=1), vocab, seed=1)
    chosen = make_rows(sample_lengths(args.prompts, args.chosen_mean, args.max_length - cap, seed=2), vocab, seed=2)
    work = Path(tempfile.mkdtemp(prefix="bench-spin-"))
    payload: dict = {"card": card_name(device), "torch": torch.__version__, "transformers": transformers.__version__,
                     "shape": "tiny Qwen3" if args.tiny else "Qwen3-1.7B (random init, bf16 weights)",
                     "prompts": args.prompts, "mean_prompt_len": sum(map(len, prompts)) / len(prompts),
                     "mean_chosen_len": sum(map(len, chosen)) / len(chosen), "max_new_tokens": args.max_new_tokens,
                     "batch": args.batch, "micro_batch_tokens": args.micro_batch_tokens, "args": vars(args),
                     "precision": "bf16-mixed FSDP2" if device.type == "cuda" else "fp32, one process"}
    try:
        payload["parameters"] = write_model(shape, work / "model", bf16=device.type == "cuda")
        gen = None
        if not args.hf and find_vllm_python() is not None:
            try:
                gen = generate_vllm(args, work / "model", prompts, device.type == "cuda", work / "vllm.log")
            except Exception:  # keep the training figures; say why vLLM did not run
                payload["vllm_error"] = traceback.format_exc() + "\n" + (work / "vllm.log").read_text()[-4000:]
        if gen is None:
            gen = generate_hf(args, shape, prompts, device)
        rejected = gen.pop("rejected")
        generated = sum(len(r or []) for r in rejected)
        payload["generation"] = {**gen, "generated_tokens": generated, "tokens_per_s": generated / gen["seconds"]}
        print(json.dumps(payload["generation"]), flush=True)
        payload["training"] = []
        for offload in {"off": [False], "on": [True], "both": [False, True]}[args.offload]:
            try:
                result = train(args, work / "model", work, prompts, chosen, rejected, offload, device)
            except Exception:
                result = {"optimizer_offload": offload, "error": traceback.format_exc()}
            print(json.dumps(result), flush=True)
            payload["training"].append(result)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_results(Path(args.out), payload)


if __name__ == "__main__":
    main()
