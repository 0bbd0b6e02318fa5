"""The CPU images, built for real with podman from the local Debian base (no registry), and run on the stages'
example manifests as Apptainer would run their SIFs: read-only, as an arbitrary user, paths bound in.

Built once per session from the host venv's exact distributions (``images/build.sh --flavour cpu --deps
venv``), so a container run must write what a host run writes. Outputs that differ between two host runs
(timings, a report's generation time) cannot be compared and are only checked to exist; every other output
file must be byte-identical, or equal up to float rounding noise in text.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest
import tomllib

from tests.images.podman_helpers import (
    ANY_USER,
    BUILT,
    REPO,
    host_run,
    image_ref,
    inspect,
    output_files,
    podman_run,
    record,
    same_up_to_float_noise,
    take_runs,
    workdir,
)

pytestmark = [pytest.mark.podman, pytest.mark.slow, pytest.mark.timeout(2400)]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
# The images' offline defaults and the variables the stages record in their provenance.
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "offline"}


@pytest.mark.parametrize("name", BUILT)
def test_image_config_carries_entrypoint_environment_and_labels(images_lock: dict, name: str):
    info = inspect(image_ref(name))
    config = info["Config"]
    env = dict(e.split("=", 1) for e in config["Env"])
    labels = config["Labels"]
    assert config["Entrypoint"] == [f"/opt/venv/bin/{name}"]
    assert not config.get("Cmd") and not config.get("User")
    assert {k: env.get(k) for k in OFFLINE} == OFFLINE
    assert env["FLLM_IMAGE"] == image_ref(name)
    assert env["FLLM_IMAGE_DIGEST"].startswith("build-inputs:sha256:")
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.revision"] == env["FLLM_GIT_COMMIT"] != "unknown"
    assert labels["io.forgetting-llms.stage"] == name and labels["io.forgetting-llms.flavour"] == "cpu"
    if name == "collector":  # a CPU build keeps the CPU default engine (no vLLM in it)
        assert env["FLLM_DEFAULT_ENGINE"] == ""
    entry = images_lock["images"][f"{name}:test"]
    assert entry["ref"] == image_ref(name) and entry["image_id"] == info["Id"]
    assert entry["base_ref"] == "localhost/forgetting-llms/debian:bookworm-minbase"
    assert entry["git_commit"] == env["FLLM_GIT_COMMIT"]


@pytest.mark.parametrize("name", BUILT)
def test_cli_answers_read_only_as_any_user_without_a_home(images_lock: dict, name: str):
    proc = podman_run(image_ref(name), "describe", "--json", flags=[*ANY_USER, "-e", "HOME=/nonexistent"])
    assert proc.returncode == 0, proc.stderr
    host = host_run(name, REPO, "describe", "--json")
    assert json.loads(proc.stdout) == json.loads(host.stdout)


@pytest.mark.parametrize("name", BUILT)
def test_installed_files_are_readable_by_everyone(images_lock: dict, name: str):
    find = ["/opt", "-xdev", "(", "-type", "f", "!", "-perm", "-o=r", ")", "-o", "(", "-type", "d", "!", "-perm",
            "-o=rx", ")", "-print"]  # fmt: skip
    proc = podman_run(image_ref(name), *find, flags=["--entrypoint", "find", "--network", "none"])
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout[:2000] + proc.stderr


@pytest.mark.parametrize("stage", BUILT)
def test_container_run_writes_what_the_host_run_writes(images_lock: dict, fixtures_dir: Path, tmp_path: Path, stage):
    manifest = f"manifests/examples/{stage}.json"
    assert (REPO / manifest).exists(), f"{manifest} is the example this test runs"
    output_dir = json.loads((REPO / manifest).read_text())["spec"]["output_dir"]
    work, flags = workdir(tmp_path, fixtures_dir.resolve())
    ref = image_ref(stage)

    host_valid = host_run(stage, work, "validate", "--manifest", manifest)
    ctr_valid = podman_run(ref, "validate", "--manifest", manifest, flags=[*ANY_USER, *flags])
    assert ctr_valid.returncode == host_valid.returncode == 0, ctr_valid.stderr + host_valid.stderr
    assert ctr_valid.stdout == host_valid.stdout  # same run id, engine and spec hash
    assert not (work / ".runs").exists(), "validate wrote something"

    runs = []
    for i in range(2):
        proc = host_run(stage, work, "--manifest", manifest)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append(take_runs(work, tmp_path / f"host-{i}"))
    proc = podman_run(ref, "--manifest", manifest, flags=[*ANY_USER, *flags])
    assert proc.returncode == 0, proc.stderr[-3000:]
    ctr_runs = take_runs(work, tmp_path / "container")

    host, ctr = record(runs[0], output_dir), record(ctr_runs, output_dir)
    assert ctr["status"]["state"] == host["status"]["state"] == "succeeded"
    assert ctr["provenance"]["spec_hash"] == host["provenance"]["spec_hash"]
    assert set(ctr["outputs"]) == set(host["outputs"]) and set(ctr["summary"]) == set(host["summary"])
    compared = []
    for name, ref_out in host["outputs"].items():
        files = [output_files(r, work, ref_out["uri"]) for r in runs]
        mine = output_files(ctr_runs, work, ctr["outputs"][name]["uri"])
        assert set(mine) == set(files[0]), f"output {name}: other files than the host run's"
        for rel, data in files[0].items():
            if files[1][rel] != data:
                continue  # differs between two host runs (timings, timestamps): nothing to compare
            assert mine[rel] == data or same_up_to_float_noise(mine[rel], data), f"output {name}: {rel} differs"
            compared.append(f"{name}/{rel}")
    print(f"{stage}: compared {', '.join(compared)}")
    assert compared, "no output of the example is deterministic enough to compare"

    prov = ctr["provenance"]
    labels = inspect(ref)["Config"]["Labels"]
    assert prov["image"] == ref and prov["image_digest"].startswith("build-inputs:sha256:")
    assert prov["git_commit"] == labels["org.opencontainers.image.revision"]
    assert prov["package_version"] == labels["org.opencontainers.image.version"]
    assert {k: prov["environment"].get(k) for k in OFFLINE} == OFFLINE


def test_an_image_exports_to_an_oci_archive_apptainer_can_build_from(images_lock: dict, tmp_path: Path):
    cmd = [str(REPO / "images" / "to-sif.sh"), "--tag", "test", "--out", str(tmp_path), "analyzer"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(tmp_path / "analyzer.oci.tar") as tar:
        layout = json.load(tar.extractfile("oci-layout"))
        index = json.load(tar.extractfile("index.json"))
        manifest = json.load(tar.extractfile("blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]))
        config = json.load(tar.extractfile("blobs/sha256/" + manifest["config"]["digest"].split(":")[1]))
    assert layout["imageLayoutVersion"] == "1.0.0"
    assert config["config"]["Entrypoint"] == ["/opt/venv/bin/analyzer"]
    assert config["config"]["Labels"]["org.opencontainers.image.version"] == VERSION
