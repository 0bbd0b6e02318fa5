"""Benchmark: the representations suite's GPU time and memory for one checkpoint pair of a given Qwen3 shape.

Why: the planner's cost model needs the suite's GPU-hours per run, and the issue asks whether the weight-delta
analysis is fast enough for 14B. Two checkpoints of the shape (default 4B: 36 blocks, hidden 2,560, MLP 9,728,
vocabulary 151,936, tied embeddings) are written with random bf16 weights (post = base + seeded noise) as
safetensors, then the suite's own code runs on one GPU, phase by phase, as the suite runs it:
- loading each model from disk and capturing pooled activations with hooks (``capture``) for the texts a default
  run reads: 256 math texts of 153 tokens, 164 code texts of 173, 256 qa texts of 19, 250 general texts of 10 and
  800 probe statements of 20 (the mean token counts of the real rows under the Qwen3 tokenizer; random token ids
  here, since the weights are random), batch size 8;
- CKA (linear and debiased) for the 4 sets at every layer; the probes (5 folds) at every layer;
- the weight-delta metrics of every 2-D weight streamed from the two safetensors folders, with the exact spectrum
  (the default) and with the randomized one, and the randomized path's largest relative error on the top-k
  singular values against the exact ones (random weights: a flat spectrum, the randomized path's worst case).
With ``--extra-weight-shape 14B`` it also times the weight-delta metrics of one 14B-shaped block (7 random matrices
generated on the GPU) and extrapolates to the 40 blocks and embeddings, to answer "fast enough for 14B".

Usage (one GPU): ``python bench/bench_representations.py --out bench/results [--shape 4B] [--work /tmp/rep-bench]
[--extra-weight-shape 14B]``; writes ``representations.json`` and ``representations.md`` to ``--out``. ``--shape
tiny --scale 0.05`` runs the same path on a CPU in a minute (a check of the script, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from stages.evaluator.metrics.cka import cka_from_grams, gram  # noqa: E402
from stages.evaluator.metrics.probes import fold_ids, probe_layer  # noqa: E402
from stages.evaluator.metrics.weight_delta import delta_metrics, randomized_svd, singular_values  # noqa: E402
from stages.evaluator.representations.capture import capture  # noqa: E402
from stages.evaluator.representations.weights import matrices, pairs, weight_files  # noqa: E402
from stages.lm.loading import load_model  # noqa: E402

SHAPES = {  # Qwen3 configs (hidden, MLP, blocks, heads, kv heads, head dim, tied embeddings)
    "tiny": (64, 128, 2, 4, 2, 32, True),
    "1.7B": (2048, 6144, 28, 16, 8, 128, True),
    "4B": (2560, 9728, 36, 32, 8, 128, True),
    "8B": (4096, 12288, 36, 32, 8, 128, False),
    "14B": (5120, 17408, 40, 40, 8, 128, False),
}
VOCAB = 151936
TEXTS = {"math": (256, 153), "code": (164, 173), "qa": (256, 19), "general": (250, 10), "probe": (800, 20)}
TOP_K, FOLDS = 16, 5


def config(shape: str) -> Any:
    from transformers import Qwen3Config

    hidden, mlp, blocks, heads, kv, head_dim, tied = SHAPES[shape]
    return Qwen3Config(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=mlp, num_hidden_layers=blocks,
                       num_attention_heads=heads, num_key_value_heads=kv, head_dim=head_dim,
                       tie_word_embeddings=tied, max_position_embeddings=4096)


def random_model(shape: str, device: str) -> Any:
    """A seeded random-init Qwen3 of ``shape`` on ``device`` (bf16 on a GPU, float32 on a CPU)."""
    from transformers import Qwen3ForCausalLM

    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16 if device != "cpu" else torch.float32)
    try:
        with torch.device(device):
            return Qwen3ForCausalLM(config(shape))
    finally:
        torch.set_default_dtype(previous)


def write_pair(shape: str, work: Path, device: str) -> tuple[Path, Path, float]:
    """Random bf16 base and post (= base + 1e-3 noise) checkpoints as safetensors; returns the folders and params."""
    model = random_model(shape, device)
    n_params = sum(p.numel() for p in model.parameters())
    base, post = work / "base", work / "post"
    model.save_pretrained(str(base))
    gen = torch.Generator(device=device).manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen, device=device, dtype=p.dtype) * 1e-3)
    model.save_pretrained(str(post))
    del model
    return base, post, n_params / 1e9


def sequences(scale: float, seed: int = 0) -> dict[str, list[list[int]]]:
    """Random token ids in the default run's text counts (times ``scale``) and mean lengths."""
    rng = np.random.default_rng(seed)
    return {k: [list(rng.integers(1000, 100000, size=length)) for _ in range(max(2 * FOLDS, int(n * scale)))]
            for k, (n, length) in TEXTS.items()}


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_gib() -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


