"""What the image tools need to know about the project: where things are, which images exist, and what each
image's extras require according to ``pyproject.toml``.

The stage table comes from ``stages.registry`` (plain data); the rest of an image's definition is its Dockerfile
(``ARG EXTRAS`` names the extras it installs, ``ARG BASE`` its flavour), so nothing is declared twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
PROJECT = "forgetting-llms"
# Platform every lock is resolved for: CPython 3.11 on x86_64 glibc >= 2.36 (Debian 12; Ubuntu 24.04 has 2.39).
PYTHON_VERSION = "3.11"
MANYLINUX = (2, 36)
# Images that are not stages but that stage images build on.
HELPER_IMAGES = ("base", "flash-attn")
# Installed without their dependencies when an extra is in an image (they are listed by that extra instead).
NO_DEPS_BY_EXTRA = {"envs": ("gem-llm==0.1.0",), "evaluator": ("nanogcg==0.3.0",)}


@dataclass(frozen=True)
class ImageDef:
    name: str  # folder under images/
    stage: str | None  # console script and manifest stage; None for helper images
    package: str | None
    gpu: bool

    def folder(self, root: Path = REPO) -> Path:
        return root / "images" / self.name

    def dockerfile(self, root: Path = REPO) -> Path:
        return self.folder(root) / "Dockerfile"

    def lock(self, root: Path = REPO) -> Path:
        return self.folder(root) / "requirements.lock"


def stage_images() -> list[ImageDef]:
    from stages.registry import STAGES

    return [ImageDef(s.image, s.name, s.package, s.gpu) for s in STAGES]


def read_pyproject(root: Path = REPO) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))


def expand_extras(extras: list[str], pyproject: dict) -> tuple[list[str], set[str]]:
    """(requirement strings, every project extra reached) of PROJECT[extras], self-references followed.

    Core dependencies are included; an unknown extra raises ValueError naming it.
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    optional = pyproject["project"].get("optional-dependencies", {})
    reqs: list[str] = list(pyproject["project"].get("dependencies", []))
    seen: set[str] = set()
    todo = list(extras)
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        if extra not in optional:
            raise ValueError(f"pyproject.toml has no extra {extra!r} (known: {', '.join(sorted(optional))})")
        seen.add(extra)
        for text in optional[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == canonicalize_name(PROJECT):
                todo.extend(req.extras)
            else:
                reqs.append(text)
    return reqs, seen


def no_deps_pins(extras_reached: set[str]) -> list[str]:
    return [pin for extra in sorted(extras_reached) for pin in NO_DEPS_BY_EXTRA.get(extra, ())]


def image_extras(dockerfile: Path) -> list[str]:
    """The extras an image installs: its Dockerfile's ``ARG EXTRAS`` default."""
    from images.dockerfile import Dockerfile

    value = Dockerfile.read(dockerfile).arg_defaults().get("EXTRAS", "")
    return value.split()
