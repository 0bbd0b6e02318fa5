"""Submit the two-node smoke job (two-node.sbatch) with one cluster profile's settings.

Why a submitter: what the job needs is site-specific (account, partition, GRES spelling, modules, where the images
live, what to bind), and the profiles under slurm/profiles/ already hold it for `study submit`. This turns a profile
into the job's sbatch options and its FLLM_SMOKE_* settings, so one command checks a cluster:

    python slurm/smoke/submit.py narval [--gpus-per-node 4] [--dry-run]

``--dry-run`` prints the sbatch command and the settings instead of submitting. Results go to
``<runs_root>/smoke/<cluster>-<time>/`` (a shared file system: every node writes there). Exit 2 on a bad argument or
an unknown cluster, with the message naming it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "two-node.sbatch"
IMAGE = "grpo-trainer"  # the image whose launcher and torch the verl runs use


def _expand(path: str) -> str:
    expanded = os.path.expandvars(path)
    if "$" in expanded:
        raise ValueError(f"{path!r} names a variable that is unset here (run this on the cluster's login node)")
    return os.path.abspath(os.path.expanduser(expanded))


def plan(args: argparse.Namespace, profile) -> tuple[list[str], dict[str, str]]:
    """The sbatch command line and the FLLM_SMOKE_* settings for ``profile``."""
    gpus = args.gpus_per_node if args.gpus_per_node is not None else (profile.max_gpus_per_node or 4)
    cap = (lambda v, c: v if c is None else min(v, c))
    out = _expand(args.out or os.path.join(profile.runs_root, "smoke",
                                            f"{profile.name}-{time.strftime('%Y%m%d-%H%M%S')}"))
    cmd = ["sbatch", "--job-name=fllm-smoke", f"--nodes={args.nodes}", "--ntasks-per-node=1",
           f"--cpus-per-task={cap(args.cpus_per_task, profile.max_cpus_per_task)}",
           f"--mem={cap(args.mem_gb, profile.max_mem_gb)}G",
           f"--time={args.time_minutes // 60}:{args.time_minutes % 60:02d}:00", f"--output={out}/slurm-%j.out"]
    if args.account or profile.account:
        cmd.append(f"--account={args.account or profile.account}")
    partition = profile.partition if gpus else (profile.cpu_partition or profile.partition)
    if partition:
        cmd.append(f"--partition={partition}")
    if gpus:
        cmd.append(f"--gres={profile.gres}:{gpus}")
    if not args.shared:
        cmd.append("--exclusive")  # fixed Ray ports, and bandwidth nobody else shares
    cmd += list(profile.extra_directives) + [str(SCRIPT)]
    use_images = (profile.use_images or args.images is not None) and not args.no_images
    env = {
        "FLLM_SMOKE_REPO": str(REPO),
        "FLLM_SMOKE_OUT": out,
        "FLLM_SMOKE_GPUS_PER_NODE": str(gpus),
        "FLLM_SMOKE_SETUP": "\n".join([f"module load {m}" for m in profile.modules] + list(profile.setup)),
    }
    if use_images:
        images = args.images or profile.images_dir
        if not images:
            raise ValueError(f"profile {profile.name} uses images but names no images_dir; pass --images DIR")
        env["FLLM_SMOKE_SIF"] = _expand(os.path.join(images, f"{IMAGE}.sif"))
        binds = [w for b in profile.binds for w in ("-B", _expand(b))]
        env["FLLM_SMOKE_APPTAINER_ARGS"] = " ".join(binds + list(profile.apptainer.extra_args))
        env["FLLM_SMOKE_PYTHON"] = "python"
    else:
        env["FLLM_SMOKE_PYTHON"] = sys.executable
    if args.allow_socket:
        env["FLLM_SMOKE_ALLOW_SOCKET"] = "1"
    return cmd, env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python slurm/smoke/submit.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("cluster", help="a profile name: slurm/profiles/<cluster>.yaml")
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--gpus-per-node", type=int, help="default: the profile's cap, else 4; 0 runs gloo on CPUs")
    ap.add_argument("--cpus-per-task", type=int, default=8)
    ap.add_argument("--mem-gb", type=int, default=64)
    ap.add_argument("--time-minutes", type=int, default=20)
    ap.add_argument("--account")
    ap.add_argument("--images", help="folder of the SIF files (default: the profile's images_dir)")
    ap.add_argument("--no-images", action="store_true", help="run from this Python environment, not the image")
    ap.add_argument("--out", help="results folder on a shared file system")
    ap.add_argument("--allow-socket", action="store_true", help="the cluster has no InfiniBand: TCP is expected")
    ap.add_argument("--shared", action="store_true", help="do not ask for whole nodes (--exclusive)")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    if args.nodes < 1 or (args.gpus_per_node or 0) < 0 or args.cpus_per_task < 1 or args.time_minutes < 1:
        ap.error("--nodes, --cpus-per-task and --time-minutes must be >= 1, --gpus-per-node >= 0")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from stages.study.errors import StudyError
    from stages.study.profiles import load_profile

    try:
        cmd, env = plan(args, load_profile(args.cluster))
    except (StudyError, ValueError) as e:
        print(f"submit.py: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        for k, v in env.items():
            print(f"export {k}={shlex.quote(v)}")
        print(shlex.join(cmd))
        return 0
    Path(env["FLLM_SMOKE_OUT"]).mkdir(parents=True, exist_ok=True)
    res = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    sys.stdout.write(res.stdout)
    sys.stderr.write(res.stderr)
    if res.returncode == 0:
        print(f"submit.py: results will be in {env['FLLM_SMOKE_OUT']} (allreduce.json, ray.json, slurm-<job>.out)")
    return res.returncode


if __name__ == "__main__":
    sys.exit(main())
