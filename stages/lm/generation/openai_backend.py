"""The ``openai`` backend: any OpenAI-compatible chat endpoint (a vLLM server, llama.cpp, a hosted API).

Why: the 32B/70B teachers of SF-SFT and CF-SFT need several GPUs; when a cluster job cannot get them, a running
vLLM server or a hosted API answers instead. Requests run concurrently (bounded), and transient failures (429,
5xx, dropped connections) are retried with exponential backoff and jitter, honouring ``Retry-After``; other
errors fail at once with the server's message. The API key is read from an environment variable at request
time and never kept in any record: ``describe()`` names the variable, not its value.

``server="vllm"`` adds vLLM's extensions (``chat_template_kwargs`` for the thinking switch, ``top_k``, token ids
in the answer, and ``generate_from_ids``: prompts as token ids through the completions endpoint, for a caller that
must train on exactly the ids the model continued); ``generic`` sends only standard fields. A server that returns
fewer than n choices (llama.cpp answers one) is asked again for the rest with derived seeds.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from stages.lm.errors import GenerationBackendError, LMInputError
from stages.lm.generation.types import Completion, Messages, PromptResult, SamplingParams, derive_seed

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAIBackend:
    name = "openai"

    def __init__(self, base_url: str, model: str, *, api_key_env: str = "OPENAI_API_KEY", server: str = "generic",
                 thinking: bool = False, max_concurrency: int = 8, max_retries: int = 6, backoff_base_s: float = 1.0,
                 backoff_max_s: float = 60.0, timeout_s: float = 600.0) -> None:
        if server not in ("generic", "vllm"):
            raise LMInputError(f"server must be generic or vllm, got {server!r}")
        if max_concurrency < 1 or max_retries < 0:
            raise LMInputError("max_concurrency must be >= 1 and max_retries >= 0")
        import httpx

        self.base_url = base_url.rstrip("/")
        self.model, self.api_key_env, self.server, self.thinking = model, api_key_env, server, thinking
        self.max_concurrency, self.max_retries = max_concurrency, max_retries
        self.backoff_base_s, self.backoff_max_s = backoff_base_s, backoff_max_s
        self._client = httpx.Client(timeout=timeout_s, limits=httpx.Limits(max_connections=max_concurrency))
        self._rng = random.Random(0)
        self._lock = threading.Lock()
        self.retries_done = 0

    def describe(self) -> dict[str, Any]:
        """What a manifest may record about this backend (never the key itself)."""
        return {"backend": self.name, "base_url": self.base_url, "model": self.model, "server": self.server,
                "api_key_env": self.api_key_env, "max_concurrency": self.max_concurrency}

    def generate(self, prompts: Sequence[Messages], params: SamplingParams) -> list[PromptResult]:
        return self._map("/chat/completions", [{"messages": list(m)} for m in prompts], params)

    def generate_from_ids(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams, *,
                          stop_token_ids: Sequence[int] = ()) -> list[PromptResult]:
        """Prompts given as token ids, through the completions endpoint (vLLM servers only): the server continues
        exactly these ids, with no chat template of its own, and ``stop_token_ids`` end a sample (the stop token is
        the last of its ``token_ids``, as in the other backends)."""
        if self.server != "vllm":
            raise LMInputError("token-id prompts need server='vllm' (the standard API takes text prompts)")
        extra = {"stop_token_ids": list(stop_token_ids)} if stop_token_ids else {}
        return self._map("/completions", [{"prompt": list(ids), **extra} for ids in prompt_ids], params)

    def _map(self, path: str, payloads: list[dict[str, Any]], params: SamplingParams) -> list[PromptResult]:
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            futures = [pool.submit(self._one_prompt, i, path, p, params) for i, p in enumerate(payloads)]
            return [f.result() for f in futures]

    def _one_prompt(self, index: int, path: str, payload: dict[str, Any], params: SamplingParams) -> PromptResult:
        completions: list[Completion] = []
        attempt = 0
        while len(completions) < params.n:
            need = params.n - len(completions)
            body = self._body(payload, params, need, derive_seed(params.seed, index, attempt))
            answer = self._post(path, body)
            choices = answer.get("choices") or []
            if not choices:
                raise GenerationBackendError(f"{self.base_url} returned no choices: {str(answer)[:200]}")
            completions.extend(self._completion(c) for c in choices[:need])
            attempt += 1
        return PromptResult(prompt_index=index, completions=completions)

    def _body(self, payload: dict[str, Any], params: SamplingParams, n: int, seed: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, **payload, "n": n, "max_tokens": params.max_tokens,
                                "temperature": params.temperature, "top_p": params.top_p, "seed": seed}
        if params.stop:
            body["stop"] = list(params.stop)
        if params.logprobs:  # chat: a switch; completions: how many alternatives besides the sampled token
            body["logprobs"] = True if "messages" in payload else 0
        if self.server == "vllm":
            if "messages" in payload:
                body["chat_template_kwargs"] = {"enable_thinking": self.thinking}
            body["return_token_ids"] = True
            if params.top_k:
                body["top_k"] = params.top_k
            if params.ignore_eos:
                body["ignore_eos"] = True
        return body

    @staticmethod
    def _completion(choice: dict[str, Any]) -> Completion:
        message = choice.get("message") or {}
        text = (message.get("content") if "message" in choice else choice.get("text")) or ""
        reason = "length" if choice.get("finish_reason") == "length" else "stop"
        logprobs = None
        answered = choice.get("logprobs") or {}
        content = answered.get("content")
        if content is not None:
            logprobs = [float(item["logprob"]) for item in content]
        elif answered.get("token_logprobs") is not None:  # the completions endpoint's shape
            logprobs = [float(x) for x in answered["token_logprobs"]]
        token_ids = choice.get("token_ids")
        return Completion(text=text, token_ids=list(token_ids) if token_ids is not None else None,
                          finish_reason=reason, logprobs=logprobs)  # type: ignore[arg-type]

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        last = ""
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                response = self._client.post(self.base_url + path, json=body, headers=self._headers())
            except httpx.TransportError as err:  # connection refused/reset, timeouts
                last = f"{type(err).__name__}: {err}"
            else:
                if response.status_code == 200:
                    return response.json()
                last = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code not in RETRY_STATUS:
                    raise GenerationBackendError(f"{self.base_url}{path} refused the request ({last})")
                retry_after = _retry_after(response.headers.get("retry-after"))
            if attempt == self.max_retries:
                break
            with self._lock:
                self.retries_done += 1
                jitter = self._rng.uniform(0.5, 1.0)
            delay = retry_after if retry_after is not None else self.backoff_base_s * (2 ** attempt) * jitter
            time.sleep(min(self.backoff_max_s, delay))
        raise GenerationBackendError(f"{self.base_url}{path} kept failing after {self.max_retries} retries ({last})")

    def close(self) -> None:
        self._client.close()


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
