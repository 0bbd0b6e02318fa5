"""Parameters of the ``representations`` suite (``params.representations`` of an evaluator manifest).

Everything that decides which texts are read and how they are pooled is here and recorded in the results (with a
digest of each text set), so two checkpoints' numbers are comparable exactly when these settings and digests agree.
``seed`` is the suite's own: it must stay the same across every run of a study (the training seed varies, and the
texts must not vary with it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stages.core.model_base import StrictModel

TextSet = Literal["math", "code", "qa", "general"]
TEXT_SETS: tuple[str, ...] = TextSet.__args__  # type: ignore[attr-defined]
Pooling = Literal["mean", "last"]


class RepresentationsParams(StrictModel):
    """CKA per layer, linear probes for factual knowledge, weight-delta spectra (see the suite's docstring)."""

    sets: list[TextSet] = Field(
        default_factory=lambda: list(TEXT_SETS),
        description="Text sets compared by CKA: math (GSM8K test), code (HumanEval), qa (NQ-open dev), general "
        "(XSTest's safe prompts).",
    )
    texts_per_set: int = Field(256, ge=4, le=4096, description="Texts drawn (seeded) from each set; fewer if the "
                               "set is smaller (HumanEval has 164).")
    max_tokens: int = Field(256, ge=8, le=8192, description="Each text is cut to this many tokens.")
    pooling: Pooling = Field("mean", description="How a text's token activations become one vector for CKA: mean "
                             "over its tokens (the first token, an attention sink, left out) or its last token.")
    debiased: bool = Field(True, description="Also report debiased CKA (unbiased HSIC).")
    probe_questions: int = Field(400, ge=10, le=3000, description="NQ-open questions behind the probe: each gives "
                                 "a true and a false question-answer statement.")
    probe_folds: int = Field(5, ge=2, le=20, description="Cross-validation folds of the probe (questions kept whole).")
    probe_l2: float = Field(1e-3, gt=0.0, le=100.0, description="L2 penalty of the logistic probe (on the mean "
                            "loss, standardised features).")
    probe_pooling: Pooling = Field("last", description="Pooling of a statement's activations for the probe.")
    weight_delta: bool = Field(True, description="Compute the weight-delta metrics (needs both checkpoints' "
                               "safetensors).")
    spectrum: Literal["exact", "randomized"] = Field(
        "exact", description="exact: every singular value of ΔW (float64 Gram eigenvalues), so effective rank too; "
        "randomized: top-k only (no effective rank), faster.",
    )
    top_k: int = Field(16, ge=1, le=1024, description="k of the top-k energy share and subspace overlaps.")
    oversample: int = Field(16, ge=0, le=1024, description="Extra sketch columns of the randomized SVD.")
    power_iterations: int = Field(4, ge=0, le=20, description="Power iterations of the randomized SVD.")
    modules: list[str] | None = Field(
        None, description="Weight names (suffixes such as 'self_attn.q_proj' or 'mlp.down_proj', or "
        "'embed_tokens') to analyse; None = every 2-D weight.",
    )
    seed: int = Field(0, ge=0, description="Seed of the text draws, probe folds and sketches (keep it fixed across "
                      "a study).")

    @model_validator(mode="after")
    def _consistent(self) -> RepresentationsParams:
        if len(set(self.sets)) != len(self.sets):
            raise ValueError("representations.sets names a set twice")
        if self.probe_questions < 2 * self.probe_folds:
            raise ValueError(f"representations.probe_questions must be at least 2 x probe_folds "
                             f"({2 * self.probe_folds})")
        if self.modules is not None and not self.modules:
            raise ValueError("representations.modules, when given, must name at least one weight")
        return self
