"""The grader-side handle on the sandbox: start the zygote, run one program on one input, collect output.

`Sandbox.run` is thread-safe and does no Python-level work while the program runs except reading its
pipes, so a thread pool of N workers keeps N programs running in parallel. The wall-clock limit is
enforced here (not with SIGALRM), so it works from any thread, including verl's reward worker threads.
Code and stdin travel as memfds (no pipe-size deadlocks, no temporary files); stdout and stderr come
back through pipes read with a hard cap, so huge output cannot exhaust the grader's memory.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

from stages.envs.sandbox import confine, isolation
from stages.envs.sandbox.limits import CLEAN_ENV, RunResult, SandboxLimits

log = logging.getLogger(__name__)
ZYGOTE = Path(__file__).with_name("zygote.py")
NOBODY = 65534


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the program): the zygote could not start or died twice in a row."""


class Sandbox:
    """A pool-free program runner; share one instance between threads.

    isolation: "auto" (namespaces when the OS allows, else a logged fallback), "namespaces" (fail if
    unavailable) or "none" (no namespaces: rlimits, process group, clean env, private directory).
    confine: add Landlock and seccomp where the kernel has them (confine.py), beneath namespaces or alone;
    False only to measure what they cost. sandbox_uid: the uid programs run as when the grader is root.
    readonly_method: "auto" (one mount_setattr call) or "remount" (one remount per mount, as on kernels
    before 5.12). allow_unisolated: run programs even where the layers leave a way out (isolation.gaps);
    None reads FLLM_ALLOW_UNISOLATED_CODE, which the stages set from their manifest's opt-in.
    """

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        isolation: str = "auto",
        sandbox_uid: int = NOBODY,
        readonly_method: str = "auto",
        confine: bool = True,
        allow_unisolated: bool | None = None,
    ):
        if isolation not in ("auto", "namespaces", "none"):
            raise ValueError(f"isolation must be 'auto', 'namespaces' or 'none', got {isolation!r}")
        if readonly_method not in ("auto", "remount"):
            raise ValueError(f"readonly_method must be 'auto' or 'remount', got {readonly_method!r}")
        self.readonly_method = readonly_method
        self.confine = confine
        self.allow_unisolated = allow_unisolated
        self.limits = limits or SandboxLimits()
        self.isolation = isolation
        self.sandbox_uid = sandbox_uid
        self.report: dict = {}
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._base: str | None = None

    # -- life cycle -------------------------------------------------------------------------------
    def start(self) -> dict:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start_locked()
        return self.report

    def _start_locked(self) -> None:
        self._stop_locked()
        self._base = tempfile.mkdtemp(prefix="fllm-sandbox-")
        os.chmod(self._base, 0o755)
        # if close() is never called, still remove the folder at exit (the zygote exits with its socket)
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._base, True)
        want_ns = self.isolation != "none" and sys.platform == "linux"
        reply = self._spawn(want_ns)
        if not reply.get("ok") and want_ns:
            reason = reply.get("reason")
            if self.isolation == "namespaces":
                raise SandboxError(f"namespace isolation unavailable: {reason}")
            reply = self._spawn(False)
            log.warning("sandbox: namespaces unavailable (%s); running programs under %s", reason, isolation.name(reply))
        if not reply.get("ok"):
            raise SandboxError(f"sandbox zygote failed to start: {reply}")
        reply.update(isolation=isolation.name(reply), gaps=isolation.gaps(reply))
        allowed = isolation.allowed_by_environment() if self.allow_unisolated is None else self.allow_unisolated
        if reply["gaps"] and not allowed:
            self._stop_zygote()
            raise SandboxError(
                f"the sandbox cannot contain model-written code on this node (isolation {reply['isolation']}; open: "
                f"{'; '.join(reply['gaps'])}); run `python -m stages.envs.sandbox.doctor` for why, or opt in with "
                f"the manifest's allow_unisolated_code ({isolation.ALLOW_ENV}=1)"
            )
        self.report = reply

    def _spawn(self, isolated: bool) -> dict:
        self._stop_zygote()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cfg = {
            "sock_fd": child.fileno(),
            "isolated": isolated,
            "work_mount": os.path.join(self._base or "", "work"),
            "hide": [os.path.expanduser("~")],
            "sandbox_uid": self.sandbox_uid,
            "sandbox_gid": self.sandbox_uid,
            "readonly_method": self.readonly_method,  # "remount": the path for kernels before 5.12
            "confine": confine.plan(isolated) if self.confine else None,
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-I", str(ZYGOTE), json.dumps(cfg)],
            env=dict(CLEAN_ENV),
            pass_fds=[child.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,
        )
        child.close()
        self._sock = parent
        parent.settimeout(60)
        try:
            msg = parent.recv(1 << 16)
        except (TimeoutError, OSError) as exc:
            return {"ok": False, "reason": f"no answer from zygote: {exc}"}
        parent.settimeout(None)
        return json.loads(msg) if msg else {"ok": False, "reason": "zygote exited during set-up"}

    def _stop_zygote(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._proc = None

    def _stop_locked(self) -> None:
        self._stop_zygote()
        if self._base is not None:
            self._finalizer()
            self._base = None

    def close(self) -> None:
        with self._lock:
            self._stop_locked()

    def __enter__(self) -> Sandbox:  # noqa: PYI034
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def isolated(self) -> bool:
        return self.report.get("mode") == "namespaces"

    # -- one run ----------------------------------------------------------------------------------
    def run(
        self,
        code: str,
        stdin: str = "",
        limits: SandboxLimits | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        """Run `code` (Python source) with `stdin`; never raises for anything the program does.

        Setting `cancel` kills the run early (checked every 50 ms); the result then has extra["cancelled"].
        """
        lim = limits or self.limits
        if self._proc is None or self._proc.poll() is not None:
            self.start()
        code_fd = _memfd("code", code.encode("utf-8", errors="surrogatepass"))
        stdin_fd = _memfd("stdin", stdin.encode("utf-8", errors="surrogatepass"))
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        st_r, st_w = os.pipe()
        workdir = None
        if not self.isolated:
            workdir = tempfile.mkdtemp(dir=self._base)
        req = {"limits": lim.for_zygote(), "env": CLEAN_ENV, "workdir": workdir}
        try:
            self._send(json.dumps(req).encode(), [code_fd, stdin_fd, out_w, err_w, st_w])
        finally:
            for fd in (code_fd, stdin_fd, out_w, err_w, st_w):
                os.close(fd)
        try:
            return _collect(out_r, err_r, st_r, lim, fallback=not self.isolated, cancel=cancel)
        finally:
            for fd in (out_r, err_r, st_r):
                os.close(fd)
            if workdir:
                shutil.rmtree(workdir, ignore_errors=True)

    def _send(self, payload: bytes, fds: list[int]) -> None:
        for attempt in (1, 2):
            with self._lock:
                if self._proc is None or self._proc.poll() is not None:
                    self._start_locked()
                try:
                    socket.send_fds(self._sock, [payload], fds)  # type: ignore[arg-type]
                    return
                except OSError as exc:
                    if attempt == 2:
                        raise SandboxError(f"cannot reach the sandbox zygote: {exc}") from exc
                    log.warning("sandbox: zygote unreachable (%s); restarting it", exc)
                    self._start_locked()


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _kill(pids: dict[str, int], fallback: bool) -> None:
    """SIGKILL a run that has not finished yet (its pids cannot have been reused before it is reaped).

    With namespaces, killing G (PID 1 of the run's namespace) makes the kernel kill everything in it.
    In fallback mode the run's process group (led by C) is killed instead.
    """
    targets = [(pids.get("c"), True)] if fallback else [(pids.get("g"), False)]
    for pid, group in targets:
        if pid:
            try:
                (os.killpg if group else os.kill)(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _collect(
    out_r: int, err_r: int, st_r: int, lim: SandboxLimits, fallback: bool, cancel: threading.Event | None
) -> RunResult:
    """Read the run's pipes until it ends or a limit is hit; kill it if it does not end in time."""
    start = time.monotonic()
    deadline = start + lim.wall_s
    out, err, status = bytearray(), bytearray(), bytearray()
    result = RunResult(returncode=None)
    pids: dict[str, int] = {}
    sel = selectors.DefaultSelector()
    for fd in (out_r, err_r, st_r):
        sel.register(fd, selectors.EVENT_READ)
    open_fds, killed, exited = 3, False, False

    def stop(reason: str) -> None:
        nonlocal killed, deadline
        if reason == "cancelled":
            result.extra["cancelled"] = True
        else:
            setattr(result, reason, True)
        killed = True
        if not exited or fallback:
            _kill(pids, fallback)
        deadline = time.monotonic() + 5.0  # grace period to drain the pipes after the kill

    while open_fds:
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            if killed or exited:
                break
            stop("timed_out")
            continue
        if cancel is not None:
            if cancel.is_set() and not killed and not exited:
                stop("cancelled")
                continue
            timeout = min(timeout, 0.05)
        for key, _ in sel.select(timeout):
            chunk = os.read(key.fd, 1 << 16)
            if not chunk:
                sel.unregister(key.fd)
                open_fds -= 1
            elif key.fd == out_r:
                out += chunk
                if len(out) > lim.max_output_bytes:
                    del out[lim.max_output_bytes:]
                    if not killed:
                        stop("output_limited")
            elif key.fd == err_r:
                err += chunk
                del err[: max(0, len(err) - lim.stderr_tail_bytes)]
            else:
                status += chunk
                for line in bytes(status).decode(errors="replace").splitlines():
                    if line[:2] in ("c ", "g ") and line[2:].strip().isdigit():
                        pids[line[0]] = int(line[2:])
                    if line.startswith("x ") and not exited:
                        exited = True  # only descendants can still hold the pipes: give them a moment
                        deadline = min(deadline, time.monotonic() + 0.5)
    sel.close()
    result.wall_s = time.monotonic() - start
    result.stdout = out.decode("utf-8", errors="replace")
    result.stderr_tail = err.decode("utf-8", errors="replace")
    _parse_status(bytes(status).decode(errors="replace"), result)
    return result


def _parse_status(text: str, result: RunResult) -> None:
    for line in text.splitlines():
        if line.startswith("e "):
            result.setup_error = line[2:]
        elif line.startswith("x ") and line[2:].strip().lstrip("-").isdigit():
            st = int(line[2:])
            if os.WIFEXITED(st):
                result.returncode = os.WEXITSTATUS(st)
            elif os.WIFSIGNALED(st):
                result.signal = os.WTERMSIG(st)
    if result.returncode is None and result.signal is None and not result.setup_error:
        result.extra["status"] = text.strip()[-200:]
