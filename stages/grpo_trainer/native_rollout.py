"""One native GRPO rollout: sample a group per prompt with the training model, grade, and turn it into samples.

Why these choices: the policy that samples is the one being trained (on-policy), so generation runs on the
trainer's own weights, switched to the model's normal attention for ``generate`` and back to packed attention for
training. Grading calls the very reward file verl would load (``reward_function.path``, by default
``stages/envs/verl_reward.py``), with the same keywords verl passes and the response decoded without special
tokens as verl decodes it, so both engines reward a response alike. Advantages are group-normalised
(``stages.lm.losses.grpo.group_advantages``); groups whose rewards are all equal carry no signal and are dropped
and counted when asked. Every response is its own packing group, so a group of long responses never has to fit
one micro-batch.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages.grpo_trainer.metrics import correct
from stages.grpo_trainer.prompts import PromptRow


@dataclass
class Response:
    prompt: int  # index into the step's prompt list
    token_ids: list[int]
    text: str
    finish: str
    reward: float = 0.0
    correct: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def load_reward_function(path: str | Path, name: str) -> Callable[..., Any]:
    """Import the reward file by path, as verl's ``load_extern_object`` does."""
    file = Path(path)
    spec = importlib.util.spec_from_file_location(f"fllm_reward_{abs(hash(str(file)))}", file)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load the reward file {file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def grade(fn: Callable[..., Any], row: PromptRow, response: Response) -> None:
    result = fn(data_source=row.data_source, solution_str=response.text, ground_truth=row.ground_truth,
                extra_info=dict(row.extra_info))
    if isinstance(result, dict):
        response.reward = float(result["score"])
        response.correct = correct(response.reward, result.get("correct", result.get("acc")))
        response.extra = {k: v for k, v in result.items() if k != "score"}
    else:
        response.reward = float(result)
        response.correct = correct(response.reward)


def sample(trainer: Any, prompt_ids: Sequence[Sequence[int]], *, n: int, temperature: float, top_p: float,
           top_k: int, max_tokens: int, seed: int, thinking: bool, batch_size: int) -> list[Response]:
    """``n`` responses per prompt from the current policy (hf backend), prompt-major order."""
    from stages.lm.generation import SamplingParams, make_backend

    params = SamplingParams(n=n, temperature=temperature, top_p=top_p, top_k=max(top_k, 0), max_tokens=max_tokens,
                            seed=seed)
    with trainer.generation_model() as model:
        backend = make_backend("hf", model=model, tokenizer=trainer.tokenizer, thinking=thinking,
                               batch_size=batch_size)
        results = backend.generate_from_ids([list(p) for p in prompt_ids], params)
    out = []
    for result in results:
        for c in result.completions:
            out.append(Response(result.prompt_index, list(c.token_ids or []), c.text, c.finish_reason))
    return out


def advantages(responses: list[Response], group_size: int, scale_by_std: bool,
               drop_equal: bool) -> tuple[list[float], list[bool]]:
    """Per-response advantage and whether its group is kept (all-equal groups dropped when ``drop_equal``)."""
    from stages.lm.losses.grpo import group_advantages

    rewards = [r.reward for r in responses]
    adv = group_advantages(rewards, group_size, scale_by_std=scale_by_std)
    keep = []
    for start in range(0, len(rewards), group_size):
        group = rewards[start:start + group_size]
        informative = max(group) - min(group) > 1e-9
        keep += [informative or not drop_equal] * group_size
    return adv, keep


def build_samples(prompt_ids: Sequence[Sequence[int]], responses: Sequence[Response],
                  adv: Sequence[float]) -> list[list[Any]]:
    """One training group per response: prompt + response ids, loss on the response, its advantage per token."""
    from stages.lm.engine.batch import Sample

    groups = []
    for r, a in zip(responses, adv):
        prompt = list(prompt_ids[r.prompt])
        ids = prompt + r.token_ids
        mask = [False] * len(prompt) + [True] * len(r.token_ids)
        groups.append([Sample(ids, mask, token_fields={"advantages": [0.0] * len(prompt) + [a] * len(r.token_ids)})])
    return groups


def add_logprobs(trainer: Any, groups: list[list[Any]], field_name: str, reference: bool = False) -> list[list[float]]:
    """Score every sample with the policy (or the reference) and attach the result as a token field."""
    scores = trainer.logprobs(groups, reference=reference)
    for group, lps in zip(groups, scores):
        for sample_, lp in zip(group, lps):
            sample_.token_fields[field_name] = list(lp)
    return [lp for lps in scores for lp in lps]


def mean_sampled_nll(groups: list[list[Any]]) -> float:
    """Mean -log p of the sampled response tokens: a Monte-Carlo estimate of the policy's entropy per token."""
    total, count = 0.0, 0
    for group in groups:
        for s in group:
            for lp, trained in zip(s.token_fields["old_logprobs"], s.loss_mask):
                if trained:
                    total -= lp
                    count += 1
    return total / count if count else 0.0
