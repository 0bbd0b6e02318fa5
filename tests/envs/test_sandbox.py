"""Hostile programs are contained: each fails within its limits, the host is untouched, grading goes on.

Every hostile program prints `ok` only if its attack worked, and the test expects `ok`; so a `pass`
verdict would mean a breach. After each one we check the host (sentinel files, processes, a socket)
and that the same grader still passes a normal program.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from stages.envs import GradeOptions, Graders, Sandbox
from tests.envs.conftest import FAST_LIMITS

ECHO = ("```python\nprint(input())\n```", {"inputs": ["still serving\n"], "outputs": ["still serving"]})


def _leftovers(sandbox: Sandbox) -> list[int]:
    """Live processes of this sandbox's runs: their working directory is inside its private base folder."""
    base, found = sandbox._base, []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if base and cwd.startswith(base):
                found.append(int(entry))
    return found


@pytest.fixture(scope="module")
def graders():
    """GEM's string blocklist is off: the sandbox alone must stop these programs."""
    g = Graders(GradeOptions(code_limits=FAST_LIMITS, gem_blocklist=False))
    yield g
    g.close()


def _hostile(graders, program: str, stdin: str = "") -> object:
    verdict = graders.grade("code", f"```python\n{program}\n```", {"inputs": [stdin], "outputs": ["ok"]})
    assert not verdict.correct, verdict
    assert verdict.details.get("reason") != "blocked_by_gem_blocklist"
    time.sleep(0.2)
    assert not _leftovers(graders.code.sandbox)
    assert graders.grade("code", *ECHO).correct  # the grader keeps serving the next items
    return verdict


@pytest.fixture()
def sentinel_dir():
    """A host folder anyone may write to (pytest's own temp folders are private to their owner), so only
    the sandbox, not file permissions, can stop a write or a delete there."""
    parent = Path(tempfile.mkdtemp(prefix="fllm-host-"))
    parent.chmod(0o755)
    d = parent / "host"
    d.mkdir()
    d.chmod(0o777)
    (d / "keep.txt").write_text("precious")
    (d / "keep.txt").chmod(0o666)
    yield d
    shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.timeout(60)
def test_fork_bomb_times_out_and_leaves_nothing(graders):
    v = _hostile(graders, "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass")
    assert v.verdict == "timeout"


@pytest.mark.timeout(60)
def test_memory_hog_hits_the_memory_limit(graders):
    v = _hostile(graders, "a = []\nwhile True:\n    a.append(bytearray(10**7))")
    assert v.verdict in ("error", "timeout")
    assert v.verdict == "timeout" or "MemoryError" in v.details["stderr_tail"]


@pytest.mark.timeout(60)
def test_infinite_loop_and_sleep_time_out(graders):
    assert _hostile(graders, "while True:\n    pass").verdict == "timeout"
    v = _hostile(graders, "import time\ntime.sleep(60)")
    assert v.verdict == "timeout" and v.details["wall_s"] < FAST_LIMITS.wall_s + 2


@pytest.mark.timeout(60)
def test_writes_and_deletes_outside_the_temp_dir_have_no_effect(graders, sentinel_dir):
    target, victim = sentinel_dir / "pwned.txt", sentinel_dir / "keep.txt"
    for prog in (f"open({str(target)!r}, 'w').write('x')\nprint('ok')",
                 f"import os\nos.remove({str(victim)!r})\nprint('ok')",
                 f"open({str(victim)!r}, 'w').write('overwritten')\nprint('ok')",
                 "open('/tmp/fllm-pwned', 'w').write('x')\nprint('ok')",
                 "import shutil\nshutil.rmtree('/etc', ignore_errors=False)\nprint('ok')"):
        _hostile(graders, prog)
    assert not target.exists() and victim.read_text() == "precious"
    assert not os.path.exists("/tmp/fllm-pwned") and os.path.exists("/etc/passwd")
    # writing inside its own working directory is allowed and invisible from the host
    ok = graders.grade("code", "```python\nopen('x.txt', 'w').write('hi')\nprint(open('x.txt').read())\n```",
                       {"inputs": [""], "outputs": ["hi"]})
    assert ok.correct


