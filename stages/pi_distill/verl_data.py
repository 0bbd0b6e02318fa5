"""The prompt files verl reads for π-Distill/OPSD: training rows in the sampling view, held-out rows for the student.

Why files of our own: verl's RL dataset samples from the ``prompt`` column, so that column holds the sampling view
(π-Distill: the teacher's prompt with the privileged information; OPSD: the student's) and ``extra_info`` carries
the other view's chat (``pi_distill_other_prompt``, JSON) for the trainer to score the same responses under. Which
rows train and which are held out is decided exactly as on the native engine: rows whose teacher prompt exceeds
``max_prompt_length`` tokens are left out, and the held-out split is the same fixed permutation of what remains
(``state.heldout_split``), so both engines train and measure on the same prompts. verl's validation answers the
first ``student_eval_prompts`` held-out prompts in the student view (``val.parquet``): the held-out student reward.
Ground truths and ``data_source`` pass through unchanged to the reward file both trainers use
(``stages/envs/verl_reward.py``). The files are rewritten identically on every attempt (a resumed verl run reloads
its data loader's position against them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.pi_distill.prompts import PromptRow
from stages.pi_distill.state import heldout_split

OTHER_PROMPT = "pi_distill_other_prompt"  # extra_info key: the other view's chat messages, as JSON


@dataclass(frozen=True)
class VerlData:
    train: Path
    val: Path
    train_rows: int
    heldout_rows: int
    eval_rows: int
    kept: int
    over_length: int


def _truth(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def verl_row(row: PromptRow, sampler: str, split: str) -> dict[str, Any]:
    """One row of verl's RL parquet: ``prompt`` in the sampling view, the other view in ``extra_info``."""
    mine, other = (row.teacher, row.messages) if sampler == "teacher" else (row.messages, row.teacher)
    return {
        "data_source": row.data_source,
        "prompt": mine,
        "ability": row.data_source.split(":", 1)[0],
        "reward_model": {"style": "rule", "ground_truth": _truth(row.ground_truth)},
        "extra_info": {"index": row.index, "split": split, "privileged_kind": row.privileged_kind,
                       OTHER_PROMPT: json.dumps(other)},
    }


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    tmp.replace(path)
    return path


def write_verl_data(rows: list[PromptRow], tokenizer: Any, params: Any, thinking: bool, folder: Path) -> VerlData:
    """``train.parquet`` and ``val.parquet`` under ``folder``, split as the native engine splits."""
    from stages.pi_distill.rollout import encode

    encoded, over = encode(rows, tokenizer, thinking, params.max_prompt_length)
    if not encoded:
        from stages.core.errors import InputError

        raise InputError(f"none of the {len(rows)} teacher prompts fits max_prompt_length {params.max_prompt_length} "
                         "tokens", "$.spec.params.max_prompt_length")
    train_pos, held_pos = heldout_split(len(encoded), params.heldout_fraction, params.prompts_per_step)
    sampler = "teacher" if params.variant == "pi-distill" else "student"
    train = [verl_row(encoded[i].row, sampler, "train") for i in train_pos]
    held = [verl_row(encoded[i].row, "student", "heldout") for i in held_pos][: params.student_eval_prompts]
    return VerlData(_write(folder / "train.parquet", train), _write(folder / "val.parquet", held), len(train),
                    len(held_pos), len(held), len(encoded), over)
