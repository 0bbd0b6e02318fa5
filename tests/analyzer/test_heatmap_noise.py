"""Heatmap colours mean a change larger than noise: on a study whose trained runs differ from the base only by float
noise (±1e-9, what the smoke study's tiny model produces) every cell is drawn neutral, where the old data-scaled map
painted them full red and blue (the control with a zero floor shows it still would); a capability whose tasks have a
measured base-vs-base flip rate uses it as its band; the legend, caption and report say what neutral means.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib import colormaps
from matplotlib.colors import Normalize, to_rgba
from PIL import Image

from stages.analyzer.figures.heatmap import band_legend, cell_faces
from stages.analyzer.figures.style import DIVERGING, MISSING_FACE
from stages.analyzer.noise import FLOOR, FLOOR_ABOVE, MEASURED
from tests.analyzer.conftest import analyzer_manifest, invoke
from tests.analyzer.synthetic import TARGET_TASK, _results, _scores, _write_run, base_id, base_value

NOISE = {"GT-SFT": 1e-9, "SF-SFT": -1e-9, "SELF": 2e-9, "ON-RL": -2e-9}  # method -> retained change and target gain
REAL = {"CF-SFT": (-0.05, 0.10)}  # a real loss and gain: still coloured
FLIP = {"PI": (-0.02, 0.03)}  # a -0.02 change with a measured mmlu flip rate of 0.03: knowledge neutral, rest coloured
ZERO_FLIP = "ON-RL"  # its base rerun flipped nothing (greedy on CPU): the floor still applies


def write_noise_study(root, conditions: dict[str, tuple[float, float, float | None]]) -> None:
    """BASE 4B math: a base, and per method (retained change, target gain, mmlu noise flip rate or None)."""
    start, size = "BASE", "4B"
    bid = base_id(start, size)
    labels = {"study": "noise", "method": "BASE", "start": start, "model_size": size}
    targets = {t: base_value(t, start, size) for t in TARGET_TASK.values()}
    _write_run(root, bid, _results(bid, labels, _scores(start, size, 0.0, targets)))
    task = TARGET_TASK["math"]
    for method, (retained, gain, flip) in conditions.items():
        rid = f"eval.{method.lower()}.math.s1"
        scores = _scores(start, size, retained, {task: base_value(task, start, size) + gain})
        labels = {"study": "noise", "method": method, "domain": "math", "start": start, "model_size": size,
                  "seed": 1, "lr": 1e-5, "engine": "native", "base_run_id": bid}
        row = {"task": "mmlu", "n": 100, "forgetting": 0.05, "backward_transfer": 0.03, "retention": 0.55,
               "non_acquisition": 0.37, "noise_flip_rate": flip}
        _write_run(root, rid, _results(rid, labels, scores, forgetting=[row]))


def pixels(png) -> tuple[int, int, int]:
    """Reddish, bluish, and neutral (the map's centre colour) pixels of a heatmap."""
    img = np.asarray(Image.open(png).convert("RGB")).astype(float)
    r, b = img[..., 0], img[..., 2]
    centre = np.array(colormaps[DIVERGING](0.5)[:3]) * 255
    neutral = np.abs(img - centre).max(axis=-1) <= 2
    return int((r - b > 60).sum()), int((b - r > 60).sum()), int(neutral.sum())


def analyse(tmp_path, name: str, conditions: dict, **params):
    study, out = tmp_path / f"{name}-study", tmp_path / f"{name}-out"
    write_noise_study(study, conditions)
    m = analyzer_manifest(tmp_path / f"{name}.json", out, {"study_dir": str(study), "title": "Noise study",
                                                           "figure_formats": ["png"], **params})
    res = invoke("--manifest", str(m))
    assert res.exit_code == 0, res.output
    return out


def test_cell_faces_draw_changes_within_the_band_neutral():
    cmap = colormaps[DIVERGING]
    grid = np.array([[1e-9, -1e-9, -0.05], [0.02, -0.02, math.nan]])
    band = np.array([[1e-3, 1e-3, 1e-3], [1e-3, 0.03, 1e-3]])
    norm = Normalize(-0.05, 0.05)
    faces, neutral = cell_faces(grid, band, norm, cmap)
    assert neutral.tolist() == [[True, True, False], [False, True, False]]
    assert np.allclose(faces[0, 0], cmap(0.5)) and np.allclose(faces[1, 1], cmap(0.5))
    assert np.allclose(faces[0, 2], cmap(0.0)) and np.allclose(faces[1, 2], to_rgba(MISSING_FACE))
    assert not np.allclose(faces[1, 0], cmap(0.5))  # outside its band: coloured
    # the old behaviour: a scale fitted to float noise paints it at the ends of the map
    tiny = Normalize(-1e-9, 1e-9)
    old, _ = cell_faces(grid[:1, :2], np.zeros((1, 2)), tiny, cmap)
    assert np.allclose(old[0, 0], cmap(1.0)) and np.allclose(old[0, 1], cmap(0.0))


@pytest.fixture(scope="module")
def noise_report(tmp_path_factory):
    """The analyzer's output for a study whose every change is float noise."""
    return analyse(tmp_path_factory.mktemp("noise"), "noise", {m: (v, v, None) for m, v in NOISE.items()})


def test_float_noise_is_neutral_and_the_zero_floor_control_is_not(noise_report, tmp_path):
    out = noise_report
    red, blue, neutral = pixels(out / "report" / "figures" / "heatmap_BASE_4B.png")
    assert neutral > 200_000 and red < 6000 and blue < 6000, (red, blue, neutral)  # red and blue: the colour bars
    bands = pd.read_csv(out / "tables" / "heatmap_noise_bands.csv")
    assert set(bands["source"]) == {FLOOR} and np.allclose(bands["band"], 1e-3)
    html = (out / "report" / "index.html").read_text()
    assert "drawn neutral" in html and 'id="table-heatmap_noise_bands"' in html

    control = analyse(tmp_path, "control", {m: (v, v, None) for m, v in NOISE.items()}, heatmap_noise_floor=0.0)
    c_red, c_blue, c_neutral = pixels(control / "report" / "figures" / "heatmap_BASE_4B.png")
    assert c_neutral < 5000 and c_red > 50_000 and c_blue > 50_000, (c_red, c_blue, c_neutral)


def test_measured_flip_rate_is_the_band_where_there_is_one(tmp_path):
    conditions = {**{m: (v, v, 0.0 if m == ZERO_FLIP else None) for m, v in NOISE.items()},
                  **{m: (r, g, None) for m, (r, g) in REAL.items()}, **{m: (r, r, f) for m, (r, f) in FLIP.items()}}
    out = analyse(tmp_path, "mixed", conditions)
    bands = pd.read_csv(out / "tables" / "heatmap_noise_bands.csv")
    pi = bands[bands["method"] == "PI"].set_index("capability")
    assert pi.at["knowledge", "band"] == pytest.approx(0.03) and pi.at["knowledge", "source"] == MEASURED
    assert pi.at["reasoning", "band"] == pytest.approx(1e-3) and pi.at["reasoning", "source"] == FLOOR
    zero = bands[bands["method"] == ZERO_FLIP].set_index("capability")
    assert zero.at["knowledge", "band"] == pytest.approx(1e-3) and zero.at["knowledge", "source"] == FLOOR_ABOVE
    changes = pd.read_csv(out / "tables" / "capability_changes_by_condition.csv")
    merged = changes.merge(bands, on=["method", "capability"])
    neutral = merged[merged["change"].abs() <= merged["band"]]
    coloured = merged[merged["change"].abs() > merged["band"]]
    assert set(neutral["method"]) == {*NOISE, "PI"} and set(coloured["method"]) == {"CF-SFT", "PI"}
    assert set(neutral.loc[neutral["method"] == "PI", "capability"]) == {"knowledge"}
    red, blue, _ = pixels(out / "report" / "figures" / "heatmap_BASE_4B.png")
    assert red > 50_000 and blue > 10_000, (red, blue)  # the real changes keep their colours


def test_legend_says_what_neutral_means():
    floor_only = pd.DataFrame({"noise_flip_rate": [math.nan]})
    assert band_legend(floor_only, 1e-3) == ("within noise: |change| ≤ 0.001 (the floor; no base-vs-base flip rate "
                                             "measured)")
    measured = pd.DataFrame({"noise_flip_rate": [math.nan, 0.0, 0.04]})
    assert band_legend(measured, 1e-3) == ("within noise: |change| ≤ the larger of the base-vs-base flip rate "
                                           "(0–0.04) and the floor 0.001")


@pytest.mark.chromium
def test_report_in_chromium_shows_the_neutral_heatmap(noise_report, tmp_path):
    from tests.analyzer.test_chromium import render

    shot = tmp_path / "shot.png"
    console = render(noise_report / "report" / "index.html", shot, tmp_path / "profile")
    assert console == [], console
    red, blue, neutral = pixels(shot)
    assert neutral > 100_000 and red < 12_000 and blue < 12_000, (red, blue, neutral)  # bars, markers, links
