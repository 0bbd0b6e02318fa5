"""A small Dockerfile reader for the image checks: instructions, ARG defaults, FROM references, ENV, LABEL and
the exec-form ENTRYPOINT, with ``${ARG}`` defaults substituted.

Why not a full parser: the checks only need what these definitions use, and reading them here keeps the static
checks runnable anywhere (no container engine, no network). Anything outside that subset is reported, so a
definition cannot silently drift into something the checks do not understand.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

KNOWN = {
    "FROM", "ARG", "ENV", "LABEL", "RUN", "COPY", "ADD", "ENTRYPOINT", "CMD", "WORKDIR", "SHELL",
    "USER", "VOLUME", "EXPOSE", "HEALTHCHECK", "STOPSIGNAL", "ONBUILD", "MAINTAINER",
}  # fmt: skip
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class DockerfileError(ValueError):
    """A Dockerfile cannot be read by the checks."""


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Dockerfile:
    path: Path
    instructions: list[Instruction] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        return cls(path, parse(path.read_text(encoding="utf-8"), str(path)))

    def of(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def arg_defaults(self) -> dict[str, str]:
        """ARG name -> default (the first default given wins; an ARG without one maps to '')."""
        out: dict[str, str] = {}
        for ins in self.of("ARG"):
            name, _, value = ins.args.partition("=")
            name = name.strip()
            if name not in out or (not out[name] and value):
                out[name] = _unquote(value.strip())
        return out

    def substitute(self, text: str) -> str:
        args = self.arg_defaults()
        return _VAR.sub(lambda m: args.get(m.group(1) or m.group(2), m.group(0)), text)

    def froms(self) -> list[tuple[str, str | None]]:
        """(image reference with ARG defaults substituted, stage alias) for every FROM."""
        out = []
        for ins in self.of("FROM"):
            words = [w for w in ins.args.split() if not w.startswith("--")]
            ref = self.substitute(words[0])
            alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            out.append((ref, alias))
        return out

    def env(self) -> dict[str, str]:
        """ENV name -> raw value (``${ARG}`` left as written), later instructions overriding earlier ones."""
        out: dict[str, str] = {}
        for ins in self.of("ENV"):
            out.update(_pairs(ins.args))
        return out

    def labels(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for ins in self.of("LABEL"):
            out.update(_pairs(ins.args))
        return out

    def entrypoint(self) -> list[str] | None:
        """The last ENTRYPOINT in exec (JSON) form; a shell-form ENTRYPOINT is an error."""
        found = self.of("ENTRYPOINT")
        if not found:
            return None
        return exec_form(found[-1])


def exec_form(ins: Instruction) -> list[str]:
    try:
        value = json.loads(ins.args)
    except json.JSONDecodeError as e:
        raise DockerfileError(f"line {ins.line}: {ins.keyword} is not in exec (JSON array) form: {e}") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DockerfileError(f"line {ins.line}: {ins.keyword} must be a JSON array of strings")
    return value


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _pairs(text: str) -> dict[str, str]:
    """``K=V K2="v 2"`` pairs (the only ENV/LABEL form the definitions use)."""
    out = {}
    for word in shlex.split(text, posix=True):
        if "=" not in word:
            raise DockerfileError(f"expected KEY=VALUE pairs, found {word!r} in {text!r}")
        key, _, value = word.partition("=")
        out[key] = value
    return out


def parse(text: str, name: str = "Dockerfile") -> list[Instruction]:
    """Join continuation lines, drop comments and parser directives, and split off each keyword."""
    out: list[Instruction] = []
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):  # comments inside a continued instruction are dropped
            continue
        if not buf:
            start = n
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        line = " ".join(p for p in buf if p)
        buf = []
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword not in KNOWN:
            raise DockerfileError(f"{name}:{start}: unknown instruction {keyword!r}")
        out.append(Instruction(keyword, args.strip(), start))
    if buf:
        raise DockerfileError(f"{name}: the file ends inside a continued instruction (a trailing backslash)")
    return out
