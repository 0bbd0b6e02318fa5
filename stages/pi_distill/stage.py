"""π-Distill's declaration. Imports nothing heavy.

Engines: ``native`` (the shared ``stages.lm`` engine: CPU or one GPU; the reference the verl path must match) and
``verl`` (verl's PPO trainer with our ``_update_actor``: vLLM rollouts, FSDP, Ray on one or several nodes, the
launcher and reward file of grpo-trainer). ``variant`` switches between π-Distill and the same paper's OPSD on both.
The preflight hook checks the prompt set (schema, privileged information, size) and the engine's limits before
anything is written.
"""

from stages.core import ArtifactKind as K
from stages.core import InputDecl, OutputDecl, StageDef
from stages.pi_distill.params import PiDistillParams

STAGE = StageDef(
    name="pi-distill",
    description="PI: π-Distill, a teacher with privileged information and a student in one set of weights.",
    params=PiDistillParams,
    engines=("native", "verl"),
    inputs={
        "model": InputDecl((K.hf_model,), "The starting checkpoint."),
        "prompts": InputDecl(
            (K.rl_prompts,),
            "Prompts with ground truth and privileged information (the collector's `prompts`; the reference "
            "solution in extra_info.reference_solution).",
        ),
    },
    outputs={
        "model": OutputDecl(K.hf_model, "The trained model.", "model"),
        "checkpoints": OutputDecl(K.checkpoints, "Resumable checkpoints.", "checkpoints", required=False),
        "metrics": OutputDecl(K.metrics, "Teacher/student reward, KL, loss terms, clip fractions.", "metrics.jsonl"),
        "rollouts": OutputDecl(K.rollouts, "Sampled rollouts at an interval.", "rollouts.jsonl", required=False),
    },
    run="stages.pi_distill.run:run",
    preflight="stages.pi_distill.preflight:preflight",
)
