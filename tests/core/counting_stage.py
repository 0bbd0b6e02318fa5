"""A small test stage for lifecycle tests: it counts to N, one checkpointed step at a time.

It behaves like a real trainer where the lifecycle is concerned: it resumes from its checkpoint, answers stop
signals by saving and raising ``Preempted``, and can be told to crash. Run it as
``python -m tests.core.counting_stage --manifest m.json``.
"""

from __future__ import annotations

import json
import time

from pydantic import Field

from stages.core import ArtifactKind, InputDecl, NotImplementedYet, OutputDecl, RunContext, StageDef, StageResult
from stages.core.cli import make_cli
from stages.core.model_base import StrictModel


class CountParams(StrictModel):
    steps: int = Field(5, ge=1, le=100000, description="How far to count.")
    sleep_s: float = Field(0.0, ge=0.0, le=10.0, description="Seconds per step.")
    crash_at: int | None = Field(None, ge=0, description="Raise an error at this step.")
    unbuilt: bool = Field(False, description="Behave like a stage whose engine is not built yet.")


def run(ctx: RunContext) -> StageResult:
    if ctx.params.unbuilt:
        raise NotImplementedYet("counter engine 'quantum'")
    ckpt = ctx.checkpoint_dir / "state.json"
    state = json.loads(ckpt.read_text()) if ckpt.exists() else {"step": 0, "attempts": []}
    state["attempts"].append(ctx.manifest.status.attempt)
    log = ctx.local_output_dir / "steps.log"
    for step in range(state["step"], ctx.params.steps):
        if ctx.params.crash_at is not None and step == ctx.params.crash_at:
            raise RuntimeError(f"boom at step {step}")
        time.sleep(ctx.params.sleep_s)
        with open(log, "a") as f:
            f.write(f"{step}\n")
        state["step"] = step + 1
        ckpt.write_text(json.dumps(state))
        ctx.report(state["step"] / ctx.params.steps, f"step {state['step']}")
        if ctx.stop_requested and state["step"] < ctx.params.steps:
            raise ctx.preempt(str(ckpt))
    (ctx.local_output_dir / "result.json").write_text(json.dumps(state))
    return StageResult(outputs={"result": "result.json"}, summary={"steps": state["step"]})


STAGE = StageDef(
    name="counter",
    description="Counts to N with a checkpoint per step (lifecycle tests).",
    params=CountParams,
    inputs={"seed_file": InputDecl((ArtifactKind.stats,), "Any file, to test input resolution.", required=False)},
    outputs={"result": OutputDecl(ArtifactKind.stats, "The final count.", "result.json")},
    run="tests.core.counting_stage:run",
)
main = make_cli(STAGE)

if __name__ == "__main__":
    main()
