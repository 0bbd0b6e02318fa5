"""SPIN's declaration. Imports nothing heavy."""

from stages.core import ArtifactKind as K
from stages.core import InputDecl, OutputDecl, StageDef
from stages.spin.params import SPINParams

STAGE = StageDef(
    name="spin",
    description="SELF: Self-Play Fine-Tuning, chosen = ground truth, rejected = the model's own sample.",
    params=SPINParams,
    engines=("native",),
    inputs={
        "model": InputDecl((K.hf_model,), "The starting checkpoint."),
        "prompts": InputDecl((K.rl_prompts,), "Prompts with ground truth and reference solutions."),
    },
    outputs={
        "model": OutputDecl(K.hf_model, "The final model.", "model"),
        "pairs": OutputDecl(K.pairs, "Every iteration's pairs.", "pairs"),
        "metrics": OutputDecl(K.metrics, "Loss, margins, log-prob gaps, share of correct samples.", "metrics.jsonl"),
        "iteration_models": OutputDecl(K.checkpoints, "Each iteration's model.", "iterations", required=False),
        "checkpoints": OutputDecl(K.checkpoints, "Resumable checkpoints.", "checkpoints", required=False),
    },
    run="stages.spin.run:run",
)
