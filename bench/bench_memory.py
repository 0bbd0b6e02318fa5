"""Benchmark: peak GPU memory of the native engine as the stages run it (eager layers, activation checkpointing),
beside the memory model's estimate for the same setup.

Why: the memory model (``stages/study/costing/memory.py``) was checked against the native engine bench's peaks,
which use compiled layers without checkpointing; SELF and PI train with eager layers and checkpointing, and the
model says Qwen3-4B does not fit one 80 GB card that way (about 81 GiB) but does with the optimizer offloaded. This
measures those setups: each configuration runs in its own process (an out-of-memory error is recorded, not
fatal), three optimizer steps of two micro-batches each (AdamW's state exists from the second step), peak
``torch.cuda.max_memory_allocated``.

Usage on the GPU machine (one H100, torch 2.11, transformers 5.17), from the repository root, about 5 minutes:

    python3 bench/bench_memory.py --out bench/results

writes ``memory_model.json`` and ``.md``; ``tests/study/test_memory.py`` then checks the model against every row
that did not run out of memory (within 15%). ``--configs 1.7B:8192,4B:8192:offload`` picks configurations
(size:micro-batch tokens[:offload][:compiled][:nockpt]); ``--tiny`` is a CPU smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_CONFIGS = "1.7B:8192,1.7B:16384,4B:4096,4B:8192,4B:8192:offload"


def shape_dict(size: str) -> dict:
    """The transformers Qwen3Config fields of a size of the memory model's table."""
    from stages.study.costing.shapes import SHAPES

    s = SHAPES[size]
    return {"vocab_size": s.vocab, "hidden_size": s.hidden, "intermediate_size": s.intermediate,
            "num_hidden_layers": s.layers, "num_attention_heads": s.heads, "num_key_value_heads": s.kv_heads,
            "head_dim": s.head_dim, "max_position_embeddings": 40960, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
            "tie_word_embeddings": s.tied}


def parse(config: str) -> dict:
    size, micro, *flags = config.split(":")
    return {"size": size, "micro": int(micro), "offload": "offload" in flags, "compiled": "compiled" in flags,
            "checkpointing": "nockpt" not in flags}


def measure(cfg: dict, tiny: bool) -> dict:
    """One configuration in this process: three steps of two full micro-batches; the peak allocated memory."""
    import torch

    from bench_native_engine import TINY, build_model
    from stages.lm.engine import Sample, TrainConfig, Trainer
    from stages.lm.losses.nll import NLLLoss

    device = torch.device("cuda" if torch.cuda.is_available() and not tiny else "cpu")
    shape = TINY if tiny else shape_dict(cfg["size"])
    model = build_model(shape, device)
    extra = {"optimizer_offload": True} if cfg["offload"] else {}
    config = TrainConfig(lr=1e-5, micro_batch_tokens=cfg["micro"], max_length=min(1024, cfg["micro"]),
                         compile=cfg["compiled"], activation_checkpointing=cfg["checkpointing"],
                         precision="bf16-mixed" if device.type == "cuda" else "fp32", **extra)
    g = torch.Generator().manual_seed(0)
    length = config.max_length
    per_step = 2 * cfg["micro"] // length
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(config, model, run_dir, total_steps=3)
        loss = NLLLoss()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(3):
            rows = [torch.randint(0, shape["vocab_size"] - 300, (length,), generator=g).tolist()
                    for _ in range(per_step)]
            trainer.train_step([[Sample(r, [False] + [True] * (length - 1))] for r in rows], loss)
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
        trainer.close()
    return {"peak_mem_gib": peak, "params": sum(p.numel() for p in model.parameters())}


def model_estimate(cfg: dict) -> float:
    from stages.study.costing.cards import CARDS
    from stages.study.costing.memory import TrainSetup, estimate
    from stages.study.costing.shapes import SHAPES

    x = TrainSetup("sft-trainer", "native", SHAPES[cfg["size"]], 1, micro_tokens=cfg["micro"],
                   activation_checkpointing=cfg["checkpointing"], compiled=cfg["compiled"],
                   optimizer_offload=cfg["offload"])
    return estimate(x, CARDS["H100-80GB"]).peak_gib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS)
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run on the tiny shape")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child process: one configuration
    parser.add_argument("--timeout", type=float, default=240)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(parse(args.one), args.tiny)))
        return
    rows = []
    for config in args.configs.split(","):
        cfg = parse(config)
        started = time.perf_counter()
        cmd = [sys.executable, __file__, "--one", config] + (["--tiny"] if args.tiny else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=dict(os.environ))
        row = {"config": config, **cfg, "world_size": 1, "model_gib": None if args.tiny else model_estimate(cfg),
               "seconds": round(time.perf_counter() - started, 1)}
        if proc.returncode == 0:
            row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        else:
            row["oom"] = "out of memory" in proc.stderr.lower()
            tail = proc.stderr.strip().splitlines()
            row["error"] = tail[-1][:300] if tail else f"exit {proc.returncode}"
        rows.append(row)
        print(json.dumps(row))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    card = torch.cuda.get_device_name(0) if torch.cuda.is_available() and not args.tiny else "cpu"
    (out / "memory_model.json").write_text(json.dumps({"card": card, "torch": torch.__version__, "rows": rows},
                                                      indent=2) + "\n")
    lines = [f"# Native engine peak memory as the stages run it, beside the memory model ({card})", "",
             "| config | measured GiB | model GiB | note |", "|---|---|---|---|"]
    for r in rows:
        got = f"{r['peak_mem_gib']:.1f}" if r.get("peak_mem_gib") else "-"
        est = f"{r['model_gib']:.1f}" if r.get("model_gib") else "-"
        note = "out of memory" if r.get("oom") else (r.get("error") or "")
        lines.append(f"| {r['config']} | {got} | {est} | {note} |")
    (out / "memory_model.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
