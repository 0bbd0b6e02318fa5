"""The analyzer run: not built yet (issue 9)."""

from stages.core import NotImplementedYet, RunContext, StageResult


def run(ctx: RunContext) -> StageResult:
    raise NotImplementedYet(f"analyzer with engine {ctx.engine!r}")
