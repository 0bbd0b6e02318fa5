"""Render one sbatch script per job (a single run, or an array of runs of one shape) from ``slurm/job.sbatch.tmpl``.

The template holds the shell logic (signal forwarding, requeue on exit code 75); this module fills in what varies:
``#SBATCH`` directives from the run's resources capped by the cluster profile, the profile's modules and
environment, which manifest each array task runs, and the command line (the stage's script, an explicit command,
or ``apptainer run`` with binds derived from the manifests, ``--nv`` for GPU runs and ``$SLURM_TMPDIR`` as work
directory where the profile says so). Paths in ``#SBATCH`` lines are expanded now (sbatch does not expand
variables there); paths in the script body keep their ``$VARS`` for the compute node.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field

from stages.study.commands import OFFLINE_ENV, PASS_THROUGH, apptainer_words, bind_paths, stage_script
from stages.study.dag import Plan, PlannedRun
from stages.study.errors import StudyError
from stages.study.paths import join
from stages.study.profiles import ClusterProfile, slurm_dir

_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


class Raw(str):
    """A shell word written as is (already quoted by its maker)."""


ENV_ARRAY = Raw('"${FLLM_APPTAINER_ENV[@]}"')


def sh(word: str) -> str:
    """Quote a word for bash, keeping ``$VAR`` expansion (double quotes) when it needs quoting at all."""
    if isinstance(word, Raw) or _SAFE.fullmatch(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`") + '"'


@dataclass
class Job:
    runs: list[PlannedRun]
    deps: list[str] = field(default_factory=list)  # job refs this job waits for (afterok)
    force: bool = False  # the runs replace records of other work (the study changed): `--force`

    @property
    def is_array(self) -> bool:
        return len(self.runs) > 1

    @property
    def stage(self) -> str:
        return self.runs[0].stage

    def name(self, plan: Plan) -> str:
        if not self.is_array:
            return f"fllm.{plan.study}.{self.runs[0].run_id}"
        digest = hashlib.sha1("\n".join(r.run_id for r in self.runs).encode()).hexdigest()[:8]
        return f"fllm.{plan.study}.{self.stage}.{digest}"

    def script_path(self, plan: Plan) -> str:
        if not self.is_array:
            return join(self.runs[0].run_dir, "job.sbatch")
        return join(plan.study_dir, "slurm", f"{self.name(plan)}.sbatch")

    def log_pattern(self, plan: Plan) -> str:
        if not self.is_array:
            return join(self.runs[0].run_dir, "slurm-%j.out")
        return join(plan.study_dir, "slurm", f"{self.name(plan)}-%A_%a.out")


def shape_key(run: PlannedRun, profile: ClusterProfile) -> tuple:
    """Runs with the same key (and the same dependencies) can share one array job."""
    res = tuple(sorted(run.resources.items()))
    return (run.stage, res, run.image, tuple(run.command or ()), profile.use_images)


def _time(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}:00"


def _cap(value: int, cap: int | None) -> int:
    return value if cap is None else min(value, cap)


def job_minutes(job: Job, profile: ClusterProfile) -> int:
    return min(int(job.runs[0].resources.get("time_minutes", 60)), profile.max_time_minutes)


def grace_seconds(job: Job, profile: ClusterProfile) -> int:
    """The profile's pre-timeout grace, at most half the job's limit: a grace as long as the limit would send the
    signal as the job starts, and every attempt would stop, unstarted, and requeue until the restarts ran out."""
    return min(profile.signal_grace_s, job_minutes(job, profile) * 30)


def directives(job: Job, plan: Plan, profile: ClusterProfile, account: str | None = None) -> list[str]:
    res = job.runs[0].resources
    gpus = _cap(int(res.get("gpus_per_node", 0)), profile.max_gpus_per_node)
    lines = [f"--job-name={job.name(plan)}"]
    if account or profile.account:
        lines.append(f"--account={account or profile.account}")
    partition = profile.partition if gpus else (profile.cpu_partition or profile.partition)
    if partition:
        lines.append(f"--partition={partition}")
    lines += [
        f"--nodes={res.get('nodes', 1)}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={_cap(int(res.get('cpus_per_task', 1)), profile.max_cpus_per_task)}",
        f"--mem={_cap(int(res.get('mem_gb', 1)), profile.max_mem_gb)}G",
    ]
    if gpus:
        lines.append(f"--gres={profile.gres}:{gpus}")
    lines += [
        f"--time={_time(job_minutes(job, profile))}",
        f"--signal=B:{profile.signal}@{grace_seconds(job, profile)}",
        "--requeue",
        "--open-mode=append",
        f"--output={os.path.expandvars(job.log_pattern(plan))}",
    ]
    if job.is_array:
        throttle = f"%{profile.array_throttle}" if profile.array_throttle else ""
        lines.append(f"--array=0-{len(job.runs) - 1}{throttle}")
    lines += profile.extra_directives
    return [f"#SBATCH {line}" for line in lines]


def _select(job: Job) -> str:
    if not job.is_array:
        run = job.runs[0]
        return f"RUN_ID={sh(run.run_id)}\nMANIFEST={sh(run.manifest_path)}"
    ids = " ".join(sh(r.run_id) for r in job.runs)
    paths = "\n  ".join(sh(r.manifest_path) for r in job.runs)
    return (f"RUN_IDS=({ids})\nMANIFESTS=(\n  {paths}\n)\n"
            'task="${SLURM_ARRAY_TASK_ID:?this script is an array job: submit it with --array}"\n'
            'RUN_ID="${RUN_IDS[$task]}"\nMANIFEST="${MANIFESTS[$task]}"')


def _env(profile: ClusterProfile) -> str:
    env = dict(OFFLINE_ENV, WANDB_MODE=profile.wandb_mode)
    lines = [f"export {k}={sh(v)}" for k, v in env.items()]
    if profile.hf_home:
        lines.append(f"export HF_HOME={sh(profile.hf_home)}")
    return "\n".join(lines)


def _image_source(job: Job, profile: ClusterProfile, images_dir: str | None) -> str:
    return join(images_dir or profile.images_dir or "", f"{job.runs[0].image}.sif")


def _prepare(job: Job, plan: Plan, profile: ClusterProfile, images_dir: str | None, use_images: bool) -> str:
    lines = []
    if profile.run_from_tmpdir:
        lines.append('cd "${SLURM_TMPDIR:?the profile runs jobs from \\$SLURM_TMPDIR, which is not set}"')
    if use_images:
        src = _image_source(job, profile, images_dir)
        if profile.copy_images_to_tmpdir:
            lines.append(f'SIF="$SLURM_TMPDIR/{job.runs[0].image}.sif"')
            lines.append(f'[ -f "$SIF" ] || cp {sh(src)} "$SIF" || {{ echo "[fllm] cannot copy {src}" >&2; exit 1; }}')
        else:
            lines.append(f"SIF={sh(src)}")
        lines.append('[ -f "$SIF" ] || { echo "[fllm] image $SIF does not exist (make sifs)" >&2; exit 1; }')
        names = " ".join(k for k in PASS_THROUGH if k not in ("HF_HOME",))
        lines.append("# variables the container needs that are set now (an empty one, e.g. CUDA_VISIBLE_DEVICES, "
                     "would hide GPUs)")
        lines.append("FLLM_APPTAINER_ENV=()")
        lines.append(f'for v in {names}; do [ -n "${{!v:-}}" ] && FLLM_APPTAINER_ENV+=(--env "$v=${{!v}}"); done')
        node_exec = _node_exec(job, plan, profile)
        if node_exec:
            lines.append("# several nodes: the stage starts its workers on the other nodes through srun, inside the "
                         "same image (stages/lm/verl/ray_launch.py reads FLLM_NODE_EXEC)")
            lines.append('FLLM_NODE_EXEC="' + node_exec.replace('"', '\\"') + '"')
            lines.append('FLLM_APPTAINER_ENV+=(--env "FLLM_NODE_EXEC=$FLLM_NODE_EXEC")')
    return "\n".join(lines)


def _node_exec(job: Job, plan: Plan, profile: ClusterProfile) -> str | None:
    """``apptainer exec`` of the job's image with its binds, for the workers a multi-node run starts on the other
    nodes (`$SIF` is expanded there by the launcher's shell); None for one-node jobs."""
    run = job.runs[0]
    if int(run.resources.get("nodes", 1)) <= 1:
        return None
    roots = [*profile.binds, plan.root] + (["$SLURM_TMPDIR"] if profile.run_from_tmpdir else [])
    words = ["apptainer", "exec"] + (["--nv"] if run.gpus > 0 else []) + (["--cleanenv"] if profile.apptainer.cleanenv
                                                                          else [])
    for b in bind_paths(job.runs, roots):
        words += ["-B", b]
    return " ".join(words + ["$SIF"])


def command_words(job: Job, plan: Plan, profile: ClusterProfile, images_dir: str | None, use_images: bool) -> list[str]:
    run = job.runs[0]
    launcher = ["srun", "--ntasks=1"] if profile.launcher == "srun" else []
    tail = ["--manifest", "$MANIFEST"] + (["--force"] if job.force else [])
    if run.command:
        return [*launcher, *run.command, *tail]
    if not use_images:
        try:
            script = stage_script(run.stage)
        except StudyError:
            script = run.stage
        return [*launcher, script, *tail]
    roots = [*profile.binds, plan.root]
    if profile.run_from_tmpdir:
        roots.append("$SLURM_TMPDIR")
    env = dict(OFFLINE_ENV, WANDB_MODE=profile.wandb_mode)
    if profile.hf_home:
        env["HF_HOME"] = profile.hf_home
    app = profile.apptainer
    words = apptainer_words(
        "$SIF", any(r.gpus > 0 for r in job.runs), bind_paths(job.runs, roots), env,
        workdir="$SLURM_TMPDIR" if profile.run_from_tmpdir else None, cleanenv=app.cleanenv,
        extra=(["--contain"] if app.contain else []) + app.extra_args + [ENV_ARRAY],
    )
    return [*launcher, *words, *tail]


def render(job: Job, plan: Plan, profile: ClusterProfile, images_dir: str | None = None,
           account: str | None = None) -> str:
    use_images = profile.use_images or images_dir is not None
    if use_images and not job.runs[0].command and not (images_dir or profile.images_dir):
        raise StudyError(f"profile {profile.name} uses images but names no images_dir; pass --images DIR")
    words = command_words(job, plan, profile, images_dir, use_images)
    setup = [f"module load {m}" for m in profile.modules] + list(profile.setup)
    term_trap = "" if profile.signal == "TERM" else "trap on_term TERM"
    title = job.runs[0].run_id if not job.is_array else f"{len(job.runs)} {job.stage} runs"
    values = {
        "kind": "array job" if job.is_array else "job",
        "title": title,
        "cluster": profile.name,
        "study": plan.study,
        "directives": "\n".join(directives(job, plan, profile, account)),
        "signal": profile.signal,
        "grace": str(grace_seconds(job, profile)),
        "max_restarts": str(profile.max_restarts),
        "setup": "\n".join(setup),
        "select": _select(job),
        "env": _env(profile),
        "prepare": _prepare(job, plan, profile, images_dir, use_images and not job.runs[0].command),
        "term_trap": term_trap,
        "command": " ".join(sh(w) for w in words),
    }
    template = (slurm_dir() / "job.sbatch.tmpl").read_text(encoding="utf-8")
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], template)
