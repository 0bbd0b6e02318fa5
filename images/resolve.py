"""Check that the locks still resolve against the package index for the images' platform, without installing.

    python -m images.resolve [LOCK ...]       # every lock under images/ when none is named

``pip install --dry-run --no-deps`` for CPython 3.11 on manylinux x86_64: every pin must exist with a file whose
hash the lock lists (pip filters candidates by hash before choosing one), and the few source-only pins must yield
metadata. pip reads wheel metadata from the index's metadata files, so nothing large is downloaded.

The GPU locks share most of their pins, and the time goes into one round trip per pin, so every distinct pin
(name, version, hashes) is checked once, in a few pip processes that run side by side. Needs network access to
the index: the tests mark this check ``index``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from images import lockfile
from images.project import MANYLINUX, PYTHON_VERSION, REPO

PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(17, MANYLINUX[1] + 1)] + [
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
]


@dataclass
class Outcome:
    ok: bool
    checked: int  # distinct pins
    problems: list[str]


def _env() -> dict[str, str]:
    return {**os.environ, "PIP_NO_INPUT": "1"}


def isolated_pip(python: str) -> list[str]:
    """pip with this machine's configuration ignored (no local wheel folders, mirrors or constraints: the locks
    must resolve on the package index itself), keeping only the CA bundle that a proxied network may need."""
    cmd = [python, "-m", "pip", "--isolated"]
    for var in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        if os.environ.get(var) and Path(os.environ[var]).is_file():
            return cmd + ["--cert", os.environ[var]]
    return cmd


def platform_args() -> list[str]:
    cmd = ["--python-version", PYTHON_VERSION, "--implementation", "cp"]
    cmd += ["--abi", f"cp{PYTHON_VERSION.replace('.', '')}", "--abi", "abi3", "--abi", "none"]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    return cmd


def _pip(req_file: Path, python: str, extra: list[str], env: dict[str, str], timeout: float):
    # --no-build-isolation: the source-only pins are plain setup.py projects; reading their metadata with this
    # environment's setuptools saves an isolated build environment per pin.
    cmd = [*isolated_pip(python), "install", "--dry-run", "--no-deps", "--ignore-installed", "--quiet",
           "--no-build-isolation", *extra, "-r", str(req_file)]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO, check=False)


def all_locks(root: Path = REPO) -> list[Path]:
    return sorted(root.glob("images/*/requirements.lock")) + sorted(root.glob("images/*/flash-attn.lock"))


def _chunks(locks: list[lockfile.Lock], jobs: int) -> tuple[list[list[str]], set[str], dict[str, list[str]]]:
    """Distinct pins dealt into `jobs` requirement lists (one name at most once per list), the union of
    source-only names, and pin -> the locks that hold it."""
    where: dict[str, list[str]] = {}
    text: dict[str, str] = {}
    source_only: set[str] = set()
    for lock in locks:
        source_only |= lock.source_only()
        for pin in lock.pins.values():
            line = f"{pin.name}=={pin.version} " + " ".join(sorted(pin.hashes))
            where.setdefault(line, []).append(f"{lock.path.parent.name}/{lock.path.name}")
            text[line] = line
    chunks: list[list[str]] = [[] for _ in range(jobs)]
    names: list[set[str]] = [set() for _ in range(jobs)]
    for i, line in enumerate(sorted(text)):
        name = lockfile.canonical(line.split("==", 1)[0])
        order = [(i + k) % len(chunks) for k in range(len(chunks))]
        slot = next((j for j in order if name not in names[j]), None)
        if slot is None:  # the same name at several versions: one more list
            chunks.append([])
            names.append(set())
            slot = len(chunks) - 1
        chunks[slot].append(line)
        names[slot].add(name)
    return [c for c in chunks if c], source_only, where


def check(lock_paths: list[Path], python: str = sys.executable, jobs: int = 6, timeout: float = 900) -> Outcome:
    locks = [lockfile.read(p) for p in lock_paths]
    problems = [p for lock in locks for p in lock.problems]
    plain = [lk for lk in locks if lk.path.name != "flash-attn.lock"]
    chunks, source_only, where = _chunks(plain, jobs)
    env = _env()
    options = ["--only-binary :all:"] + ([f"--no-binary {','.join(sorted(source_only))}"] if source_only else [])
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, chunk in enumerate(chunks):
            f = Path(tmp) / f"chunk-{i}.txt"
            f.write_text("\n".join(options + chunk) + "\n")
            files.append(f)
        with ThreadPoolExecutor(max_workers=len(files) + 1) as pool:
            runs = [pool.submit(_pip, f, python, platform_args(), env, timeout) for f in files]
            source_runs = [
                pool.submit(_pip, lk.path, python, [], {**env, "FLASH_ATTENTION_SKIP_CUDA_BUILD": "TRUE"}, timeout)
                for lk in locks
                if lk.path.name == "flash-attn.lock"
            ]
            for chunk, run in zip(chunks, runs):
                proc = run.result()
                if proc.returncode != 0:
                    problems.append(_explain(proc.stderr, chunk, where))
            for run in source_runs:
                proc = run.result()
                if proc.returncode != 0:
                    problems.append(f"flash-attn.lock does not resolve:\n{proc.stderr[-3000:]}")
    return Outcome(not problems, len(where), problems)


def _explain(stderr: str, chunk: list[str], where: dict[str, list[str]]) -> str:
    names = set(re.findall(r"(?:for|distribution found for|requirement) ([A-Za-z0-9._-]+)==", stderr))
    culprits = [f"{line.split(' ')[0]} (in {', '.join(where[line])})" for line in chunk if line.split("==")[0] in names]
    tail = "\n".join(line for line in stderr.splitlines() if "Location" not in line)[-3000:]
    return f"pins that do not resolve: {'; '.join(culprits) or 'see pip output'}\n{tail}"


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    locks = [Path(a).resolve() for a in args] or all_locks()
    out = check(locks)
    for p in out.problems:
        print(f"resolve: {p}", file=sys.stderr)
    print(f"resolve: {len(locks)} locks, {out.checked} distinct pins: {'ok' if out.ok else 'FAILED'}")
    return 0 if out.ok else 1


if __name__ == "__main__":
    sys.exit(main())
