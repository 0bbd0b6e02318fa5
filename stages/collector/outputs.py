"""Every output derives from the trajectory records: SFT rows (correct responses, chosen by the keep policy and
deduplicated), RL prompts in verl's schema, and statistics. Deriving them from records is what lets a merge of
shards give the same files as one run.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any


def _write_jsonl(rows: list[dict], path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    os.replace(tmp, path)


def _write_parquet(rows: list[dict], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    os.replace(tmp, path)


def sort_records(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda r: (r["position"], r["sample_index"]))


def _normalise(text: str) -> str:
    return " ".join(text.split())


def select_sft(records: list[dict], keep: str, keep_k: int, correct_only: bool = True) -> list[dict]:
    """Correct responses per item, deduplicated; `first` by sample index, `best_k` the k shortest, `all` all."""
    by_item: dict[int, list[dict]] = defaultdict(list)
    for r in sort_records(records):
        if (r.get("correct") or not correct_only) and r.get("response"):
            by_item[r["position"]].append(r)
    chosen = []
    for pos in sorted(by_item):
        seen, unique = set(), []
        for r in by_item[pos]:
            key = _normalise(r["response"])
            if key not in seen:
                seen.add(key)
                unique.append(r)
        if keep == "first":
            unique = unique[:1]
        elif keep == "best_k":
            unique = sorted(unique, key=lambda r: (len(r["response"]), r["sample_index"]))[:keep_k]
        chosen.extend(unique)
    return chosen


def sft_rows(chosen: list[dict]) -> tuple[list[dict], list[dict]]:
    parquet, jsonl = [], []
    for r in chosen:
        answer = {"role": "assistant", "content": r["response"]}
        meta = {"env_id": r["env_id"], "item_index": r["item_index"], "sample_index": r["sample_index"],
                "source": r.get("source"), "target_kind": r.get("target_kind"), "model_id": r.get("model_id")}
        parquet.append({"messages": [*r["prompt"], answer], **meta})
        jsonl.append({"prompt": r["prompt"], "completion": [answer], **meta})
    return parquet, jsonl


def prompt_rows(records: list[dict]) -> list[dict]:
    rows = []
    for r in sort_records(records):
        if r["sample_index"] != 0:
            continue
        rows.append({
            "data_source": r["env_id"],
            "prompt": r["prompt"],
            "ability": r["domain"],
            "reward_model": {"style": "rule", "ground_truth": json.dumps(r["ground_truth"], sort_keys=True)},
            "extra_info": {
                "index": r["item_index"],
                "position": r["position"],
                "split": r["split"],
                "template": r["template"],
                "reference_solution": r.get("reference_solution"),
            },
        })
    return rows


def write_outputs(records: list[dict], mode: str, params, out_dir: Path, stats: dict[str, Any]) -> dict[str, str]:
    outputs = {"trajectories": "trajectories.jsonl", "stats": "stats.json"}
    if mode in ("ground-truth", "generate"):
        parquet, jsonl = sft_rows(select_sft(records, params.keep, params.keep_k, params.sft_correct_only))
        stats["sft_rows"] = len(parquet)
        stats["sft_correct_only"] = params.sft_correct_only
        if parquet:
            _write_parquet(parquet, out_dir / "sft.parquet")
            _write_jsonl(jsonl, out_dir / "sft.jsonl")
            outputs.update(sft="sft.parquet", sft_jsonl="sft.jsonl")
    if mode == "prompts":
        rows = prompt_rows(records)
        _write_parquet(rows, out_dir / "prompts.parquet")
        _write_jsonl(rows, out_dir / "prompts.jsonl")
        outputs.update(prompts="prompts.parquet", prompts_jsonl="prompts.jsonl")
        stats["prompts"] = len(rows)
    tmp = out_dir / "stats.json.tmp"
    tmp.write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out_dir / "stats.json")
    return outputs
