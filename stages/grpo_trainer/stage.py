"""The GRPO trainer's declaration. Imports nothing heavy.

Engines: ``native`` (GRPO on ``stages.lm``; CPU, one GPU, tests) and ``verl`` (``verl.trainer.main_ppo`` with vLLM
rollouts, the default in the grpo-trainer image through ``FLLM_DEFAULT_ENGINE=verl``).
"""

from stages.core import ArtifactKind as K
from stages.core import InputDecl, OutputDecl, StageDef
from stages.grpo_trainer.params import GRPOParams

STAGE = StageDef(
    name="grpo-trainer",
    description="ON-RL: GRPO with binary rewards from the GEM graders.",
    params=GRPOParams,
    engines=("native", "verl"),
    inputs={
        "model": InputDecl((K.hf_model,), "The starting checkpoint (BASE or SAFE)."),
        "prompts": InputDecl((K.rl_prompts,), "Training prompts with ground truth (the collector's `prompts`)."),
        "val_prompts": InputDecl((K.rl_prompts,), "Validation prompts.", required=False),
    },
    outputs={
        "model": OutputDecl(K.hf_model, "The trained policy as a Hugging Face folder.", "model"),
        "checkpoints": OutputDecl(K.checkpoints, "Resumable checkpoints.", "checkpoints", required=False),
        "metrics": OutputDecl(K.metrics, "Reward, accuracy, length, entropy, KL, clip fraction per step.", "metrics.jsonl"),
        "rollouts": OutputDecl(K.rollouts, "Sampled rollouts at an interval.", "rollouts.jsonl", required=False),
    },
    run="stages.grpo_trainer.run:run",
    preflight="stages.grpo_trainer.preflight:preflight",
)
