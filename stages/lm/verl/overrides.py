"""Hydra override strings for verl, from plain Python values: one renderer for every verl stage.

Why one renderer: the overrides are the whole contract with verl, recorded verbatim in the manifest and composed
against verl's config before a run, so a path with a space, a comma or a quote, a string that looks like a number,
a list or a nested dict must render the same way in every stage. Strings are quoted unless they are plain words or
paths; keys verl's YAML does not declare get Hydra's ``+``. ``malformed`` checks a manifest's raw
``extra_overrides`` before anything is composed, and ``attention`` picks the training attention kernel.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable
from typing import Any

_PLAIN = re.compile(r"^[A-Za-z0-9_./:@-]+$")
OVERRIDE_PATTERN = re.compile(r"^[+~]{0,2}[A-Za-z_][A-Za-z0-9_.]*=.*$", re.DOTALL)


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def render_value(value: Any) -> str:
    """A value in Hydra's override grammar; strings are quoted unless they are plain words or paths."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(render_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{render_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in ("null", "true", "false") and not _looks_numeric(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render(values: dict[str, Any], new_keys: Iterable[str] = (), extra: Iterable[str] = ()) -> list[str]:
    """``key=value`` strings (``+key=value`` for the keys verl's YAML lacks), then the raw extras, in order."""
    new = set(new_keys)
    out = [f"{'+' if key in new else ''}{key}={render_value(value)}" for key, value in values.items()]
    return out + list(extra)


def override_keys(overrides: Iterable[str]) -> dict[str, str]:
    """``{key: raw value}`` of an override list (``+``/``~`` dropped), for tests and the manifest."""
    out = {}
    for item in overrides:
        key, _, value = item.partition("=")
        out[key.lstrip("+~")] = value
    return out


def malformed(extra: Iterable[str], field: str = "verl.extra_overrides") -> list[str]:
    """A problem for every raw override that is not ``key=value`` in Hydra's grammar."""
    return [f"{field} item {item!r} is not a Hydra override `key=value`" for item in extra
            if not OVERRIDE_PATTERN.match(item)]


def attention(requested: str, cpu: bool = False) -> str:
    """flash-attention 2 only where it can run (a GPU with the ``flash-attn`` package), else sdpa."""
    if cpu:
        return "sdpa"
    if requested == "auto":
        return "flash_attention_2" if importlib.util.find_spec("flash_attn") is not None else "sdpa"
    return requested
