"""A CPU platform for verl, registered from our code so that verl's real trainers run in CI without a GPU.

Why it is needed (verl reference §8): verl 0.9.1 registers only the ``nvidia``, ``huawei`` and ``amd`` platforms and
falls back to ``nvidia``; its process-group setup is hard-wired to ``cpu:gloo,cuda:nccl`` plus ``set_device``; and
its FSDP engine is registered only for the ``cuda``/``npu`` devices. So a CPU run needs three things, none of which
edits verl: a ``PlatformBase`` subclass named ``cpu`` (selected with ``VERL_PLATFORM=cpu``), the engine lookup
pointed at the FSDP engine registered for ``cuda`` (``VERL_ENGINE_DEVICE=cuda``), and a plain ``gloo`` process group
in place of ``verl.utils.distributed.initialize_global_process_group`` (torchrun's SFT trainer) and of
``initialize_global_process_group_ray`` (the PPO actor worker that pi-distill's CPU tests drive). ``install()`` does
all of it; it must run before verl's trainer or worker modules are imported, which is why the launchers call it
first.

This path tests data format, overrides, losses, checkpointing, resume and the merger, not any GPU kernel.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

PLATFORM_NAME = "cpu"


class _CPUDeviceModule:
    """``torch.cpu`` plus the ``torch.cuda``-style calls verl makes on its device module, answered for the CPU:
    memory statistics are zeros, RNG state is the CPU generator's, device management is a no-op."""

    def __getattr__(self, name: str) -> Any:
        import torch

        return getattr(torch.cpu, name)

    @staticmethod
    def _zero(*_: Any, **__: Any) -> int:
        return 0

    @staticmethod
    def _noop(*_: Any, **__: Any) -> None:
        return None

    is_initialized = staticmethod(lambda: True)
    is_available = staticmethod(lambda: True)
    device_count = staticmethod(lambda: 1)
    current_device = staticmethod(lambda: "cpu")
    get_device_name = staticmethod(lambda *a, **k: "cpu")
    set_device = synchronize = empty_cache = reset_peak_memory_stats = _noop
    set_per_process_memory_fraction = _noop
    memory_allocated = memory_reserved = max_memory_allocated = max_memory_reserved = _zero
    mem_get_info = staticmethod(lambda *a, **k: (0, 0))

    @staticmethod
    def manual_seed(seed: int) -> None:
        import torch

        torch.manual_seed(seed)

    manual_seed_all = manual_seed

    @staticmethod
    def get_rng_state(*_: Any, **__: Any) -> Any:
        import torch

        return torch.get_rng_state()

    @staticmethod
    def set_rng_state(state: Any, *_: Any, **__: Any) -> None:
        import torch

        torch.set_rng_state(state)


def _platform_class() -> type:
    import torch
    from verl.plugin.platform import PlatformBase, PlatformRegistry

    @PlatformRegistry.register(platform=PLATFORM_NAME)
    class PlatformCPU(PlatformBase):
        """verl's device interface answered by the CPU: gloo collectives, no memory statistics, CPU RNG."""

        _module = _CPUDeviceModule()

        @property
        def device_name(self) -> str:
            return "cpu"

        @property
        def vendor_name(self) -> str:
            return "cpu"

        @property
        def device_module(self) -> ModuleType:
            return self._module  # type: ignore[return-value]

        def is_available(self) -> bool:
            return True

        def current_device(self) -> str:  # type: ignore[override]
            return "cpu"  # verl passes this to ``.to(device=...)``: an index would mean cuda:0

        def device_count(self) -> int:
            return 1

        def set_device(self, device_index: int) -> None:
            return None

        def synchronize(self, device_index: int | None = None) -> None:
            return None

        def manual_seed(self, seed: int) -> None:
            torch.manual_seed(seed)

        def manual_seed_all(self, seed: int) -> None:
            torch.manual_seed(seed)

        def set_allocator_settings(self, settings: str) -> None:
            return None

        def empty_cache(self) -> None:
            return None

        def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
            return None, None

        def communication_backend_name(self) -> str:
            return "gloo"

        def visible_devices_envvar(self) -> str:
            return "CUDA_VISIBLE_DEVICES"

        @contextmanager
        def nvtx_range(self, msg: str) -> Iterator[None]:
            yield

        def profiler_start(self) -> None:
            return None

        def profiler_stop(self) -> None:
            return None

        def ray_resource_name(self) -> str:
            return "CPU"

        def ray_noset_envvars(self) -> list[str]:
            return []

        def is_ipc_supported(self) -> bool:
            return False

        def cudart(self) -> Any:
            return None

    return PlatformCPU


def _gloo_process_group(timeout_second: int = 36000) -> tuple[int, int, int]:
    """What ``initialize_global_process_group`` does, with a plain gloo group and no ``set_device``."""
    from datetime import timedelta

    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo", timeout=timedelta(seconds=timeout_second))
    return int(os.environ["LOCAL_RANK"]), int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])


def _gloo_process_group_ray(timeout_second: int | None = None, backend: str | None = None) -> None:
    """What ``initialize_global_process_group_ray`` does (rank and world size from the environment), with gloo."""
    from datetime import timedelta

    import torch.distributed as dist

    if not dist.is_initialized():
        timeout = timedelta(seconds=timeout_second) if timeout_second is not None else None
        dist.init_process_group(backend="gloo", rank=int(os.environ.get("RANK", 0)),
                                world_size=int(os.environ.get("WORLD_SIZE", 1)), timeout=timeout)


def install() -> None:
    """Register and select the CPU platform and the gloo process groups. Call before importing verl's trainer."""
    os.environ["VERL_PLATFORM"] = PLATFORM_NAME
    os.environ["VERL_ENGINE_DEVICE"] = "cuda"
    _platform_class()
    import verl.utils.distributed as verl_distributed

    verl_distributed.initialize_global_process_group = _gloo_process_group
    verl_distributed.initialize_global_process_group_ray = _gloo_process_group_ray
