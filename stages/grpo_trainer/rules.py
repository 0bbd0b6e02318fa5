"""Each engine's rules on batch sizes and settings, checked in plain Python before a job is submitted.

Why: verl checks some of these in ``validate_config`` when ``main_ppo`` starts (inside the job, on the GPUs), and
others only deep inside its workers after Ray, vLLM and FSDP are up (``engine_workers.py``: the PPO mini-batch
times the group size must split evenly over the data-parallel ranks; ``replica.py``: vLLM replicas must tile the
GPUs). Checking them here, with the verl reference's rules spelled out, makes a bad shape exit 2 at validation time
with one message listing every problem, on a login node without verl installed. The same rules are also confirmed
against verl's own ``validate_config`` by the composition tests.
"""

from __future__ import annotations

from stages.grpo_trainer.params import GRPOParams
from stages.lm.verl.rules import setting_problems


def verl_problems(params: GRPOParams, nnodes: int, gpus_per_node: int) -> list[str]:
    """Every reason verl would reject these params on this allocation (empty if none)."""
    p = params
    problems: list[str] = []
    if gpus_per_node < 1:
        return ["engine verl needs GPUs: set spec.resources.gpus_per_node >= 1 (or use engine native on a CPU)"]
    n_gpus = nnodes * gpus_per_node
    rollouts = p.prompts_per_step * p.group_size
    if rollouts % n_gpus:
        problems.append(
            f"prompts_per_step x group_size = {p.prompts_per_step} x {p.group_size} = {rollouts} responses per step "
            f"must be divisible by the GPU count {nnodes} node(s) x {gpus_per_node} = {n_gpus} "
            "(verl validate_config: real_train_batch_size % n_gpus)"
        )
    mini = p.mini_batch_size * p.group_size
    if mini % n_gpus:
        problems.append(
            f"mini_batch_size x group_size = {p.mini_batch_size} x {p.group_size} = {mini} responses per update "
            f"must be divisible by the {n_gpus} data-parallel ranks (verl splits each PPO mini-batch evenly)"
        )
    return problems + setting_problems(p, gpus_per_node)


def steps_problems(num_prompts: int, params: GRPOParams) -> list[str]:
    """A prompt set smaller than one rollout batch trains nothing (verl drops the last partial batch)."""
    if num_prompts < params.prompts_per_step:
        return [
            (
                f"the prompt set has {num_prompts} prompts, fewer than prompts_per_step {params.prompts_per_step}: "
                "not one full rollout batch"
            )
        ]
    return []


def native_problems(params: GRPOParams, nnodes: int) -> list[str]:
    """Settings the native engine does not implement (it says so rather than ignoring them)."""
    p = params
    problems = []
    if nnodes > 1:
        problems.append("engine native runs in one process on one node; use engine verl for several nodes")
    if p.kl_enabled and p.kl_type != "low_var_kl":
        problems.append(f"kl_type {p.kl_type!r}: the native engine implements low_var_kl (k3) only")
    if p.loss_agg == "seq-mean-token-sum":
        problems.append("loss_agg seq-mean-token-sum: the native engine implements token-mean and seq-mean-token-mean")
    if p.entropy_coef > 0:
        problems.append("entropy_coef > 0: the native engine has no entropy bonus (it only logs an entropy estimate)")
    longest = p.max_prompt_length + p.sampling.max_new_tokens
    if longest > p.native.micro_batch_tokens:
        problems.append(
            f"max_prompt_length + sampling.max_new_tokens = {longest} tokens does not fit native.micro_batch_tokens "
            f"{p.native.micro_batch_tokens}: raise native.micro_batch_tokens"
        )
    return problems
