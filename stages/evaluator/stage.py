"""The evaluator's declaration. Imports nothing heavy."""

from stages.core import ArtifactKind as K
from stages.core import InputDecl, OutputDecl, StageDef
from stages.evaluator.params import EvaluatorParams

STAGE = StageDef(
    name="evaluator",
    description="Score one model: lm-eval forgetting suites, target pass@k, policy metrics, safety, KL to base.",
    params=EvaluatorParams,
    engines=("hf", "vllm"),
    inputs={
        "model": InputDecl((K.hf_model,), "The checkpoint to evaluate."),
        "base_model": InputDecl((K.hf_model,), "The starting checkpoint, for KL(base || post) and the "
                                "representations suite.", required=False),
        "base_results": InputDecl((K.eval_results,), "The base model's results, for sample-level forgetting.", False),
        "base_rerun_results": InputDecl(
            (K.eval_results,), "A second evaluation of the base (another seed): the noise flip rate.", False
        ),
        "target_data": InputDecl((K.gem_dataset,), "The domain's eval dataset for the target suite.", False),
        "benchmarks": InputDecl((K.benchmark_data,), "Folder of local benchmark rows (XSTest ...).", False),
    },
    outputs={
        "results": OutputDecl(K.eval_results, "Versioned results of every suite run.", "results.json"),
        "samples": OutputDecl(K.samples, "Per-item records.", "samples", required=False),
    },
    run="stages.evaluator.run:run",
    preflight="stages.evaluator.preflight:preflight",
)
