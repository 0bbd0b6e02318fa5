"""Build the read-only view of the filesystem that sandboxed programs see.

Runs once, inside the zygote, right after it entered its own mount namespace. The result:
every mount read-only and nosuid; a tiny /dev holding only null/zero/full/random/urandom; the home
directory (and, when the sandbox drops root, every directory that other users cannot enter, such as
/root) replaced by an empty tmpfs into which only the Python installation is bound back; and a
mount point where each run gets its own fresh, size-limited tmpfs as working directory.

Why not a chroot or a copied tree: binding the real interpreter read-only costs nothing per run and
keeps the program's view of Python identical to the grader's. Standard library only: the zygote imports
this file as a top-level module.
"""

from __future__ import annotations

import os
import stat

try:  # the zygote imports its siblings as top-level modules; everyone else through the package
    import syscalls as sc  # type: ignore[import-not-found]
except ImportError:
    from stages.envs.sandbox import syscalls as sc

DEV_NODES = ("null", "zero", "full", "random", "urandom")


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _outermost(paths: list[str]) -> list[str]:
    keep: list[str] = []
    for p in sorted(set(paths), key=lambda s: (s.count("/"), s)):
        if not any(_is_under(p, k) for k in keep):
            keep.append(p)
    return keep


def closed_ancestors(path: str) -> list[str]:
    """Directories on the way to `path` that users other than the owner cannot traverse."""
    out, cur = [], "/"
    for part in [p for p in path.split("/") if p]:
        cur = os.path.join(cur, part)
        try:
            st = os.stat(cur)
        except OSError:
            break
        if stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IXOTH:
            out.append(cur)
    return out


def _bind_back(mask_dir: str, required: list[str]) -> None:
    """Cover `mask_dir` with an empty tmpfs, then bind the `required` paths below it back in place."""
    inside = _outermost([r for r in required if _is_under(r, mask_dir) and r != mask_dir])
    fds = {r: os.open(r, os.O_PATH) for r in inside}
    try:
        sc.mount("tmpfs", mask_dir, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=0755,size=1m")
        for r, fd in fds.items():
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(r, mode=0o755, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(r), mode=0o755, exist_ok=True)
                open(r, "w").close()
            sc.mount(f"/proc/self/fd/{fd}", r, None, sc.MS_BIND | sc.MS_REC)
    finally:
        for fd in fds.values():
            os.close(fd)


def _minimal_dev() -> None:
    fds = {n: os.open(f"/dev/{n}", os.O_PATH) for n in DEV_NODES if os.path.exists(f"/dev/{n}")}
    try:
        sc.mount("tmpfs", "/dev", "tmpfs", sc.MS_NOSUID | sc.MS_NOEXEC, "mode=0755,size=64k")
        for name, fd in fds.items():
            open(f"/dev/{name}", "w").close()
            sc.mount(f"/proc/self/fd/{fd}", f"/dev/{name}", None, sc.MS_BIND)
        for i, name in enumerate(("stdin", "stdout", "stderr")):
            os.symlink(f"/proc/self/fd/{i}", f"/dev/{name}")
        os.symlink("/proc/self/fd", "/dev/fd")
    finally:
        for fd in fds.values():
            os.close(fd)


_ST_TO_MS = {  # statvfs flags -> mount flags that must be repeated on a remount (locked in a user namespace)
    4: sc.MS_NODEV, 8: sc.MS_NOEXEC, 1024: sc.MS_NOATIME, 2048: sc.MS_NODIRATIME, 4096: sc.MS_RELATIME,
}


def _remount_all_readonly() -> None:
    """Fallback for kernels without mount_setattr: remount each mount read-only, keeping locked flags."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for mp in points:
        mp = mp.encode().decode("unicode_escape")
        try:
            st = os.statvfs(mp).f_flag
            keep = sum(ms for stf, ms in _ST_TO_MS.items() if st & stf)
            sc.mount(None, mp, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_NOSUID | keep)
        except OSError:
            pass


def build_readonly_view(
    work_mount: str, required: list[str], hide: list[str], drop_root: bool, method: str = "auto"
) -> dict:
    """Set up the zygote's mount namespace; returns a report of what was isolated."""
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    work_base = os.path.dirname(work_mount)
    required = sorted({os.path.realpath(p) for p in [*required, work_base] if p and os.path.exists(p)})
    masks = [os.path.realpath(h) for h in hide if h and os.path.isdir(h) and os.path.realpath(h) != "/"]
    if drop_root:
        for r in required:
            masks += closed_ancestors(r)
    masks = [m for m in _outermost(masks) if m not in required]
    for m in masks:
        _bind_back(m, required)
    sc.mount("tmpfs", work_base, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=0755,size=64k")
    os.mkdir(work_mount, 0o755)
    _minimal_dev()
    try:
        if method == "remount":
            raise OSError("remount requested")
        sc.mount_setattr_recursive("/", sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID)
        readonly = "mount_setattr"
    except OSError:
        _remount_all_readonly()
        readonly = "remount"
    return {"masked": masks, "readonly": readonly}
