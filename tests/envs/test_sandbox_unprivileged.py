"""The sandbox also works for an unprivileged user (as on the clusters), not only as root (as in CI).

As root, the probe runs as uid 65534 in a private mount namespace where /root is replaced by a tmpfs
holding only the Python installation (the same mechanism the sandbox uses), so nothing of the host
changes. Without user namespaces the sandbox must fall back, say so, and still bound time and processes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from stages.envs.sandbox import syscalls as sc
from stages.envs.sandbox.fs_setup import _bind_back, _outermost, closed_ancestors

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534


def _become_nobody() -> None:  # runs in the forked child, before exec
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    required = [os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, *sys.path, str(REPO)) if p and os.path.exists(p)]
    for mask in _outermost([a for r in required for a in closed_ancestors(r)]):
        _bind_back(mask, required)
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


@pytest.mark.timeout(120)
def test_sandbox_contains_programs_for_an_unprivileged_user(tmp_path_factory):
    # pytest's own temp folders are private to root: use one the unprivileged probe can reach
    tmp_path = Path(tempfile.mkdtemp(prefix="fllm-unpriv-"))
    try:
        _probe(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _probe(tmp_path: Path) -> None:
    sentinel = tmp_path / "host"
    sentinel.mkdir()
    sentinel.chmod(0o777)
    (sentinel / "keep.txt").write_text("precious")
    (sentinel / "keep.txt").chmod(0o666)
    tmp_path.chmod(0o755)
    cmd = [sys.executable, "-m", "tests.envs.unprivileged_probe", str(sentinel)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    if os.geteuid() == 0:
        proc = subprocess.run(cmd, cwd=REPO, env=env, preexec_fn=_become_nobody, capture_output=True, text=True,
                              timeout=100, check=False)
    else:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=100, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["uid"] != 0 and out["echo"] and out["after"]
    assert not out["env_secret"] and not out["background_survived"] and out["fork_bomb_timed_out"]
    if out["mode"] == "namespaces":
        assert not out["write_outside"] and not out["delete_outside"] and not out["network"]
        assert (sentinel / "keep.txt").read_text() == "precious"
    else:
        assert "falling back" in proc.stderr, proc.stderr[-2000:]
        pytest.xfail(f"no user namespaces for unprivileged users here: fallback mode only ({proc.stderr[-300:]})")
