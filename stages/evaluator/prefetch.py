"""Fill the Hugging Face datasets cache with the lm-eval tasks a study will evaluate, on a node with internet.

Compute nodes are offline: lm-eval's harness tasks (mmlu, arc_challenge, ...) read their data from the HF datasets
cache there (``HF_HOME``/``HF_DATASETS_CACHE`` on shared scratch, with ``HF_DATASETS_OFFLINE=1`` set by the stage).
Loading each task once here, online, downloads exactly what the offline runs will read.

``python -m stages.evaluator.prefetch --tiers A,B`` or ``--tasks mmlu,ifeval`` (``--benchmarks DIR`` for the
project's own tasks, which read local rows and download nothing).
"""

from __future__ import annotations

import argparse

from stages.evaluator.lmeval.catalog import tier_tasks


def prefetch(names: list[str], benchmarks: str | None = None) -> dict[str, int]:
    """Load every task (downloading its data when online) and return the number of documents per leaf task.

    Code tasks are loaded as the sandbox scores them, which needs only their data (lm-eval's own code metric would
    also fetch HF's code_eval and run a program in this process)."""
    from stages.evaluator.codeexec.tasks import task_specs
    from stages.evaluator.lmeval import runner

    manager = runner.make_task_manager(names, benchmarks)
    tasks = runner.load_tasks(manager, names, task_specs(manager, names, allow_unsafe_code=False))
    return dict(sorted(tasks.sizes.items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiers", default="", help="Comma-separated tiers (A, B, C) of the catalog.")
    parser.add_argument("--tasks", default="", help="Comma-separated lm-eval task names.")
    parser.add_argument("--benchmarks", default=None, help="Folder of local rows for the project's tasks.")
    args = parser.parse_args(argv)
    names = [t for t in args.tasks.split(",") if t] + tier_tasks([t for t in args.tiers.split(",") if t])
    if not names:
        parser.error("name --tiers or --tasks")
    for leaf, n in prefetch(list(dict.fromkeys(names)), args.benchmarks).items():
        print(f"{leaf:<48} {n}")


if __name__ == "__main__":
    main()
