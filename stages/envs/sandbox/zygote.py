"""The zygote: a warm, clean Python process that forks one isolated child per program run.

Started once per `Sandbox` with a scrubbed environment. On Linux it first moves itself into new
mount, network, IPC and UTS namespaces (plus a user namespace when it is not root) and makes the whole
filesystem read-only (see fs_setup.py). Then, for every request received on its socket, it forks:

  zygote ──fork──> C (own session, new mount + PID namespaces) ──fork──> G (PID 1 of its namespace)

G mounts a fresh /proc and a private tmpfs working directory, applies resource limits, drops root to an
unprivileged uid (when root), enters a per-run user namespace (so the process-count limit is counted
per run), drops all capabilities, wires fds 0/1/2 to the request's stdin and pipes, and runs the
program text as `__main__`. C waits for G and reports its wait status on the status pipe. When G
exits, the kernel kills everything else in its PID namespace, so nothing a program spawned survives it.

Beneath the namespaces, and alone where the OS refuses them (the client then restarts the zygote in fallback
mode), G confines itself with Landlock and seccomp (confine.py) after dropping root and setting its limits; in
fallback mode its private directory is a fresh folder of the grader's, and its process group (in a new session,
which seccomp then forbids it to leave) is what a kill reaches. Standard library, plus the `landlock` package
where the kernel has Landlock (the seccomp filter comes compiled from the client).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_CLEAN_PATH = [p for p in sys.path if p and os.path.abspath(p) != _HERE]
sys.path.insert(0, _HERE)

import confine  # type: ignore[import-not-found]
import fs_setup  # type: ignore[import-not-found]
import program  # type: ignore[import-not-found]
import syscalls as sc  # type: ignore[import-not-found]

_FOREIGN = ["confine", "fs_setup", "program", "syscalls"]
MB = 1 << 20
_LAYER: confine.Confinement | None = None  # the Landlock + seccomp layer, built once in main()


def _enter_namespaces(cfg: dict) -> dict:
    uid, gid = os.getuid(), os.getgid()
    flags = sc.CLONE_NEWNS | sc.CLONE_NEWNET | sc.CLONE_NEWIPC | sc.CLONE_NEWUTS
    if uid != 0:
        sc.unshare(flags | sc.CLONE_NEWUSER)
        sc.write_id_maps(uid, gid)
    else:
        sc.unshare(flags)
    drop_root = _drops_root(cfg)
    report = fs_setup.build_readonly_view(
        cfg["work_mount"], _python_paths(), cfg.get("hide", []), drop_root, cfg.get("readonly_method", "auto")
    )
    report.update(mode="namespaces")
    return report


def _drops_root(cfg: dict) -> bool:
    return os.getuid() == 0 and cfg.get("sandbox_uid") is not None


def _python_paths() -> list[str]:
    return [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *_CLEAN_PATH]


def _confinement(cfg: dict, report: dict) -> confine.Confinement | None:
    """The Landlock + seccomp layer the client planned (None when it turned it off); recorded in `report`."""
    plan = cfg.get("confine")
    if not plan:
        report["layers"] = {"landlock": 0, "seccomp": False}
        report["why"] = {"landlock": "turned off", "seccomp": "turned off"}
        return None
    runs_root = os.path.dirname(cfg["work_mount"])
    layer = confine.Confinement(plan, cfg["isolated"], _python_paths(), runs_root)
    report["layers"], report["why"] = layer.layers(), plan["why"]
    return layer


def _limit(which: int, soft: int, hard: int) -> None:
    """Lower a limit; never try to raise it above what this process already has (that would fail)."""
    _cur_soft, cur_hard = resource.getrlimit(which)
    if cur_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, cur_hard), min(hard, cur_hard)
    resource.setrlimit(which, (soft, hard))


def _set_limits(lim: dict) -> None:
    _limit(resource.RLIMIT_CORE, 0, 0)
    _limit(resource.RLIMIT_CPU, lim["cpu_s"], lim["cpu_s"] + 1)
    _limit(resource.RLIMIT_FSIZE, lim["fsize_mb"] * MB, lim["fsize_mb"] * MB)
    _limit(resource.RLIMIT_NOFILE, lim["nofile"], lim["nofile"])
    _limit(resource.RLIMIT_AS, lim["memory_mb"] * MB, lim["memory_mb"] * MB)


def _own_process_count(uid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                count += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                pass
    return count


def _program_child(cfg: dict, req: dict, fds: list[int]) -> None:
    code_fd, stdin_fd, out_fd, err_fd, _status_fd = fds
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
    lim, isolated = req["limits"], cfg["isolated"]
    if isolated:
        try:
            sc.mount("proc", "/proc", "proc", sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
        except OSError:  # a masked host /proc can forbid a new one: hide /proc instead
            sc.mount("tmpfs", "/proc", "tmpfs", sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV, "size=4k")
        workdir = cfg["work_mount"]
        sc.mount("tmpfs", workdir, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, f"size={lim['tmpfs_mb']}m,mode=0777")
    else:
        workdir = req["workdir"]
        if cfg.get("drop_root"):
            os.chown(workdir, cfg["sandbox_uid"], cfg["sandbox_gid"])
    os.chdir(workdir)
    with os.fdopen(code_fd, "rb") as f:
        code = f.read().decode("utf-8", errors="replace")
    if cfg.get("drop_root"):
        os.setgroups([])
        os.setresgid(cfg["sandbox_gid"], cfg["sandbox_gid"], cfg["sandbox_gid"])
        os.setresuid(cfg["sandbox_uid"], cfg["sandbox_uid"], cfg["sandbox_uid"])
    nproc = lim["nproc"]
    if isolated:
        try:  # a per-run user namespace makes RLIMIT_NPROC count this run's processes only
            sc.unshare(sc.CLONE_NEWUSER)
        except OSError:
            pass
    else:
        nproc += _own_process_count(os.getuid())
    _limit(resource.RLIMIT_NPROC, nproc, nproc)
    _set_limits(lim)
    sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    try:
        sc.drop_all_capabilities()
    except OSError:
        pass
    if _LAYER is not None:
        _LAYER.apply(workdir)
    for src, dst in ((stdin_fd, 0), (out_fd, 1), (err_fd, 2)):
        os.dup2(src, dst)
    os.closerange(3, 1 << 16)
    os.environ.clear()
    os.environ.update(req["env"], HOME=workdir, TMPDIR=workdir)
    program.run_as_main(code, _CLEAN_PATH, _FOREIGN)


def _kill_orphans() -> None:
    """Fallback mode: SIGKILL every process the run left behind (they were re-parented to C)."""
    me = str(os.getpid())
    for _ in range(100):
        children = []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[1] == me:
                children.append(int(entry))
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        if not children:
            return


def _run_child(cfg: dict, sock: socket.socket, req: dict, fds: list[int]) -> None:
    """Body of C: isolate, fork G, report G's pid and wait status. Never returns."""
    status_fd = fds[4]
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        sock.close()
        os.setsid()
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)  # orphans of the run (even after setsid) come back to C
        if cfg["isolated"]:
            sc.unshare(sc.CLONE_NEWNS | sc.CLONE_NEWPID)
        os.write(status_fd, f"c {os.getpid()}\n".encode())
        gpid = os.fork()
        if gpid == 0:
            try:
                _program_child(cfg, req, fds)
            except BaseException as exc:  # noqa: BLE001 - report set-up failures, then die
                _report_error(status_fd, exc)
            os._exit(125)
        os.write(status_fd, f"g {gpid}\n".encode())
        for fd in fds[:4]:
            os.close(fd)
        _, status = os.waitpid(gpid, 0)
        os.write(status_fd, f"x {status}\n".encode())
        if not cfg["isolated"]:
            if _LAYER is not None and _LAYER.bpf:  # seccomp kept every process of the run in this group: end it
                os.killpg(0, signal.SIGKILL)       # whole, this process included (its report is written)
            _kill_orphans()
    except BaseException as exc:  # noqa: BLE001
        _report_error(status_fd, exc)
    os._exit(0)


