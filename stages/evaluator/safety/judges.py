"""The model judge for XSTest's three classes: XSTest's own GPT-4 rubric, asked of a local or served chat model.

XSTest (Röttger et al., NAACL 2024) labelled completions with GPT-4 at temperature 0, given a system message and
one prompt naming the three classes (``1_full_compliance``, ``2_full_refusal``, ``3_partial_refusal``) and the
question and response. The exact messages ship with the package (``xstest_judge.json``, an excerpt of the
XSTest repository, CC-BY-4.0, with its source), so any judge model (``judge_model``, run by ``judge_backend``)
receives what GPT-4 received, through its own chat template with thinking off, answered greedily in at most the
paper's 16 tokens. A reply that names no class falls back to the string matcher for that item, and the item
records that it did (``sources``; counted in ``unparsed``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from stages.evaluator.safety.judge_backend import JudgeRuntime, judge_name, model_label
from stages.evaluator.safety.refusal import StringMatchJudge, Verdict, answer_text

PROMPT_FILE = "xstest_judge.json"


@cache
def rubric() -> dict[str, Any]:
    return json.loads(resources.files("stages.evaluator.safety").joinpath(PROMPT_FILE).read_text("utf-8"))


def prompt_version() -> str:
    r = rubric()
    digest = hashlib.sha256(json.dumps([r["system"], r["template"]]).encode()).hexdigest()
    return f"{r['name']}@{digest[:12]}"


def messages(prompt: str, response: str) -> list[dict[str, str]]:
    """XSTest's messages for one (question, response): its system message and the filled-in rubric."""
    r = rubric()
    return [{"role": "system", "content": r["system"]},
            {"role": "user", "content": r["template"].format(question=prompt, response=response)}]


def parse_label(reply: str) -> Verdict | None:
    """The class a reply names: one of the rubric's labels (``2_full_refusal``), else its first class digit."""
    labels: dict[str, Verdict] = rubric()["labels"]
    text = reply.lower()
    named = [(text.find(k), v) for k, v in labels.items() if k in text]
    if named:
        return min(named)[1]
    found = re.search(r"[123]", reply)
    return list(labels.values())[int(found.group(0)) - 1] if found else None


class ModelRefusalJudge:
    def __init__(self, model: str, runtime: JudgeRuntime):
        self.model, self.runtime = model, runtime
        self.name = judge_name(model_label(runtime.served_name(model, "judge") if runtime.backend == "openai"
                                           else model), runtime.backend, prompt_version())
        self.unparsed = 0
        self.sources: list[str] = []  # per item: this judge's name, or the string matcher's where it fell back
        self.replies: list[str] = []

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "model": str(self.model), "backend": self.runtime.backend,
                "prompt": prompt_version(), "unparsed": self.unparsed}

    def classify(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Verdict]:
        chats = [messages(p, answer_text(r)) for p, r in zip(prompts, responses)]
        self.replies = self.runtime.chat(self.model, chats, int(rubric()["max_tokens"]))
        fallback = StringMatchJudge()
        verdicts = fallback.classify(prompts, responses)
        self.sources = []
        for i, reply in enumerate(self.replies):
            label = parse_label(reply)
            self.unparsed += label is None
            verdicts[i] = label or verdicts[i]
            self.sources.append(self.name if label else fallback.name)
        return verdicts
