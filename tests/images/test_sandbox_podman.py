"""Inside a stage image run as Apptainer runs a SIF, the sandbox contains every hostile program too.

The collector image (built once per session by the other podman tests) runs read-only, as an arbitrary uid, with no
capabilities at all, no network, and a scratch folder bound in at its host path, as a job's ``$SCRATCH`` is. In it,
the probe (tests/envs/unprivileged_probe.py, with the hostile programs of tests/envs/hostile_programs.py) grades
every attack twice: without namespaces (Landlock + seccomp + rlimits, as where the cluster refuses them) and as the
stages start the sandbox there. A file planted in the bound scratch must survive, and a canary put in the container's
own environment must never reach a program nor anything the container prints.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.envs.hostile_programs import CANARY_ENV, CANARY_PREFIX, QUICK, make_sentinel
from tests.images.podman_helpers import ANY_USER, REPO, image_ref, podman_run

pytestmark = [pytest.mark.podman, pytest.mark.slow, pytest.mark.timeout(2400)]
AS_A_SIF = [*ANY_USER, "--cap-drop", "all", "--security-opt", "no-new-privileges"]


@pytest.fixture()
def scratch():
    d = Path(tempfile.mkdtemp(prefix="fllm-scratch-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_hostile_programs_are_contained_in_an_image_run_as_a_sif(images_lock: dict, scratch: Path):
    sentinel = make_sentinel(scratch)
    planted = scratch / "planted.txt"
    planted.write_text("the study's results")
    (scratch / "home").mkdir(mode=0o777)
    (scratch / "home").chmod(0o777)
    canary = CANARY_PREFIX + uuid.uuid4().hex
    probe = "/opt/venv/bin/python -m tests.envs.unprivileged_probe"
    script = f"{probe} {sentinel} none && {probe} {sentinel} auto {','.join(QUICK)}"
    flags = [*AS_A_SIF, "-v", f"{scratch}:{scratch}", "-v", f"{REPO / 'tests'}:/opt/fllm-tests/tests:ro",
             "-e", "PYTHONPATH=/opt/fllm-tests", "-e", "PYTHONDONTWRITEBYTECODE=1", "-e", f"HOME={scratch / 'home'}",
             "-e", f"{CANARY_ENV}={canary}", "--entrypoint", "/bin/sh"]  # fmt: skip
    proc = podman_run(image_ref("collector"), "-c", script, flags=flags, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    runs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(runs) == 2, proc.stdout[-2000:]
    unisolated, as_started = runs
    assert unisolated["uid"] == 4242 and unisolated["report"]["mode"] == "fallback"
    assert unisolated["report"]["isolation"] == "landlock+seccomp" and not unisolated["report"]["gaps"]
    assert not as_started["report"]["gaps"], as_started["report"]
    for run in runs:
        breaches = {name: problems for name, problems in run["results"].items() if problems}
        assert not breaches, f"{run['report']['isolation']}: {breaches}"
    assert len(unisolated["results"]) > len(QUICK)  # every attack ran without namespaces
    assert planted.read_text() == "the study's results" and (sentinel / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in sentinel.iterdir()) == ["keep.txt"]
    assert canary not in proc.stdout + proc.stderr
