"""The second isolation layer holds where user namespaces are refused, and nothing runs where nothing holds.

A node that refuses user namespaces (as Apptainer on some clusters) is made for real: the test process forks, becomes
uid 65534 (test_sandbox_unprivileged.become_nobody) and installs a seccomp filter that refuses ``unshare`` and
``clone`` with ``CLONE_NEWUSER``, as such a kernel or container does; everything it starts inherits that. There,
test_sandbox.py runs whole with the sandbox as the stages start it: it must fall back to Landlock + seccomp +
rlimits and contain every hostile program, a canary in the grader's own environment included. A node without
Landlock either (older kernels) is made the same way, refusing the Landlock calls: the doctor says what is open,
the sandbox refuses to run programs unless opted in, and a stage that would grade code refuses to start unless its
manifest says ``allow_unisolated_code``, and records the opt-in when it does.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from stages.envs.sandbox import confine, isolation
from tests.envs.hostile_programs import CANARY_ENV, CANARY_PREFIX
from tests.envs.test_sandbox_unprivileged import REPO, become_nobody

LANDLOCK_CALLS = ("landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self")
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user and refuse namespaces")


def _node_without(*refused: str):
    """A preexec function: become uid 65534 on a node that refuses user namespaces (and `refused` calls)."""

    def preexec() -> None:
        import pyseccomp as sc

        become_nobody()
        f = sc.SyscallFilter(defaction=sc.ALLOW)
        f.add_rule(sc.ERRNO(errno.EPERM), "unshare")
        f.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, 0x10000000, 0x10000000))
        f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        for name in refused:
            f.add_rule(sc.ERRNO(errno.ENOSYS), name)
        f.load()

    return preexec


@pytest.fixture()
def home():
    """A home folder the unprivileged user owns (the home-directory attack plants its secret there)."""
    d = Path(tempfile.mkdtemp(prefix="fllm-layers-"))
    d.chmod(0o755)
    (d / "home").mkdir()
    os.chown(d / "home", 65534, 65534)
    yield d / "home"
    shutil.rmtree(d, ignore_errors=True)


def _run(cmd: list[str], home: Path, refused: tuple[str, ...] = (), timeout: float = 300, **env: str):
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "PYTHONPATH": str(REPO),
            "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(cmd, cwd=REPO, env={**base, **env}, preexec_fn=_node_without(*refused), capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.mark.timeout(400)
def test_every_hostile_program_is_contained_without_namespaces_as_an_unprivileged_user(home):
    offered = confine.probe()
    if not (offered["landlock"] and offered["seccomp"]):
        pytest.skip(f"this kernel lacks Landlock or seccomp: {offered['why']}")
    canary = CANARY_PREFIX + uuid.uuid4().hex
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "-W", "ignore::pytest.PytestWarning",
           "tests/envs/test_sandbox.py", "tests/evaluator/test_code_sandbox.py::test_harness_outcomes"]
    proc = _run(cmd, home, FLLM_TEST_SANDBOX_EXPECT="landlock+seccomp", **{CANARY_ENV: canary})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert all("no namespaces here" in line for line in skipped), skipped  # only the remount path needs them
    assert "hostile_program_is_contained" in out or " passed" in out
    assert canary not in out


@pytest.mark.timeout(200)
def test_without_landlock_nothing_runs_unless_the_manifest_opts_in(home, fixtures_dir):
    """An older kernel: no user namespaces, no Landlock. Files and other processes are open, so the doctor says so,
    the sandbox refuses programs, and the collector refuses a code run unless allow_unisolated_code."""
    doctor = _run([sys.executable, "-m", "stages.envs.sandbox.doctor", "--json"], home, LANDLOCK_CALLS)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    record = json.loads(doctor.stdout)
    assert record["isolation"] == "seccomp" and not record["contained"]
    assert record["layers"] == {"namespaces": False, "landlock": 0, "seccomp": True}
    assert any(g.startswith("files") for g in record["gaps"]) and record["attacks"]["network"]

    run = ("from stages.envs import Sandbox\ntry:\n    print(Sandbox().run('print(6 * 7)').stdout.strip())\n"
           "except Exception as e:\n    print(type(e).__name__, e)")
    refused = _run([sys.executable, "-c", run], home, LANDLOCK_CALLS)
    assert "SandboxError" in refused.stdout and "allow_unisolated_code" in refused.stdout, refused.stdout
    allowed = _run([sys.executable, "-c", run], home, LANDLOCK_CALLS, **{isolation.ALLOW_ENV: "1"})
    assert allowed.stdout.strip() == "42", allowed.stdout + allowed.stderr

    work = Path(tempfile.mkdtemp(prefix="fllm-layers-run-"))
    try:
        work.chmod(0o777)
        for allow, code in ((False, 2), (True, 0)):
            manifest = work / f"m-{allow}.json"
            manifest.write_text(json.dumps({
                "schema": "forgetting-llms/manifest/v1", "stage": "collector", "run_id": f"layers.{allow}",
                "spec": {"inputs": {"dataset": {"uri": str(fixtures_dir / "datasets" / "codecontest"),
                                                "kind": "gem_dataset"}},
                         "params": {"mode": "ground-truth", "env_id": "code:CodeContest", "max_items": 2,
                                    "allow_unisolated_code": allow},
                         "output_dir": str(work / f"out-{allow}"), "runtime": {"seed": 0}}}))
            manifest.chmod(0o644)
            proc = _run([sys.executable, "-m", "stages.collector.cli", "--manifest", str(manifest)], home,
                        LANDLOCK_CALLS)
            assert proc.returncode == code, proc.stderr[-3000:]
            if not allow:
                assert "allow_unisolated_code" in proc.stderr and not (work / "out-False").exists()
        summary = json.loads((work / "out-True" / "manifest.json").read_text())["summary"]
        assert summary["isolation"] == "seccomp" and summary["isolation_contained"] is False
        assert summary["unisolated_code_allowed"] is True
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_gaps_name_what_each_missing_layer_leaves_open():
    full = {"mode": "namespaces", "layers": {"landlock": 7, "seccomp": True}}
    assert isolation.name(full) == "namespaces+landlock+seccomp" and not isolation.gaps(full)
    assert not isolation.gaps({"mode": "namespaces", "layers": {}})  # namespaces alone contain
    assert not isolation.gaps({"mode": "fallback", "layers": {"landlock": 1, "seccomp": True}})
    bare = {"mode": "fallback", "layers": {"landlock": 0, "seccomp": False}}
    assert isolation.name(bare) == "none" and len(isolation.gaps(bare)) == 3
    assert [g.split()[0] for g in isolation.gaps({"mode": "fallback", "layers": {"landlock": 3}})] == \
        ["network", "other"]


def test_lm_evals_in_process_code_needs_the_unisolated_opt_in_too(tmp_path, tiny_model_dir):
    """allow_unsafe_code runs code tasks in lm-eval's own process, which contains nothing."""
    from tests.evaluator.test_code_runs import validate

    model = {"model": (tiny_model_dir, "hf_model")}
    res = validate(tmp_path, model, {"tasks": ["fllm_humaneval"], "allow_unsafe_code": True})
    assert res.returncode == 2 and "allow_unisolated_code" in res.stderr, res.stderr[-2000:]
    assert not (tmp_path / "out").exists()
    res = validate(tmp_path, model, {"tasks": ["fllm_humaneval"], "allow_unsafe_code": True,
                                     "allow_unisolated_code": True})
    assert res.returncode == 0, res.stderr[-2000:]
