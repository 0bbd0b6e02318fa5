"""The chat format: one rendering of conversations for collection, training and evaluation.

Why: a model must be trained on exactly the text it is later asked to produce. So the prompt a generator sees and
the prompt part of a training example are the same string, tokenised the same way, and the trained tokens are
exactly what the model would emit after that prompt: the assistant's text and the end-of-turn token
``<|im_end|>``, nothing of the template around it. The Qwen3 template's thinking switch is decided per study and
recorded here: thinking off puts the template's empty ``<think>\\n\\n</think>\\n\\n`` block in the prompt (the model
never produces it); thinking on leaves it to the model, so the think block is part of the trained completion.

Token ids are built as ``tokenize(prompt) + tokenize(completion)``: the same split generation has, so no BPE merge
can cross the prompt/answer boundary differently in training and in generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stages.lm.errors import ChatFormatError

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

END_OF_TURN = "<|im_end|>"
ROLES = ("system", "user", "assistant", "tool")
Message = dict[str, Any]


@dataclass(frozen=True)
class EncodedChat:
    """Token ids of a whole conversation and which of them are trained (the final assistant turn)."""

    input_ids: list[int]
    assistant_mask: list[bool]
    prompt_text: str
    completion_text: str

    @property
    def prompt_length(self) -> int:
        return self.assistant_mask.index(True) if any(self.assistant_mask) else len(self.input_ids)


def check_messages(messages: Sequence[Message], *, must_end_with_assistant: bool) -> None:
    if not messages:
        raise ChatFormatError("a conversation needs at least one message")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise ChatFormatError(f"message {i} must be a dict with 'role' and 'content', got {message!r:.80}")
        if message["role"] not in ROLES:
            raise ChatFormatError(f"message {i} has role {message['role']!r}; roles are {', '.join(ROLES)}")
        if not isinstance(message["content"], str):
            raise ChatFormatError(f"message {i} content must be a string")
    last = messages[-1]["role"]
    if must_end_with_assistant and last != "assistant":
        raise ChatFormatError(f"a training conversation must end with an assistant message, it ends with {last!r}")
    if not must_end_with_assistant and last == "assistant":
        raise ChatFormatError("a prompt must not end with an assistant message (the model writes that turn)")


@dataclass(frozen=True)
class ChatFormat:
    """The study-wide chat format. ``thinking`` is the Qwen3 ``enable_thinking`` switch (default off)."""

    thinking: bool = False

    def _render(self, tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message], gen_prompt: bool) -> str:
        if getattr(tokenizer, "chat_template", None) is None:
            raise ChatFormatError("the tokenizer has no chat template; use a model folder with chat_template")
        return tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=gen_prompt, enable_thinking=self.thinking
        )

    def render_prompt(self, tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]) -> str:
        """The text a generator continues: the conversation plus the assistant header (and empty think block)."""
        check_messages(messages, must_end_with_assistant=False)
        return self._render(tokenizer, messages, gen_prompt=True)

    def prompt_ids(self, tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]) -> list[int]:
        return list(tokenizer(self.render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"])

    def completion_text(self, tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]) -> tuple[str, str]:
        """Split a conversation ending with the assistant into (prompt text, trained completion text)."""
        check_messages(messages, must_end_with_assistant=True)
        prompt = self._render(tokenizer, messages[:-1], gen_prompt=True)
        full = self._render(tokenizer, messages, gen_prompt=False)
        if not full.startswith(prompt):
            raise ChatFormatError(
                "the chat template renders the prompt differently inside the full conversation, so the trained "
                f"text would not follow the generation prompt (thinking={self.thinking}); prompt ends "
                f"{prompt[-60:]!r}, conversation has {full[len(prompt) - 60:len(prompt)]!r} there"
            )
        rest = full[len(prompt):]
        end = rest.find(END_OF_TURN)
        if end < 0:
            raise ChatFormatError(f"the rendered assistant turn has no {END_OF_TURN}: is this a ChatML template?")
        return prompt, rest[: end + len(END_OF_TURN)]

    def encode(
        self, tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message], max_length: int | None = None
    ) -> EncodedChat:
        """Token ids of prompt + final assistant turn, with a mask that is True on exactly the trained tokens."""
        prompt, completion = self.completion_text(tokenizer, messages)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        ids = list(prompt_ids) + list(completion_ids)
        if max_length is not None and len(ids) > max_length:
            raise ChatFormatError(f"the conversation is {len(ids)} tokens, over max_length {max_length}")
        mask = [False] * len(prompt_ids) + [True] * len(completion_ids)
        return EncodedChat(ids, mask, prompt, completion)

    def stop_token_ids(self, tokenizer: PreTrainedTokenizerBase) -> list[int]:
        """Token ids that end an assistant turn: ``<|im_end|>`` and the tokenizer's eos (Base models differ)."""
        ids = {tokenizer.convert_tokens_to_ids(END_OF_TURN)}
        if tokenizer.eos_token_id is not None:
            ids.add(tokenizer.eos_token_id)
        unk = getattr(tokenizer, "unk_token_id", None)
        return sorted(i for i in ids if i is not None and i != unk)
