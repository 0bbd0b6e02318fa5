"""Everything that touches the `gem` package directly, with GEM 0.1.0's known traps handled.

Traps (see reference/gem.md): the wheel misses runtime dependencies (we check and name them);
`import gem` reconfigures the root logger (we restore it); `gem.make` downloads from the Hub unless
given a `dataset=` object (we always pass one); CodeEnv asserts its `dataset_name` contains
"codecontest" (we keep the registered name, which does); QaEnv 0.1.0 crashes with UnboundLocalError
on a response without an `<answer>` tag (`gem_step` turns that into reward 0, as GEM's later fix does);
vector envs auto-reset and lose the answer (we never step vector envs: each item carries its ground
truth, and `gem_env_for_item` builds a single env set to that item's state).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from typing import Any

_IMPORT_LOCK = threading.Lock()
RUNTIME_DEPS = {
    "gem": "gem-llm==0.1.0 (install with --no-deps)",
    "datasets": "datasets",
    "pylatexenc": "pylatexenc",
    "requests": "requests",
    "sympy": "sympy",
    "math_verify": "math-verify[antlr4_9_3]",
    "latex2sympy2_extended": "latex2sympy2_extended[antlr4_9_3]",
    "reasoning_gym": "reasoning-gym==0.1.23",
    "nltk": "nltk==3.9.1",
    "msgspec": "msgspec==0.19.0",
}


def missing_gem_dependencies() -> list[str]:
    """Requirement strings for GEM runtime dependencies that are not importable here."""
    return [req for mod, req in RUNTIME_DEPS.items() if importlib.util.find_spec(mod) is None]


def import_gem():
    """`import gem`, with a clear error for missing dependencies and the root logger left as it was."""
    missing = missing_gem_dependencies()
    if missing:
        raise ImportError("GEM cannot be used: missing packages: " + ", ".join(missing))
    with _IMPORT_LOCK:
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        import gem

        root.handlers[:] = handlers
        root.setLevel(level)
    return gem


def gem_module(name: str):
    """A module of the gem package (e.g. "gem.utils.parsing"), imported through `import_gem`."""
    import_gem()
    return importlib.import_module(name)


def gem_file_path(relative: str) -> str:
    """Path of a file inside the installed gem package, without importing it (for worker processes)."""
    spec = importlib.util.find_spec("gem")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("gem-llm==0.1.0 is not installed (pip install --no-deps gem-llm==0.1.0)")
    return f"{next(iter(spec.submodule_search_locations))}/{relative}"


def make_gem_env(env_id: str, dataset: Any, **kwargs: Any):
    """The real GEM env for `env_id`, built on an in-memory `datasets.Dataset` (never the Hub).

    Math envs default to `use_mp=False` (no per-env process pool; GEM's SIGALRM timeout then needs the
    main thread). The registered `dataset_name` is kept: CodeEnv's grader asserts it names a known set.
    """
    from stages.envs.registry import env_spec

    spec = env_spec(env_id)
    gem = import_gem()
    if spec.domain == "math":
        kwargs.setdefault("use_mp", False)
    kwargs.setdefault("seed", 0)
    return gem.make(env_id, dataset=dataset, **kwargs)


def gem_step(env: Any, action: str) -> tuple[float, dict]:
    """`env.step(action)` returning (reward, info), with QaEnv 0.1.0's missing-tag crash read as reward 0."""
    try:
        _obs, reward, _term, _trunc, info = env.step(action)
    except UnboundLocalError:
        if type(env.unwrapped).__name__ != "QaEnv":
            raise
        return 0.0, {"correct": False}
    return float(reward), dict(info)


def gem_env_for_item(env: Any, item: Any) -> Any:
    """Point a single GEM env at `item` (question + ground truth) so `gem_step` grades against it."""
    raw = env.unwrapped
    gt = item.ground_truth
    if item.domain == "code":
        raw.set_state({"first_obs": item.question, "tests": gt["tests"]})
    elif item.domain == "qa":
        raw.set_state({"first_obs": item.question, "answer": gt["answers"]})
    else:
        raw.set_state({"first_obs": item.question, "answer": gt["answer"]})
    return env
