"""The collector's declaration: inputs, outputs, engines. Imports nothing heavy."""

from stages.collector.params import CollectorParams
from stages.core import ArtifactKind as K
from stages.core import InputDecl, OutputDecl, StageDef

STAGE = StageDef(
    name="collector",
    description="Run a model (or the ground truth) through a GEM environment; write trajectories, SFT data, prompts.",
    params=CollectorParams,
    engines=("hf", "vllm", "openai"),
    inputs={
        "dataset": InputDecl((K.gem_dataset,), "GEM dataset folder of the env (all modes but merge).", False),
        "model": InputDecl((K.hf_model,), "Model to sample in generate mode (hf/vllm engines).", required=False),
    },
    variadic_inputs=K.trajectories,
    outputs={
        "trajectories": OutputDecl(K.trajectories, "One record per sample (the source of every other output).",
                                   "trajectories.jsonl"),
        "sft": OutputDecl(K.sft_data, "Correct responses in verl's `messages` schema.", "sft.parquet", False),
        "sft_jsonl": OutputDecl(K.sft_data, "The same rows as conversational {prompt, completion}.", "sft.jsonl",
                                False),
        "prompts": OutputDecl(K.rl_prompts, "Prompts with ground truth, verl RL parquet.", "prompts.parquet", False),
        "prompts_jsonl": OutputDecl(K.rl_prompts, "The same prompts as JSONL.", "prompts.jsonl", False),
        "stats": OutputDecl(K.stats, "Accuracy, pass@k, rewards, lengths, throughput, verdict counts.", "stats.json"),
    },
    run="stages.collector.run:run",
    preflight="stages.collector.preflight:preflight",
)
