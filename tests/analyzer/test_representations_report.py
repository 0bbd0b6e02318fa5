"""The representations suite's figures and tables in the static report, from real evaluator runs on the tiny model:
the base alone and a copy whose layer-1 weights alone were perturbed, analysed through the analyzer's CLI. The known
answers: ΔW is zero outside layer 1 and not inside it; CKA is 1 at the embeddings (untouched) and below 1 after the
perturbed block; the base's own probe is the "before" curve. Seed aggregation is checked on two hand-written result
documents, and headless Chromium opens the report with the figures on screen.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from stages.evaluator.cli import main as evaluator_cli
from tests.analyzer.conftest import analyzer_manifest, invoke
from tests.evaluator.conftest import manifest, network_blocked

REP = {"sets": ["math", "general"], "texts_per_set": 8, "max_tokens": 32, "probe_questions": 12, "probe_folds": 3,
       "top_k": 4}
FIGURES = ["representations-cka_BASE_tiny", "representations-probes_BASE_tiny", "representations-weights_BASE_tiny",
           "representations-weights-layers_BASE_tiny"]


@pytest.fixture(scope="module")
def layer1_model(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model with seeded noise on the weights of decoder block 1 only."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest = tmp_path_factory.mktemp("tiny-layer1")
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), local_files_only=True)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".layers.1." in name:
                p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    model.save_pretrained(str(dest))
    AutoTokenizer.from_pretrained(str(tiny_model_dir), local_files_only=True).save_pretrained(str(dest))
    return dest


def _evaluate(study: Path, name: str, inputs: dict, labels: dict) -> None:
    params = {"suite": "representations", "batch_size": 4, "representations": REP, "labels": labels}
    m = manifest(study.parent / f"{name}.json", name, inputs, params, study / name)
    with network_blocked():
        res = CliRunner().invoke(evaluator_cli, ["--manifest", str(m)], catch_exceptions=False)
    assert res.exit_code == 0, (study / name / "manifest.json").read_text()


@pytest.fixture(scope="module")
def analysed(tmp_path_factory, tiny_model_dir, layer1_model, fixtures_dir) -> Path:
    root = tmp_path_factory.mktemp("rep-study")
    study = root / "study"
    bench = (fixtures_dir / "benchmarks", "benchmark_data")
    common = {"study": "rep", "start": "BASE", "model_size": "tiny"}
    _evaluate(study, "tiny.base.eval-representations", {"model": (tiny_model_dir, "hf_model"), "benchmarks": bench},
              {**common, "method": "BASE", "seed": 1})
    _evaluate(study, "tiny.math.gt-sft.eval-representations",
              {"model": (layer1_model, "hf_model"), "base_model": (tiny_model_dir, "hf_model"), "benchmarks": bench},
              {**common, "method": "GT-SFT", "domain": "math", "seed": 1, "lr": 1e-5})
    m = analyzer_manifest(root / "a.json", root / "out", {"study_dir": str(study), "title": "Representations",
                                                            "figure_formats": ["png"]})
    res = invoke("--manifest", str(m))
    assert res.exit_code == 0, res.output
    return root / "out"


def _table(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / "tables" / f"{name}.csv")


def test_weight_tables_show_the_perturbed_layer_alone(analysed):
    by_layer = _table(analysed, "representations_weights_by_layer")
    rel = dict(zip(by_layer["layer"], by_layer["rel_fro"]))
    assert rel[0] == 0.0 and rel[1] > 0.01
    by_module = _table(analysed, "representations_weights")
    assert set(by_module["module"]) == {"embed_tokens", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                        "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}
    assert (by_module.loc[by_module["module"] == "embed_tokens", "rel_fro"] == 0).all()
    q = by_module[by_module["module"] == "self_attn.q_proj"].iloc[0]
    assert q["rel_fro"] > 0 and q["n_runs"] == 1  # the mean over layers 0 (zero) and 1


def test_cka_and_probe_tables(analysed):
    cka = _table(analysed, "representations_cka")
    assert set(cka["method"]) == {"GT-SFT"} and set(cka["set"]) == {"math", "general"}
    at = {(s, layer): v for s, layer, v in zip(cka["set"], cka["layer"], cka["linear"])}
    for s in ("math", "general"):
        assert at[(s, 0)] == pytest.approx(1.0, abs=1e-6) and at[(s, 1)] == pytest.approx(1.0, abs=1e-6)
        assert at[(s, 2)] < 0.9999  # after the perturbed block
    probes = _table(analysed, "representations_probes")
    base = probes[probes["method"] == "BASE"].sort_values("layer")
    trained = probes[probes["method"] == "GT-SFT"].sort_values("layer")
    assert base["base"].isna().all() and base["post"].notna().all()  # the base's own run: its `post` column
    assert list(base["post"]) == list(trained["base"])  # the same model, statements and folds
    assert list(trained["transfer"][:2]) == list(trained["base"][:2])  # layers before the perturbation


def test_report_has_the_representation_figures_and_tables(analysed):
    html = (analysed / "report" / "index.html").read_text()
    assert '<h2 id="representations">' in html
    for name in FIGURES:
        png = analysed / "report" / "figures" / f"{name}.png"
        assert png.stat().st_size > 5000, name
        assert f'id="{name}"' in html
    for table in ("representations_cka", "representations_probes", "representations_weights",
                  "representations_weights_by_layer"):
        assert f'id="table-{table}"' in html and (analysed / "tables" / f"{table}.md").is_file()


def _block(linear: float, rel: float) -> dict:
    return {"version": 1, "cka": [{"set": "qa", "layer": 0, "linear": linear, "debiased": linear / 2}],
            "probes": [{"layer": 0, "base": 0.8, "transfer": linear, "post": 0.7, "control": 0.5, "agreement": 0.9}],
            "weights": [{"name": "model.layers.0.mlp.up_proj.weight", "layer": 0, "module": "mlp.up_proj",
                         "rel_fro": rel, "stable_rank": 4.0, "max_rank": 8}]}


def test_seeds_are_aggregated_and_a_bad_block_is_left_out_with_a_note(tmp_path):
    from tests.analyzer.synthetic import _results, _write_run

    study = tmp_path / "study"
    values = {1: (0.6, 0.02), 2: (0.8, 0.04)}
    for seed, (linear, rel) in values.items():
        labels = {"method": "ON-RL", "domain": "qa", "start": "BASE", "model_size": "4B", "seed": seed, "lr": 1e-6}
        _write_run(study, f"r{seed}", _results(f"r{seed}", labels, [], extensions={"representations":
                                                                                 _block(linear, rel)}))
    bad = {"method": "PI", "domain": "qa", "start": "BASE", "model_size": "4B", "seed": 1}
    _write_run(study, "bad", _results("bad", bad, [], extensions={"representations": {"version": 99}}))
    m = analyzer_manifest(tmp_path / "a.json", tmp_path / "out", {"study_dir": str(study), "figure_formats": ["png"]})
    res = invoke("--manifest", str(m))
    assert res.exit_code == 0, res.output
    cka = _table(tmp_path / "out", "representations_cka")
    assert len(cka) == 1 and cka["linear"].iloc[0] == pytest.approx(np.mean([v[0] for v in values.values()]))
    assert cka["linear_n"].iloc[0] == 2 and cka["linear_ci_low"].iloc[0] < cka["linear"].iloc[0]
    w = _table(tmp_path / "out", "representations_weights")
    assert w["rel_fro"].iloc[0] == pytest.approx(0.03) and w["stable_rank_ratio"].iloc[0] == pytest.approx(0.5)
    html = (tmp_path / "out" / "report" / "index.html").read_text()
    assert "Representations of bad" in html and "version 99" in html


@pytest.mark.chromium
def test_chromium_shows_the_representation_figures(analysed, tmp_path):
    from tests.analyzer.test_chromium import render

    shot = analysed / "representations-screenshot.png"
    console = render(analysed / "report" / "index.html", shot, tmp_path / "profile", size="1400,5000")
    assert console == [], console
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    viridis_dark = (r < 90) & (g < 40) & (b > 60) & (b < 120)  # the purple end of the weight heatmaps
    viridis_light = (r > 200) & (g > 200) & (b < 80)  # the yellow end
    assert viridis_dark.sum() > 500 and viridis_light.sum() > 500, (viridis_dark.sum(), viridis_light.sum())
    black_line = (r < 30) & (g < 30) & (b < 30)  # the base's probe curve and the text
    assert black_line.sum() > 2000
