"""The part of an iteration after generation: reference log-probs, training and export, then the state moves on to
the next iteration (or ``done``).

Why one function for one process and for torchrun: the one-process run is the reference the multi-GPU run must
match (same pairs, reference log-probs, losses and weights), so both run this very code; only rank 0 writes the
state, the logs and the copies, and every rank takes part in the engine's collective calls (scoring, training,
export). Raises ``Stopped`` when asked to stop; the state on disk then says where the next attempt resumes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from stages.spin.pairs import EncodedPrompt
from stages.spin.session import Session
from stages.spin.state import SpinState
from stages.spin.train import make_trainer, run_scoring, run_training, total_steps, training_records


def copy_model(src: str | Path, dest: Path) -> None:
    """Copy a model folder into place atomically (built beside ``dest``, then renamed)."""
    tmp = dest.with_name(f".{dest.name}.copy")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def finish_iteration(s: Session, state: SpinState, state_path: Path, trainer: Any) -> None:
    """Export the trained model (or keep the start model when nothing was trained) and move to the next iteration.

    Every rank calls this (the export gathers the shards); rank 0 alone copies and saves the state."""
    p, t, out = s.params, state.iteration, s.out
    main = trainer is None or trainer.info.is_main
    last = t == p.iterations - 1
    keep = out / "iterations" / f"iter-{t}"
    dest = out / "model" if last else keep if p.save_iteration_models else out / "work" / f"start-{t + 1}"
    s.report(note=f"iteration {t}: exporting the model", force=True)
    if trainer is not None:
        trainer.export_hf(dest)
    elif last or p.save_iteration_models:
        copy_model(state.start_model, dest)
    else:
        dest = Path(state.start_model)
    if main and last and p.save_iteration_models:
        copy_model(dest, keep)
    if last:
        state.advance("done", start_model=str(dest))
    else:
        state.advance("generate", iteration=t + 1, start_model=str(dest))
    if main:
        state.save(state_path)


def score_train_export(s: Session, state: SpinState, state_path: Path, encoded: dict[int, EncodedPrompt],
                       tokenizer: Any) -> None:
    """From the ``score`` or ``train`` phase of ``state.iteration`` to the next iteration's ``generate``."""
    t = state.iteration
    records = training_records(s.out, t, s.params.keep_previous_iteration)
    if not records:  # every sample correct under the drop policy: nothing to push down, the model stays
        state.iteration_stats(t)["train"] = {"steps": 0, "pairs": 0}
        finish_iteration(s, state, state_path, None)
        return
    steps = total_steps(len(records), s.params.global_batch_size, s.params.epochs_per_iteration)
    trainer = make_trainer(s, state, steps, tokenizer)
    try:
        if state.phase == "score":
            run_scoring(s, state, state_path, trainer, records, encoded)
            state.advance("train")
            if trainer.info.is_main:
                state.save(state_path)
        run_training(s, state, trainer, records, encoded)
        state.iteration_stats(t)["train"] = {"steps": trainer.step, "pairs": len(records)}
        finish_iteration(s, state, state_path, trainer)
    finally:
        trainer.close()