class Phases:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def run(self, name: str, fn, *args, **kw) -> Any:
        reset_peak()
        sync()
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        sync()
        self.rows[name] = {"seconds": round(time.perf_counter() - t0, 3), "peak_gib": peak_gib()}
        print(f"{name}: {self.rows[name]}", flush=True)
        return out


def activations(folder: Path, seqs: dict[str, list[list[int]]], batch: int) -> dict[str, np.ndarray]:
    model = load_model(str(folder))
    try:
        return {k: capture(model, s, "last" if k == "probe" else "mean", batch) for k, s in seqs.items()}
    finally:
        del model
        torch.cuda.empty_cache() if torch.cuda.is_available() else None


def all_cka(base: dict[str, np.ndarray], post: dict[str, np.ndarray]) -> int:
    n = 0
    for k in TEXTS:
        if k == "probe":
            continue
        for layer in range(base[k].shape[0]):
            kx, ly = gram(base[k][layer]), gram(post[k][layer])
            cka_from_grams(kx, ly)
            cka_from_grams(kx, ly, debiased=True)
            n += 1
    return n


def all_probes(base: np.ndarray, post: np.ndarray, device: str) -> list[dict[str, Any]]:
    n_q = base.shape[1] // 2
    groups = [i // 2 for i in range(2 * n_q)]
    labels = [1 - (i % 2) for i in range(2 * n_q)]
    folds = fold_ids(groups, FOLDS, 0)
    return [probe_layer(base[layer], labels, folds, 1e-3, 0, post[layer], device=device).as_dict()
            for layer in range(base.shape[0])]


def all_weights(base: Path, post: Path, exact: bool, device: str) -> list[dict[str, Any]]:
    bf, pf = weight_files(base), weight_files(post)
    mats, _ = matrices(bf, pf)
    return [{"name": m.name, **delta_metrics(wb, wp, TOP_K, exact, 16, 4, 0)} for m, wb, wp in pairs(mats, bf, pf,
                                                                                                      device)]


def randomized_error(base: Path, post: Path, device: str, limit: int = 8) -> float:
    """Largest relative error of the randomized top-k singular values of ΔW against the exact ones (a few matrices)."""
    bf, pf = weight_files(base), weight_files(post)
    mats, _ = matrices(bf, pf)
    worst = 0.0
    for m, wb, wp in pairs([m for m in mats if m.layer == 0][:limit], bf, pf, device):
        d = wp.float() - wb.float()
        exact = singular_values(d)[:TOP_K]
        _, s, _ = randomized_svd(d, TOP_K, 16, 4, 0)
        worst = max(worst, float(((s.double() - exact).abs() / exact).max()))
    return worst


def block_shapes(shape: str) -> list[tuple[str, tuple[int, int]]]:
    hidden, mlp, _, heads, kv, head_dim, _ = SHAPES[shape]
    return [("q_proj", (heads * head_dim, hidden)), ("k_proj", (kv * head_dim, hidden)),
            ("v_proj", (kv * head_dim, hidden)), ("o_proj", (hidden, heads * head_dim)), ("gate_proj", (mlp, hidden)),
            ("up_proj", (mlp, hidden)), ("down_proj", (hidden, mlp))]


def one_block(shape: str, device: str) -> dict[str, Any]:
    """Weight-delta seconds of one block of ``shape`` (random bf16 matrices on the device), exact and randomized."""
    gen = torch.Generator(device=device).manual_seed(2)
    out: dict[str, Any] = {}
    for exact in (True, False):
        total = 0.0
        for _, (m, n) in block_shapes(shape):
            w = torch.randn(m, n, generator=gen, device=device, dtype=torch.bfloat16) * 0.02
            p = w + torch.randn(m, n, generator=gen, device=device, dtype=torch.bfloat16) * 1e-3
            sync()
            t0 = time.perf_counter()
            delta_metrics(w, p, TOP_K, exact, 16, 4, 0)
            sync()
            total += time.perf_counter() - t0
        out["exact" if exact else "randomized"] = round(total, 3)
    hidden, _, blocks, *_ = SHAPES[shape]
    emb = torch.randn(VOCAB, hidden, generator=gen, device=device, dtype=torch.bfloat16) * 0.02
    sync()
    t0 = time.perf_counter()
    delta_metrics(emb, emb + 1e-3 * torch.randn_like(emb), TOP_K, True, 16, 4, 0)
    sync()
    out["embedding_exact"] = round(time.perf_counter() - t0, 3)
    out["blocks"] = blocks
    untied = 1 if SHAPES[shape][6] else 2
    out["model_exact_estimate"] = round(blocks * out["exact"] + untied * out["embedding_exact"], 1)
    out["model_randomized_estimate"] = round(blocks * out["randomized"] + untied * out["embedding_exact"], 1)
    return out


def cost_constants(phases: dict[str, dict[str, Any]], billions: float, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The planner's cost model in two terms: work that scales with the parameter count (loading, the two forward
    passes, probes: seconds per billion parameters) and the exact spectra (seconds per 1e9 of sum r^3 over the
    matrices, r = min(m, n): the eigenvalue solves dominate); the randomized spectrum scales with parameters."""
    load = sum(phases[k]["seconds"] for k in ("load + capture post", "load + capture base"))
    rest = sum(phases[k]["seconds"] for k in phases if k.startswith(("cka", "probes")))
    r3 = sum(float(r["max_rank"]) ** 3 for r in rows) / 1e9
    return {
        "seconds_per_billion_params_models": round((load + rest) / billions, 2),
        "seconds_per_1e9_rank_cubed_exact": round(phases["weights, exact spectrum"]["seconds"] / r3, 3),
        "seconds_per_billion_params_randomized": round(phases["weights, randomized spectrum"]["seconds"] / billions,
                                                       2),
        "sum_rank_cubed_1e9": round(r3, 2),
    }


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# Representations suite: one {r['shape']} checkpoint pair (random weights)", "",
             f"{r['device_name']}; torch {r['torch']}; {r['params_billion']:.2f} B parameters; "
             f"{r['tokens_per_model']} tokens per model in {r['texts_per_model']} texts.", "",
             "| phase | seconds | peak GPU GiB |", "|---|---|---|"]
    lines += [f"| {k} | {v['seconds']} | {v['peak_gib']} |" for k, v in r["phases"].items()]
    lines += ["", f"Suite total (default run: both models, exact spectrum): **{r['suite_seconds']} s** = "
              f"{r['gpu_hours_per_run']} GPU-hours; with the randomized spectrum: {r['suite_seconds_randomized']} s.",
              f"Randomized top-{TOP_K} singular values vs exact: largest relative error "
              f"{r['randomized_top_k_max_rel_error']:.2e}.", "",
              "Cost-model constants: " + ", ".join(f"{k} = {v}" for k, v in r["cost_model"].items()) + ".", ""]
    if r.get("extra_weight_shape"):
        e = r["extra_weight_shape"]
        lines += [f"Weight deltas of one {e['shape']} block: exact {e['exact']} s, randomized {e['randomized']} s; "
                  f"embedding matrix (exact) {e['embedding_exact']} s; whole model estimate: exact "
                  f"{e['model_exact_estimate']} s, randomized {e['model_randomized_estimate']} s.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "bench" / "results"))
    parser.add_argument("--shape", default="4B", choices=sorted(SHAPES))
    parser.add_argument("--work", default="/tmp/rep-bench", help="scratch folder for the two checkpoints")
    parser.add_argument("--extra-weight-shape", default=None, choices=sorted(SHAPES))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--scale", type=float, default=1.0, help="text counts times this (1 = a default run)")
    parser.add_argument("--keep", action="store_true", help="keep the checkpoints in --work")
    args = parser.parse_args()
    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    base, post, billions = write_pair(args.shape, work, device)
    print(f"checkpoints written in {time.perf_counter() - t0:.1f} s", flush=True)
    seqs = sequences(args.scale)
    ph = Phases()
    acts_post = ph.run("load + capture post", activations, post, seqs, args.batch_size)
    acts_base = ph.run("load + capture base", activations, base, seqs, args.batch_size)
    n_cka = ph.run("cka (4 sets x layers, CPU)", all_cka, acts_base, acts_post)
    ph.run("probes (layers x 5 folds x 3 fits)", all_probes, acts_base["probe"], acts_post["probe"], device)
    rows = ph.run("weights, exact spectrum", all_weights, base, post, True, device)
    ph.run("weights, randomized spectrum", all_weights, base, post, False, device)
    error = randomized_error(base, post, device)
    common = sum(ph.rows[k]["seconds"] for k in list(ph.rows)[:4])
    suite = common + ph.rows["weights, exact spectrum"]["seconds"]
    result: dict[str, Any] = {
        "benchmark": "representations",
        "shape": args.shape,
        "params_billion": billions,
        "device_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu",
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "texts_per_model": sum(len(v) for v in seqs.values()),
        "tokens_per_model": sum(len(s) for v in seqs.values() for s in v),
        "layers": int(acts_base["probe"].shape[0]),
        "cka_pairs": n_cka,
        "matrices": len(rows),
        "phases": ph.rows,
        "suite_seconds": round(suite, 1),
        "suite_seconds_randomized": round(common + ph.rows["weights, randomized spectrum"]["seconds"], 1),
        "gpu_hours_per_run": round(suite / 3600, 4),
        "randomized_top_k_max_rel_error": error,
        "cost_model": cost_constants(ph.rows, billions, rows),
        "machine": {"cpu_cores": os.cpu_count(), "python": platform.python_version()},
    }
    if args.extra_weight_shape:
        result["extra_weight_shape"] = {"shape": args.extra_weight_shape, **one_block(args.extra_weight_shape, device)}
        print(f"extra: {result['extra_weight_shape']}", flush=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "representations" if args.shape != "tiny" else "representations_tiny_cpu_check"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(result) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
