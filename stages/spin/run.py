"""The spin run: SELF, ``iterations`` rounds of generate -> reference log-probs -> DPO-style training -> export.

Iteration t starts from the model exported by iteration t-1 (the input model for t = 0), which is also that
iteration's reference. Its own sample of every prompt is the rejected side, the ground-truth response the chosen
side; it trains on those pairs and, by default, the previous iteration's (the paper's choice). Where the run is
lives in ``checkpoints/spin_state.json`` (see ``state.py``), so a requeued job continues in the phase, chunk or
optimizer step where the previous attempt stopped. Outputs: ``model`` (the last iteration's), ``pairs/`` (every
iteration's pairs and reference log-probs), ``metrics.jsonl``, optionally ``iterations/iter-<t>`` (each
iteration's model), and the summary.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from stages.core import InputError, RunContext, StageResult
from stages.spin import stop_points
from stages.spin.generate import resolve_backend, run_generation
from stages.spin.metrics import iteration_records, summarize, write_metrics
from stages.spin.pairs import encode_prompts
from stages.spin.preflight import check_resources
from stages.spin.prompts import read_prompts
from stages.spin.state import STATE_FILE, SpinState
from stages.spin.train import make_trainer, run_scoring, run_training, total_steps, train_config, training_records


def _copy_model(src: str | Path, dest: Path) -> None:
    """Copy a model folder into place atomically (built beside ``dest``, then renamed)."""
    tmp = dest.with_name(f".{dest.name}.copy")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def _cleanup(out: Path, ckpt_dir: Path, state: SpinState) -> None:
    """Remove what no later phase needs: earlier iterations' engine checkpoints and start models."""
    done = state.phase == "done"
    for folder in ckpt_dir.glob("iter-*"):
        if done or int(folder.name.split("-")[1]) < state.iteration:
            shutil.rmtree(folder, ignore_errors=True)
    for folder in (out / "work").glob("start-*"):
        if str(folder) != state.start_model and (done or int(folder.name.split("-")[1]) <= state.iteration):
            shutil.rmtree(folder, ignore_errors=True)


def _finish_iteration(ctx: RunContext, state: SpinState, state_path: Path, trainer: Any) -> None:
    """Export the trained model (or keep the start model when nothing was trained) and move to the next iteration."""
    p, t, out = ctx.params, state.iteration, ctx.local_output_dir
    last = t == p.iterations - 1
    keep = out / "iterations" / f"iter-{t}"
    dest = out / "model" if last else keep if p.save_iteration_models else out / "work" / f"start-{t + 1}"
    ctx.report(note=f"iteration {t}: exporting the model", force=True)
    if trainer is not None:
        trainer.export_hf(dest)
    elif last or p.save_iteration_models:
        _copy_model(state.start_model, dest)
    else:
        dest = Path(state.start_model)
    if last and p.save_iteration_models:
        _copy_model(dest, keep)
    if last:
        state.advance("done", start_model=str(dest))
    else:
        state.advance("generate", iteration=t + 1, start_model=str(dest))
    state.save(state_path)


def _iteration(ctx: RunContext, state: SpinState, state_path: Path, encoded: list, by_position: dict,
               tokenizer: Any) -> None:
    p, t, out = ctx.params, state.iteration, ctx.local_output_dir
    if state.phase == "generate":
        run_generation(ctx, state, state_path, encoded, tokenizer)
        state.advance("score")
        state.save(state_path)
    records = training_records(out, t, p.keep_previous_iteration)
    if not records:  # every sample correct under the drop policy: nothing to push down, the model stays
        state.iteration_stats(t)["train"] = {"steps": 0, "pairs": 0}
        _finish_iteration(ctx, state, state_path, None)
        return
    steps = total_steps(len(records), p.global_batch_size, p.epochs_per_iteration)
    trainer = make_trainer(ctx, state, steps, tokenizer)
    try:
        if state.phase == "score":
            run_scoring(ctx, state, state_path, trainer, records, by_position)
            state.advance("train")
            state.save(state_path)
        run_training(ctx, state, trainer, records, by_position)
        state.iteration_stats(t)["train"] = {"steps": trainer.step, "pairs": len(records)}
        _finish_iteration(ctx, state, state_path, trainer)
    finally:
        trainer.close()


def run(ctx: RunContext) -> StageResult:
    from stages.lm.loading import load_tokenizer

    p, rt = ctx.params, ctx.runtime
    check_resources(ctx.spec.resources)
    out = ctx.local_output_dir
    state_path = ctx.checkpoint_dir / STATE_FILE
    rows = read_prompts(ctx.inputs["prompts"].path, p.chosen_source)
    tokenizer = load_tokenizer(ctx.inputs["model"].path)
    encoded, too_long = encode_prompts(rows, tokenizer, rt.thinking, p.max_prompt_length, p.max_length)
    if not encoded:
        raise InputError(f"none of the {len(rows)} prompts fits max_prompt_length {p.max_prompt_length} tokens",
                         "$.spec.params.max_prompt_length")
    by_position = {e.row.position: e for e in encoded}
    state = SpinState.load(state_path) or SpinState(start_model=str(ctx.inputs["model"].path))
    if state.backend is None:
        state.backend = resolve_backend(p.generation_backend)
    state.prompts_kept = len(encoded)
    state.save(state_path)
    ctx.set_engine_config({"engine": "native", "generation_backend": state.backend,
                           "train_config": train_config(ctx, state.iteration).to_dict(),
                           "prompts_kept": len(encoded), "prompts_over_max_prompt_length": too_long})
    while state.phase != "done":
        _cleanup(out, ctx.checkpoint_dir, state)
        if ctx.stop_requested:
            raise ctx.preempt(str(state_path))
        t = state.iteration
        _iteration(ctx, state, state_path, encoded, by_position, tokenizer)
        stop_points.reached(f"iteration:{t}")
    _cleanup(out, ctx.checkpoint_dir, state)
    records = iteration_records(out, state, p.iterations)
    write_metrics(out / "metrics.jsonl", records)
    kinds = [e.row.chosen_kind for e in encoded]
    facts = {"engine": "native", "generation_backend": state.backend, "iterations": p.iterations,
             "correct_sample_policy": p.correct_sample_policy, "prompts": len(rows), "prompts_kept": len(encoded),
             "prompts_over_max_prompt_length": too_long,
             "chosen_reference_solution": kinds.count("reference_solution"),
             "chosen_templated_answer": kinds.count("templated_answer")}
    outputs = {"model": "model", "pairs": "pairs", "metrics": "metrics.jsonl"}
    if p.save_iteration_models:
        outputs["iteration_models"] = "iterations"
    return StageResult(outputs=outputs, summary=summarize(records, state, facts))
