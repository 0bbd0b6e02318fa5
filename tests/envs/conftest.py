"""Shared fixtures for the envs tests: fixture datasets, one set of graders, a sandbox with short limits."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from stages.envs import GradeOptions, Graders, Sandbox, SandboxLimits
from tests.fixtures.datasets import build_fixture_datasets

FAST_LIMITS = SandboxLimits(wall_s=3.0, cpu_s=3, memory_mb=512)


@pytest.fixture(scope="session")
def fixture_datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_fixture_datasets(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="session")
def graders():
    g = Graders(GradeOptions(code_limits=FAST_LIMITS))
    yield g
    g.close()


@pytest.fixture(scope="session")
def sandbox():
    with Sandbox(FAST_LIMITS) as sb:
        yield sb


@pytest.fixture(scope="session")
def gem():
    from stages.envs.gem_bridge import import_gem

    return import_gem()


def processes_of(uid: int) -> list[str]:
    out = subprocess.run(["ps", "-o", "pid=,cmd=", "-u", str(uid)], capture_output=True, text=True, check=False).stdout
    return [line for line in out.splitlines() if line.strip()]


def is_root() -> bool:
    return os.geteuid() == 0
