"""Reading the weight matrices of two checkpoints one pair at a time, straight from their safetensors files.

Why streaming: the weight-delta analysis needs W_base and W_post of one matrix at a time, never two whole models in
memory; safetensors maps each tensor from disk on request, so a 14B pair costs two matrices of device memory, and
the analysis can resume at any matrix. Matrices are named by decoder layer and module (``layers.3.mlp.down_proj``
-> layer 3, module ``mlp.down_proj``); weights outside the decoder blocks (``embed_tokens``, ``lm_head``) have no
layer. One-dimensional weights (norms) are not matrices and are left out. Checkpoints in PyTorch's ``.bin`` format
are not read: the project's trainers write safetensors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.(.+)\.weight$")


@dataclass(frozen=True)
class Matrix:
    name: str  # the tensor's name in both checkpoints
    layer: int | None
    module: str


def module_of(name: str) -> tuple[int | None, str]:
    m = LAYER.search(name)
    if m:
        return int(m.group(1)), m.group(2)
    stem = re.sub(r"\.weight$", "", name)
    return None, re.sub(r"^(model\.)+", "", stem)


def weight_files(folder: Path) -> dict[str, Path]:
    """Tensor name -> the safetensors file holding it."""
    from safetensors import safe_open

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return {k: folder / v for k, v in json.loads(index.read_text())["weight_map"].items()}
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ValueError(f"{folder} has no safetensors weights (the weight-delta analysis reads only safetensors)")
    out = {}
    for f in files:
        with safe_open(str(f), framework="pt") as handle:
            out.update({k: f for k in handle.keys()})
    return out


def _shape(files: dict[str, Path], name: str) -> list[int]:
    from safetensors import safe_open

    with safe_open(str(files[name]), framework="pt") as handle:
        return list(handle.get_slice(name).get_shape())


def _wanted(m: Matrix, modules: Sequence[str] | None) -> bool:
    return modules is None or any(m.module == p or m.module.endswith("." + p) or m.name.endswith(p) for p in modules)


def matrices(base: dict[str, Path], post: dict[str, Path],
             modules: Sequence[str] | None = None) -> tuple[list[Matrix], list[str]]:
    """The 2-D weights both checkpoints hold (in layer order), and the names only one of them has."""
    only_one = sorted(set(base) ^ set(post))
    found = []
    for name in sorted(set(base) & set(post)):
        shape = _shape(base, name)
        if len(shape) != 2:
            continue
        if shape != _shape(post, name):
            raise ValueError(f"weight {name} has shape {shape} in the base and {_shape(post, name)} after training")
        m = Matrix(name, *module_of(name))
        if _wanted(m, modules):
            found.append(m)
    found.sort(key=lambda m: (-1 if m.layer is None else m.layer, m.module))
    return found, only_one


def pairs(mats: Sequence[Matrix], base: dict[str, Path], post: dict[str, Path],
          device: str) -> Iterator[tuple[Matrix, Any, Any]]:
    """(matrix, W_base, W_post) on ``device``, one pair at a time."""
    from safetensors import safe_open

    with ExitStack() as stack:
        handles: dict[Path, Any] = {}

        def tensor(files: dict[str, Path], name: str) -> Any:
            path = files[name]
            if path not in handles:
                handles[path] = stack.enter_context(safe_open(str(path), framework="pt", device=device))
            return handles[path].get_tensor(name)

        for m in mats:
            yield m, tensor(base, m.name), tensor(post, m.name)
