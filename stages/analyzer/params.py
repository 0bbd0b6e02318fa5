"""Parameters of the analyzer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stages.core.model_base import StrictModel


def _not_retention() -> list[str]:
    return ["target", "safety", "calibration", "diversity"]


class AnalyzerParams(StrictModel):
    study_dir: str | None = Field(
        None,
        description="Gather every evaluator run under this folder (its **/manifest.json), in addition to named "
        "inputs: succeeded runs are analysed, unfinished ones listed as missing, other stages ignored.",
    )
    title: str = Field("Forgetting study", min_length=1, max_length=200, description="Report title.")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="Confidence level of seed-aggregated t intervals.")
    figure_formats: list[Literal["png", "svg"]] = Field(
        default_factory=lambda: ["png", "svg"], min_length=1, description="Formats of every figure."
    )
    capability_groups: dict[str, list[str]] | None = Field(
        None, description="Capability group -> task names; unlisted tasks keep the evaluator's own capability."
    )
    heatmap_noise_floor: float = Field(
        1e-3, ge=0.0, le=1.0,
        description="Smallest noise band of the forgetting heatmap: a capability change with |change| at most its "
        "band is drawn neutral. The band is the base-vs-base flip rate of the capability's tasks where the study "
        "measured one (evaluation.base_replicates >= 2), never below this floor; elsewhere the floor alone. The "
        "default, a tenth of a percentage point (below one item in a thousand), absorbs float noise only.",
    )
    retained_exclude: list[str] = Field(
        default_factory=_not_retention,
        description="Capabilities left out of 'retained change' (besides the run's own domain): the target and "
        "the ones with their own plots.",
    )
