"""The hostile programs of the sandbox tests, one list for the three ways they run: in the test process with
namespaces (test_sandbox.py), as an unprivileged user where namespaces are refused (test_sandbox_layers.py), and
inside a stage image run as Apptainer runs a SIF (tests/images/test_sandbox_podman.py, through the probe).

Every program prints ``ok`` only if its attack worked and is graded against the expected output ``ok``, so a
``pass`` verdict is a breach. ``check`` grades one program and then looks at the host: sentinel files, processes
left behind, the grader still serving; it returns what went wrong (empty: contained). Standard library and
``stages`` only: the probe imports it inside an image that has no pytest.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ECHO = ("```python\nprint(input())\n```", {"inputs": ["still serving\n"], "outputs": ["still serving"]})
CANARY_ENV = "FLLM_TEST_CANARY"  # set in the grader's initial environment by the probe's callers
CANARY_PREFIX = "fllm-canary-"
CONTAINED = ("fail", "error", "timeout")


@dataclass
class Case:
    program: str
    verdicts: tuple[str, ...] = CONTAINED  # what containment looks like
    stdin: str = ""
    settle_s: float = 0.2  # wait before looking for leftovers (longer for delayed attacks)
    verdict_check: Callable[[object], str | None] | None = None
    host_check: Callable[[], str | None] | None = None  # after the run: what the attack changed on the host
    needs: str | None = None  # a host resource the case needs ("home"): skipped without it
    cleanup: list[Path] = field(default_factory=list)


def _memory(v) -> str | None:
    if v.verdict == "error" and "MemoryError" not in v.details.get("stderr_tail", ""):
        return f"error without MemoryError: {v.details.get('stderr_tail', '')[-300:]}"
    return None


def _wall(limit: float) -> Callable[[object], str | None]:
    return lambda v: None if v.details.get("wall_s", 0) < limit + 2 else f"ran {v.details['wall_s']} s"


def _reason(expected: str) -> Callable[[object], str | None]:
    return lambda v: None if v.details.get("reason") == expected else f"reason {v.details.get('reason')}"


def _absent(*paths: Path) -> Callable[[], str | None]:
    return lambda: next((f"{p} exists" for p in paths if p.exists()), None)


def cases(sentinel: Path, wall_s: float) -> dict[str, Case]:
    """The attacks, aimed at `sentinel` (a folder anyone may write to, holding keep.txt = "precious")."""
    keep, pwned, flag, flag2 = (sentinel / n for n in ("keep.txt", "pwned.txt", "bg-alive", "escaped-kill"))
    tmp_target = Path(f"/tmp/fllm-pwned-{uuid.uuid4().hex}")
    intact = lambda: None if keep.read_text() == "precious" else f"{keep} now holds {keep.read_text()!r}"  # noqa: E731
    home_secret = Path.home() / f".fllm-test-secret-{uuid.uuid4().hex}"
    return {
        "fork_bomb": Case("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
                          verdicts=("timeout",)),
        "memory_hog": Case("a = []\nwhile True:\n    a.append(bytearray(10**7))", verdict_check=_memory),
        "infinite_loop": Case("while True:\n    pass", verdicts=("timeout",)),
        "sleep": Case("import time\ntime.sleep(60)", verdicts=("timeout",), verdict_check=_wall(wall_s)),
        "write_outside": Case(f"open({str(pwned)!r}, 'w').write('x')\nprint('ok')", host_check=_absent(pwned)),
        "delete_outside": Case(f"import os\nos.remove({str(keep)!r})\nprint('ok')", host_check=intact),
        "overwrite_outside": Case(f"open({str(keep)!r}, 'w').write('overwritten')\nprint('ok')", host_check=intact),
        "write_tmp": Case(f"open({str(tmp_target)!r}, 'w').write('x')\nprint('ok')", host_check=_absent(tmp_target),
                          cleanup=[tmp_target]),
        "delete_system": Case("import shutil\nshutil.rmtree('/etc', ignore_errors=False)\nprint('ok')",
                              host_check=lambda: None if os.path.exists("/etc/passwd") else "/etc/passwd is gone"),
        "environment_secrets": Case(
            "import os, glob\nfound = [k for k in os.environ if 'secret' in os.environ[k] or "
            f"{CANARY_PREFIX!r} in os.environ[k]]\n"
            "for p in glob.glob('/proc/*/environ') + glob.glob('/proc/*/cmdline'):\n    try:\n"
            "        data = open(p, 'rb').read()\n    except OSError:\n        continue\n"
            f"    if b'secret-' in data or {CANARY_PREFIX.encode()!r} in data:\n        found.append(p)\n"
            "print('ok' if found else 'clean')"),
        "network": Case("import socket\ns = socket.create_connection(('127.0.0.1', int(input())), timeout=1)\n"
                        "print('ok')"),
        "background_after_exit": Case(
            f"import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(1.5)\n"
            f"        open({str(flag)!r}, 'w').write('alive')\n    os._exit(0)\nprint('bye')",
            settle_s=2.0, host_check=_absent(flag)),
        "background_after_timeout": Case(
            f"import os, time\nif os.fork() == 0:\n    try:\n        os.setsid()\n    except OSError:\n        pass\n"
            f"    time.sleep({wall_s + 1.0})\n    open({str(flag2)!r}, 'w').write('alive')\n    os._exit(0)\n"
            "while True:\n    pass", verdicts=("timeout",), settle_s=2.5, host_check=_absent(flag2)),
        "huge_output": Case("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", verdicts=("error",),
                            verdict_check=_reason("output_limit")),
        "kill_other_processes": Case(
            "import os, signal\nkilled = 0\nfor pid in range(1, 70000):\n    if pid != os.getpid():\n"
            "        try:\n            os.kill(pid, signal.SIGKILL)\n            killed += 1\n        except OSError:\n"
            "            pass\nprint('ok' if killed else 'none')"),
        "home_directory": Case(f"print('ok' if open({str(home_secret)!r}).read() == 'token' else 'no')",
                               needs="home", cleanup=[home_secret]),
        "disk_filling": Case("with open('big', 'wb') as f:\n    for _ in range(1000):\n"
                             "        f.write(b'0' * (1 << 20))\nprint('ok')", verdicts=("error",)),
    }


def leftovers(sandbox) -> list[int]:
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


class _Listener:
    """A loopback server the network attack aims at; records whether anything connected."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.accepted: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                self.accepted.append(self.server.accept())
            except OSError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.server.close()


