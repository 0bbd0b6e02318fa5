"""The sbatch scripts rendered for each cluster profile carry the right directives, and the apptainer line binds
scratch and every input folder, passes --nv only to GPU runs, keeps the HF/W&B offline variables and runs from
$SLURM_TMPDIR where the profile says so. Every script is valid bash; a dry run writes and submits nothing."""

from __future__ import annotations

import re
import subprocess

import pytest
from click.testing import CliRunner

from stages.study.cli import main
from stages.study.definition import load_study
from stages.study.planner import plan_study
from stages.study.profiles import known_profiles, load_profile
from stages.study.submit import submit_plan

# cluster -> (account, partition, gres prefix, modules, runs from $SLURM_TMPDIR in an apptainer container)
EXPECTED = {
    "mila": (None, "main", "gpu:a100l", [], True),
    "narval": ("rrg-bengioy-ad", None, "gpu:a100", ["apptainer"], True),
    "fir": ("rrg-bengioy-ad", None, "gpu:h100", ["apptainer"], True),
    "nibi": ("rrg-bengioy-ad", None, "gpu:h100", ["apptainer"], True),
    "rorqual": ("rrg-bengioy-ad", None, "gpu:h100", ["apptainer"], True),
    "tamia": ("aip-bengioy", None, "gpu:h100", ["apptainer"], True),
    "tamia-h200": ("aip-bengioy", None, "gpu:h200", ["apptainer"], True),
    "trillium": ("rrg-bengioy-ad", None, "gpu:h100", ["apptainer"], True),
    "local": (None, None, "gpu", [], False),
}
TRAINER = "qwen3-4b.base.code.gt-sft.s1"  # one seed on code: a job of its own (math's 3 seeds share an array)


def test_every_cluster_has_a_profile():
    assert set(known_profiles()) == set(EXPECTED)


def scripts(cluster: str, root, study=None, **kw) -> dict[str, str]:
    plan = plan_study(study or load_study("phase1"), str(root), cluster)
    result = submit_plan(plan, load_profile(cluster), dry_run=True, echo=lambda s: None, **kw)
    out = {}
    for job in result.jobs:
        for rid in re.findall(r'^RUN_IDS?=\(?(.*?)\)?$', job.script, re.MULTILINE)[0].split():
            out[rid.strip('"')] = job.script
    return out


def sbatch_lines(script: str) -> list[str]:
    return [ln[len("#SBATCH "):] for ln in script.splitlines() if ln.startswith("#SBATCH ")]


def command_line(script: str) -> str:
    return next(ln.strip() for ln in script.splitlines() if ln.rstrip().endswith("&") and "--manifest" in ln)


