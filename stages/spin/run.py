"""The spin run: SELF, ``iterations`` rounds of generate -> reference log-probs -> DPO-style training -> export.

Iteration t starts from the model exported by iteration t-1 (the input model for t = 0), which is also that
iteration's reference. Its own sample of every prompt is the rejected side, the ground-truth response the chosen
side; it trains on those pairs and, by default, the previous iteration's (the paper's choice). Where the run is
lives in ``checkpoints/spin_state.json`` (see ``state.py``), so a requeued job continues in the phase, chunk or
optimizer step where the previous attempt stopped.

Where each phase runs: generation in this process (transformers ``generate``, or a vLLM server it starts and
stops); reference log-probs, training and export in this process on a CPU or one GPU, or under torchrun over every
GPU of every node of the job (``launch.py``; gloo ranks on a CPU when the manifest asks for several GPUs there).

Outputs: ``model`` (the last iteration's), ``pairs/`` (every iteration's pairs and reference log-probs),
``metrics.jsonl``, optionally ``iterations/iter-<t>`` (each iteration's model), and the summary.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from stages.core import InputError, RunContext, StageResult
from stages.envs.sandbox.gate import summary as isolation_summary
from stages.spin import stop_points
from stages.spin.generate import resolve_backend, run_generation
from stages.spin.iteration import score_train_export
from stages.spin.metrics import iteration_records, summarize, write_metrics
from stages.spin.pairs import EncodedPrompt, encode_prompts
from stages.spin.prompts import read_prompts
from stages.spin.session import Session, Stopped
from stages.spin.state import STATE_FILE, SpinState
from stages.spin.train import train_config, training_records


def _cleanup(out: Path, ckpt_dir: Path, state: SpinState) -> None:
    """Remove what no later phase needs: earlier iterations' engine checkpoints and start models."""
    done = state.phase == "done"
    for folder in ckpt_dir.glob("iter-*"):
        if folder.is_dir() and (done or int(folder.name.split("-")[1]) < state.iteration):
            shutil.rmtree(folder, ignore_errors=True)
    for folder in (out / "work").glob("start-*"):
        if str(folder) != state.start_model and (done or int(folder.name.split("-")[1]) <= state.iteration):
            shutil.rmtree(folder, ignore_errors=True)


def _iteration(ctx: RunContext, state: SpinState, state_path: Path, encoded: list[EncodedPrompt],
               tokenizer: Any, world: Any) -> SpinState:
    """One iteration from wherever ``state`` is; returns the state it ends in (``Preempted`` on a stop)."""
    session = Session.from_context(ctx)
    if state.phase == "generate":
        run_generation(ctx, state, state_path, encoded, tokenizer)
        state.advance("score")
        state.save(state_path)
    t = state.iteration
    if world.size == 1 or not training_records(session.out, t, session.params.keep_previous_iteration):
        try:
            score_train_export(session, state, state_path, {e.row.position: e for e in encoded}, tokenizer)
        except Stopped as stopped:
            raise ctx.preempt(stopped.checkpoint) from None
        return state
    from stages.spin.launch import run_under_torchrun

    result = run_under_torchrun(ctx, session, world, t)
    state = SpinState.load(state_path) or state
    if result["status"] != "completed":
        raise ctx.preempt(result.get("checkpoint"))
    if result.get("checkpoint"):
        ctx.note_checkpoint(result["checkpoint"])
    return state


def run(ctx: RunContext) -> StageResult:
    from stages.lm.launch.torchrun import detected_world
    from stages.lm.loading import load_tokenizer

    p, rt = ctx.params, ctx.runtime
    out = ctx.local_output_dir
    state_path = ctx.checkpoint_dir / STATE_FILE
    rows = read_prompts(ctx.inputs["prompts"].path, p.chosen_source)
    tokenizer = load_tokenizer(ctx.inputs["model"].path)
    encoded, too_long = encode_prompts(rows, tokenizer, rt.thinking, p.max_prompt_length, p.max_length)
    if not encoded:
        raise InputError(f"none of the {len(rows)} prompts fits max_prompt_length {p.max_prompt_length} tokens",
                         "$.spec.params.max_prompt_length")
    world = detected_world(ctx.spec.resources.nodes, ctx.spec.resources.gpus_per_node)
    state = SpinState.load(state_path) or SpinState(start_model=str(ctx.inputs["model"].path))
    if state.backend is None:
        state.backend = resolve_backend(p.generation_backend)
    state.prompts_kept = len(encoded)
    state.save(state_path)
    engine: dict[str, Any] = {
        "engine": "native", "generation_backend": state.backend,
        "train_config": train_config(Session.from_context(ctx), state.iteration).to_dict(),
        "world": {"nodes": world.nodes, "ranks_per_node": world.ranks_per_node, "cpu": world.cpu},
        "prompts_kept": len(encoded), "prompts_over_max_prompt_length": too_long}
    if state.backend == "vllm":
        from stages.spin.served import server_settings

        engine["vllm_server"] = asdict(server_settings(ctx))
    ctx.set_engine_config(engine)
    while state.phase != "done":
        _cleanup(out, ctx.checkpoint_dir, state)
        if ctx.stop_requested:
            raise ctx.preempt(str(state_path))
        t = state.iteration
        state = _iteration(ctx, state, state_path, encoded, tokenizer, world)
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
    return StageResult(outputs=outputs, summary={**summarize(records, state, facts), **isolation_summary()})
