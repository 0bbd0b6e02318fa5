"""The project's own lm-eval tasks (YAML + loaders), loaded with ``--include_path`` semantics: the evaluator hands
this folder to lm-eval's ``TaskManager(include_path=...)``. They read local benchmark rows only (see
``fllm_loaders``); task names start with ``fllm_`` so they never shadow a harness task.
"""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent


def project_task_names() -> list[str]:
    """Names of the project's tasks, read from the YAML files without importing lm-eval."""
    names = []
    for path in sorted(TASKS_DIR.glob("*.yaml")):
        for line in path.read_text().splitlines():
            if line.startswith("task:"):
                names.append(line.split(":", 1)[1].strip())
                break
    return names
