"""SPIN's declaration. Imports nothing heavy."""

from stages.core import ArtifactKind as K
from stages.core import InputDecl, OutputDecl, StageDef
from stages.spin.params import SPINParams

STAGE = StageDef(
    name="spin",
    description="SELF: Self-Play Fine-Tuning, chosen = ground truth, rejected = the model's own sample. On several "
    "GPUs and nodes (resources.gpus_per_node x nodes) each iteration samples through a vLLM server on the batch "
    "node's GPUs (params.vllm) and computes reference log-probs and trains under torchrun over every GPU (FSDP2, "
    "params.native; srun + c10d rendezvous across nodes), with the same results as one process.",
    params=SPINParams,
    engines=("native",),
    inputs={
        "model": InputDecl((K.hf_model,), "The starting checkpoint."),
        "prompts": InputDecl((K.rl_prompts,), "Prompts with ground truth and reference solutions (verl RL parquet)."),
    },
    outputs={
        "model": OutputDecl(K.hf_model, "The final model (the last iteration's).", "model"),
        "pairs": OutputDecl(K.pairs, "Every iteration's pairs (iter-<t>.jsonl) and reference log-probs "
                            "(iter-<t>.reference.jsonl).", "pairs"),
        "metrics": OutputDecl(K.metrics, "Per iteration: samples and share already correct; per step: loss, reward "
                              "margins, chosen/rejected log-probs and gap.", "metrics.jsonl"),
        "iteration_models": OutputDecl(K.checkpoints, "Each iteration's model (save_iteration_models).", "iterations",
                                       required=False),
    },
    run="stages.spin.run:run",
    preflight="stages.spin.preflight:preflight",
)
