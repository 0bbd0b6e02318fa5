"""The sft_trainer run: not built yet (issue 6)."""

from stages.core import NotImplementedYet, RunContext, StageResult


def run(ctx: RunContext) -> StageResult:
    raise NotImplementedYet(f"sft-trainer with engine {ctx.engine!r}")
