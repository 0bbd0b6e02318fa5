"""The README's two tables: the memory model's verdicts for full fine-tuning at the study's sizes on 1, 2 and 4
GPUs of 40 and 80 GB, and the cost model's estimate of each shipped phase beside the plan's budget.

Why a command: the README's tables are this output pasted (``python -m stages.study.costing.table``, ``--phases``),
so they change only when the models or the study files do. The memory setup is the sft-trainer's default
(8,192-token micro-batches, activation checkpointing, bf16 over fp32 masters, AdamW, no offload) on each engine.
"""

from __future__ import annotations

import argparse

from stages.study.costing.cards import CARDS
from stages.study.costing.memory import TrainSetup, verdict
from stages.study.costing.shapes import SHAPES

SIZES = ("1.7B", "4B", "8B", "14B")
GPUS = (1, 2, 4)
TABLE_CARDS = ("A100-40GB", "H100-80GB")


def cell(size: str, engine: str, gpus: int, card: str) -> str:
    v = verdict(TrainSetup("sft-trainer", engine, SHAPES[size], gpus, micro_tokens=8192), CARDS[card])
    state = "**no**" if not v.fits else ("tight" if v.tight else "fits")
    return f"{state} {v.estimate.peak_gib:.1f}"


def table(engines: tuple[str, ...] = ("verl", "native")) -> str:
    heads = [f"{g} x {CARDS[c].name.split('-')[1]}" for c in TABLE_CARDS for g in GPUS]
    lines = ["| model | engine | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(heads)]
    for size in SIZES:
        for engine in engines:
            cells = [cell(size, engine, g, c) for c in TABLE_CARDS for g in GPUS]
            lines.append(f"| {size} | {engine} | " + " | ".join(cells) + " |")
    usable = ", ".join(f"{CARDS[c].name} {CARDS[c].usable_gib():.1f}" for c in TABLE_CARDS)
    lines.append("")
    lines.append(f"Peak GiB per GPU (usable: {usable}); tight = within the model's 15% error of the card.")
    return "\n".join(lines)


# GPU-hours per phase in the plan's compute budget (../shared/seed-plan.md, "Compute Budget Summary"); its phase 0
# (data generation and tests: the teacher collections) budgets 80.
PLAN_BUDGET = {"phase1": 180, "phase2": 180, "phase3": 336}
PHASES = ("phase1", "phase2", "phase3", "phase1-sweep")
PHASE_CLUSTERS = ("local", "mila")  # H100-80GB (the GPU box), A100-80GB (the plan's cluster)


def phases(names: tuple[str, ...] = PHASES, clusters: tuple[str, ...] = PHASE_CLUSTERS) -> str:
    """Estimated GPU-hours of each shipped phase per cluster card, the shared runs among them, and the ceiling
    (with $SCRATCH unset, so that shapes come from the size labels)."""
    from stages.study.costing.report import assess
    from stages.study.definition import load_study
    from stages.study.planner import plan_study
    from stages.study.profiles import load_profile

    profiles = [load_profile(c) for c in clusters]
    heads = [f"estimate, {p.gpu_card} ({p.name})" for p in profiles]
    lines = ["| study | runs | " + " | ".join(heads) + " | of which shared runs | ceiling | plan's budget |",
             "|---|---|" + "---|" * (len(heads) + 3)]
    for name in names:
        plan = plan_study(load_study(name), "/runs", profiles[0].name, check_paths=False)
        found = [assess(plan, p) for p in profiles]
        shared = sum(c.gpu_hours for c in found[0].costs if c.shared)
        cells = " | ".join(f"{a.gpu_hours:.0f}" for a in found)
        lines.append(f"| {name} | {len(plan.runs)} | {cells} | {shared:.0f} | {found[0].ceiling:.0f} | "
                     f"{PLAN_BUDGET.get(name, '-')} |")
    lines.append("")
    lines.append("GPU-hours. Shared runs (teacher collections, the untrained models' evaluations) are planned once for")
    lines.append(f"every phase and counted in each row (their share: on {profiles[0].gpu_card}).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", action="append", choices=("verl", "native"), help="Engines (default both).")
    parser.add_argument("--phases", action="store_true", help="The shipped phases' estimates instead.")
    args = parser.parse_args(argv)
    if args.phases:
        import os

        os.environ.pop("SCRATCH", None)  # planning for the clusters: shapes from the size labels, not local folders
    print(phases() if args.phases else table(tuple(args.engine) if args.engine else ("verl", "native")))


if __name__ == "__main__":
    main()
