"""Helpers of the podman tests: build the CPU images once, run them the way Apptainer would, and compare a
container run with host runs of the same manifest.

Apptainer runs a SIF read-only, as the calling user, with the caller's working directory and paths bound in;
``podman run --read-only --user 4242:4242`` with the same absolute paths bound is the closest stand-in here.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TAG = "test"
BUILT = ("analyzer", "collector")  # the CPU-only stage and one torch-based stage
RUN_FLAGS = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
ANY_USER = ["--user", "4242:4242", "--read-only", "--network", "none"]


def image_ref(name: str) -> str:
    return f"localhost/forgetting-llms/{name}:{TAG}"


def build(lock_file: Path, log: Path) -> subprocess.CompletedProcess:
    cmd = [str(REPO / "images" / "build.sh"), "--flavour", "cpu", "--deps", "venv", "--venv", sys.prefix,
           "--tag", TAG, "--lock-file", str(lock_file), "--no-check", *BUILT]  # fmt: skip
    with log.open("w") as f:
        return subprocess.run(
            cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "FLLM_PYTHON": sys.executable}, check=False
        )


def inspect(ref: str) -> dict:
    out = subprocess.run(["podman", "image", "inspect", ref], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]


def podman_run(ref: str, *args: str, flags: list[str] | None = None, timeout: float = 600):
    cmd = ["podman", "run", "--rm", *RUN_FLAGS, *(flags or []), ref, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def workdir(tmp: Path, fixtures: Path) -> tuple[Path, list[str]]:
    """A run folder laid out like the repository root for the example manifests, and the podman flags that
    bind it, the fixtures (read-only) and the manifests at the same absolute paths inside the container."""
    work = tmp / "work"
    work.mkdir()
    work.chmod(0o777)  # the container runs as an unrelated user, like a job user writing its output folder
    (work / ".fixtures").symlink_to(fixtures)
    (work / "manifests").symlink_to(REPO / "manifests")
    flags = ["-v", f"{fixtures}:{fixtures}:ro", "-v", f"{REPO / 'manifests'}:{REPO / 'manifests'}:ro",
             "-v", f"{work}:{work}", "-w", str(work), "-e", "HOME=/tmp/home"]  # fmt: skip
    return work, flags


def host_run(stage: str, work: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.prefix) / "bin" / stage
    return subprocess.run([str(exe), *args], cwd=work, capture_output=True, text=True, timeout=600, check=False)


def take_runs(work: Path, dest: Path) -> Path:
    """Move the run folder aside so the next run of the same manifest starts fresh at the same paths."""
    shutil.move(str(work / ".runs"), str(dest))
    return dest


def record(runs: Path, output_dir: str) -> dict:
    rel = Path(output_dir).relative_to(".runs")
    return json.loads((runs / rel / "manifest.json").read_text())


def output_files(runs: Path, work: Path, uri: str) -> dict[str, bytes]:
    """relative name -> bytes of one output (a file or a folder), read from where `runs` now lies."""
    path = runs / Path(uri).relative_to(work / ".runs")
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def same_up_to_float_noise(a: bytes, b: bytes) -> bool:
    """Text that differs only in numbers equal to 1e-9 relative (or 1e-12 absolute): a least-squares fit can
    round differently in another process (memory alignment changes numpy's summation order)."""
    try:
        ta, tb = a.decode(), b.decode()
    except UnicodeDecodeError:
        return False
    if _NUMBER.sub("#", ta) != _NUMBER.sub("#", tb):
        return False
    return all(
        x == y or math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-12)
        for x, y in zip(_NUMBER.findall(ta), _NUMBER.findall(tb))
    )
