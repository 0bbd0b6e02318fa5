"""Parameters of the analyzer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stages.core.model_base import StrictModel


class AnalyzerParams(StrictModel):
    study_dir: str | None = Field(
        None, description="Gather every evaluator manifest under this folder (in addition to named inputs)."
    )
    title: str = Field("Forgetting study", description="Report title.")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="Confidence level of seed-aggregated intervals.")
    figure_formats: list[Literal["png", "svg"]] = Field(
        default_factory=lambda: ["png", "svg"], description="Formats of every figure."
    )
    capability_groups: dict[str, list[str]] | None = Field(
        None, description="Capability group -> task names; None uses the evaluator's own grouping."
    )
