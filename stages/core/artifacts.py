"""Artifact references: how one stage names a file or folder that another stage wrote.

An input is either a direct reference (``{"uri": ..., "kind": ...}``) or a link to an upstream manifest's output
(``{"from": "<manifest uri>#outputs.<name>"}``); the lifecycle resolves links, checks that the upstream run
succeeded and that the digest still matches, so a stage never reads half-written or silently changed data.
"""

from __future__ import annotations

import re
from enum import Enum

from pydantic import Field, model_validator

from stages.core.model_base import StrictModel

FROM_PATTERN = re.compile(r"^(?P<manifest>.+)#outputs\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")


class ArtifactKind(str, Enum):
    """Every kind of file a stage reads or writes. Extend here, never with ad hoc strings."""

    hf_model = "hf_model"  # a Hugging Face model folder (config, weights, tokenizer)
    gem_dataset = "gem_dataset"  # a folder of split-named parquet in GEM's columns
    benchmark_data = "benchmark_data"  # local benchmark rows (jsonl/csv/parquet) read by the evaluator
    trajectories = "trajectories"  # JSONL, one record per sample
    sft_data = "sft_data"  # parquet with `messages`, or JSONL with prompt/completion
    rl_prompts = "rl_prompts"  # verl RL parquet (data_source, prompt, reward_model, extra_info) or its JSONL twin
    pairs = "pairs"  # preference pairs (SPIN)
    rollouts = "rollouts"  # sampled rollouts logged during RL
    checkpoints = "checkpoints"  # a folder of resumable training checkpoints
    metrics = "metrics"  # metrics JSONL
    stats = "stats"  # a JSON document of summary statistics
    eval_results = "eval_results"  # the evaluator's versioned results.json
    samples = "samples"  # per-item evaluation records
    report = "report"  # a rendered report (HTML, tables, figures)
    snapshot = "snapshot"  # a folder of downloaded datasets/models with its own record


class ArtifactRef(StrictModel):
    """A reference to a file or folder, by URI or by a link to an upstream manifest output."""

    uri: str | None = Field(None, description="fsspec URI or local path; `$VARS` and `~` are expanded at run time.")
    kind: ArtifactKind | None = Field(None, description="What the artifact is. Required with `uri`.")
    digest: str | None = Field(
        None, description="`sha256:<hex>` for a file, `sha256-dir:<hex>` for a folder; checked when given."
    )
    from_: str | None = Field(
        None, alias="from", description="`<upstream manifest uri>#outputs.<name>`: take that output of that run."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ArtifactRef:
        if (self.uri is None) == (self.from_ is None):
            raise ValueError("give exactly one of `uri` or `from`")
        if self.uri is not None and self.kind is None:
            raise ValueError("`kind` is required with `uri`")
        if self.from_ is not None and not FROM_PATTERN.match(self.from_):
            raise ValueError("`from` must look like `<manifest uri>#outputs.<name>`")
        return self

    def from_parts(self) -> tuple[str, str]:
        """Split a `from` link into (manifest uri, output name)."""
        m = FROM_PATTERN.match(self.from_ or "")
        assert m is not None
        return m.group("manifest"), m.group("name")
