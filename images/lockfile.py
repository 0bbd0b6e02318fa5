"""Reading and linting the per-stage Python locks (pip requirement files with ``name==version --hash=...``).

A lock is what makes an image rebuildable: every distribution the image installs is named with one exact version
and the hashes of its files, so pip refuses anything else (``--require-hashes``). The lint here is what the tests
and ``python -m images.check`` apply: a range, a URL, an editable, a missing hash or a duplicate is a problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[A-Za-z0-9.+!_-]+)$")
_OPTION = re.compile(r"^--(?P<opt>only-binary|no-binary|prefer-binary)(?:[ =](?P<value>.+))?$")
_HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Pin:
    name: str
    version: str
    hashes: list[str]
    line: int


@dataclass
class Lock:
    path: Path
    pins: dict[str, Pin] = field(default_factory=dict)  # canonical name -> pin
    options: dict[str, str] = field(default_factory=dict)  # e.g. only-binary -> ":all:"
    problems: list[str] = field(default_factory=list)

    def version(self, name: str) -> str | None:
        pin = self.pins.get(canonical(name))
        return pin.version if pin else None

    def source_only(self) -> set[str]:
        """Distributions the lock lets pip build from source (``--no-binary``)."""
        value = self.options.get("no-binary", "")
        return {canonical(v) for v in value.split(",") if v.strip() and v.strip() != ":none:"}


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not buf:
            start = n
        if line.endswith("\\"):
            buf.append(line[:-1].strip())
            continue
        buf.append(line.strip())
        joined = " ".join(p for p in buf if p)
        buf = []
        if joined:
            out.append((start, joined))
    return out


def read(path: Path) -> Lock:
    lock = Lock(path)
    for n, line in _logical_lines(path.read_text(encoding="utf-8")):
        where = f"{path.name}:{n}"
        opt = _OPTION.match(line)
        if opt:
            lock.options[opt.group("opt")] = (opt.group("value") or "").strip()
            continue
        if line.startswith("-"):
            lock.problems.append(f"{where}: option {line.split()[0]!r} is not allowed in a lock")
            continue
        words = line.split()
        spec, hashes = words[0], words[1:]
        m = _PIN.match(spec)
        if not m:
            lock.problems.append(f"{where}: {spec!r} is not pinned with == to one exact version")
            continue
        bad = [h for h in hashes if not _HASH.match(h)]
        if bad:
            lock.problems.append(f"{where}: {spec}: unexpected {bad[0]!r} (only --hash=sha256:<hex> may follow)")
        if not hashes:
            lock.problems.append(f"{where}: {spec} has no --hash (pip's hash-checking needs one for every pin)")
        key = canonical(m.group("name"))
        if key in lock.pins:
            lock.problems.append(f"{where}: {m.group('name')} is pinned twice")
        lock.pins[key] = Pin(m.group("name"), m.group("version"), hashes, n)
    if not lock.pins:
        lock.problems.append(f"{path.name}: pins nothing")
    return lock
