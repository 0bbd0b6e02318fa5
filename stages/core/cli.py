"""The CLI factory: every stage gets the same command shape from a ``StageDef`` in a few lines.

``<stage> --manifest M`` runs (the form ``apptainer run <stage>.sif --manifest M`` relies on); ``run``,
``validate``, ``schema`` and ``describe`` are subcommands. Only the light core is imported here, so ``--help``
answers instantly on a login node.
"""

from __future__ import annotations

import json
import logging
import sys

import click

from stages.core.errors import EXIT_INVALID, EXIT_OK, ManifestError
from stages.core.stage import StageDef

EPILOG = """\b
Exit codes: 0 succeeded or skipped (already done with the same spec); 1 failed;
2 invalid manifest or input (nothing written); 75 preempted (requeue me).
Stop signals: SIGUSR2 (Slurm's pre-timeout signal), SIGTERM (preemption) and Ctrl-C
make the stage checkpoint, write `preempted` and exit 75; the next run resumes."""


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def make_cli(stage: StageDef) -> click.Group:
    manifest_opt = click.option(
        "--manifest", "-m", "manifest", metavar="URI", help="The run's manifest (a local path or fsspec URI)."
    )
    force_opt = click.option("--force", is_flag=True, help="Rerun even if the output_dir already holds this run.")

    def run_manifest(manifest: str | None, force: bool, verbose: bool) -> None:
        if not manifest:
            raise click.UsageError("--manifest is required")
        _setup_logging(verbose)
        from stages.core.lifecycle import execute

        sys.exit(execute(stage, manifest, force=force))

    @click.group(
        name=stage.name,
        invoke_without_command=True,
        help=f"{stage.description}\n\nRun a manifest: `{stage.name} --manifest run.json`. "
        f"See `{stage.name} describe` for its inputs, outputs and params.",
        epilog=EPILOG,
    )
    @manifest_opt
    @force_opt
    @click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
    @click.pass_context
    def cli(ctx: click.Context, manifest: str | None, force: bool, verbose: bool) -> None:
        ctx.obj = {"verbose": verbose}
        if ctx.invoked_subcommand is None:
            if manifest is None:
                click.echo(ctx.get_help())
                ctx.exit(EXIT_INVALID)
            run_manifest(manifest, force, verbose)

    @cli.command("run", help="Run a manifest through the stage lifecycle (same as the bare --manifest form).")
    @manifest_opt
    @force_opt
    @click.pass_context
    def run_cmd(ctx: click.Context, manifest: str | None, force: bool) -> None:
        run_manifest(manifest, force, ctx.obj["verbose"])

    @cli.command("validate", help="Check a manifest and its inputs without running anything or writing anything.")
    @manifest_opt
    def validate_cmd(manifest: str | None) -> None:
        if not manifest:
            raise click.UsageError("--manifest is required")
        from stages.core.lifecycle import prepare

        try:
            prep = prepare(stage, manifest)
        except ManifestError as e:
            click.echo(f"{stage.name}: invalid manifest: {e}", err=True)
            sys.exit(EXIT_INVALID)
        click.echo(f"{stage.name}: {prep.manifest.run_id} is valid (engine {prep.engine}, spec {prep.spec_hash})")
        sys.exit(EXIT_OK)

    @cli.command("check", help="Check planned manifests before their upstream runs exist (what `study check` "
                 "calls): validate each and run the stage's preflight; an input that an upstream run has not produced "
                 "yet is pending, and the checks that need it are listed as deferred. Writes nothing. --manifest is "
                 "one manifest or a JSON list of them; `-` reads standard input.")
    @manifest_opt
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per manifest (run_id, ok, problem, "
                  "deferred).")
    def check_cmd(manifest: str | None, as_json: bool) -> None:
        if not manifest:
            raise click.UsageError("--manifest is required")
        from stages.core.check import check_manifest, read_manifests

        try:
            raws = read_manifests(manifest)
        except (ValueError, OSError) as e:  # ManifestError and StorageError are ValueErrors
            click.echo(f"{stage.name}: cannot read {manifest}: {e}", err=True)
            sys.exit(EXIT_INVALID)
        failed = 0
        for raw in raws:
            res = check_manifest(stage, raw)
            failed += not res.ok
            if as_json:
                click.echo(res.to_json())
            else:
                state = "ok" if res.ok else "FAIL"
                extra = res.problem or (f"deferred: {'; '.join(res.deferred)}" if res.deferred else "")
                click.echo(f"{state:<4} {res.run_id}  {extra}".rstrip())
        sys.exit(EXIT_INVALID if failed else EXIT_OK)

    @cli.command("schema", help="Print the JSON Schema of this stage's manifests.")
    def schema_cmd() -> None:
        from stages.core.describe import json_schema

        click.echo(json.dumps(json_schema(stage), indent=2))

    @cli.command("describe", help="List the stage's inputs, outputs, engines and params with defaults and bounds.")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def describe_cmd(as_json: bool) -> None:
        from stages.core.describe import describe, describe_text

        click.echo(json.dumps(describe(stage), indent=2) if as_json else describe_text(stage))

    return cli
