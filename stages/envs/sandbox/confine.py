"""The second isolation layer: Landlock and seccomp, which need no privileges and no namespaces.

Applied by every program's own process just before it runs, whether or not the zygote got namespaces: alone it
keeps a program inside its working directory and away from the network and the grader where namespaces are refused
(Apptainer on some clusters), and beneath namespaces it is a second wall. What it does:

- Landlock, filesystem (the ``landlock`` package): read and execute under the system folders and the Python
  installation only (``/proc``, ``/sys``, ``/home``, ``/tmp``, scratch and the rest are unreachable); read and write
  in the run's private working directory only; the few harmless ``/dev`` nodes.
- Landlock, network and scope (ABI 4 and 6, which the package does not know yet: two raw calls below): no TCP bind
  or connect; no signal to, and no abstract UNIX socket of, a process outside the run.
- seccomp (``pyseccomp``, a ``ctypes`` binding of libseccomp, which knows every architecture's numbering and
  ABIs): no sockets (a UNIX socketpair only), no ptrace or access to other processes' memory or file descriptors,
  no new namespaces, mounts, keyrings, BPF, perf, io_uring or module loading. Without namespaces also no new
  session or process group (the run's group is killed whole) and, without Landlock's signal scope, no signal to
  another process.

Cost is kept off each run: the grader probes the kernel and compiles the seccomp filter to BPF once (``plan``), the
zygote builds the Landlock rulesets once (``Confinement``), and a run's process only restricts itself with them
(one small ruleset for its own folder without namespaces) and loads the ready filter. A layer the kernel or the
installation lacks is reported absent with why, never faked; one reported present that then fails to apply fails
the run (nothing runs unconfined). The zygote imports this file as a top-level module: standard library at the top,
``landlock`` only when the kernel has Landlock, ``pyseccomp`` only in the grader.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import tempfile

SYSTEM_DIRS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc")
DEV_RW = ("/dev/null", "/dev/zero", "/dev/full")
DEV_RO = ("/dev/random", "/dev/urandom")

# Landlock's network and scope rights (linux/landlock.h); the package handles the filesystem ones
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_SYS_CREATE_RULESET, _SYS_RESTRICT_SELF = 444, 446  # one number on every architecture (generic syscall table)
_PR_SET_NO_NEW_PRIVS, _PR_GET_SECCOMP, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 21, 22, 2

# Denied by seccomp everywhere (EPERM); names this architecture lacks are skipped.
DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "fanotify_init",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "open_by_handle_at",
    "name_to_handle_at", "swapon", "swapoff", "reboot", "acct", "settimeofday", "clock_settime", "clock_adjtime",
    "adjtimex", "quotactl", "syslog", "iopl", "ioperm", "lookup_dcookie", "vhangup", "uselib", "nfsservctl",
)
SIGNALS = ("tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal")
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME
CLONE_NAMESPACES = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x80)
TIOCSTI, TIOCLINUX = 0x5412, 0x541C
AF_UNIX = 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _SockFprog(ctypes.Structure):  # struct sock_fprog: a BPF program for PR_SET_SECCOMP
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


@functools.cache
def _libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None, use_errno=True)
    lib.syscall.restype = ctypes.c_long
    return lib


def _fail(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


# --- in the grader: what the kernel offers, and the compiled seccomp filter ------------------------------------
@functools.cache
def probe() -> dict:
    """What this kernel and installation offer: {"landlock": ABI (0: none), "seccomp": bool, "why": {...}}."""
    out: dict = {"landlock": 0, "seccomp": False, "why": {}}
    try:
        import landlock

        ctypes.set_errno(0)  # the package reads errno, not the return value: clear what an earlier call left
        out["landlock"] = int(landlock.landlock_abi_version())
    except ImportError:
        out["why"]["landlock"] = "the `landlock` package is not installed"
    except OSError as exc:
        out["why"]["landlock"] = f"the kernel refuses Landlock ({os.strerror(exc.errno or 0)})"
    try:
        import pyseccomp  # noqa: F401 - raises when libseccomp is missing

        if _libc().prctl(_PR_GET_SECCOMP, 0, 0, 0, 0) < 0:  # EINVAL: a kernel without seccomp
            raise _fail("no seccomp in this kernel")
        out["seccomp"] = True
    except ImportError:
        out["why"]["seccomp"] = "the `pyseccomp` package is not installed"
    except (OSError, RuntimeError) as exc:  # pyseccomp raises RuntimeError without libseccomp
        out["why"]["seccomp"] = str(exc)
    return out


def plan(namespaces: bool) -> dict:
    """For the zygote's configuration: the Landlock ABI, the seccomp filter as BPF (hex), and why a layer is off."""
    found = probe()
    bpf = _seccomp_bpf(namespaces, found["landlock"] >= 6, 0 < found["landlock"] < 3) if found["seccomp"] else b""
    return {"landlock": found["landlock"], "seccomp_bpf": bpf.hex(), "why": found["why"]}


