"""The stages of the project as plain data: name -> declaration, console script, package and image.

Tooling (schema export, image checks, the conductor's static checks) reads this table; stages never import each
other through it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from stages.core.stage import StageDef


@dataclass(frozen=True)
class StageEntry:
    name: str  # the console script and the manifest's `stage`
    package: str  # folder under stages/
    image: str  # images/<image>/Dockerfile
    gpu: bool  # does the stage want GPUs at scale

    @property
    def declaration(self) -> str:
        return f"stages.{self.package}.stage:STAGE"


STAGES: tuple[StageEntry, ...] = (
    StageEntry("collector", "collector", "collector", gpu=True),
    StageEntry("sft-trainer", "sft_trainer", "sft-trainer", gpu=True),
    StageEntry("grpo-trainer", "grpo_trainer", "grpo-trainer", gpu=True),
    StageEntry("spin", "spin", "spin", gpu=True),
    StageEntry("pi-distill", "pi_distill", "pi-distill", gpu=True),
    StageEntry("evaluator", "evaluator", "evaluator", gpu=True),
    StageEntry("analyzer", "analyzer", "analyzer", gpu=False),
)
BY_NAME = {s.name: s for s in STAGES}


def load_stage(name: str) -> StageDef:
    entry = BY_NAME[name]
    module, attr = entry.declaration.split(":")
    return getattr(importlib.import_module(module), attr)
