"""The hf backend: n samples per prompt, seeds reproduce, log-probs equal a direct forward pass."""

from __future__ import annotations

import pytest
import torch

from stages.lm.chat import ChatFormat
from stages.lm.errors import LMInputError
from stages.lm.generation import SamplingParams, make_backend

PROMPTS = [[{"role": "user", "content": "Hi"}], [{"role": "user", "content": "What is 2 + 2? Answer briefly."}],
           [{"role": "user", "content": "Name a colour."}]]


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return make_backend("hf", model=tiny_model_dir, batch_size=4)


def ids(results):
    return [[c.token_ids for c in r.completions] for r in results]


def test_n_samples_per_prompt_and_seeds_reproduce(backend):
    params = SamplingParams(n=3, max_tokens=6, seed=11)
    first = backend.generate(PROMPTS, params)
    assert [r.prompt_index for r in first] == [0, 1, 2]
    assert all(len(r.completions) == 3 for r in first)
    assert all(c.finish_reason in ("stop", "length") and 1 <= len(c.token_ids) <= 6 for r in first for c in r.completions)
    assert ids(backend.generate(PROMPTS, params)) == ids(first)
    other = backend.generate(PROMPTS, SamplingParams(n=3, max_tokens=6, seed=12))
    assert ids(other) != ids(first)
    assert len({tuple(c.token_ids) for c in first[0].completions}) > 1  # samples of one prompt differ


def test_logprobs_match_a_direct_forward_pass(backend):
    out = backend.generate(PROMPTS, SamplingParams(n=2, max_tokens=5, seed=3, logprobs=True))
    fmt = ChatFormat()
    for prompt, result in zip(PROMPTS, out):
        prompt_ids = fmt.prompt_ids(backend.tokenizer, prompt)
        for c in result.completions:
            x = torch.tensor([prompt_ids + c.token_ids])
            with torch.no_grad():
                logp = backend.model(x).logits[0].float().log_softmax(-1)
            direct = [logp[len(prompt_ids) - 1 + j, t].item() for j, t in enumerate(c.token_ids)]
            assert c.logprobs == pytest.approx(direct, abs=1e-4)


def test_greedy_is_deterministic_and_text_matches_tokens(backend):
    params = SamplingParams(n=2, max_tokens=6, temperature=0)
    out = backend.generate(PROMPTS[:1], params)
    a, b = out[0].completions
    assert a.token_ids == b.token_ids
    body = a.token_ids[:-1] if a.finish_reason == "stop" else a.token_ids
    assert a.text == backend.tokenizer.decode(body, skip_special_tokens=True)


def test_ignore_eos_and_bad_params():
    out_len = SamplingParams(max_tokens=4, ignore_eos=True)
    assert out_len.max_tokens == 4
    with pytest.raises(LMInputError, match="n must be"):
        SamplingParams(n=0)
    with pytest.raises(LMInputError, match="top_p"):
        SamplingParams(top_p=0)
    with pytest.raises(LMInputError, match="unknown generation backend"):
        make_backend("tgi")
