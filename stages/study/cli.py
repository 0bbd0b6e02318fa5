"""``study`` console script: plan, run, submit and follow a study (issue 10)."""

from __future__ import annotations

import click


@click.group(help="Plan and run a forgetting study: study definition -> stage manifests -> local or Slurm runs.")
def main() -> None:
    pass


@main.command("plan", help="Expand a study into stage manifests (not implemented yet).")
@click.argument("study")
@click.option("--root", required=True, help="Folder under which the study's runs are planned.")
def plan_cmd(study: str, root: str) -> None:
    raise click.ClickException("not implemented yet: study plan (issue 10)")


if __name__ == "__main__":
    main()