@pytest.mark.timeout(60)
def test_environment_secrets_are_not_visible(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "wandb-secret-123")
    monkeypatch.setenv("HF_TOKEN", "hf-secret-456")
    prog = ("import os, glob\nfound = [k for k in ('WANDB_API_KEY', 'HF_TOKEN') if k in os.environ]\n"
            "for p in glob.glob('/proc/*/environ'):\n    try:\n        data = open(p, 'rb').read()\n"
            "    except OSError:\n        continue\n    if b'secret-' in data:\n        found.append(p)\n"
            "print('ok' if found else 'clean')")
    with Sandbox(FAST_LIMITS) as sb:  # started after the secrets were set
        r = sb.run(prog)
        assert r.returncode == 0 and r.stdout.strip() == "clean", r
        r = sb.run("import os, pathlib\nprint(sorted(os.environ))\nprint(pathlib.Path.home())")
        assert "WANDB" not in r.stdout and "HF_TOKEN" not in r.stdout


@pytest.mark.timeout(60)
def test_network_connections_fail(graders, sandbox):
    if sandbox.start().get("mode") != "namespaces":
        pytest.skip("no network namespace here (fallback mode)")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.1)
    port = server.getsockname()[1]
    accepted: list = []

    def accept() -> None:
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    _hostile(graders, "import socket\ns = socket.create_connection(('127.0.0.1', int(input())), timeout=1)\nprint('ok')",
             f"{port}\n")
    _hostile(graders, "import socket\nsocket.create_connection(('8.8.8.8', 53), timeout=1)\nprint('ok')")
    t.join()
    server.close()
    assert not accepted


@pytest.mark.timeout(60)
def test_background_processes_are_killed(graders, sentinel_dir):
    flag = sentinel_dir / "bg-alive"
    prog = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            f"        time.sleep(1.5)\n        open({str(flag)!r}, 'w').write('alive')\n    os._exit(0)\nprint('bye')")
    _hostile(graders, prog)
    time.sleep(2.0)
    assert not flag.exists()


@pytest.mark.timeout(60)
def test_huge_output_is_cut_and_killed(graders):
    v = _hostile(graders, "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)")
    assert v.verdict == "error" and v.details["reason"] == "output_limit"


@pytest.mark.timeout(60)
def test_cannot_kill_the_grader(graders):
    prog = ("import os, signal\nkilled = 0\nfor pid in range(1, 70000):\n    if pid != os.getpid():\n"
            "        try:\n            os.kill(pid, signal.SIGKILL)\n            killed += 1\n        except OSError:\n"
            "            pass\nprint(killed)")
    v = graders.grade("code", f"```python\n{prog}\n```", {"inputs": [""], "outputs": ["0"]})
    assert v.correct, v  # it could not signal a single other process
    assert graders.code.sandbox._proc.poll() is None  # the zygote survived, and so did this test
    assert graders.grade("code", *ECHO).correct


@pytest.mark.timeout(60)
def test_home_directory_files_are_hidden(graders):
    if graders.code.sandbox.start().get("mode") != "namespaces":
        pytest.skip("home is not hidden in fallback mode")
    secret = Path.home() / f".fllm-test-secret-{uuid.uuid4().hex}"
    try:
        secret.write_text("token")
    except OSError:
        pytest.skip("home directory not writable")
    try:
        _hostile(graders, f"print('ok' if open({str(secret)!r}).read() == 'token' else 'no')")
    finally:
        secret.unlink()


@pytest.mark.timeout(60)
def test_disk_filling_is_bounded(graders):
    v = _hostile(graders, "with open('big', 'wb') as f:\n    for _ in range(1000):\n        f.write(b'0' * (1 << 20))\n"
                          "print('ok')")
    assert v.verdict == "error"


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
    with Sandbox(FAST_LIMITS, isolation="none") as sb:
        assert sb.report["mode"] == "fallback"
        assert sb.run("print(int(input()) + 1)", "41\n").stdout.strip() == "42"
        assert sb.run("while True:\n    pass").timed_out
        r = sb.run("import os\nprint(sorted(os.environ))")
        assert "WANDB" not in r.stdout and "HOME" in r.stdout
        sb.run("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(1)\n"
               f"    open({str(flag)!r}, 'w').write('x')\nprint('parent done')")
        time.sleep(1.5)
        assert not flag.exists()  # the orphan came back to the run's subreaper and was killed
        assert not _leftovers(sb)


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
