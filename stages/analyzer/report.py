"""The static HTML report: one ``index.html`` beside its ``figures/`` folder, readable from a file system with no
server, no network and no JavaScript.

Figures are linked relatively (PNG shown, SVG one click away) and the tables are rendered inline, with links to the
CSV and Markdown files in the ``tables`` output next to the report. The heatmaps come first, then the trade-offs,
scale and KL plots, then the safety analyses (linking the page of qualitative examples beside ``index.html``), then
the representations suite's (CKA, probes, weight deltas), then the tables, then the provenance: which results and
manifests went in (with digests), which evaluator runs are not finished, and the code version and time of the
analysis. Nothing refers to a URL outside the output folder (the favicon is an empty data
URI, so the browser asks for nothing).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages.analyzer.figures.style import Figure
from stages.analyzer.formatting import to_html
from stages.analyzer.gather import Gathered
from stages.analyzer.tables import Table

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem auto;max-width:1500px;
color:#222;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.meta{color:#555;font-size:.9rem}.note{color:#666;font-size:.85rem}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85rem;color:#444}
table{border-collapse:collapse;font-size:.8rem;margin:.5rem 0 1rem;display:block;overflow-x:auto;max-width:100%}
th,td{border:1px solid #ddd;padding:.2rem .4rem;text-align:right;white-space:nowrap}
th{background:#f4f4f4;position:sticky;top:0}td.missing{color:#999;background:#fafafa;text-align:center}
ul.notes li{color:#8a5a00}ul.warnings li{color:#a00000;font-size:.9rem}
"""

TABLE_ORDER = [
    "summary_by_condition", "capability_changes_by_condition", "capability_changes", "capability_scores",
    "summary", "forgetting_by_condition", "forgetting", "policy", "policy_by_condition", "safety",
    "safety_by_condition", "pareto_target", "pareto_safety", "kl_fit", "heatmap_noise_bands",
    "safety_forgetting_correlation", "safety_forgetting_points", "safety_categories", "safety_categories_order",
    "safety_attacks", "safety_attacks_runs", "safety_attacks_by_category", "safety_refusal_direction",
    "safety_refusal_rates", "safety_verdict_flips",
    "representations_cka", "representations_probes", "representations_weights", "representations_weights_by_layer",
    "scores", "checkpoints", "runs",
]


@dataclass
class ReportContext:
    title: str
    generated_at: str
    analyzer_run_id: str
    provenance: dict[str, Any] = field(default_factory=dict)  # the analyzer's own provenance (code version ...)
    params: dict[str, Any] = field(default_factory=dict)
    tables_href: str = "../tables"


def _e(v: object) -> str:
    return html.escape("—" if v is None else str(v))


def _figure_html(f: Figure) -> str:
    shown = f.files.get("png") or f.files.get("svg")
    links = " · ".join(f'<a href="{_e(p)}">{fmt.upper()}</a>' for fmt, p in f.files.items())
    return (
        f'<figure id="{_e(f.name)}"><img src="{_e(shown)}" alt="{_e(f.title)}">'
        f"<figcaption><b>{_e(f.title)}.</b> {_e(f.caption)} ({links})</figcaption></figure>"
    )


def _sources_html(g: Gathered) -> str:
    rows = []
    for r in g.records:
        m = r.manifest or {}
        prov, status = m.get("provenance") or {}, m.get("status") or {}
        commit = prov.get("git_commit")
        rows.append(
            "<tr>" + "".join(f"<td>{_e(v)}</td>" for v in (
                r.run_id, r.source.results_uri, r.digest[:19] + "…", r.source.manifest_uri,
                (commit or "")[:12] or None,
                prov.get("package_version"),
                status.get("ended_at") or r.results.created_at,
            )) + "</tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("run id", "results", "digest", "evaluator manifest", "git commit",
                                               "version", "finished"))
    pend = "".join(
        f"<tr><td>{_e(p.run_id)}</td><td>{_e(p.state)}</td><td>{_e(p.manifest_uri)}</td><td>{_e(p.message)}</td></tr>"
        for p in g.pending
    )
    pending = (
        f"<h3>Not finished ({len(g.pending)})</h3><p class=\"note\">Their cells show as missing everywhere.</p>"
        f"<table><thead><tr><th>run id</th><th>state</th><th>manifest</th><th>message</th></tr></thead>"
        f"<tbody>{pend}</tbody></table>"
        if g.pending else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{pending}"


def _provenance_html(ctx: ReportContext) -> str:
    p = ctx.provenance
    items = {
        "analyzer run": ctx.analyzer_run_id,
        "generated": ctx.generated_at,
        "package version": p.get("package_version"),
        "git commit": p.get("git_commit"),
        "uncommitted changes": p.get("git_dirty"),
        "image": p.get("image"),
        "host": p.get("host"),
        "python": p.get("python"),
        "libraries": ", ".join(f"{k} {v}" for k, v in sorted((p.get("libraries") or {}).items())) or None,
        "params": ", ".join(f"{k}={v}" for k, v in ctx.params.items()),
    }
    return "<table><tbody>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in items.items()) + (
        "</tbody></table>"
    )


