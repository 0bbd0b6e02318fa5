"""Generation and scoring backends for the suites that do not go through lm-eval (target, KL): the project's own
``stages.lm.generation`` backends, so the target env is prompted and sampled exactly as collection and RL do.

With engine ``vllm`` the target suite samples through ``stages.lm.generation.vllm_backend`` (tensor parallel over
the job's GPUs); a vllm build whose engine options differ stops with a clear NotImplementedYet rather than a
traceback. Teacher-forced scoring (KL) always uses the HF backend's ``score``.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from stages.core.errors import NotImplementedYet
from stages.evaluator.session import Session


def generator(session: Session, model_dir: str) -> Any:
    p = session.params
    thinking = session.ctx.runtime.thinking
    if session.ctx.engine == "vllm":
        if importlib.util.find_spec("stages.lm.generation.vllm_backend") is None:
            raise NotImplementedYet(
                "evaluator target/KL suites with engine 'vllm': stages.lm.generation.vllm_backend is not built yet "
                "(run them with engine 'hf', or the forgetting/policy/safety suites with vllm)"
            )
        from stages.lm.generation import make_backend

        try:
            return make_backend("vllm", model=model_dir, thinking=thinking,
                                tensor_parallel_size=max(1, session.ctx.spec.resources.gpus_per_node),
                                gpu_memory_utilization=p.gpu_memory_utilization)
        except TypeError as e:
            raise NotImplementedYet(f"evaluator target/KL suites with engine 'vllm' ({e})") from None
    return scorer(session, model_dir)


def scorer(session: Session, model_dir: str, tokenizer: Any = None) -> Any:
    """The HF backend on ``model_dir``; ``tokenizer`` (another model's) saves loading its own."""
    from stages.lm.generation.hf_backend import HFBackend

    p = session.params
    return HFBackend(model_dir, tokenizer=tokenizer, thinking=session.ctx.runtime.thinking, dtype=p.dtype,
                     batch_size=p.batch_size)
