"""Fixtures of the image tests: a scratch copy of the image definitions for the checks' negative cases, the
``index`` marker (tests that ask the package index), and the CPU images built once per session with podman
(``images_lock``, shared by test_podman.py and test_sandbox_podman.py).

The ``index`` marker is registered here so ``-m "not index"`` deselects those tests offline; when the index is
unreachable they skip with the reason, or fail under ``FLLM_REQUIRE_SYSTEM=1`` like the other system tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.images.podman_helpers import build

REPO = Path(__file__).resolve().parents[2]


def pytest_configure(config):
    config.addinivalue_line("markers", "index: asks the Python package index over the network (lock resolution)")


@pytest.fixture
def scratch_repo(tmp_path: Path) -> Path:
    """images/ and pyproject.toml copied to a temporary root, for breaking them on purpose."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "images", root / "images", ignore=shutil.ignore_patterns("__pycache__", "images.lock"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.fixture(scope="session")
def index_reachable() -> None:
    from images.resolve import isolated_pip

    cmd = [*isolated_pip(sys.executable), "download", "--no-deps", "--no-cache-dir", "--dest", os.devnull, "pip==99.0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    reachable = "from versions:" in proc.stderr and "(from versions: none)" not in proc.stderr
    if not reachable:
        reason = "the package index is not reachable (lock resolution needs it)"
        if os.environ.get("FLLM_REQUIRE_SYSTEM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def images_lock(tmp_path_factory) -> dict:
    """Build the analyzer and collector CPU images (and the Debian base on first use); the images lock."""
    debian = subprocess.run(
        ["podman", "image", "exists", "localhost/forgetting-llms/debian:bookworm-minbase"], check=False
    )
    if debian.returncode != 0 and os.geteuid() != 0 and os.environ.get("FLLM_REQUIRE_SYSTEM") != "1":
        pytest.skip("the local Debian base is not built and debootstrap needs root (sudo images/make-base.sh)")
    tmp = tmp_path_factory.mktemp("images")
    proc = build(tmp / "images.lock", tmp / "build.log")
    log = (tmp / "build.log").read_text()
    assert proc.returncode == 0, f"images/build.sh failed:\n{log[-6000:]}"
    return json.loads((tmp / "images.lock").read_text())
