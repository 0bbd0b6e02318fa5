"""The HarmBench classifier's prompt templates, read from the staged classifier folder itself.

Why from the folder: the classifier (``cais/HarmBench-Llama-2-13b-cls``, MIT) was trained on one fixed prompt, given
in its model card as a Python dict ``LLAMA2_CLS_PROMPT`` with a ``prompt`` and a ``prompt_contextual`` template
(``{behavior}``, ``{generation}``, ``{context}``), Llama-2 chat tokens ``[INST] <<SYS>> ... [/INST]`` inside the
text. Staging a model copies its card (``README.md``) with the weights, so the evaluator parses the dict out of the
card at run time and the prompt is the card's by construction; the project carries no copy of its own. A folder
may instead hold ``fllm_cls_prompt.json`` (the same two keys), which wins when present (a classifier whose card
lacks the dict). The prompt version recorded with every verdict is a hash of the two templates, so results made
with different prompts never pass for the same judge.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

PROMPT_FILE = "fllm_cls_prompt.json"
CARD_FILE = "README.md"
CARD_DICT = "LLAMA2_CLS_PROMPT"
KEYS = ("prompt", "prompt_contextual")


class ClassifierPromptError(ValueError):
    """The classifier folder has no usable prompt template."""


@dataclass(frozen=True)
class ClassifierPrompt:
    prompt: str
    prompt_contextual: str
    source: str  # the file the templates were read from

    @property
    def version(self) -> str:
        digest = hashlib.sha256(json.dumps([self.prompt, self.prompt_contextual]).encode()).hexdigest()
        return f"harmbench-cls@{digest[:12]}"

    def format(self, behavior: str, generation: str, context: str = "") -> str:
        """The card's usage: the contextual template when the behaviour has a context, else the plain one."""
        if context.strip():
            return self.prompt_contextual.format(behavior=behavior, generation=generation, context=context)
        return self.prompt.format(behavior=behavior, generation=generation)


def dict_in_card(text: str) -> dict[str, str]:
    """The ``LLAMA2_CLS_PROMPT = {...}`` literal of a model card, evaluated as a literal (never executed)."""
    start = text.find(CARD_DICT)
    brace = text.find("{", start) if start >= 0 else -1
    if brace < 0:
        raise ClassifierPromptError(f"the card has no {CARD_DICT} = {{...}} block")
    end = brace
    while (end := text.find("}", end + 1)) >= 0:  # the first closing brace that ends a valid literal
        try:
            found = ast.literal_eval(text[brace:end + 1])
        except (SyntaxError, ValueError):
            continue
        if isinstance(found, dict):
            return found
    raise ClassifierPromptError(f"the card's {CARD_DICT} block is not a Python dict literal")


def load_prompt(model_dir: str | Path) -> ClassifierPrompt:
    folder = Path(model_dir)
    own, card = folder / PROMPT_FILE, folder / CARD_FILE
    if own.is_file():
        templates, source = json.loads(own.read_text()), own
    elif card.is_file():
        templates, source = dict_in_card(card.read_text(encoding="utf-8")), card
    else:
        raise ClassifierPromptError(
            f"{folder} has neither its model card ({CARD_FILE}, staged with the weights) nor {PROMPT_FILE}: the "
            f"classifier's prompt comes from the card's {CARD_DICT} dict"
        )
    missing = [k for k in KEYS if not isinstance(templates.get(k), str)]
    if missing:
        raise ClassifierPromptError(f"{source} lacks the template(s) {', '.join(missing)}")
    for key, needs in (("prompt", ("{behavior}", "{generation}")),
                       ("prompt_contextual", ("{behavior}", "{generation}", "{context}"))):
        if not all(n in templates[key] for n in needs):
            raise ClassifierPromptError(f"{source}: template {key} must use {', '.join(needs)}")
    return ClassifierPrompt(templates["prompt"], templates["prompt_contextual"], str(source))