def check(graders, name: str, case: Case) -> list[str]:
    """Grade one hostile program, then look at the host; what went wrong (empty: contained)."""
    if case.needs == "home":
        try:
            case.cleanup[0].write_text("token")
        except OSError:
            return ["skipped: the home directory is not writable"]
    listener = _Listener() if name == "network" else None
    stdin = f"{listener.port}\n" if listener else case.stdin
    try:
        v = graders.grade("code", f"```python\n{case.program}\n```", {"inputs": [stdin], "outputs": ["ok"]})
        time.sleep(case.settle_s)
        problems = [p for p in (case.verdict_check(v) if case.verdict_check else None,
                                case.host_check() if case.host_check else None) if p]
        if listener and listener.accepted:
            problems.append("a connection reached the host's loopback listener")
    finally:
        if listener:
            listener.close()
        for path in case.cleanup:
            path.unlink(missing_ok=True)
    if v.correct:
        problems.append("the attack worked: verdict pass")
    if v.details.get("reason") == "blocked_by_gem_blocklist":
        problems.append("stopped by GEM's blocklist, not by the sandbox")
    if v.verdict not in case.verdicts:
        problems.append(f"verdict {v.verdict} ({v.details.get('reason')}), expected one of {case.verdicts}")
    if leftovers(graders.code.sandbox):
        problems.append(f"processes left behind: {leftovers(graders.code.sandbox)}")
    if graders.code.sandbox._proc is None or graders.code.sandbox._proc.poll() is not None:
        problems.append("the sandbox zygote died")
    if not graders.grade("code", *ECHO).correct:
        problems.append("the grader stopped serving")
    return problems


QUICK = ("write_outside", "delete_outside", "overwrite_outside", "write_tmp", "delete_system", "environment_secrets",
         "network", "kill_other_processes", "home_directory", "huge_output", "disk_filling")  # no waits


def check_all(graders, sentinel: Path, wall_s: float, names: list[str] | None = None) -> dict[str, list[str]]:
    """`check` for every attack (or those `names`); name -> what went wrong."""
    return {name: check(graders, name, case) for name, case in cases(sentinel, wall_s).items()
            if names is None or name in names}


def make_sentinel(parent: Path) -> Path:
    """`parent`/host: a folder anyone may write to, so only the sandbox, not file permissions, stops an attack."""
    parent.chmod(0o755)
    d = parent / "host"
    d.mkdir()
    d.chmod(0o777)
    (d / "keep.txt").write_text("precious")
    (d / "keep.txt").chmod(0o666)
    return d
