"""The evaluator run: the suites a manifest asks for, in order, then ``results.json`` and the summary.

Order: the lm-eval phase (forgetting tiers; also the greedy records policy metrics need), policy (diversity run,
calibration, lengths), safety, target, and KL when a base model is given. Each phase is resumable (see
``session.py``). Outputs: ``results.json`` (validated against ``EvalResults``), ``samples/*.jsonl`` (per item),
``lm_eval/<call>/`` (lm-eval's own result and sample files) and ``summary.md``.
"""

from __future__ import annotations

import json
import time

from stages.core import RunContext, StageResult
from stages.core.results import EvalResults
from stages.envs.sandbox.gate import summary as isolation_summary
from stages.evaluator.session import Session
from stages.evaluator.summary import summary_markdown, summary_numbers


def run(ctx: RunContext) -> StageResult:
    from stages.evaluator.suites import kl, lm_tasks, policy, representations, safety, target

    session = Session(ctx)
    suites = session.results.suites
    try:
        if "forgetting" in suites or "policy" in suites:
            lm_tasks.run(session)
        if "policy" in suites:
            policy.run(session)
        if "safety" in suites:
            safety.run(session)
        if "target" in suites:
            target.run(session)
            kl.run(session)
        if "representations" in suites:
            representations.run(session)
        if "refusal_direction" in suites:
            from stages.evaluator.suites import refusal_direction

            refusal_direction.run(session)
        if "attacks" in suites:
            from stages.evaluator.suites import attacks

            attacks.run(session)
    finally:
        session.close()
    results = session.results
    results.created_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = results.model_dump_json(by_alias=True, indent=2)
    EvalResults.model_validate(json.loads(text))  # what the analyzer will read must validate
    (session.out / "results.json").write_text(text + "\n")
    (session.out / "samples").mkdir(exist_ok=True)
    isolation = isolation_summary()
    code = f"model-written code ran under isolation {isolation['isolation']}" if isolation else ""
    if isolation.get("unisolated_code_allowed"):
        code += " (NOT CONTAINED: allow_unisolated_code)"
    (session.out / "summary.md").write_text(summary_markdown(results) + (f"\n{code}\n" if code else ""))
    return StageResult(outputs={"results": "results.json", "samples": "samples"},
                       summary={**summary_numbers(results), **isolation})