def render(ctx: ReportContext, figures: list[Figure], notes: list[str], tables: list[Table], g: Gathered,
           warnings: list[str] | None = None, safety_examples: str | None = None) -> str:
    by_name = {t.name: t for t in tables}
    ordered = [by_name[n] for n in TABLE_ORDER if n in by_name] + [t for t in tables if t.name not in TABLE_ORDER]
    heat = [f for f in figures if f.name.startswith("heatmap")]
    reps = [f for f in figures if f.name.startswith("representations")]
    safety = [f for f in figures if f.name.startswith("safety")]
    rest = [f for f in figures if not f.name.startswith(("heatmap", "representations", "safety"))]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(ctx.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(ctx.title)}</h1>",
        f'<p class="meta">{len(g.records)} evaluator results, {len(g.pending)} runs not finished · generated '
        f"{_e(ctx.generated_at)} · code {_e((ctx.provenance.get('git_commit') or '?')[:12])} · "
        '<a href="#tables">tables</a> · <a href="#provenance">provenance</a></p>',
        *(['<ul class="warnings">' + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>"] if warnings else []),
        '<h2 id="heatmaps">Forgetting heatmaps</h2>',
        *(['<p class="note">A colour means a change larger than noise: cells whose change is within the noise band '
           '(the base-vs-base flip rate of their tasks where the study evaluated its base twice, else the floor) '
           'are drawn neutral, their value in grey; <a href="#table-heatmap_noise_bands">bands per cell</a>.</p>']
          if heat else []),
        *(_figure_html(f) for f in heat),
        '<h2 id="figures">Trade-offs, scale and KL</h2>',
        *(_figure_html(f) for f in rest),
        *(['<h2 id="safety">Safety: forgetting, categories, attacks, refusal direction</h2>']
          if safety or safety_examples else []),
        *([f'<p><a href="{_e(safety_examples)}">The same safety prompts before and after, per method</a> '
           '(qualitative examples; counts in the table safety_verdict_flips).</p>'] if safety_examples else []),
        *(_figure_html(f) for f in safety),
        *(['<h2 id="representations">Representations: CKA, probes, weight deltas</h2>'] if reps else []),
        *(_figure_html(f) for f in reps),
    ]
    if notes:
        parts.append('<h3>Not drawn yet</h3><ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    parts.append('<h2 id="tables">Tables</h2><p class="note">Missing values (a run not done, no base to compare to) '
                 "show as —, never as 0. Seed-aggregated cells read mean [t interval] (n=seeds).</p>")
    for t in ordered:
        csv, md = f"{ctx.tables_href}/{t.name}.csv", f"{ctx.tables_href}/{t.name}.md"
        parts.append(
            f'<h3 id="table-{_e(t.name)}">{_e(t.title)}</h3><p class="note">{len(t.frame)} rows · '
            f'<a href="{_e(csv)}">CSV</a> · <a href="{_e(md)}">Markdown</a></p>{to_html(t.frame)}'
        )
    parts += [
        '<h2 id="provenance">Provenance</h2><h3>Inputs</h3>',
        _sources_html(g),
        "<h3>This analysis</h3>",
        _provenance_html(ctx),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_report(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "index.html"
    path.write_text(text, encoding="utf-8")
    return path
