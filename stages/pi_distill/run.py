"""The pi_distill run: not built yet (issue 13)."""

from stages.core import NotImplementedYet, RunContext, StageResult


def run(ctx: RunContext) -> StageResult:
    raise NotImplementedYet(f"pi-distill with engine {ctx.engine!r}")
