"""The generation phase of one iteration: the current model answers every prompt once; each answer is graded and
becomes the rejected side of a pair whose chosen side is the ground-truth response.

Why chunks with their own seeds: a preempted job must reproduce the samples an uninterrupted run would have drawn.
Prompts are taken in file order in fixed chunks of ``generation_batch_size``; chunk c of iteration t is sampled with
a seed derived from (seed, t, c) by the model at the start of iteration t, loaded from its folder in both cases, so
a chunk's samples do not depend on which attempt draws them. A chunk's pairs are appended and fsynced, then the
state records the new good length of the file (``state.ChunkLog``).

``correct_sample_policy``: faithful SPIN (``keep``) pushes the model's own sample down even when the grader says it
is right; ``drop`` marks such pairs ``kept: false`` and leaves them out of training. Every pair is written either
way, so the counts can be read back from the file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from stages.core import RunContext
from stages.spin import stop_points
from stages.spin.pairs import EncodedPrompt
from stages.spin.state import ChunkLog, SpinState, read_jsonl


def chunk_seed(seed: int, iteration: int, chunk: int) -> int:
    return int.from_bytes(hashlib.sha256(f"spin:generate:{seed}:{iteration}:{chunk}".encode()).digest()[:4], "little")


def resolve_backend(requested: str) -> str:
    """``auto``: a vLLM server on a CUDA machine where vLLM is installed, else transformers ``generate``."""
    if requested != "auto":
        return requested
    import torch

    from stages.lm.launch.vllm_server import find_vllm_python

    return "vllm" if torch.cuda.is_available() and find_vllm_python() is not None else "hf"


def open_backend(name: str, model_dir: str, ctx: RunContext, tokenizer: Any, iteration: int) -> Any:
    from stages.lm.generation import make_backend

    p = ctx.params
    if name == "vllm":
        from stages.spin.served import ServedModel

        return ServedModel.start(model_dir, ctx, tokenizer, iteration)
    # the training engine's dtype: bf16 on a GPU unless precision.bf16 is off, fp32 on a CPU
    return make_backend("hf", model=model_dir, tokenizer=tokenizer, thinking=ctx.runtime.thinking,
                        batch_size=p.generation_batch_size, dtype="auto" if p.precision.bf16 else "float32")


def close_backend(backend: Any) -> None:
    import gc

    import torch

    backend.close()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def pairs_path(out: Path, iteration: int) -> Path:
    return out / "pairs" / f"iter-{iteration}.jsonl"


def _record(iteration: int, prompt: EncodedPrompt, completion: Any, verdict: Any, policy: str) -> dict[str, Any]:
    row = prompt.row
    correct = bool(verdict.correct)
    return {
        "iteration": iteration, "position": row.position, "index": row.index, "data_source": row.data_source,
        "prompt": row.messages, "chosen": row.chosen, "chosen_kind": row.chosen_kind,
        "chosen_truncated": prompt.chosen_truncated, "rejected": completion.text,
        "rejected_token_ids": list(completion.token_ids or []), "finish_reason": completion.finish_reason,
        "rejected_correct": correct, "verdict": verdict.verdict, "score": float(verdict.score),
        "kept": not (correct and policy == "drop"),
    }


def run_generation(ctx: RunContext, state: SpinState, state_path: Path, prompts: list[EncodedPrompt],
                   tokenizer: Any) -> None:
    """Sample and grade the remaining chunks of the current iteration (resuming at ``state.chunk``).

    ``tokenizer`` is the input model's, loaded once: every exported iteration carries the same one."""
    from stages.envs import grade_many
    from stages.lm.generation import SamplingParams

    p, t = ctx.params, state.iteration
    size = p.generation_batch_size
    chunks = [prompts[i:i + size] for i in range(0, len(prompts), size)]
    path = pairs_path(ctx.local_output_dir, t)
    backend = None
    try:
        with ChunkLog(path, state.bytes) as log:
            for c in range(state.chunk, len(chunks)):
                if ctx.stop_requested:
                    raise ctx.preempt(str(state_path))
                if backend is None:
                    ctx.report(note=f"iteration {t}: loading {state.backend} for generation", force=True)
                    backend = open_backend(state.backend or "hf", state.start_model, ctx, tokenizer, t)
                chunk = chunks[c]
                params = SamplingParams(n=1, temperature=p.sampling.temperature, top_p=p.sampling.top_p,
                                        top_k=max(p.sampling.top_k, 0), max_tokens=p.sampling.max_new_tokens,
                                        seed=chunk_seed(ctx.runtime.seed, t, c))
                results = backend.generate_from_ids([e.prompt_ids for e in chunk], params)
                completions = [r.completions[0] for r in results]
                verdicts = grade_many([e.row.data_source for e in chunk], [x.text for x in completions],
                                      [e.row.ground_truth for e in chunk])
                records = [_record(t, e, x, v, p.correct_sample_policy)
                           for e, x, v in zip(chunk, completions, verdicts)]
                state.bytes = log.append(records)
                state.chunk = c + 1
                state.save(state_path)
                ctx.report(state.progress(p.iterations, state.chunk / len(chunks)),
                           f"iteration {t}: generated {state.chunk}/{len(chunks)} chunks")
                stop_points.reached(f"generate:{t}:{c}")
    finally:
        if backend is not None:
            close_backend(backend)
    state.iteration_stats(t)["generation"] = generation_stats(read_jsonl(path), p.correct_sample_policy)


def generation_stats(records: list[dict[str, Any]], policy: str) -> dict[str, Any]:
    n = len(records)
    correct = sum(r["rejected_correct"] for r in records)
    kept = sum(r["kept"] for r in records)
    lengths = [len(r["rejected_token_ids"]) for r in records]
    return {
        "samples": n, "correct_samples": correct, "share_correct": correct / n if n else 0.0,
        "pairs_kept": kept, "pairs_dropped_correct": n - kept, "correct_sample_policy": policy,
        "rejected_length_mean": sum(lengths) / n if n else 0.0,
        "rejected_stopped_share": sum(r["finish_reason"] == "stop" for r in records) / n if n else 0.0,
        "chosen_truncated": sum(bool(r.get("chosen_truncated")) for r in records),
    }
