"""Benchmark: the refusal_direction suite's GPU time and memory, extraction and interventions, at a Qwen3 shape.

Why: the planner prices the suite per run (once per SAFE baseline for the extraction, once per checkpoint for the
comparison), and the suite must stay a small share of an evaluation. A random-init model of the shape (default 4B:
36 blocks, hidden 2,560) is built in bf16 on the GPU, and the suite's own code (``stages.evaluator.refusal.extract``)
runs its passes with the default settings: 128 harmful and 128 harmless train prompts, 32 + 32 val prompts, 40 + 40
eval prompts, 9 post-instruction positions (Qwen3's template with thinking off), prompts of 40 tokens (random ids
ending in the same 9 template ids; the real instructions average about 20 tokens before the template), the
evaluator's batch size; the paper's selection scores every candidate of the first 80% of the layers (layer 0, the
embeddings, has no difference and costs nothing); generation is greedy with ``max_new_tokens`` (64) forced
(``ignore_eos``, since a random model stops at random). Model loading is not timed (it is the evaluator's, the same
for every suite).

Usage (one GPU): ``python bench/bench_refusal_direction.py --out bench/results [--shape 4B] [--batch-size 32]``;
writes ``refusal_direction.json`` and ``refusal_direction.md``. ``--tiny`` runs the same path on a CPU at the tiny
shape (a check of the script, not a measurement; writes ``refusal_direction_tiny_cpu_check.*``).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import torch  # noqa: E402

from bench_representations import peak_gib, random_model, reset_peak, sync  # noqa: E402
from stages.evaluator.refusal.extract import Runner, select_candidate  # noqa: E402
from stages.evaluator.representations.rows import Rows  # noqa: E402

POSITIONS = 9
SUFFIX = [151645, 198, 151644, 77091, 198, 151667, 271, 151668, 271]  # Qwen3: <|im_end|>\n<|im_start|>assistant ...


def prompts(n: int, length: int, seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(1000, 100000, (length - POSITIONS,), generator=g).tolist() + SUFFIX for _ in range(n)]


class Phases:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def run(self, name: str, forwards: int, tokens: int, fn, *args, **kw) -> Any:
        reset_peak()
        sync()
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        sync()
        self.rows[name] = {"seconds": round(time.perf_counter() - t0, 3), "peak_gib": peak_gib(),
                           "prompt_forwards": forwards, "tokens": tokens}
        print(f"{name}: {self.rows[name]}", flush=True)
        return out


def build(shape: str, device: str) -> Any:
    return random_model(shape, device).eval().requires_grad_(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "bench" / "results"))
    parser.add_argument("--shape", default="4B")
    parser.add_argument("--tiny", action="store_true", help="the tiny shape on the CPU (a check of the script)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-train", type=int, default=128)
    parser.add_argument("--n-val", type=int, default=32)
    parser.add_argument("--n-eval", type=int, default=40)
    parser.add_argument("--prompt-tokens", type=int, default=40)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    shape = "tiny" if args.tiny else args.shape
    device = "cuda:0" if torch.cuda.is_available() and not args.tiny else "cpu"
    model = build(shape, device)
    runner = Runner(model, None, POSITIONS, args.batch_size, [40, 2121], thinking=False)
    layers, length = runner.layers, args.prompt_tokens
    sets = {(kind, split): prompts(n, length, seed=i * 2 + (kind == "harmless"))
            for i, (split, n) in enumerate((("train", args.n_train), ("val", args.n_val), ("eval", args.n_eval)))
            for kind in ("harmful", "harmless")}
    ph = Phases()
    nt, nv, ne = args.n_train, args.n_val, args.n_eval
    train = ph.run("extract: train means (2 x n_train)", 2 * nt, 2 * nt * length,
                   lambda: {k: runner.run(sets[(k, "train")]).means for k in ("harmful", "harmless")})
    candidates = (train["harmful"] - train["harmless"]).float()
    scored = sum(1 for layer in range(1, layers) if layer < 0.8 * layers) * POSITIONS
    params = SimpleNamespace(max_layer_share=0.8, induce_threshold=-math.inf, kl_threshold=math.inf)
    with tempfile.TemporaryDirectory() as tmp:
        rows = Rows(Path(tmp) / "candidates.jsonl", ("position", "layer"))
        forwards = nv + scored * 3 * nv
        chosen = ph.run(f"extract: selection ({scored} candidates x 3 n_val)", forwards, forwards * length,
                        select_candidate, runner, candidates, sets[("harmful", "val")], sets[("harmless", "val")],
                        rows, params, lambda: None)
    direction = candidates[chosen.layer, chosen.position]
    ph.run("extract: base harmful eval means (n_eval)", ne, ne * length, lambda: runner.run(sets[("harmful", "eval")]))
    ph.run("checkpoint: train + eval means (2 n_train + n_eval)", 2 * nt + ne, (2 * nt + ne) * length,
           lambda: [runner.run(sets[(k, "train")]) for k in ("harmful", "harmless")]
           + [runner.run(sets[("harmful", "eval")])])
    conditions = (("none", "harmful"), ("ablation", "harmful"), ("addition", "harmless"), ("none", "harmless"))

    def scores() -> None:
        for name, kind in conditions:
            with runner.intervention(name, direction, chosen.layer):
                runner.run(sets[(kind, "eval")], means=False)

    def generations() -> None:
        for name, kind in conditions:
            with runner.intervention(name, direction, chosen.layer):
                runner.generate(sets[(kind, "eval")], args.max_new_tokens, ignore_eos=True)

    ph.run("checkpoint: refusal scores (4 x n_eval)", 4 * ne, 4 * ne * length, scores)
    ph.run(f"checkpoint: greedy generations (4 x n_eval x {args.max_new_tokens})", 4 * ne,
           4 * ne * args.max_new_tokens, generations)
    extraction = sum(v["seconds"] for k, v in ph.rows.items() if k.startswith("extract"))
    checkpoint = sum(v["seconds"] for k, v in ph.rows.items() if k.startswith("checkpoint"))
    params_b = sum(p.numel() for p in model.parameters()) / 1e9
    forward_rows = [v for k, v in ph.rows.items() if "generations" not in k]
    gen = ph.rows[f"checkpoint: greedy generations (4 x n_eval x {args.max_new_tokens})"]
    result = {
        "benchmark": "refusal_direction", "shape": shape, "params_billion": round(params_b, 3), "layers": layers,
        "positions": POSITIONS, "candidates_scored": scored, "batch_size": args.batch_size,
        "prompt_tokens": length, "n_train": nt, "n_val": nv, "n_eval": ne, "max_new_tokens": args.max_new_tokens,
        "device_name": torch.cuda.get_device_name(0) if device != "cpu" else platform.processor() or "cpu",
        "torch": torch.__version__, "phases": ph.rows,
        "extraction_seconds": round(extraction, 1), "checkpoint_seconds": round(checkpoint, 1),
        "cost_model": {
            "seconds_per_prompt_forward": round(sum(v["seconds"] for v in forward_rows)
                                                / sum(v["prompt_forwards"] for v in forward_rows), 5),
            "seconds_per_generated_token_per_prompt": round(gen["seconds"] / gen["tokens"], 6),
        },
        "command": " ".join(sys.argv),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "refusal_direction_tiny_cpu_check" if args.tiny else "refusal_direction"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(result) + "\n")
    print(markdown(result))


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# refusal_direction suite: {r['shape']} shape (random weights)", "",
             f"{r['device_name']}; torch {r['torch']}; {r['params_billion']} B parameters; {r['layers']} layers x "
             f"{r['positions']} positions, {r['candidates_scored']} candidates scored; batch {r['batch_size']}; "
             f"prompts of {r['prompt_tokens']} tokens; n_train {r['n_train']}, n_val {r['n_val']}, n_eval "
             f"{r['n_eval']}; {r['max_new_tokens']} generated tokens per prompt and condition.", "",
             "| phase | seconds | peak GPU GiB | prompt forwards | tokens |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['seconds']} | {v['peak_gib']} | {v['prompt_forwards']} | {v['tokens']} |"
              for k, v in r["phases"].items()]
    lines += ["", f"Extraction (once per SAFE baseline): **{r['extraction_seconds']} s**; per checkpoint: "
              f"**{r['checkpoint_seconds']} s** (model loading not included).",
              "Cost-model constants: " + ", ".join(f"{k} = {v}" for k, v in r["cost_model"].items()) + ".",
              "", f"Command: `{r['command']}`"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
