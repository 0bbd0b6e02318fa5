"""Turn a host environment into an image lock and wheel folder (``images/build.sh --deps venv``).

    python -m images.wheelhouse --venv .venv --extras "collector tracking" --wheels CACHE --out CONTEXT

Why: CI reaches no container registry and must not download torch twice, and a container run must write the
same bytes as the host run it is compared with. So the CPU images of CI take exactly the distributions installed
in the host's venv: their closure (``images/base/closure.py freeze``) is built into wheels by the venv's own pip
(local wheels, pip's cache or the index), and the lock written into the build context pins each one to the sha256
of that wheel, so the image installs them offline and hash-checked.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from images.lockfile import canonical
from images.project import REPO

_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(?:-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _norm_version(v: str) -> str:
    from packaging.version import Version

    return str(Version(v))


def freeze(venv: Path, extras: list[str]) -> list[str]:
    """``name==version`` of the extras' closure as installed in the venv (without the project itself)."""
    cmd = [str(venv / "bin" / "python"), str(REPO / "images" / "base" / "closure.py"), "freeze", *extras]
    proc = subprocess.run(cmd + ["--exclude-project"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"wheelhouse: the venv does not hold forgetting-llms[{','.join(extras)}]:\n{proc.stderr}")
    return proc.stdout.split()


def build_wheels(venv: Path, pins: list[str], wheels: Path) -> None:
    """Make sure `wheels` holds one wheel per pin (pip wheel: local wheels, the pip cache, else the index)."""
    wheels.mkdir(parents=True, exist_ok=True)
    have = {(canonical(m["name"]), _norm_version(m["version"])) for m in _wheel_names(wheels)}
    missing = [p for p in pins if (canonical(p.split("==")[0]), _norm_version(p.split("==")[1])) not in have]
    if not missing:
        return
    req = wheels / ".wanted.txt"
    req.write_text("\n".join(missing) + "\n")
    cmd = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "-w",
        str(wheels),
        "-r",
        str(req),
    ]
    subprocess.run(cmd, check=True, env={**os.environ, "PIP_CONSTRAINT": ""})


def _wheel_names(folder: Path):
    for f in sorted(folder.glob("*.whl")):
        m = _WHEEL.match(f.name)
        if m:
            yield {"name": m["name"], "version": m["version"], "path": f}


def write_context(pins: list[str], wheels: Path, out: Path) -> None:
    """`out/requirements.lock` pinned to the wheels' hashes, and the wheels themselves in `out/deps/`."""
    index = {(canonical(w["name"]), _norm_version(w["version"])): w["path"] for w in _wheel_names(wheels)}
    deps = out / "deps"
    deps.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Lock of a CPU image built from the host environment (images/build.sh --deps venv): the exact versions",
        "# installed there, each pinned to the sha256 of the wheel copied into the build.",
        "--only-binary :all:",
    ]
    for pin in sorted(pins):
        name, version = pin.split("==", 1)
        path = index.get((canonical(name), _norm_version(version)))
        if path is None:
            raise SystemExit(f"wheelhouse: no wheel for {pin} in {wheels}")
        dest = deps / path.name
        if not dest.exists():
            try:
                os.link(path, dest)
            except OSError:
                shutil.copy2(path, dest)
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{_sha256(path)}")
    (out / "requirements.lock").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", type=Path, required=True)
    ap.add_argument("--extras", required=True, help="space-separated extras of forgetting-llms")
    ap.add_argument("--wheels", type=Path, required=True, help="wheel cache folder, shared between images")
    ap.add_argument("--out", type=Path, required=True, help="the build context")
    args = ap.parse_args(argv)
    pins = freeze(args.venv.resolve(), args.extras.split())
    build_wheels(args.venv.resolve(), pins, args.wheels)
    write_context(pins, args.wheels, args.out)
    print(f"wheelhouse: {len(pins)} wheels for forgetting-llms[{','.join(args.extras.split())}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
