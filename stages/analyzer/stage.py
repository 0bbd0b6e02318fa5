"""The analyzer's declaration. Imports nothing heavy (no torch in the analyzer image)."""

from stages.analyzer.params import AnalyzerParams
from stages.core import ArtifactKind as K
from stages.core import OutputDecl, StageDef

STAGE = StageDef(
    name="analyzer",
    description="Tables, figures and a static HTML report from many evaluator results.",
    params=AnalyzerParams,
    engines=("native",),
    inputs={},
    variadic_inputs=K.eval_results,  # any input name: each an evaluator's results (link its manifest's output)
    outputs={
        "report": OutputDecl(K.report, "index.html with figures (PNG/SVG) and tables; open it from disk.", "report"),
        "tables": OutputDecl(K.report, "CSV and Markdown tables.", "tables"),
    },
    run="stages.analyzer.run:run",
    preflight="stages.analyzer.gather:preflight",
)
