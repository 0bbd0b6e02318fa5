"""Open one of the six GEM environments on local data and iterate its items deterministically.

`open_env(env_id, dataset_dir)` reads `<dataset_dir>/<split>.parquet` (a `gem_dataset` folder: a
snapshot made by `stages.envs.snapshot`, or the test fixtures), checks it has GEM's columns and rows,
and returns an `EnvDataset`. Nothing is downloaded. Iteration is ours, not GEM's: GEM's envs shuffle
with their own seed, reseed the global RNGs on reset and (QA, code) cannot pick an item by index, so
a collector sharded over many jobs needs its own order. `items(seed, start, stop)` walks a seeded
permutation, and each `EnvItem` carries its prompt and its ground truth, so nothing is lost the way a
GEM vector env loses answers on auto-reset. `gem_env()` still gives the real GEM env on the same rows.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages.envs.errors import DatasetLayoutError
from stages.envs.ground_truth import normalize_ground_truth
from stages.envs.registry import SOLUTION_KEYS, EnvSpec, env_spec
from stages.envs.templates import DEFAULT_TEMPLATE, build_messages, chat_template_kwargs, get_template


@dataclass(frozen=True)
class EnvItem:
    index: int  # row index in the split file: the item's stable identity
    env_id: str
    domain: str
    question: str  # the raw question from the dataset
    messages: list[dict[str, str]]
    ground_truth: dict  # see stages.envs.ground_truth
    reference_solution: str | None
    metadata: dict = field(default_factory=dict)


def shard_range(n: int, num_shards: int, shard_index: int) -> tuple[int, int]:
    """[start, stop) of shard `shard_index` when `n` positions are split into `num_shards` near-equal parts."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, {num_shards}), got {shard_index}")
    base, extra = divmod(n, num_shards)
    start = shard_index * base + min(shard_index, extra)
    return start, start + base + (shard_index < extra)


def _small_extras(row: dict, known: set) -> dict:
    """Other columns worth carrying in metadata: scalars and short strings (not e.g. big test lists)."""
    out = {}
    for k, v in row.items():
        if k in known or isinstance(v, (list, dict, bytes)) or (isinstance(v, str) and len(v) > 2000):
            continue
        try:
            json.dumps(v)
            out[k] = v
        except (TypeError, ValueError):
            out[k] = str(v)
    return out


class EnvDataset:
    """The rows of one split of one env, with prompts and ground truths built on demand."""

    def __init__(self, spec: EnvSpec, path: Path, split: str, table: Any, template: str, thinking: bool):
        self.spec, self.path, self.split, self.table = spec, path, split, table
        self.template, self.thinking = template, thinking
        self.solution_key = next((k for k in SOLUTION_KEYS if k in table.column_names), None)
        self._qa_extract = get_template(template).qa_extract

    @property
    def env_id(self) -> str:
        return self.spec.env_id

    @property
    def domain(self) -> str:
        return self.spec.domain

    def __len__(self) -> int:
        return self.table.num_rows

    def row(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"row {index} out of range for {self.path} ({len(self)} rows)")
        return self.table.slice(index, 1).to_pylist()[0]

    def ground_truth(self, row: dict, index: int = -1) -> dict:
        try:
            return normalize_ground_truth(self.domain, row[self.spec.answer_key], qa_extract=self._qa_extract)
        except ValueError as exc:
            raise DatasetLayoutError(f"{self.path}, row {index}, column {self.spec.answer_key!r}: {exc}") from None

    def order(self, seed: int | None) -> list[int]:
        """Row indices in iteration order: file order for seed None, else a seeded permutation."""
        idx = list(range(len(self)))
        if seed is not None:
            random.Random(seed).shuffle(idx)
        return idx

    def item(self, index: int, position: int | None = None, seed: int | None = None) -> EnvItem:
        row = self.row(index)
        question = str(row[self.spec.question_key])
        solution = row.get(self.solution_key) if self.solution_key else None
        if isinstance(solution, list):
            solution = solution[0] if solution else None
        known = {self.spec.question_key, self.spec.answer_key, self.solution_key}
        meta = {
            "split": self.split,
            "template": self.template,
            "thinking": self.thinking,
            "chat_template_kwargs": chat_template_kwargs(self.thinking),
            "order_seed": seed,
            "position": position,
            "extra": _small_extras(row, known),
        }
        return EnvItem(
            index=index,
            env_id=self.env_id,
            domain=self.domain,
            question=question,
            messages=build_messages(self.domain, question, template=self.template, thinking=self.thinking),
            ground_truth=self.ground_truth(row, index),
            reference_solution=None if solution is None else str(solution),
            metadata=meta,
        )

    def items(self, seed: int | None = 0, start: int = 0, stop: int | None = None) -> Iterator[EnvItem]:
        """Items at positions [start, stop) of the seeded order (use `shard_range` to split across jobs)."""
        order = self.order(seed)
        stop = len(order) if stop is None else min(stop, len(order))
        if start < 0 or start > stop:
            raise ValueError(f"bad item range [{start}, {stop}) for {len(order)} items")
        for pos in range(start, stop):
            yield self.item(order[pos], position=pos, seed=seed)

    def gem_env(self, **kwargs: Any):
        """The real GEM env (gem.make) on exactly these rows; see gem_bridge.make_gem_env."""
        import datasets

        from stages.envs.gem_bridge import make_gem_env

        return make_gem_env(self.env_id, datasets.Dataset(self.table), **kwargs)


def _find_split_file(spec: EnvSpec, dataset_dir: Path, split: str) -> Path:
    if not dataset_dir.is_dir():
        raise DatasetLayoutError(f"dataset folder {dataset_dir} for {spec.env_id} does not exist or is not a folder")
    for candidate in (dataset_dir / f"{split}.parquet", dataset_dir / spec.folder / f"{split}.parquet"):
        if candidate.is_file():
            return candidate
    found = sorted(p.stem for p in dataset_dir.glob("*.parquet"))
    raise DatasetLayoutError(
        f"dataset folder {dataset_dir} has no split {split!r} for {spec.env_id} (expected {split}.parquet); "
        f"splits found: {', '.join(found) or 'none'}"
    )


def open_env(
    env_id: str,
    dataset_dir: str | Path,
    split: str | None = None,
    *,
    template: str = DEFAULT_TEMPLATE,
    thinking: bool = False,
) -> EnvDataset:
    """Open `env_id` on the local `gem_dataset` folder `dataset_dir` (or a datasets root holding its folder)."""
    import pyarrow.parquet as pq

    spec = env_spec(env_id)
    get_template(template)
    split = split or spec.split
    path = _find_split_file(spec, Path(dataset_dir), split)
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a layout problem
        raise DatasetLayoutError(f"{path} is not a readable parquet file: {exc}") from None
    missing = [c for c in (spec.question_key, spec.answer_key) if c not in table.column_names]
    if missing:
        raise DatasetLayoutError(
            f"{path} lacks column(s) {', '.join(missing)} needed by {env_id}; columns present: "
            f"{', '.join(table.column_names)}"
        )
    if table.num_rows == 0:
        raise DatasetLayoutError(f"{path}: split {split!r} of {env_id} is empty")
    ds = EnvDataset(spec, path, split, table, template, thinking)
    ds.ground_truth(ds.row(0), 0)  # fail now, with the row named, if the answers have the wrong shape
    return ds


def dataset_dir_for(datasets_root: str | Path, env_id: str) -> Path:
    """The folder of `env_id` inside a datasets root (a snapshot's `datasets/` or `.fixtures/datasets/`)."""
    return env_spec(env_id).dataset_dir(datasets_root)