@functools.cache
def _seccomp_bpf(namespaces: bool, signal_scope: bool, truncate: bool) -> bytes:
    """The seccomp deny list, compiled by libseccomp (allow by default, so Python and its library keep working)."""
    import pyseccomp as sc

    deny = sc.ERRNO(errno.EPERM)
    f = sc.SyscallFilter(defaction=sc.ALLOW)

    def add(action: int, name: str, *args) -> None:
        try:
            f.add_rule(action, name, *args)
        except (OSError, ValueError):  # not a system call of this architecture
            pass

    for name in DENIED + (("truncate",) if truncate else ()):  # Landlock before ABI 3 cannot stop truncate(path)
        add(deny, name)
    add(sc.ERRNO(errno.EACCES), "socket")
    add(sc.ERRNO(errno.EACCES), "socketpair", sc.Arg(0, sc.NE, AF_UNIX))
    for flag in CLONE_NAMESPACES:  # one rule per flag: any of them denies the call
        add(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    add(sc.ERRNO(errno.ENOSYS), "clone3")  # its flags are out of a filter's reach: the C library falls back to clone
    for request in (TIOCSTI, TIOCLINUX):
        add(deny, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
    if not namespaces:  # nothing else keeps the run in one process group, or away from the grader's processes
        add(deny, "setsid")
        add(deny, "setpgid")
        if not signal_scope:
            add(deny, "kill", sc.Arg(0, sc.NE, 0))
            for name in SIGNALS:
                add(deny, name)
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)
        out.seek(0)
        return out.read()


# --- in the zygote and each run's process -----------------------------------------------------------------------
class Confinement:
    """Built once in the zygote from the grader's `plan`; `apply` runs in each program's process."""

    def __init__(self, plan: dict, namespaces: bool, read_paths: list[str], runs_root: str):
        self.abi, self.namespaces = int(plan["landlock"]), namespaces
        self.bpf = bytes.fromhex(plan["seccomp_bpf"])
        self.static = self._static_ruleset(read_paths, runs_root) if self.abi else None
        self.scope_fd = self._scope_ruleset() if self.abi >= 4 else None

    def layers(self) -> dict:
        return {"landlock": self.abi, "seccomp": bool(self.bpf)}

    def _static_ruleset(self, read_paths: list[str], runs_root: str):
        """Every filesystem right denied except: read and execute on the system and Python folders, the /dev nodes,
        and everything under the folder holding the runs' working directories (narrowed per run by `apply`)."""
        import landlock
        from landlock import FSAccess

        read = FSAccess.READ_FILE | FSAccess.READ_DIR | FSAccess.EXECUTE
        ctypes.set_errno(0)
        rules = landlock.Ruleset()  # handles every filesystem right this ABI knows
        paths = sorted({os.path.realpath(p) for p in (*SYSTEM_DIRS, *read_paths) if p})
        for group, rights in ((paths, read), (DEV_RO, FSAccess.READ_FILE),
                              (DEV_RW, FSAccess.READ_FILE | FSAccess.WRITE_FILE), ([runs_root], FSAccess.all())):
            for path in group:
                if not os.path.exists(path):
                    continue
                try:
                    ctypes.set_errno(0)
                    rules.allow(path, rules=rights if os.path.isdir(path) else rights & FSAccess.all_file())
                except PermissionError:  # a folder the zygote cannot reach: unreachable for the run as well
                    continue
        return rules

    def _scope_ruleset(self) -> int:
        """What the package lacks: no TCP at all (ABI >= 4), no signal to or abstract socket of a process outside
        the run (ABI >= 6). A raw landlock_create_ruleset(2)."""
        attr = _RulesetAttr(0, _NET_BIND_TCP | _NET_CONNECT_TCP, _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL if self.abi >= 6
                            else 0)
        fd = _libc().syscall(ctypes.c_long(_SYS_CREATE_RULESET), ctypes.byref(attr),
                             ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0))
        if fd < 0:
            raise _fail("landlock_create_ruleset")
        return int(fd)

    def apply(self, workdir: str) -> None:
        """Confine the calling process, and all it will start, to `workdir`; seccomp last (it forbids set-up calls)."""
        libc = _libc()
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0:
            raise _fail("prctl(PR_SET_NO_NEW_PRIVS)")
        if self.static is not None:
            ctypes.set_errno(0)
            self.static.apply()
            if not self.namespaces:  # runs share the folder of working directories: writes only in this one's
                self._own_folder_only(workdir)
        if self.scope_fd is not None and libc.syscall(ctypes.c_long(_SYS_RESTRICT_SELF), self.scope_fd, 0) < 0:
            raise _fail("landlock_restrict_self")
        if self.bpf:
            buf = ctypes.create_string_buffer(self.bpf, len(self.bpf))
            prog = _SockFprog(len(self.bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
            if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) < 0:
                raise _fail("prctl(PR_SET_SECCOMP)")

    def _own_folder_only(self, workdir: str) -> None:
        import landlock
        from landlock import FSAccess

        writes = FSAccess.all() & ~(FSAccess.READ_FILE | FSAccess.READ_DIR | FSAccess.EXECUTE)
        ctypes.set_errno(0)
        rules = landlock.Ruleset(restrict_rules=writes)
        rules.allow(workdir)
        rules.apply()