@pytest.mark.parametrize("cluster", sorted(EXPECTED))
def test_directives_per_cluster(cluster, fake_scratch, tmp_path):
    account, partition, gres, modules, container = EXPECTED[cluster]
    profile = load_profile(cluster)
    rendered = scripts(cluster, tmp_path / "runs")
    gpu = sbatch_lines(rendered[TRAINER])
    gpus = min(2, profile.max_gpus_per_node or 2)
    cpus = min(8, profile.max_cpus_per_task or 8)
    mem = min(48, profile.max_mem_gb or 48)
    minutes = min(480, profile.max_time_minutes)
    want = [f"--job-name=fllm.phase1.{TRAINER}", "--nodes=1", "--ntasks-per-node=1", f"--cpus-per-task={cpus}",
            f"--mem={mem}G", f"--gres={gres}:{gpus}", f"--time={minutes // 60}:{minutes % 60:02d}:00",
            f"--signal=B:{profile.signal}@{profile.signal_grace_s}", "--requeue", "--open-mode=append",
            f"--output={tmp_path}/runs/phase1/{TRAINER}/slurm-%j.out"]
    if account:
        want.insert(1, f"--account={account}")
    if partition:
        want.insert(2 if account else 1, f"--partition={partition}")
    assert gpu == want
    script = rendered[TRAINER]
    for m in modules:
        assert f"\nmodule load {m}\n" in script
    cpu = sbatch_lines(rendered["data.math.gt"])
    assert not any(x.startswith("--gres") for x in cpu)
    assert any(re.fullmatch(r"--array=0-\d+(%\d+)?", x) for x in cpu)  # same-shape runs share one array job
    line = command_line(script)
    if container:
        assert line.startswith("srun --ntasks=1 apptainer run --nv ")
        assert ' -B "$SCRATCH" ' in line and '-W "$SLURM_TMPDIR"' in line and ' -B "$SLURM_TMPDIR" ' in line
        for var in ("HF_HUB_OFFLINE=1", "HF_DATASETS_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "WANDB_MODE=offline"):
            assert f"--env {var}" in line
        assert '"${FLLM_APPTAINER_ENV[@]}"' in line and "CUDA_VISIBLE_DEVICES" in script
        assert line.endswith('"$SIF" --manifest "$MANIFEST" &')
        assert 'cd "${SLURM_TMPDIR:?' in script and 'SIF="$SLURM_TMPDIR/sft-trainer.sif"' in script
        assert "apptainer run --nv" not in command_line(rendered["data.math.gt"])  # CPU run: no --nv
        assert "apptainer run " in command_line(rendered["data.math.gt"])
    else:
        assert "apptainer" not in line and "SLURM_TMPDIR" not in script
        assert line.startswith("srun --ntasks=1 ") and line.endswith('sft-trainer --manifest "$MANIFEST" &')
    for var in ("HF_HUB_OFFLINE=1", "HF_DATASETS_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "WANDB_MODE=offline"):
        assert f"\nexport {var}\n" in script
    assert f"trap on_stop {profile.signal}" in script and '[ "$rc" = 75 ]' in script
    for text in set(rendered.values()):
        check = subprocess.run(["bash", "-n"], input=text, text=True, capture_output=True)
        assert check.returncode == 0, check.stderr


def test_dependencies_are_one_afterok_flag(fake_scratch, tmp_path):
    plan = plan_study(load_study("phase1"), str(tmp_path / "runs"), "narval")
    result = submit_plan(plan, load_profile("narval"), dry_run=True, echo=lambda s: None)
    evaluation = next(j for j in result.jobs if j.path.endswith(f"{TRAINER}.eval-all/job.sbatch"))
    deps = [a for a in evaluation.argv if a.startswith("--dependency")]
    # the trained model, and the base's two evaluations (one array job: index 0 and the noise rerun, index 1)
    assert len(deps) == 1 and deps[0].startswith("--dependency=afterok:") and deps[0].count(":") == 3
    assert "--kill-on-invalid-dep=yes" in evaluation.argv
    assert len(result.submitted) == len(plan.runs)


def test_binds_follow_the_inputs(fake_scratch, tmp_path):
    study = load_study("phase1")
    elsewhere = tmp_path / "project" / "models" / "Qwen3-4B-Base"
    elsewhere.mkdir(parents=True)
    study.models.checkpoints["Qwen3-4B-Base"].paths = {"rorqual": str(elsewhere)}
    line = command_line(scripts("rorqual", "$SCRATCH/runs", study, images_dir="/images")[TRAINER])
    assert f"-B {elsewhere} " in line and ' -B "$SCRATCH" ' in line
    assert line.count(" -B ") == 4  # $SCRATCH, /project, $SLURM_TMPDIR, the model folder (the root is on scratch)
    assert "/images/sft-trainer.sif" in scripts("rorqual", "$SCRATCH/runs", study, images_dir="/images")[TRAINER]


def test_dry_run_prints_scripts_and_writes_nothing(fake_scratch, tmp_path):
    # the fake scratch holds empty folders, which `study check` (run first by submit) would refuse: skip it here
    res = CliRunner().invoke(main, ["submit", "phase1", "--cluster", "mila", "--dry-run", "--skip-check", "--root",
                                    str(tmp_path / "runs")])
    assert res.exit_code == 0, res.output + res.stderr
    assert "#SBATCH --gres=gpu:a100l:2" in res.output and "# submit: sbatch --parsable" in res.output
    assert "79 submitted in" in res.output
    assert not (tmp_path / "runs").exists()


def test_a_multi_node_job_passes_its_image_to_the_workers_on_the_other_nodes(fake_scratch, tmp_path):
    import yaml

    path = tmp_path / "two-nodes.yaml"
    path.write_text(yaml.safe_dump({"extends": "phase1", "study": "two-nodes", "resources": {"stages": {
        "grpo-trainer": {"4B": {"nodes": 2, "gpus_per_node": 4, "cpus_per_task": 16, "mem_gb": 96}}}}}))
    rendered = scripts("narval", "$SCRATCH/runs", load_study(str(path)), images_dir="/images")
    rl = next(s for rid, s in rendered.items() if ".on-rl." in rid)
    one_node = rendered[TRAINER]
    assert "--nodes=2" in sbatch_lines(rl)
    node_exec = re.search(r'^FLLM_NODE_EXEC="(.*)"$', rl, re.MULTILINE).group(1)
    assert node_exec.startswith("apptainer exec --nv ") and node_exec.endswith(" $SIF") and ' -B $SCRATCH ' in node_exec
    assert '--env "FLLM_NODE_EXEC=$FLLM_NODE_EXEC"' in rl
    assert "FLLM_NODE_EXEC" not in one_node
    assert subprocess.run(["bash", "-n"], input=rl, text=True).returncode == 0
