"""Where the safety judges run when ``judge_backend`` is ``openai``: an OpenAI-compatible endpoint.

Why a sub-model: the XSTest judge and the HarmBench classifier can be served by a vLLM server on another node (or,
for the XSTest judge, by a hosted API such as the GPT-4 of the XSTest paper) when the evaluator's own GPU cannot
hold them. As in the collector, the key is read from an environment variable named here, never written in a
manifest; the base URL is given here or read from an environment variable, so a study can point every
evaluator at the server a cluster job started.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field

from stages.core.model_base import StrictModel


class JudgeEndpoint(StrictModel):
    base_url: str | None = Field(
        None, description="Endpoint base URL (…/v1); None reads it from the variable named by base_url_env."
    )
    base_url_env: str = Field(
        "FLLM_JUDGE_BASE_URL", description="Variable holding the base URL when base_url is unset."
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="Name of the environment variable holding the key (never the key itself)."
    )
    server: Literal["vllm", "generic"] = Field(
        "vllm", description="vllm: the HarmBench classifier gets its exact token ids (completions endpoint); generic "
        "servers take chat requests only, enough for the XSTest judge.",
    )
    judge_model_name: str | None = Field(
        None, description="Model name the endpoint serves for the XSTest judge; None: judge_model (its folder name "
        "when it is a folder).",
    )
    classifier_model_name: str | None = Field(
        None, description="Model name the endpoint serves for the HarmBench classifier; None: its folder name."
    )
    max_concurrency: int = Field(16, ge=1, le=1024, description="Requests in flight at once.")
    max_retries: int = Field(6, ge=0, le=50, description="Retries on 429/5xx with exponential backoff.")
    timeout_s: float = Field(600.0, gt=0, le=7200, description="Per-request timeout in seconds.")

    def url(self) -> str | None:
        return self.base_url or os.environ.get(self.base_url_env) or None
