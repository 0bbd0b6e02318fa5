"""Small dictionary helpers shared by the study loader and the planner: deep merge and dotted-key assignment.

Study files describe parameters as partial nested dicts (``{optim: {lr: 5e-5}}``) and sweeps as dotted keys
(``optim.lr``); the planner layers them over each other in a fixed order, so these two operations must be exact and
must never mutate their inputs.
"""

from __future__ import annotations

import copy
from typing import Any


def deep_merge(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """Merge dicts left to right; nested dicts merge, anything else (lists included) is replaced."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = deep_merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


def set_dotted(target: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``target`` with ``a.b.c`` set to ``value``."""
    out = copy.deepcopy(target)
    node = out
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = copy.deepcopy(value)
    return out


def get_dotted(source: dict[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = source
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def is_subset(small: Any, big: Any) -> bool:
    """True when every key of ``small`` is in ``big`` with an equal value (recursively); lists compare whole."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and is_subset(v, big[k]) for k, v in small.items())
    return small == big
