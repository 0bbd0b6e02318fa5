"""The spin run: not built yet (issue 12)."""

from stages.core import NotImplementedYet, RunContext, StageResult


def run(ctx: RunContext) -> StageResult:
    raise NotImplementedYet(f"spin with engine {ctx.engine!r}")
