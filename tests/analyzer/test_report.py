"""The report folder of the synthetic study: every figure in PNG and SVG, a self-contained index.html whose every
link resolves inside the output folder, and the study's provenance."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image

from tests.analyzer.synthetic import CONDITIONS, PENDING, run_id

FIGURES = ["heatmap_BASE_4B", "heatmap_BASE_1.7B", "heatmap_BASE_8B", "heatmap_SAFE_4B", "pareto-target_BASE_4B",
           "pareto-target_SAFE_4B", "pareto-safety_SAFE_4B", "scale_BASE", "kl_forgetting"]


def diverging_pixels(img: np.ndarray) -> tuple[int, int]:
    """Pixels of the strong ends of the red-blue map: (red, blue)."""
    r, g, b = (img[..., i].astype(int) for i in range(3))
    red = (r > 150) & (g < 110) & (b < 110)
    blue = (b > 140) & (r < 110) & (g < 170)
    return int(red.sum()), int(blue.sum())


def test_every_figure_in_both_formats(analysed):
    figs = analysed / "report" / "figures"
    for name in FIGURES:
        png, svg = figs / f"{name}.png", figs / f"{name}.svg"
        assert png.stat().st_size > 5000, name
        with Image.open(png) as im:
            assert im.width > 300 and im.height > 200
        assert ET.parse(svg).getroot().tag.endswith("svg")


def test_heatmap_png_uses_the_diverging_map(analysed):
    img = np.asarray(Image.open(analysed / "report" / "figures" / "heatmap_BASE_4B.png").convert("RGB"))
    red, blue = diverging_pixels(img)
    assert red > 2000 and blue > 2000, (red, blue)


def test_index_is_self_contained_and_every_link_resolves(analysed):
    report = analysed / "report"
    html = (report / "index.html").read_text()
    assert "<script" not in html.lower()
    assert not re.search(r"(https?:)?//[A-Za-z0-9]", html.replace("<!DOCTYPE html>", "")), "external URL in report"
    links = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(link.endswith(".png") for link in links) and any(link.endswith(".csv") for link in links)
    for link in links:
        if link.startswith("#") or link.startswith("data:"):
            continue
        target = (report / link).resolve()
        assert target.is_file(), f"{link} does not resolve"
        assert analysed.resolve() in target.parents, f"{link} leaves the output folder"


def test_index_shows_tables_and_provenance(analysed):
    html = (analysed / "report" / "index.html").read_text()
    assert "<h1>Synthetic study</h1>" in html
    for c in CONDITIONS[:5]:
        assert run_id(c, c.seeds[0]) in html
    for rid, state, _ in PENDING:
        assert rid in html and state in html
    assert "0123456789ab" in html  # the evaluators' code version
    assert 'class="missing"' in html  # missing cells are marked, not zero
    assert html.index("heatmap_BASE_4B") < html.index('id="tables"')  # the main heatmap comes first


def test_tables_in_csv_and_markdown(analysed):
    tables = analysed / "tables"
    names = {p.stem for p in tables.glob("*.csv")}
    assert {"runs", "scores", "capability_scores", "capability_changes", "capability_changes_by_condition",
            "summary_by_condition", "forgetting", "forgetting_by_condition", "policy", "safety", "pareto_target",
            "pareto_safety", "kl_fit"} <= names
    assert names == {p.stem for p in tables.glob("*.md")}
    md = (tables / "capability_changes_by_condition.md").read_text()
    assert md.startswith("# ") and "| start | model_size | method |" in md and "(n=3)" in md


def test_svg_has_no_external_references(analysed):
    for svg in (analysed / "report" / "figures").glob("*.svg"):
        text = svg.read_text()
        assert "xlink:href=\"http" not in text and "href=\"http" not in text, svg.name
