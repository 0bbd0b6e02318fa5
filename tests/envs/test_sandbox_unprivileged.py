"""The sandbox also works for an unprivileged user (as on the clusters), not only as root (as in CI).

As root, the probe runs as uid 65534 in a private mount namespace where /root is replaced by a tmpfs
holding only the Python installation (the same mechanism the sandbox uses), so nothing of the host
changes. Every hostile program of hostile_programs.py must be contained; test_sandbox_layers.py does the same
where user namespaces are refused.
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
from tests.envs.hostile_programs import QUICK, make_sentinel

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534


def become_nobody() -> None:
    """As root, in a forked child before exec: become uid 65534 with the Python installation and the repository
    reachable (a private mount namespace masks closed folders such as /root and binds them back)."""
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
    sentinel = make_sentinel(tmp_path)
    home = tmp_path / "home"
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    # the attacks that wait for a time limit run unprivileged in test_sandbox_layers.py; these take no waiting
    cmd = [sys.executable, "-m", "tests.envs.unprivileged_probe", str(sentinel), "auto", ",".join(QUICK)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "PYTHONPATH": str(REPO),
           "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, preexec_fn=become_nobody if os.geteuid() == 0 else None,
                          capture_output=True, text=True, timeout=100, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["uid"] != 0 and not out["report"]["gaps"], out["report"]
    assert not any(out["results"].values()), {k: v for k, v in out["results"].items() if v}
    assert (sentinel / "keep.txt").read_text() == "precious"
