"""What ``study plan`` and ``study check`` print about a plan's memory and cost, and the verdicts ``check`` acts on.

Why one place: both commands show the same numbers (each trainer run's peak GPU memory, GPU-hours per stage beside
the ceiling), ``check`` also refuses runs that cannot fit, and ``--budget`` refuses a plan whose estimate exceeds
it. Runs with the same stage, shape and setup share one line (phase 1's math seeds are one line, not three).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from stages.study.costing.cards import Card, card
from stages.study.costing.cost import RunCost, estimate_plan
from stages.study.costing.memory import Verdict, smallest_fits, verdict, vllm_problem
from stages.study.costing.setups import engine_of, params_of, shape_of, train_setup
from stages.study.dag import Plan


VLLM_DEFAULT_UTILIZATION = 0.9  # stages.lm.generation's vLLM backend default (the collector sets none)
PROMPT_ROOM = 1024  # tokens of prompt a collector's sequence may need beside its new tokens
EVAL_SEQUENCE = 4096  # the longest evaluation sequence vLLM must hold (few-shot prompts and a long answer)


@dataclass
class MemoryRow:
    stage: str
    run_ids: list[str]
    verdict: Verdict | None = None
    problem: str | None = None  # why it cannot run (does not fit; vLLM cannot hold the model)
    fits_with: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def message(self) -> str:
        if self.ok:
            return self.verdict.line() if self.verdict else ""
        hint = "; ".join(self.fits_with) if self.fits_with else "nothing the model knows of"
        return f"memory: {self.problem}; fits with: {hint}"


@dataclass
class Assessment:
    card: Card
    total_gib: float | None
    costs: list[RunCost]
    memory: list[MemoryRow]

    @property
    def gpu_hours(self) -> float:
        return sum(c.gpu_hours for c in self.costs)

    @property
    def ceiling(self) -> float:
        return sum(c.ceiling for c in self.costs)

    def failing(self) -> dict[str, str]:
        """run id -> the memory problem, for every run that cannot run on the GPUs it asks for."""
        return {rid: row.message() for row in self.memory if not row.ok for rid in row.run_ids}


def profile_card(profile) -> tuple[Card, float | None]:
    """The profile's card and its memory override (None: the table's)."""
    return card(getattr(profile, "gpu_card", None)), getattr(profile, "gpu_memory_gib", None)


def cards_by_cluster() -> dict[str, list[str]]:
    """card name -> cluster profiles that have it (for 'fits on a bigger card' hints)."""
    from stages.study.profiles import known_profiles, load_profile

    out: dict[str, list[str]] = defaultdict(list)
    for name in known_profiles():
        try:
            p = load_profile(name)
        except Exception:
            continue
        if p.gpu_card and name != "local":
            out[p.gpu_card].append(name)
    return dict(out)


def _memory(plan: Plan, c: Card, total_gib: float | None, per_node_max: int) -> list[MemoryRow]:
    rows: dict[tuple, MemoryRow] = {}
    bigger = None
    for run in plan.runs.values():
        x = train_setup(run)
        if x is not None:
            key: tuple = ("train", run.stage, x)
            if key not in rows:
                v = verdict(x, c, total_gib)
                row = MemoryRow(run.stage, [], v)
                if not v.fits:
                    bigger = bigger if bigger is not None else cards_by_cluster()
                    row.problem = (f"needs {v.estimate.peak_gib:.1f} GiB/GPU at {v.estimate.peak_phase} "
                                   f"({v.estimate.breakdown()}), {c.name} allows {v.usable_gib:.1f}")
                    row.fits_with = smallest_fits(x, c, per_node_max, total_gib, bigger)
                elif x.generation is not None and x.generation.utilization:
                    g = x.generation
                    row.problem = vllm_problem(x.shape, g.utilization, g.tensor_parallel, c, g.seq_len, total_gib)
                    if row.problem:
                        row.fits_with = ["a larger vLLM share (gpu_memory_utilization) or tensor parallelism"]
                rows[key] = row
            rows[key].run_ids.append(run.run_id)
            continue
        problem = _vllm(run, c, total_gib)
        if problem:
            rows.setdefault(("vllm", run.stage, problem), MemoryRow(run.stage, [], None, problem)).run_ids.append(
                run.run_id)
    return list(rows.values())


def _vllm(run, c: Card, total_gib: float | None) -> str | None:
    """Collector and evaluator runs on vLLM: can the model's weights sit in vLLM's share of the GPUs?"""
    if run.stage not in ("collector", "evaluator") or run.gpus < 1 or engine_of(run) != "vllm":
        return None
    p = params_of(run)
    s = shape_of(run)
    if p is None or s is None or (run.stage == "collector" and p.mode != "generate"):
        return None
    util = getattr(p, "gpu_memory_utilization", VLLM_DEFAULT_UTILIZATION)
    seq = EVAL_SEQUENCE if run.stage == "evaluator" else PROMPT_ROOM + p.sampling.max_new_tokens
    world = run.gpus * int(run.resources.get("nodes", 1))
    return vllm_problem(s, util, world, c, seq, total_gib)


def assess(plan: Plan, profile) -> Assessment:
    c, total = profile_card(profile)
    per_node = getattr(profile, "max_gpus_per_node", None) or 4
    return Assessment(c, total, estimate_plan(plan, c), _memory(plan, c, total, per_node))


def render_memory(a: Assessment) -> str:
    usable = a.card.usable_gib(a.total_gib)
    lines = [f"peak GPU memory per trainer run (memory model; {a.card.name}, {usable:.1f} GiB usable per GPU):"]
    width = max((len(r.run_ids[0]) for r in a.memory), default=10) + 12
    for r in a.memory:
        state = "FAIL" if not r.ok else ("TIGHT" if r.verdict and r.verdict.tight else "ok")
        more = f" (+{len(r.run_ids) - 1} alike)" if len(r.run_ids) > 1 else ""
        lines.append(f"  {state:<5} {r.stage:<13} {(r.run_ids[0] + more):<{width}} {r.message()}")
    if len(lines) == 1:
        lines.append("  (no GPU trainer runs)")
    return "\n".join(lines)


def render_costs(a: Assessment, budget: float | None = None) -> str:
    by: dict[str, list[RunCost]] = defaultdict(list)
    for cost in a.costs:
        by[cost.group].append(cost)
    w = max([13, *(len(g) for g in by)])
    lines = [f"estimated GPU-hours on {a.card.name} (from bench/results rates; the ceiling is GPUs x time limit):",
             f"  {'stage':<{w}} {'runs':>5} {'estimate':>9} {'ceiling':>9}"]
    for group, costs in by.items():
        lines.append(f"  {group:<{w}} {len(costs):>5} {sum(c.gpu_hours for c in costs):>9.1f} "
                     f"{sum(c.ceiling for c in costs):>9.1f}")
    if any(g.startswith("evaluator:") for g in by):
        lines.append("  (evaluator:attacks and evaluator:refusal_direction: rates measured on one H100 at 4B times "
                     "estimates of their token counts; attacks counted to their last step, an upper bound: "
                     "stages/study/costing/safety.py)")
    lines.append(f"  {'total':<{w}} {len(a.costs):>5} {a.gpu_hours:>9.1f} {a.ceiling:>9.1f}"
                 + (f"   (budget {budget:g})" if budget is not None else ""))
    shared = [c for c in a.costs if c.shared]
    if shared:
        lines.append(f"  of which {len(shared)} shared runs, {sum(c.gpu_hours for c in shared):.1f} GPU-h: under the "
                     "shared root, done once for every study that plans the same spec")
    over = [c for c in a.costs if c.hours > c.limit_hours]
    if over:
        names = ", ".join(f"{c.run_id} ({c.hours:.1f} h)" for c in over[:3]) + (" ..." if len(over) > 3 else "")
        lines.append(f"  {len(over)} run(s) are estimated past their time limit and rely on requeues: {names}")
    return "\n".join(lines)


def over_budget(a: Assessment, budget: float | None) -> str | None:
    if budget is None or a.gpu_hours <= budget:
        return None
    return (f"the estimate, {a.gpu_hours:.1f} GPU-hours, exceeds --budget {budget:g} GPU-hours (the ceiling, GPUs x "
            f"time limit, is {a.ceiling:.1f}); cut runs, seeds or suites, or raise the budget")
