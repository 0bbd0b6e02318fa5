"""QA grading exactly as GEM's QaEnv does it: extract, SQuAD-normalise, exact match against any alias.

Uses GEM's own functions (`gem.utils.parsing` extraction, `gem.utils.qa_em.em_check`); the extraction
(`<answer>` tag or last `\\boxed{}`) is the one the prompt template asked for. A response without an
answer is a `fail` with reason `no_answer` (GEM 0.1.0 crashes there; later GEM returns 0).
Pure Python and fast: no worker processes, no timeouts needed.
"""

from __future__ import annotations

from stages.envs.verdict import FAIL, Verdict


def grade_qa(response: str, answers: list[str], extract: str = "tag") -> Verdict:
    from stages.envs.gem_bridge import gem_module

    parsing = gem_module("gem.utils.parsing")
    em = gem_module("gem.utils.qa_em")
    if extract == "tag":
        extracted = parsing.extract_last_tagged_answer(response)
    elif extract == "boxed":
        extracted = parsing.extract_last_boxed_answer(response)
    else:
        raise ValueError(f"qa extract mode must be 'tag' or 'boxed', got {extract!r}")
    if extracted is None:
        return Verdict.failed(FAIL, reason="no_answer", extract=extract, extracted=None)
    if em.em_check(extracted, [str(a) for a in answers]):
        return Verdict.passed(extract=extract, extracted=extracted)
    return Verdict.failed(FAIL, reason="wrong_answer", extract=extract, extracted=extracted)
