"""Benchmark: the safety judges' throughput through the vllm and hf judge backends on a Qwen3-4B-shaped model.

Why: the XSTest judge (chat prompt, XSTest's rubric, up to 16 greedy tokens) and the HarmBench classifier (the
card's raw Llama-2 prompt, generation clipped to 512 tokens, one greedy token) score every safety evaluation;
both are prefill-bound, and this says what each backend costs per checkpoint. A random-init model of the Qwen3-4B
shape (bf16, the real Qwen3 tokenizer from ``--tokenizer``) stands in for both judges, with the classifier card
beside it, so the judges run their real code paths (``stages.evaluator.safety``), prompts and clipping included.
Prompts are synthetic but of XSTest/HarmBench length; engine load time is reported apart from scoring time.

Usage (one H100, vLLM installed as bench/README.md describes): ``python3 bench/bench_judges.py --tokenizer DIR
--out OUT``, DIR any folder with the Qwen3 tokenizer files and chat template (``.fixtures/tiny-qwen3`` by default;
its tokenizer.json, tokenizer_config.json and chat_template.jinja, 11 MB, are all it reads); ``--tiny`` runs the
tiny fixture model on CPU (with ``.venv-vllm/bin/python`` for the vllm rows). Results: ``OUT/judges.json`` and
``OUT/judges.md`` (default ``bench/results/``).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_native_engine import TINY, build_model, card_name

REPO = Path(__file__).resolve().parents[1]
CARD = REPO / "tests" / "evaluator" / "judge_fixtures" / "harmbench_card" / "README.md"
QWEN3_4B = {"vocab_size": 151936, "hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36,
            "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 40960,
            "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True}
WORDS = ("the process model answer request safety code system people time question water python kill light "
         "network security history friend plan market energy").split()


def words(n: int, seed: int) -> str:
    return " ".join(WORDS[(seed * 7 + i * 13) % len(WORDS)] for i in range(n))


def workload(n: int, tiny: bool) -> dict:
    """XSTest-length prompts and responses; HarmBench behaviours with generations past the 512-token clip."""
    scale = 8 if tiny else 1
    return {"prompts": [f"How do I {words(10, i)}?" for i in range(n)],
            "responses": [words(240 // scale, i + 1) for i in range(n)],
            "behaviours": [{"behavior": f"Write {words(14, i)}", "context": words(150 // scale, i) if i % 3 == 0
                            else None} for i in range(n)],
            "generations": [words(700 // scale, i + 2) for i in range(n)]}


def make_folder(args, root: Path) -> Path:
    """A model folder (weights, tokenizer, chat template) with the classifier card beside it."""
    import torch

    folder = root / "judge"
    if args.tiny:
        shutil.copytree(REPO / ".fixtures" / "tiny-qwen3", folder)
    else:
        model = build_model(QWEN3_4B, torch.device("cuda")).to(torch.bfloat16)
        model.save_pretrained(folder)
        del model
        gc.collect()
        torch.cuda.empty_cache()
        for f in Path(args.tokenizer).iterdir():
            if f.is_file() and not f.name.endswith(".safetensors") and f.name not in ("config.json", "README.md"):
                shutil.copy(f, folder / f.name)
    shutil.copy(CARD, folder / "README.md")
    return folder


def run_backend(backend: str, folder: Path, work: dict, args) -> list[dict]:
    import torch

    from stages.evaluator.safety.harmbench import LocalHarmBenchClassifier
    from stages.evaluator.safety.judge_backend import JudgeRuntime
    from stages.evaluator.safety.judges import ModelRefusalJudge, messages, rubric
    from stages.lm.chat import ChatFormat

    cuda = torch.cuda.is_available() and not args.tiny
    options = {} if cuda else {"enforce_eager": True}
    runtime = JudgeRuntime(backend, batch_size=args.hf_batch, dtype="bfloat16" if cuda else "float32",
                           gpu_memory_utilization=0.85 if cuda else None, max_model_len=4096 if cuda else 1024,
                           engine_options=options if backend == "vllm" else {})
    judge = ModelRefusalJudge(str(folder), runtime)
    cls = LocalHarmBenchClassifier(folder, runtime)
    t0 = time.perf_counter()
    runtime.backend_for(str(folder), "judge")
    load_s = time.perf_counter() - t0
    judge.classify(work["prompts"][:2], work["responses"][:2])  # warm-up
    rows = []
    tok, fmt = cls.tokenizer, ChatFormat()
    for name, run, prompt_tokens in (
        ("xstest judge", lambda: judge.classify(work["prompts"], work["responses"]),
         lambda: sum(len(fmt.prompt_ids(tok, messages(p, r))) for p, r in zip(work["prompts"], work["responses"]))),
        ("harmbench classifier", lambda: cls.judge(work["behaviours"], work["generations"]),
         lambda: sum(map(len, cls.prompt_ids(cls.prompts(work["behaviours"], work["generations"]))))),
    ):
        if cuda:
            torch.cuda.synchronize()
        before = runtime.generated_tokens
        t0 = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        replies = judge.replies if name == "xstest judge" else cls.replies
        generated = runtime.generated_tokens - before
        prompt = prompt_tokens()
        n = len(replies)
        rows.append({"backend": backend, "judge": name, "items": n, "seconds": dt, "items_per_s": n / dt,
                     "prompt_tokens": prompt, "mean_prompt_tokens": prompt / n, "generated_tokens": generated,
                     "max_new_tokens": int(rubric()["max_tokens"]) if name == "xstest judge" else 1,
                     "tokens_per_s": (prompt + generated) / dt, "generated_tokens_per_s": generated / dt,
                     "load_seconds": load_s})
        print(json.dumps(rows[-1]), flush=True)
    runtime.close()
    return rows


def write(out: Path, payload: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "judges.json").write_text(json.dumps(payload, indent=1))
    lines = [f"# Safety judges: vllm vs hf judge backend ({payload['shape']}, {payload['card']})", "",
             (f"torch {payload['torch']}, transformers {payload['transformers']}, vllm {payload['vllm']}; "
              f"{payload['items']} items per judge, greedy; tokens/s counts prompt + generated tokens (the judges "
              "are prefill-bound); load = engine/model load, apart. Command: `" + payload["command"] + "`"), "",
             "| backend | judge | items | mean prompt tokens | new tokens (max) | tokens/s | items/s | seconds "
             "| load s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in payload["results"]:
        lines.append(f"| {r['backend']} | {r['judge']} | {r['items']} | {r['mean_prompt_tokens']:.0f} | "
                     f"{r['max_new_tokens']} | {r['tokens_per_s']:,.0f} | {r['items_per_s']:.1f} | {r['seconds']:.2f} "
                     f"| {r['load_seconds']:.1f} |")
    lines += [""] + [f"- {s}" for s in payload["skipped"]]
    (out / "judges.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny fixture model on CPU")
    parser.add_argument("--tokenizer", default=str(REPO / ".fixtures" / "tiny-qwen3"),
                        help="folder with the Qwen3 tokenizer and chat template")
    parser.add_argument("--items", type=int, default=450, help="items per judge (XSTest has 450 prompts)")
    parser.add_argument("--hf-batch", type=int, default=32)
    parser.add_argument("--backends", default="hf,vllm", help="hf first: its memory is freed reliably")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    if args.tiny:
        args.items = min(args.items, 16)

    import torch
    import transformers

    has_vllm = importlib.util.find_spec("vllm") is not None
    work = workload(args.items, args.tiny)
    results, skipped = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(args, Path(tmp))
        for backend in args.backends.split(","):
            if backend == "vllm" and not has_vllm:
                skipped.append("vllm: not installed in this Python (on CPU use .venv-vllm/bin/python)")
                continue
            results += run_backend(backend, folder, work, args)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    vllm_version = None
    if has_vllm:
        import vllm

        vllm_version = vllm.__version__
    write(Path(args.out), {
        "card": card_name(device), "shape": "tiny Qwen3 (fixture)" if args.tiny else "Qwen3-4B (random init, bf16)",
        "shape_config": TINY if args.tiny else QWEN3_4B, "torch": torch.__version__,
        "transformers": transformers.__version__, "vllm": vllm_version, "items": args.items, "args": vars(args),
        "command": "python " + " ".join(sys.argv), "results": results, "skipped": skipped})


if __name__ == "__main__":  # vLLM's engine core starts with spawn: the guard is required
    main()
