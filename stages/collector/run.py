"""The collector's run: not built yet (issue 5)."""

from stages.core import NotImplementedYet, RunContext, StageResult


def run(ctx: RunContext) -> StageResult:
    raise NotImplementedYet(f"collector mode {ctx.params.mode!r} with engine {ctx.engine!r}")
