"""Hostile programs are contained: each fails within its limits, the host is untouched, grading goes on.

The programs and the checks of the host after each (sentinel files, processes, a loopback listener, the grader
still serving) are in hostile_programs.py, shared with the runs of this file as an unprivileged user without
namespaces (test_sandbox_layers.py) and inside a stage image (tests/images/test_sandbox_podman.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from stages.envs import GradeOptions, Graders, Sandbox
from stages.envs.sandbox import SandboxError
from tests.envs import hostile_programs as hostile
from tests.envs.conftest import FAST_LIMITS

NAMES = list(hostile.cases(Path("/nowhere"), FAST_LIMITS.wall_s))
SECRETS = {"WANDB_API_KEY": "wandb-secret-123", "HF_TOKEN": "hf-secret-456"}


@pytest.fixture(scope="module")
def graders():
    """GEM's string blocklist is off: the sandbox alone must stop these programs. Secrets are in the grader's
    environment when its sandbox starts."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in SECRETS.items():
            mp.setenv(key, value)
        g = Graders(GradeOptions(code_limits=FAST_LIMITS, gem_blocklist=False))
        g.code.sandbox.start()
        yield g
        g.close()


@pytest.fixture()
def sentinel_dir():
    """A host folder anyone may write to (pytest's own temp folders are private to their owner), so only
    the sandbox, not file permissions, can stop a write or a delete there."""
    parent = Path(tempfile.mkdtemp(prefix="fllm-host-"))
    yield hostile.make_sentinel(parent)
    shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", NAMES)
def test_hostile_program_is_contained(graders, sentinel_dir, name):
    problems = hostile.check(graders, name, hostile.cases(sentinel_dir, FAST_LIMITS.wall_s)[name])
    if problems and problems[0].startswith("skipped"):
        pytest.skip(problems[0])
    assert not problems, f"{name} under {graders.code.sandbox.report.get('isolation')}: {problems}"
    assert (sentinel_dir / "keep.txt").read_text() == "precious"


def test_isolation_is_what_this_node_offers(graders):
    """Every layer the kernel offers is on (the layered runs of this file say which they expect)."""
    report = graders.code.sandbox.report
    assert report["isolation"] == os.environ.get("FLLM_TEST_SANDBOX_EXPECT", report["isolation"])
    assert not report["gaps"] and report["uid"] == os.getuid()
    assert os.getuid() != 0 or report["drop_root"]


@pytest.mark.timeout(60)
def test_own_working_directory_is_writable_and_private(graders):
    ok = graders.grade("code", "```python\nopen('x.txt', 'w').write('hi')\nprint(open('x.txt').read())\n```",
                       {"inputs": [""], "outputs": ["hi"]})
    assert ok.correct, ok
    r = graders.code.sandbox.run("import os, pathlib\nprint(sorted(os.environ))\nprint(pathlib.Path.home())")
    assert r.returncode == 0 and not any(k in r.stdout for k in SECRETS), r


@pytest.mark.timeout(60)
def test_runs_from_worker_threads_in_parallel(sandbox):
    results: list = [None] * 8

    def run(i: int) -> None:
        results[i] = sandbox.run("import time\ntime.sleep(0.3)\nprint(int(input()) * 2)", f"{i}\n")

    start = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.stdout.strip() for r in results] == [str(2 * i) for i in range(8)]
    assert time.monotonic() - start < 8 * 0.3  # they overlapped


@pytest.mark.timeout(60)
def test_fallback_mode_still_bounds_time_and_kills_leftovers(sentinel_dir):
    flag = sentinel_dir / "orphan-alive"
    sb = Sandbox(FAST_LIMITS, isolation="none")
    try:
        sb.start()
    except SandboxError as e:  # root with Python under /root: test_sandbox_layers runs this file unprivileged
        assert os.geteuid() == 0 and "cannot reach the Python installation" in str(e)
        pytest.skip(str(e))
    with sb:
        assert sb.report["mode"] == "fallback"
        assert sb.run("print(int(input()) + 1)", "41\n").stdout.strip() == "42"
        assert sb.run("while True:\n    pass").timed_out
        r = sb.run("import os\nprint(sorted(os.environ))")
        assert "WANDB" not in r.stdout and "HOME" in r.stdout
        sb.run("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(1)\n"
               f"    open({str(flag)!r}, 'w').write('x')\nprint('parent done')")
        time.sleep(1.5)
        assert not flag.exists()  # the orphan came back to the run's subreaper and was killed
        assert not hostile.leftovers(sb)


@pytest.mark.timeout(60)
def test_remount_path_for_older_kernels_is_read_only_too(sentinel_dir):
    with Sandbox(FAST_LIMITS, readonly_method="remount") as sb:
        if sb.report.get("mode") != "namespaces":
            pytest.skip("no namespaces here")
        assert sb.report["readonly"] == "remount"
        r = sb.run(f"open({str(sentinel_dir / 'x')!r}, 'w').write('x')")
        assert r.returncode == 1 and "Read-only file system" in r.stderr_tail
        assert sb.run("open('here', 'w').write('ok')\nprint(open('here').read())").stdout.strip() == "ok"
    assert not (sentinel_dir / "x").exists()
