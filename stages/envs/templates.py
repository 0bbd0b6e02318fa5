"""The project's own, versioned prompt templates (GEM ships none: its `qwen3_general`/`code` live in examples).

A template turns a raw dataset question into chat messages. The Qwen3 chat template itself is applied
later by the tokenizer; thinking mode reaches it as `enable_thinking` (see `chat_template_kwargs`), the
same for BASE and SAFE models. The wording differs slightly with thinking on: the reasoning then happens
in the think block, so the visible answer is asked to be short.

QA follows GEM's QaEnv convention of an `<answer>` tag by default (`qwen3-v1`); `qwen3-v1-boxed` asks
for `\\boxed{}` instead, and the grader extracts whichever the template asked for. Never edit a
published version: add a new one, so a manifest naming a version always means the same prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

from stages.envs.errors import TemplateError, UnknownEnvError
from stages.envs.registry import DOMAINS

_MATH_OFF = "{question}\n\nPlease reason step by step, and put your final answer within \\boxed{}."
_MATH_ON = "{question}\n\nPut your final answer within \\boxed{}."
_CODE_OFF = (
    "{question}\n\nWrite a Python 3 program that solves the problem above. It must read the input from "
    "standard input and print the answer to standard output. Reason step by step first, then give the "
    "complete program in a single ```python code block at the end of your answer."
)
_CODE_ON = (
    "{question}\n\nWrite a Python 3 program that solves the problem above. It must read the input from "
    "standard input and print the answer to standard output. Give the complete program in a single "
    "```python code block."
)
_QA_TAG_OFF = (
    "Answer the question below. Think it through briefly, then give only the final short answer inside "
    "<answer> and </answer> tags, for example <answer>Paris</answer>.\n\nQuestion: {question}"
)
_QA_TAG_ON = (
    "Answer the question below. Give only the final short answer inside <answer> and </answer> tags, "
    "for example <answer>Paris</answer>.\n\nQuestion: {question}"
)
_QA_BOX_OFF = (
    "Answer the question below. Think it through briefly, then give only the final short answer within "
    "\\boxed{}, for example \\boxed{Paris}.\n\nQuestion: {question}"
)
_QA_BOX_ON = (
    "Answer the question below. Give only the final short answer within \\boxed{}, for example "
    "\\boxed{Paris}.\n\nQuestion: {question}"
)


@dataclass(frozen=True)
class Template:
    version: str
    qa_extract: str  # "tag" or "boxed": how the QA grader finds the answer
    user: dict[tuple[str, bool], str]  # (domain, thinking) -> text with a {question} slot
    system: str | None = None


TEMPLATES: dict[str, Template] = {
    t.version: t
    for t in (
        Template(
            "qwen3-v1",
            "tag",
            {("math", False): _MATH_OFF, ("math", True): _MATH_ON, ("code", False): _CODE_OFF,
             ("code", True): _CODE_ON, ("qa", False): _QA_TAG_OFF, ("qa", True): _QA_TAG_ON},
        ),
        Template(
            "qwen3-v1-boxed",
            "boxed",
            {("math", False): _MATH_OFF, ("math", True): _MATH_ON, ("code", False): _CODE_OFF,
             ("code", True): _CODE_ON, ("qa", False): _QA_BOX_OFF, ("qa", True): _QA_BOX_ON},
        ),
    )
}
DEFAULT_TEMPLATE = "qwen3-v1"


def get_template(version: str) -> Template:
    try:
        return TEMPLATES[version]
    except (KeyError, TypeError):
        raise TemplateError(f"unknown template version {version!r}; known: {', '.join(TEMPLATES)}") from None


def build_messages(
    domain: str, question: str, *, template: str = DEFAULT_TEMPLATE, thinking: bool = False
) -> list[dict[str, str]]:
    """Chat messages for one question: an optional system turn, then the user turn."""
    if domain not in DOMAINS:
        raise UnknownEnvError(f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}")
    tpl = get_template(template)
    text = tpl.user[(domain, bool(thinking))].replace("{question}", str(question).strip())
    messages = [{"role": "system", "content": tpl.system}] if tpl.system else []
    return messages + [{"role": "user", "content": text}]


def chat_template_kwargs(thinking: bool) -> dict[str, bool]:
    """Keyword arguments for `tokenizer.apply_chat_template` that select Qwen3's thinking mode."""
    return {"enable_thinking": bool(thinking)}


def qa_extract_mode(template: str = DEFAULT_TEMPLATE) -> str:
    return get_template(template).qa_extract
