"""Benchmark: GCG and AutoDAN steps per second on a Qwen3-4B-shaped model, the numbers the attacks suite's cost
model needs.

Why: an attack costs GPU-hours per behaviour, and the planner prices a study's ``attacks`` runs from these numbers.
A random-init Qwen3 of the chosen shape (default 4B: 36 blocks, hidden 2,560, MLP 9,728, vocabulary 151,936, tied
embeddings) in bf16 on one GPU, with the real Qwen3 tokenizer and chat template (``--tokenizer``, default the tiny
fixture model's folder), runs the suite's own code (``stages.evaluator.attacks``) on real HarmBench behaviours (a
short standard one and a contextual one, from ``--benchmarks``):
- GCG through nanoGCG at HarmBench's settings (search width 512, top-k 256, 20-token suffix), ``--gcg-steps`` steps;
- AutoDAN at HarmBench's settings (population 64), ``--autodan-steps`` generations, the refusal check off so that
  every generation is counted, plus one refusal check (64 tokens) timed apart;
- the final completion (``--max-new-tokens``, greedy) the judge reads.
Seconds per step are divided by (candidates x sequence tokens x parameters) to give the cost constant the planner
multiplies back (see the markdown's formula). Random weights never jailbreak, so the steps never stop early: these
are full-budget numbers.

Usage (one GPU; nanoGCG installed with ``pip install --no-deps nanogcg-0.3.0-py3-none-any.whl``, which needs scipy
importable): ``python bench/bench_attacks.py --out bench/results``; writes ``attacks.json`` and ``attacks.md``.
``--tiny`` runs the same path on a CPU with the tiny shape and small budgets (a check of the script, not a
measurement).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_representations import SHAPES, VOCAB  # noqa: E402  (Qwen3 shapes, one table for the benches)


def build_model(shape: str, device: str, dtype: Any) -> Any:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    h, mlp, blocks, heads, kv, hd, tied = SHAPES[shape]
    cfg = Qwen3Config(vocab_size=VOCAB, hidden_size=h, intermediate_size=mlp, num_hidden_layers=blocks,
                      num_attention_heads=heads, num_key_value_heads=kv, head_dim=hd, tie_word_embeddings=tied,
                      max_position_embeddings=4096)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3ForCausalLM(cfg).to(dtype)
    model.eval().requires_grad_(False)
    return model


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_gib() -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


def timed(fn, *args) -> tuple[Any, float]:
    sync()
    t0 = time.perf_counter()
    out = fn(*args)
    sync()
    return out, time.perf_counter() - t0


def pick_behaviours(benchmarks: str) -> list[Any]:
    from stages.evaluator.attacks.behaviours import load

    rows, _ = load(benchmarks, "test")
    standard = sorted((b for b in rows if b.functional_category == "standard"), key=lambda b: len(b.prompt))
    contextual = sorted((b for b in rows if b.functional_category == "contextual"), key=lambda b: len(b.prompt))
    return [standard[len(standard) // 2], contextual[len(contextual) // 2]]  # median lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "bench" / "results"))
    parser.add_argument("--shape", default="4B", choices=sorted(SHAPES))
    parser.add_argument("--tokenizer", default=str(REPO / ".fixtures" / "tiny-qwen3"))
    parser.add_argument("--benchmarks", default=str(REPO / ".fixtures" / "benchmarks"))
    parser.add_argument("--gcg-steps", type=int, default=10)
    parser.add_argument("--search-width", type=int, default=512)
    parser.add_argument("--autodan-steps", type=int, default=5)
    parser.add_argument("--population", type=int, default=64)
    parser.add_argument("--forward-batch-size", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--tiny", action="store_true", help="CPU, tiny shape, small budgets: a check of the script")
    args = parser.parse_args()
    if args.tiny:
        args.shape, args.gcg_steps, args.search_width, args.autodan_steps = "tiny", 2, 8, 2
        args.population, args.forward_batch_size, args.max_new_tokens = 4, 4, 16
    import importlib.util

    missing = [m for m in ("nanogcg", "scipy") if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(f"bench_attacks: {', '.join(missing)} not importable: pip install --no-deps the nanogcg-0.3.0 wheel "
                 "(and scipy's, for nanoGCG's import)")
    import torch
    import transformers

    from stages.evaluator.attacks.autodan import AutoDANAttack
    from stages.evaluator.attacks.gcg import GCGAttack
    from stages.evaluator.attacks.mutation import WordMutation
    from stages.evaluator.attacks.params import AutoDANParams, GCGParams
    from stages.evaluator.attacks.prototypes import PROTOTYPES
    from stages.evaluator.attacks.scoring import chat_prompt, complete, ids_of
    from stages.lm.loading import load_tokenizer

    cuda = torch.cuda.is_available() and not args.tiny
    device = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    tokenizer = load_tokenizer(args.tokenizer)
    model, build_s = timed(build_model, args.shape, device, dtype)
    n_params = sum(p.numel() for p in model.parameters())
    behaviours = pick_behaviours(args.benchmarks)
    noop = lambda: None  # noqa: E731
    gcg_p = GCGParams(num_steps=args.gcg_steps, search_width=args.search_width, topk=min(256, args.search_width))
    gcg, gcg_init_s = timed(GCGAttack, model, tokenizer, gcg_p, False, noop)
    ad_p = AutoDANParams(num_steps=args.autodan_steps, population=args.population, eval_with_check_refusal=False,
                         forward_batch_size=args.forward_batch_size)
    autodan = AutoDANAttack(model, tokenizer, ad_p, False, noop, PROTOTYPES, WordMutation())
    rows = []
    for b in behaviours:
        suffix_tokens = len(ids_of(tokenizer, gcg_p.optim_str_init))
        gcg_tokens = len(ids_of(tokenizer, chat_prompt(tokenizer, b.prompt, False))) + suffix_tokens + \
            len(ids_of(tokenizer, b.target))
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        g, g_s = timed(gcg.run, b, 0)
        g_peak = peak_gib()
        ad_tokens = sum(len(ids_of(tokenizer, chat_prompt(tokenizer, autodan.prompt(t, b), False)))
                        for t in PROTOTYPES) / len(PROTOTYPES) + len(ids_of(tokenizer, b.target))
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        a, a_s = timed(autodan.run, b, 0)
        a_peak = peak_gib()
        check, check_s = timed(autodan.jailbroken, PROTOTYPES[0], b)
        text = chat_prompt(tokenizer, a.adversarial_prompt, False)
        completion, comp_s = timed(complete, model, tokenizer, text, args.max_new_tokens)
        new_tokens = len(ids_of(tokenizer, completion))
        gcg_step = g_s / g.steps
        ad_step = a_s / a.steps
        rows.append({
            "behavior_id": b.behavior_id, "functional_category": b.functional_category,
            "gcg": {"steps": g.steps, "seconds": round(g_s, 3), "seconds_per_step": round(gcg_step, 4),
                    "steps_per_s": round(1 / gcg_step, 4), "sequence_tokens": gcg_tokens, "peak_gib": g_peak,
                    "k_seconds_per_candidate_token_param": gcg_step / (args.search_width * gcg_tokens * n_params)},
            "autodan": {"steps": a.steps, "seconds": round(a_s, 3), "seconds_per_step": round(ad_step, 4),
                        "steps_per_s": round(1 / ad_step, 4), "sequence_tokens": round(ad_tokens, 1),
                        "peak_gib": a_peak, "refusal_check_s": round(check_s, 3),
                        "k_seconds_per_candidate_token_param": ad_step / (args.population * ad_tokens * n_params)},
            "completion": {"new_tokens": new_tokens, "seconds": round(comp_s, 3),
                           "tokens_per_s": round(new_tokens / comp_s, 2) if comp_s else None},
        })
    result = {
        "bench": "attacks", "command": " ".join(sys.argv), "card": torch.cuda.get_device_name(0) if cuda else
        platform.processor() or "cpu", "torch": torch.__version__, "transformers": transformers.__version__,
        "python": platform.python_version(), "shape": args.shape, "params": n_params, "dtype": str(dtype),
        "search_width": args.search_width, "topk": gcg_p.topk, "population": args.population,
        "build_s": round(build_s, 2), "gcg_init_s": round(gcg_init_s, 2), "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "attacks-tiny" if args.tiny else "attacks"
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# Attacks: GCG and AutoDAN steps/s ({r['shape']} shape, {r['dtype']}, {r['card']})", "",
        f"`{r['command']}`; torch {r['torch']}, transformers {r['transformers']}; {r['params'] / 1e9:.2f} B "
        f"parameters; GCG search width {r['search_width']} (top-k {r['topk']}), AutoDAN population "
        f"{r['population']}; nanoGCG's setup (disallowed tokens) {r['gcg_init_s']} s once per run.", "",
        "| behaviour | GCG s/step | GCG steps/s | GCG tokens | GCG peak GiB | AutoDAN s/gen | AutoDAN gens/s | "
        "AutoDAN tokens | AutoDAN peak GiB | completion tok/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        g, a, c = row["gcg"], row["autodan"], row["completion"]
        lines.append(f"| {row['behavior_id']} ({row['functional_category']}) | {g['seconds_per_step']} | "
                     f"{g['steps_per_s']} | {g['sequence_tokens']} | {g['peak_gib']} | {a['seconds_per_step']} | "
                     f"{a['steps_per_s']} | {a['sequence_tokens']} | {a['peak_gib']} | {c['tokens_per_s']} |")
    kg = max(row["gcg"]["k_seconds_per_candidate_token_param"] for row in r["rows"])
    ka = max(row["autodan"]["k_seconds_per_candidate_token_param"] for row in r["rows"])
    lines += [
        "", "Cost model (GPU-seconds per behaviour, the larger of the two behaviours' constants):",
        f"- GCG: num_steps x (k_gcg x search_width x tokens x params), k_gcg = {kg:.3e} s, tokens = prompt + "
        "20-token suffix + target (no prefix cache under transformers 5);",
        f"- AutoDAN: num_steps x (k_autodan x population x tokens x params) + a refusal check every eval_steps, "
        f"k_autodan = {ka:.3e} s, tokens = prototype prompt + behaviour + target;",
        "- plus the final completion (max_new_tokens at the tok/s above) and the judge.", "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
