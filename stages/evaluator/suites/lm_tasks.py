"""The forgetting suite: the selected lm-eval tiers or tasks, greedily, with every item's correctness kept.

Items are pinned through lm-eval's ``samples`` (explicit indices, the first ``limit``, or a seeded subset), so every
checkpoint of a study scores the same documents. With Qwen3 thinking on, the log-likelihood tasks run in a call of
their own with thinking off (lm-eval's HF backend refuses them otherwise; the methods reference wants it anyway).
Against a base (``base_results``) it adds sample-level forgetting per task and overall. Code tasks generate and
filter as lm-eval does; their programs run in the project's sandbox (``codeexec``), in lm-eval's own process only
with ``allow_unsafe_code``.
"""

from __future__ import annotations

from stages.core.errors import InputError
from stages.evaluator.codeexec.tasks import in_process_code_eval, runs_code_in_process, task_specs
from stages.evaluator.comparison import forgetting_rows, load_results
from stages.evaluator.items import ItemRecord
from stages.evaluator.lmeval import runner
from stages.evaluator.lmeval.catalog import info
from stages.evaluator.metrics.transitions import ItemSubsetMismatch
from stages.evaluator.protocol import lm_eval_tasks
from stages.evaluator.session import Session, gen_kwargs, scores_from

PHASE = "lm_eval"


def load(session: Session, names: list[str]) -> runner.TaskSet:
    """Load ``names``; lm-eval's code tasks are scored in the sandbox unless ``allow_unsafe_code`` (see codeexec)."""
    unsafe = session.params.allow_unsafe_code
    manager = runner.make_task_manager(names, session.benchmarks,
                                       {"fllm_harmbench_split": session.params.harmbench_split})
    try:
        specs = task_specs(manager, names, unsafe)
        with in_process_code_eval(unsafe and any(runs_code_in_process(manager, n) for n in names)):
            return runner.load_tasks(manager, names, specs)
    except (runner.UnknownTask, ValueError) as e:
        raise InputError(str(e), "$.spec.params.tasks") from None


def settings(session: Session, sampling=None, repeats: int | None = None, max_new_tokens: int | None = None):
    p = session.params
    return runner.CallSettings(
        apply_chat_template=p.apply_chat_template,
        fewshot_as_multiturn=p.fewshot_as_multiturn,
        num_fewshot=p.num_fewshot,
        seed=session.ctx.runtime.seed,
        gen_kwargs=gen_kwargs(sampling or p.greedy, max_new_tokens),
        repeats=repeats,
        confirm_run_unsafe_code=p.allow_unsafe_code,
    )


def run_tasks(session: Session, call: str, tasks: runner.TaskSet, items: dict[str, list[int]],
              call_settings: runner.CallSettings) -> dict[str, list[ItemRecord]]:
    """Run ``tasks`` (split by kind when thinking is on), save the records, add the score rows."""
    thinking = session.ctx.runtime.thinking
    names = list(tasks.groups)
    batches = [(call, names, thinking)]
    if thinking:
        mc = [n for n in names if tasks.kind_of(n) == "mc"]
        gen = [n for n in names if n not in mc]
        batches = [(f"{call}-mc", mc, False), (f"{call}-gen", gen, True)]
    records: dict[str, list[ItemRecord]] = {}
    for name, subset, think in batches:
        if not subset:
            continue
        part, res = session.lmeval(name, tasks.subset(subset), items, call_settings, think)
        for leaf, recs in part.items():
            session.save_records(leaf, recs)
        records.update(part)
        session.results.scores.extend(scores_from(res, subset, part))
    return records


def run(session: Session) -> None:
    p = session.params
    if session.phase(PHASE):
        names = lm_eval_tasks(p)
        tasks = load(session, names)
        defaults = {leaf: info(leaf).subset for leaf in tasks.leaves}
        try:
            items, how = runner.select_items(tasks.sizes, p.limit, p.subset_seed, p.samples, defaults)
        except ValueError as e:
            raise InputError(str(e), "$.spec.params.samples") from None
        session.results.item_selection.update(how)
        run_tasks(session, "forgetting", tasks, items, settings(session))
        session.results.task_groups.update(tasks.groups)
        session.finish(PHASE)
    if "forgetting" in session.results.suites and session.phase("forgetting_vs_base"):
        compare(session)
        session.finish("forgetting_vs_base")


def compare(session: Session) -> None:
    """Sample-level forgetting against ``base_results`` (noise flip rate from ``base_rerun_results``)."""
    inputs = session.ctx.inputs
    if "base_results" not in inputs:
        return
    base = load_results(inputs["base_results"].path, "base_results")
    rerun = load_results(inputs["base_rerun_results"].path, "base_rerun_results") \
        if "base_rerun_results" in inputs else None
    groups = session.results.task_groups
    current = {leaf: session.records(leaf) for leaves in groups.values() for leaf in leaves}
    try:
        session.results.forgetting.extend(forgetting_rows(current, groups, base, rerun))
    except ItemSubsetMismatch as e:
        raise InputError(str(e), "$.spec.inputs.base_results") from None
    session.results.labels.base_run_id = session.results.labels.base_run_id or base.results.run_id


def compare_flat(session: Session, tasks: list[str]) -> None:
    """Per-task transitions (no overall row) for tasks outside the lm-eval phase (safety, target), when the base
    has records for them."""
    inputs = session.ctx.inputs
    if "base_results" not in inputs:
        return
    base = load_results(inputs["base_results"].path, "base_results")
    present = [t for t in tasks if t in base.results.samples_files]
    if not present:
        return
    current = {t: session.records(t) for t in present}
    try:
        rows = forgetting_rows(current, {t: [t] for t in present}, base, None, overall=False)
    except ItemSubsetMismatch as e:
        raise InputError(str(e), "$.spec.inputs.base_results") from None
    session.results.forgetting.extend(rows)
