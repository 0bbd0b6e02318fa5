"""Qualitative examples: the same safety prompts answered by the base and by each method, on a page of their own
(``safety_examples.html`` beside the report's ``index.html``), plus a table counting how many verdicts flipped.

The evaluator saves one record per item of ``fllm_xstest`` and ``fllm_harmbench`` (``samples_files`` of
``results.json``, JSON lines relative to its folder): the prompt, the responses, ``correct`` (behaved as it should:
comply with a safe XSTest prompt, refuse an unsafe one, no HarmBench attack success), the judge's verdict and the
document's fields (XSTest type and label, HarmBench behaviour and semantic category). An item is matched across
checkpoints by its id (the same document of the same task), never when the two records name different documents.

The choice is deterministic: per start and size, each trained condition is represented by its lowest-seed
checkpoint; among the items whose verdict flipped against the base in at least one condition, those that got worse
in most conditions come first (then most flips, then item id), at most ``MAX_ITEMS`` per task. Everything a model
wrote is HTML-escaped and cut at ``MAX_CHARS`` characters.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from stages.analyzer.analysis import Analysis, with_labels
from stages.analyzer.gather import Gathered
from stages.analyzer.order import METHODS, rank, sort_frame
from stages.analyzer.safety_common import base_checkpoints, show
from stages.analyzer.tables import Table
from stages.core import storage

TASKS = {"fllm_harmbench": "HarmBench (direct requests)", "fllm_xstest": "XSTest"}
MAX_ITEMS, MAX_CHARS = 8, 1500
PAGE = "safety_examples.html"


@dataclass
class Item:
    correct: bool | None
    verdict: str
    prompt: str
    about: str
    response: str
    doc_hash: str | None


def _item(rec: dict[str, Any], task: str) -> Item:
    extra = rec.get("extra") or {}
    doc = extra.get("doc") or {}
    if task == "fllm_harmbench":
        hit = extra.get("attack_success")
        verdict = "—" if hit is None else ("harmful (attack succeeded)" if hit else "not harmful")
        prompt = str(doc.get("behavior") or rec.get("prompt") or "")
        if doc.get("context"):
            prompt += "\n[context] " + str(doc["context"])
        about = " · ".join(str(doc[k]) for k in ("semantic_category", "functional_category") if doc.get(k))
    else:
        verdict = str(extra.get("verdict") or "—")
        prompt = str(doc.get("prompt") or rec.get("prompt") or "")
        about = " · ".join(f"{k} {doc[k]}" for k in ("label", "type") if doc.get(k))
    responses = rec.get("responses") or [""]
    correct = rec.get("correct")
    return Item(correct if isinstance(correct, bool) else None, verdict, prompt, about, str(responses[0]),
                rec.get("doc_hash"))


def read_items(g: Gathered) -> tuple[dict[str, dict[str, dict[str, Item]]], list[str]]:
    """run_id -> task -> item id -> Item, for the safety tasks each result saved records of; notes on files that
    could not be read."""
    out: dict[str, dict[str, dict[str, Item]]] = {}
    notes = []
    for r in g.records:
        folder = r.source.results_uri.rsplit("/", 1)[0]
        for task in TASKS:
            rel = r.results.samples_files.get(task)
            if not rel:
                continue
            uri = storage.join(folder, rel)
            try:
                lines = storage.read_text(uri).splitlines()
                recs = [json.loads(line) for line in lines if line.strip()]
                items = {str(x["item_id"]): _item(x, task) for x in recs}
            except (OSError, storage.StorageError, ValueError, KeyError, TypeError, AttributeError) as e:
                notes.append(f"Safety examples: records of {task} for {r.run_id} ({uri}) not read: "
                             f"{e.__class__.__name__}: {e}.")
                continue
            out.setdefault(r.run_id, {})[task] = items
    return out, notes


def _by_checkpoint(items: dict[str, dict[str, dict[str, Item]]], a: Analysis) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {}
    for rid, ck in sorted(zip(a.runs["run_id"], a.runs["checkpoint"]), key=lambda p: str(p[0])):
        for task, its in items.get(rid, {}).items():
            out.setdefault(ck, {}).setdefault(task, its)
    return out


def _representatives(a: Analysis) -> pd.DataFrame:
    """One checkpoint per trained condition (its lowest seed), with its label and base checkpoint."""
    base_of = base_checkpoints(a)
    ck = a.checkpoints[~a.checkpoints["is_base"]].copy()
    ck["base"] = ck["checkpoint"].map(base_of)
    ck = ck[ck["base"].notna()]
    ck["label"] = [" · ".join(show(v) for v in (m, d)) + ("" if _nan(lr) else f" lr={float(lr):g}")
                   for m, d, lr in zip(ck["method"], ck["domain"], ck["lr"])]
    ck = ck.sort_values(["seed", "checkpoint"], na_position="last")
    ck = ck.drop_duplicates(["base", "start", "model_size", "method", "domain", "lr", "engine"])
    order = [(b, rank(None if _nan(m) else m, METHODS), show(d), lab)
             for b, m, d, lab in zip(ck["base"], ck["method"], ck["domain"], ck["label"])]
    return ck.iloc[sorted(range(len(ck)), key=order.__getitem__)]


def _nan(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _pairs(base: dict[str, Item], post: dict[str, Item]) -> dict[str, tuple[Item, Item]]:
    return {i: (b, post[i]) for i, b in base.items() if i in post
            and not (b.doc_hash and post[i].doc_hash and b.doc_hash != post[i].doc_hash)}


def flips_table(items: dict[str, dict[str, dict[str, Item]]], a: Analysis) -> pd.DataFrame:
    """Per trained checkpoint × task: items compared with its base, flips to worse and to better."""
    by_ck, base_of = _by_checkpoint(items, a), base_checkpoints(a)
    rows = []
    for ck, tasks in sorted(by_ck.items()):
        base = by_ck.get(base_of.get(ck, ""), {})
        for task, its in sorted(tasks.items()):
            if task not in base:
                continue
            both = [(b.correct, p.correct) for b, p in _pairs(base[task], its).values()
                    if b.correct is not None and p.correct is not None]
            rows.append({"checkpoint": ck, "task": task, "n_compared": len(both),
                         "flipped_worse": sum(b and not p for b, p in both),
                         "flipped_better": sum(p and not b for b, p in both)})
    df = pd.DataFrame(rows, columns=["checkpoint", "task", "n_compared", "flipped_worse", "flipped_better"])
    return sort_frame(with_labels(df.astype({"checkpoint": object}), a.checkpoints))


def chosen(base: dict[str, Item], posts: list[dict[str, Item]]) -> list[str]:
    """Item ids to show: flipped in at least one condition; most flips to worse first, then most flips, then id."""
    score = {}
    for i, b in base.items():
        worse = flips = 0
        for post in posts:
            p = post.get(i)
            if p is None or b.correct is None or p.correct is None or (b.doc_hash and p.doc_hash
                                                                         and b.doc_hash != p.doc_hash):
                continue
            flips += b.correct != p.correct
            worse += b.correct and not p.correct
        if flips:
            score[i] = (-worse, -flips, int(i) if i.isdigit() else math.inf, i)
    return sorted(score, key=score.get)[:MAX_ITEMS]


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + f" … [{len(text) - MAX_CHARS} more characters]"


def _row(label: str, it: Item | None, base: Item | None) -> str:
    if it is None:
        return f'<tr><th>{html.escape(label)}</th><td class="missing" colspan="2">not evaluated on this item</td></tr>'
    cls = "" if it.correct is None else ("ok" if it.correct else "bad")
    flip = " (flipped)" if base is not None and it is not base and base.correct is not None \
        and it.correct is not None and base.correct != it.correct else ""
    return (f'<tr><th>{html.escape(label)}</th><td class="{cls}">{html.escape(it.verdict + flip)}</td>'
            f"<td><pre>{html.escape(_cut(it.response))}</pre></td></tr>")


EXAMPLES_CSS = """
pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:.8rem;max-width:900px}
td.ok{color:#1a6e1a}td.bad{color:#a00000;font-weight:600}.prompt{background:#f7f7f7;padding:.5rem;margin:.3rem 0}
td,th{text-align:left;vertical-align:top;white-space:normal}
"""


def examples_page(items: dict[str, dict[str, dict[str, Item]]], a: Analysis, title: str, css: str) -> str | None:
    """The page, or None when no trained checkpoint and its base both have safety records."""
    by_ck, reps = _by_checkpoint(items, a), _representatives(a)
    labels = a.checkpoints.set_index("checkpoint")
    body = []
    for base_ck, group in reps.groupby("base", sort=True):
        base = by_ck.get(base_ck, {})
        sections = []
        for task, task_title in TASKS.items():
            posts = [(lab, by_ck.get(ck, {}).get(task)) for lab, ck in zip(group["label"], group["checkpoint"])]
            posts = [(lab, p) for lab, p in posts if p is not None]
            if task not in base or not posts:
                continue
            ids = chosen(base[task], [p for _, p in posts])
            if not ids:
                sections.append(f"<h3>{html.escape(task_title)}</h3><p class=\"note\">No verdict flipped against "
                                "the base.</p>")
                continue
            parts = [f"<h3>{html.escape(task_title)}</h3>"]
            for i in ids:
                b = base[task][i]
                rows = [_row("base", b, b)] + [_row(lab, p.get(i), b) for lab, p in posts]
                parts.append(
                    f'<div class="item" id="{html.escape(task)}-{html.escape(i)}"><div class="prompt"><b>item '
                    f"{html.escape(i)}</b> {html.escape(b.about)}<pre>{html.escape(_cut(b.prompt))}</pre></div>"
                    f"<table><thead><tr><th>model</th><th>verdict</th><th>response</th></tr></thead>"
                    f"<tbody>{''.join(rows)}</tbody></table></div>")
            sections.append("".join(parts))
        if sections:
            start, size = labels.at[base_ck, "start"], labels.at[base_ck, "model_size"]
            body.append(f"<h2>Start {html.escape(show(start))}, {html.escape(show(size))}</h2>" + "".join(sections))
    if not body:
        return None
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">',
        f"<title>{html.escape(title)} — safety examples</title><style>{css}{EXAMPLES_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}: the same safety prompts before and after</h1>",
        '<p class="meta"><a href="index.html">back to the report</a> · per start and size, each trained condition '
        f"by its lowest seed; prompts whose verdict flipped against the base, most flips to worse first, at most "
        f"{MAX_ITEMS} per task; responses cut at {MAX_CHARS} characters.</p>",
        *body, "</body></html>"]) + "\n"


def example_tables(flips: pd.DataFrame) -> list[Table]:
    return [Table("safety_verdict_flips", "Safety verdicts that flipped against the base per trained checkpoint and "
                  "task: worse = no longer behaves as it should (harmful compliance, or refusing a safe XSTest "
                  "prompt), better = the reverse; examples on the safety examples page", flips)]
