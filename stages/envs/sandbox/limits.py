"""Resource limits and results of one sandboxed program run (plain data, no side effects)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

CLEAN_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONIOENCODING": "utf-8",
    "PYTHONHASHSEED": "0",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits. Defaults follow GEM's code env (10 s per test) and common judge settings."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 2048
    nproc: int = 32
    fsize_mb: int = 16
    nofile: int = 128
    tmpfs_mb: int = 64
    max_output_bytes: int = 16 << 20
    stderr_tail_bytes: int = 4096

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value <= 0:
                raise ValueError(f"SandboxLimits.{name} must be positive, got {value!r}")

    def for_zygote(self) -> dict:
        keys = ("cpu_s", "memory_mb", "nproc", "fsize_mb", "nofile", "tmpfs_mb")
        return {k: math.ceil(getattr(self, k)) for k in keys}  # setrlimit takes whole numbers


@dataclass
class RunResult:
    """What one run of a program on one input produced."""

    returncode: int | None  # exit code; None when killed by a signal
    signal: int | None = None
    timed_out: bool = False
    output_limited: bool = False
    stdout: str = ""
    stderr_tail: str = ""
    wall_s: float = 0.0
    setup_error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not (self.timed_out or self.output_limited or self.setup_error)
