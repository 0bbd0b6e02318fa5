"""The direction file a SAFE baseline's run writes (``refusal_direction.safetensors`` in its output folder) and
every later checkpoint's run reads (``refusal_direction.base_direction``).

It holds the base's differences in means at every layer and post-instruction position (``candidates``, float32,
layers x positions x width: what the per-layer cosines compare against), the chosen direction (``direction``, the
un-normalised difference at the chosen position and layer: activation addition adds it as is), and, in the
safetensors metadata, everything a reader must check before trusting it: the chosen position and layer, the
instruction sets' digests and settings, the base's mean projections of the harmful eval prompts and its refusal
numbers. Safetensors because its header is plain JSON: the evaluator's preflight reads the shapes and the settings
without torch and refuses a file of the wrong width or from other instruction sets before anything runs.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

FILE_NAME = "refusal_direction.safetensors"
FORMAT = "forgetting-llms/refusal-direction/v1"


def write(path: Path, candidates: Any, direction: Any, info: dict[str, Any]) -> Path:
    """Write the file atomically (temp file + rename)."""
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    save_file({"candidates": candidates.float().contiguous(), "direction": direction.float().contiguous()},
              str(tmp), metadata={"format": FORMAT, "info": json.dumps(info)})
    tmp.replace(path)
    return path


def header(path: str | Path) -> tuple[dict[str, list[int]], dict[str, Any]]:
    """(tensor name -> shape, info) from the file's header, without torch; ValueError when it is not such a file."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            if size > 100_000_000:
                raise ValueError("header too large")
            doc = json.loads(f.read(size))
    except (OSError, struct.error, ValueError) as e:
        raise ValueError(f"{p} is not a safetensors file ({e.__class__.__name__}: {e})") from None
    meta = doc.pop("__metadata__", None) or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{p} is not a refusal-direction file (format {meta.get('format')!r}, expected {FORMAT})")
    shapes = {k: list(v.get("shape", [])) for k, v in doc.items()}
    if set(shapes) != {"candidates", "direction"}:
        raise ValueError(f"{p} holds tensors {sorted(shapes)}, expected candidates and direction")
    return shapes, json.loads(meta["info"])


def read(path: str | Path) -> tuple[Any, Any, dict[str, Any]]:
    """(candidates, direction, info) as float32 CPU tensors."""
    from safetensors import safe_open

    _, info = header(path)
    with safe_open(str(path), framework="pt") as f:
        return f.get_tensor("candidates"), f.get_tensor("direction"), info


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()
