"""Where the reward function lives, and a check that it is really there, without importing it.

Why: verl loads the reward function from a *file path* inside Ray workers on every node, long after the GPUs are
busy; a wrong path or name would fail only then. So the stage resolves the path once (the project's GEM graders in
``stages/envs/verl_reward.py`` of the installed package, unless the manifest names another file), and checks that
the file exists and defines the function by parsing it, before anything is written. The native engine loads the
very same file through the same path, so both engines grade alike.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from stages.core.errors import InputError, NotImplementedYet

PROJECT_REWARD_MODULE = "stages.envs.verl_reward"
WHERE = "$.spec.params.reward_function"


def project_reward_path() -> Path:
    """The file of ``stages.envs.verl_reward`` in the installed package (found without importing it)."""
    try:
        spec = importlib.util.find_spec(PROJECT_REWARD_MODULE)
    except ModuleNotFoundError:
        spec = None
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise NotImplementedYet(
            f"the project's reward function {PROJECT_REWARD_MODULE} (stages/envs/verl_reward.py, "
            "compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs)) is not in this "
            "installation; set params.reward_function.path to a reward file"
        )
    return Path(spec.origin).resolve()


def check_reward_file(path: str | Path, name: str) -> Path:
    """Raise ``InputError`` unless ``path`` is a Python file that defines ``name`` at top level."""
    file = Path(path).expanduser()
    if not file.is_absolute():
        raise InputError(f"reward_function.path must be an absolute path (every Ray node loads it), got {path}", WHERE)
    if not file.is_file():
        raise InputError(f"reward function file {file} does not exist", WHERE + ".path")
    if file.suffix != ".py":
        raise InputError(f"reward function file {file} is not a .py file", WHERE + ".path")
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    except (SyntaxError, UnicodeDecodeError) as e:
        raise InputError(f"reward function file {file} is not valid Python: {e}", WHERE + ".path") from None
    defined = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.ImportFrom, ast.Import)):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
    if name not in defined:
        shown = ", ".join(sorted(d for d in defined if not d.startswith("_"))) or "nothing public"
        raise InputError(f"reward function file {file} defines no {name!r} (it defines {shown})", WHERE + ".name")
    return file.resolve()


def resolve_reward_path(path: str | None, name: str) -> Path:
    """The checked reward file: the manifest's, else the project's GEM graders."""
    return check_reward_file(path if path is not None else project_reward_path(), name)
