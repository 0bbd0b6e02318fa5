"""What the verl engine cannot run, checked in plain Python before a job is submitted (no verl needed).

Why: verl checks some shapes in ``validate_config`` when the job starts (inside the allocation) and others only
inside its workers once Ray, vLLM and FSDP are up: the rollouts of a step and of a PPO mini-batch must split evenly
over the data-parallel ranks (``engine_workers.py``), each GPU's rows into equal micro-batches
(``engine/utils.py``: ``prepare_micro_batches``), and vLLM replicas must tile the GPUs (``replica.py``). Listing
every problem here makes a bad manifest exit 2 at validation, on a login node; the composition tests confirm the
rules against verl's own checks. The settings every PPO-family stage shares are checked by
``stages.lm.verl.rules``; π-Distill adds that the student's clip is the actor's clip in verl's stock loss.
"""

from __future__ import annotations

from typing import Any

from stages.lm.verl.rules import setting_problems


def verl_problems(p: Any, nnodes: int, gpus_per_node: int) -> list[str]:
    """Every reason the verl engine would reject these params on this allocation (empty if none)."""
    if gpus_per_node < 1:
        return ["engine verl needs GPUs: set spec.resources.gpus_per_node >= 1 (or use engine native on a CPU)"]
    gpus = nnodes * gpus_per_node
    problems = []
    rollouts = p.prompts_per_step * p.group_size
    if rollouts % gpus:
        problems.append(f"prompts_per_step x group_size = {rollouts} responses per step must be divisible by the "
                        f"{gpus} GPUs ({nnodes} node(s) x {gpus_per_node}; verl validate_config)")
    mini = (p.mini_batch_size or p.prompts_per_step) * p.group_size
    if mini % gpus:
        problems.append(f"mini_batch_size x group_size = {mini} responses per update must be divisible by the {gpus} "
                        "data-parallel ranks (verl splits each PPO mini-batch evenly)")
    log_micro = p.verl.log_prob_micro_batch_size_per_gpu
    if rollouts % gpus == 0 and (rollouts // gpus) % log_micro:
        problems.append(f"{rollouts // gpus} responses per GPU must be divisible by "
                        f"verl.log_prob_micro_batch_size_per_gpu {log_micro} (verl scores each GPU's rows in equal "
                        "micro-batches, once per view)")
    kinds = 2 if p.variant == "pi-distill" and 0.0 < p.alpha < 1.0 else 1
    if mini % gpus == 0 and (kinds * mini // gpus) % p.verl.micro_batch_size_per_gpu:
        problems.append(f"{kinds * mini // gpus} update rows per GPU ({kinds} row kind(s) x {mini} responses / {gpus} "
                        f"GPUs) must be divisible by verl.micro_batch_size_per_gpu {p.verl.micro_batch_size_per_gpu}")
    if p.variant == "pi-distill" and p.student_clip_ratio != p.clip_ratio:
        problems.append(f"student_clip_ratio {p.student_clip_ratio} differs from clip_ratio {p.clip_ratio}: on verl "
                        "the student term is the actor's own clipped loss, with the actor's clip")
    if p.generation_backend != "hf":
        problems.append("generation_backend is the native engine's; verl always samples with vLLM (leave it hf)")
    return problems + setting_problems(p, gpus_per_node)
