"""Every stage has the same CLI shape, a JSON Schema that is committed and fresh, and a `describe` that lists
every parameter; heavy libraries stay out of the light commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from stages.core.cli import make_cli
from stages.core.describe import params_table
from stages.core.schemas import render_all
from stages.registry import STAGES, load_stage

REPO = Path(__file__).resolve().parents[2]
NAMES = [s.name for s in STAGES]


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_json_schema(name):
    res = CliRunner().invoke(make_cli(load_stage(name)), ["schema"])
    assert res.exit_code == 0
    schema = json.loads(res.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["stage"]["const"] == name


def test_committed_schemas_are_fresh():
    rendered = render_all()
    assert set(rendered) == set(NAMES)
    for name, text in rendered.items():
        path = REPO / "manifests" / "schema" / f"{name}.json"
        assert path.exists(), f"{path} is missing: run `make schemas`"
        assert path.read_text() == text, f"{path} is stale: run `make schemas`"


@pytest.mark.parametrize("name", NAMES)
def test_describe_lists_every_param(name):
    stage = load_stage(name)
    res = CliRunner().invoke(make_cli(stage), ["describe"])
    assert res.exit_code == 0
    for row in params_table(stage):
        assert row["name"] in res.output
    js = json.loads(CliRunner().invoke(make_cli(stage), ["describe", "--json"]).output)
    assert set(js["inputs"]) == set(stage.inputs) and set(js["outputs"]) == set(stage.outputs)
    assert all(row["help"] for row in js["params"]), "every param needs a description"


def test_help_is_light_and_console_scripts_exist():
    """`<stage> --help` must not import torch & co (login nodes, the analyzer image)."""
    code = (
        "import sys\n"
        "from stages.registry import STAGES, load_stage\n"
        "from stages.core.cli import make_cli\n"
        "from click.testing import CliRunner\n"
        "for s in STAGES:\n"
        "    r = CliRunner().invoke(make_cli(load_stage(s.name)), ['--help'])\n"
        "    assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('torch', 'transformers', 'verl', 'vllm', 'lm_eval', 'gem', 'ray') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
    bindir = Path(sys.executable).parent
    for name in NAMES + ["study"]:
        assert (bindir / name).exists(), f"console script {name} is not installed"


def test_bare_invocation_prints_help_and_exits_2():
    res = CliRunner().invoke(make_cli(load_stage("collector")), [])
    assert res.exit_code == 2 and "--manifest" in res.output


@pytest.mark.parametrize("name", NAMES)
def test_example_manifest_validates(name, fixtures_dir):
    """`<stage> validate --manifest manifests/examples/<stage>.json` works from the repo root after set-up."""
    exe = Path(sys.executable).parent / name
    path = REPO / "manifests" / "examples" / f"{name}.json"
    assert path.exists(), f"every stage needs a fixture manifest: {path}"
    out = subprocess.run([str(exe), "validate", "--manifest", str(path)], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "is valid" in out.stdout


def test_describe_shows_the_defaults_a_manifest_gets():
    """Defaults built by a default_factory (absent from the JSON Schema) and a nested block whose factory differs
    from its class defaults are shown as a manifest that leaves them out gets them."""
    from pydantic import BaseModel, Field

    from stages.core.describe import model_defaults

    rows = {r["name"]: r["default"] for r in params_table(load_stage("evaluator"))}
    assert rows["tiers"] == ["A"] and rows["pass_k"] == [1]
    assert {r["name"]: r["default"] for r in params_table(load_stage("analyzer"))}["figure_formats"] == ["png", "svg"]

    class Block(BaseModel):
        temperature: float = 1.0
        top_k: int = -1

    class Params(BaseModel):
        required: int
        block: Block = Field(default_factory=lambda: Block(temperature=0.6))
        names: tuple[str, ...] = ("a", "b")

    assert model_defaults(Params) == {"block": {"temperature": 0.6, "top_k": -1}, "names": ["a", "b"]}
