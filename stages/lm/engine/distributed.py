"""Process groups and FSDP2 sharding, so the same trainer runs as one process or under ``torchrun``.

Why: on the clusters a job has 2-4 GPUs; under ``torchrun`` each rank holds a shard of parameters, gradients and
optimizer state (FSDP2 ``fully_shard``, one unit per decoder layer plus the root). As a single process (CPU,
tests, one GPU) nothing is sharded and no process group exists. CPU runs under torchrun use gloo, which is how
the multi-process path is tested without GPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto", single_process_group: bool = False) -> DistInfo:
    """Join the torchrun process group when launched by torchrun; pick this rank's device.

    ``single_process_group`` creates a one-rank group when not under torchrun, so FSDP2 can run on one device.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        dev = torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    else:
        dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend=backend)
    elif single_process_group and not dist.is_initialized():
        dist.init_process_group(backend=backend, store=dist.HashStore(), rank=0, world_size=1)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def all_reduce(value: float, info: DistInfo, op: str = "sum") -> float:
    """Sum (or max) a Python number over ranks; a no-op in one process."""
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=info.device if info.device.type == "cuda" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return float(t.item())


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard_model(module: Any, info: DistInfo, precision: str) -> Any:
    """FSDP2-shard ``module`` (a PackedCausalLM): each decoder layer, then the root."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(info.device.type, (info.world_size,))
    if precision == "bf16-mixed":
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    else:
        mp = MixedPrecisionPolicy()
    reshard = info.world_size > 1  # on one device resharding saves no memory, only costs copies
    for layer in module.decoder_layers:
        fully_shard(layer, mesh=mesh, mp_policy=mp, reshard_after_forward=reshard)
    fully_shard(module, mesh=mesh, mp_policy=mp, reshard_after_forward=reshard)
    return module


def destroy(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
