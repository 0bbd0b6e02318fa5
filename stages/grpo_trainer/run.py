"""The grpo-trainer run: hand the context to the chosen engine (imported only then, with its heavy libraries)."""

from __future__ import annotations

from stages.core import RunContext, StageResult


def run(ctx: RunContext) -> StageResult:
    if ctx.engine == "verl":
        from stages.grpo_trainer.verl_run import run_verl

        return run_verl(ctx)
    from stages.grpo_trainer.native_run import run_native

    return run_native(ctx)
