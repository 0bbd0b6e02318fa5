"""The evaluator run: not built yet (issue 8)."""

from stages.core import NotImplementedYet, RunContext, StageResult


def run(ctx: RunContext) -> StageResult:
    raise NotImplementedYet(f"evaluator with engine {ctx.engine!r}")