def _report_error(status_fd: int, exc: BaseException) -> None:
    """Tell the client why a run could not start; never raise (this process must reach its os._exit)."""
    try:
        os.write(status_fd, f"e {type(exc).__name__}: {exc}\n".encode(errors="replace"))
    except BaseException:  # noqa: BLE001, S110 - the program closed the status pipe: its exit status says enough
        pass


def main() -> None:
    global _LAYER
    cfg = json.loads(sys.argv[1])
    sock = socket.socket(fileno=cfg["sock_fd"])
    report: dict = {"mode": "fallback", "reason": "namespaces not requested"}
    if cfg["isolated"]:
        try:
            report = _enter_namespaces(cfg)
        except OSError as exc:
            sock.send(json.dumps({"ok": False, "reason": str(exc)}).encode())
            return
    cfg["drop_root"] = _drops_root(cfg)
    report.update(drop_root=cfg["drop_root"], uid=os.getuid())
    closed = sorted({a for p in _python_paths() for a in fs_setup.closed_ancestors(p)}) if cfg["drop_root"] else []
    if closed and not cfg["isolated"]:  # no mount namespace to bind the installation back for the sandbox uid
        sock.send(json.dumps({"ok": False, "reason": (
            f"as root without namespaces programs run as uid {cfg['sandbox_uid']}, which cannot reach the Python "
            f"installation through {', '.join(closed)}: install Python where every user can read it (the images "
            "do), or run the grader as an unprivileged user")}).encode())
        return
    try:
        _LAYER = _confinement(cfg, report)
    except Exception as exc:  # noqa: BLE001 - a broken binding must not look like a working layer
        sock.send(json.dumps({"ok": False, "reason": f"confinement layer: {type(exc).__name__}: {exc}"}).encode())
        return
    sock.send(json.dumps({"ok": True, **report}).encode())
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children (C) are reaped automatically
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 8)
        except ConnectionResetError:
            return
        if not msg:
            return
        req = json.loads(msg)
        if os.fork() == 0:
            _run_child(cfg, sock, req, fds)
        for fd in fds:
            os.close(fd)


if __name__ == "__main__":
    main()
