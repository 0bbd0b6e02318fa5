"""Chat formatting round-trips: the assistant mask covers exactly the assistant's tokens, thinking on and off."""

from __future__ import annotations

import pytest

from stages.lm.chat import END_OF_TURN, ChatFormat
from stages.lm.errors import ChatFormatError
from stages.lm.loading import load_tokenizer

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is 12 times 3?"},
    {"role": "assistant", "content": "12 times 3 is 36."},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(tiny_model_dir)


@pytest.mark.parametrize("thinking", [False, True])
def test_mask_covers_exactly_the_assistant_turn(tokenizer, thinking):
    fmt = ChatFormat(thinking=thinking)
    enc = fmt.encode(tokenizer, CONVERSATION)
    trained = [t for t, m in zip(enc.input_ids, enc.assistant_mask) if m]
    prompt = enc.input_ids[: enc.prompt_length]
    assert not any(enc.assistant_mask[: enc.prompt_length]) and all(enc.assistant_mask[enc.prompt_length:])
    # the prompt part is exactly what a generator is given
    assert prompt == fmt.prompt_ids(tokenizer, CONVERSATION[:-1])
    decoded = tokenizer.decode(trained)
    assert decoded.endswith("12 times 3 is 36." + END_OF_TURN)
    if thinking:  # the model writes the think block itself
        assert decoded == "<think>\n\n</think>\n\n12 times 3 is 36." + END_OF_TURN
        assert fmt.render_prompt(tokenizer, CONVERSATION[:-1]).endswith("<|im_start|>assistant\n")
    else:  # the empty think block belongs to the prompt
        assert decoded == "12 times 3 is 36." + END_OF_TURN
        assert tokenizer.decode(prompt).endswith("<think>\n\n</think>\n\n")
    # the whole sequence is the template's rendering of the conversation (minus the trailing newline)
    full = tokenizer.apply_chat_template(CONVERSATION, tokenize=False, enable_thinking=thinking)
    assert tokenizer.decode(enc.input_ids) == full.rstrip("\n")
    assert trained[-1] == tokenizer.convert_tokens_to_ids(END_OF_TURN)


def test_reasoning_in_the_answer_is_trained_with_thinking_on(tokenizer):
    conv = CONVERSATION[:-1] + [{"role": "assistant", "content": "<think>\n12*3=36\n</think>\n\n36."}]
    enc = ChatFormat(thinking=True).encode(tokenizer, conv)
    trained = tokenizer.decode([t for t, m in zip(enc.input_ids, enc.assistant_mask) if m])
    assert trained == "<think>\n12*3=36\n</think>\n\n36." + END_OF_TURN


def test_stop_tokens_include_end_of_turn(tokenizer):
    assert tokenizer.convert_tokens_to_ids(END_OF_TURN) in ChatFormat().stop_token_ids(tokenizer)


@pytest.mark.parametrize(
    "messages, match",
    [
        ([], "at least one message"),
        ([{"role": "user", "content": "hi"}], "must end with an assistant"),
        ([{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}], "roles are"),
        ([{"role": "user"}, {"role": "assistant", "content": "x"}], "'role' and 'content'"),
    ],
)
def test_bad_conversations_raise_clear_errors(tokenizer, messages, match):
    with pytest.raises(ChatFormatError, match=match):
        ChatFormat().encode(tokenizer, messages)


def test_prompt_must_not_end_with_assistant(tokenizer):
    with pytest.raises(ChatFormatError, match="must not end with an assistant"):
        ChatFormat().render_prompt(tokenizer, CONVERSATION)
    with pytest.raises(ChatFormatError, match="over max_length"):
        ChatFormat().encode(tokenizer, CONVERSATION, max_length=5)
