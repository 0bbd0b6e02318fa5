"""The analyzer run: gather the evaluator results (already checked by the preflight), then build the tables,
figures and report under the run's output folder. Light and deterministic: no checkpoints needed, a rerun redoes
the work in seconds.
"""

from __future__ import annotations

import time

from stages.core import RunContext, StageResult


def run(ctx: RunContext) -> StageResult:
    from stages.analyzer.build import REPORT_DIR, TABLES_DIR, build
    from stages.analyzer.gather import gather
    from stages.analyzer.report import ReportContext

    gathered = gather(ctx.spec, ctx.inputs)
    ctx.report(0.1, f"{len(gathered.records)} results, {len(gathered.pending)} pending", force=True)
    report_ctx = ReportContext(
        title=ctx.params.title,
        generated_at=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        analyzer_run_id=ctx.manifest.run_id,
        provenance=ctx.manifest.provenance.model_dump(mode="json"),
        params=ctx.params.model_dump(mode="json"),
    )
    summary = build(gathered, ctx.params, ctx.local_output_dir, report_ctx)
    return StageResult(outputs={"report": REPORT_DIR, "tables": TABLES_DIR}, summary=summary)
