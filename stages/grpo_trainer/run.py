"""The grpo_trainer run: not built yet (issue 7)."""

from stages.core import NotImplementedYet, RunContext, StageResult


def run(ctx: RunContext) -> StageResult:
    raise NotImplementedYet(f"grpo-trainer with engine {ctx.engine!r}")
