"""Snapshot GEM's datasets (and models a study names) into scratch, in the layout the adapter reads.

Run once on a machine with internet; compute nodes then read only the snapshot:

    python -m stages.envs.snapshot --dest $SCRATCH/fllm-snapshot [--env math:GSM8K ...] \
        [--model Qwen/Qwen3-4B-Base[@revision] ...] [--dataset-revision axon-rl/GSM-8k=<sha> ...]
    python -m stages.envs.snapshot --dest $SCRATCH/fllm-snapshot --check     # offline: verify the layout

Layout:  <dest>/datasets/<folder>/<split>.parquet   (every split of each GEM dataset; folder names from
         stages.envs.registry, e.g. gsm-8k, math-eval, codecontest, naturalquestions, search-eval)
         <dest>/models/<name>/                       (a Hugging Face model folder, named as studies expect)
         <dest>/snapshot-manifest.json              (names, resolved revisions, sha256 and row counts)

The network calls (`_hub_*`) are thin; the layout and manifest logic takes the loaders as arguments so
tests exercise it on local data.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import click

from stages.envs.registry import ENVS, env_spec

MANIFEST = "snapshot-manifest.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def plan_datasets(env_ids: Iterable[str]) -> dict[str, dict]:
    """GEM dataset name -> {"folder", "env_ids", "splits_needed"} for the given env ids."""
    plan: dict[str, dict] = {}
    for env_id in env_ids:
        spec = env_spec(env_id)
        entry = plan.setdefault(spec.hf_dataset, {"folder": spec.folder, "env_ids": [], "splits_needed": []})
        entry["env_ids"].append(env_id)
        entry["splits_needed"].append(spec.split)
    return plan


def write_splits(splits: Mapping[str, Any], folder: Path) -> dict[str, dict]:
    """Write each split (anything with `to_parquet`, e.g. a datasets.Dataset) as <folder>/<split>.parquet."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, ds in sorted(splits.items()):
        path = folder / f"{split}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        ds.to_parquet(str(tmp))
        tmp.replace(path)
        out[split] = {"rows": len(ds), "bytes": path.stat().st_size, "sha256": sha256_file(path)}
    return out


def snapshot_datasets(
    dest: Path,
    env_ids: Iterable[str],
    load: Callable[[str, str | None], tuple[Mapping[str, Any], str | None]],
    revisions: Mapping[str, str] | None = None,
) -> list[dict]:
    """Fetch each needed GEM dataset with `load(name, revision) -> (splits, resolved_revision)` and write it."""
    entries = []
    for name, entry in plan_datasets(env_ids).items():
        splits, resolved = load(name, (revisions or {}).get(name))
        missing = sorted(set(entry["splits_needed"]) - set(splits))
        if missing:
            raise click.ClickException(f"dataset {name} has no split(s) {missing}; it has {sorted(splits)}")
        folder = dest / "datasets" / entry["folder"]
        entries.append({"name": name, "revision": resolved, "folder": str(folder.relative_to(dest)),
                        "env_ids": entry["env_ids"], "splits": write_splits(splits, folder)})
    return entries


def model_folder(dest: Path, repo_id: str) -> Path:
    """``<dest>/models/<name>``: the folder a study's ``models.root`` reads by default (the repo id's last part)."""
    return dest / "models" / repo_id.rsplit("/", 1)[-1]


def snapshot_models(
    dest: Path, models: Iterable[str], download: Callable[[str, str | None, Path], str | None]
) -> list[dict]:
    """Fetch `org/name[@revision]` models with `download(repo_id, revision, folder) -> resolved revision`."""
    entries = []
    for ref in models:
        repo_id, _, revision = ref.partition("@")
        folder = model_folder(dest, repo_id)
        resolved = download(repo_id, revision or None, folder)
        files = {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()
                 and ".cache" not in p.relative_to(folder).parts}
        entries.append({"name": repo_id, "revision": resolved, "folder": str(folder.relative_to(dest)),
                        "files": files})
    return entries


def write_manifest(dest: Path, datasets: list[dict], models: list[dict]) -> Path:
    manifest = {
        "schema": "forgetting-llms/snapshot/v1",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "datasets": datasets,
        "models": models,
    }
    path = dest / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def check_layout(dest: Path, env_ids: Iterable[str]) -> dict[str, int]:
    """Open every env on the snapshot (offline) and check digests recorded in the manifest; env id -> rows."""
    from stages.envs.dataset import open_env
    from stages.envs.errors import DatasetLayoutError

    rows = {env_id: len(open_env(env_id, env_spec(env_id).dataset_dir(dest / "datasets"))) for env_id in env_ids}
    manifest_path = dest / MANIFEST
    if manifest_path.is_file():
        for ds in json.loads(manifest_path.read_text())["datasets"]:
            for split, info in ds["splits"].items():
                path = dest / ds["folder"] / f"{split}.parquet"
                if not path.is_file() or sha256_file(path) != info["sha256"]:
                    raise DatasetLayoutError(f"{path} is missing or differs from {manifest_path}")
    return rows


def _hub_dataset(name: str, revision: str | None) -> tuple[Mapping[str, Any], str | None]:
    import datasets
    from huggingface_hub import HfApi

    resolved = HfApi().dataset_info(name, revision=revision).sha
    return datasets.load_dataset(name, revision=resolved), resolved


def _hub_model(repo_id: str, revision: str | None, folder: Path) -> str | None:
    from huggingface_hub import HfApi, snapshot_download

    resolved = HfApi().model_info(repo_id, revision=revision).sha
    snapshot_download(repo_id, revision=resolved, local_dir=str(folder))
    return resolved


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dest", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Snapshot root (e.g. $SCRATCH/fllm-snapshot).")
@click.option("--env", "env_ids", multiple=True, type=click.Choice(list(ENVS)),
              help="Env ids whose datasets to fetch (repeatable; default: all six).")
@click.option("--model", "models", multiple=True, metavar="ORG/NAME[@REV]", help="Model to fetch (repeatable).")
@click.option("--dataset-revision", "dataset_revisions", multiple=True, metavar="NAME=REV",
              help="Pin a dataset revision (repeatable).")
@click.option("--skip-datasets", is_flag=True, help="Fetch only the models.")
@click.option("--check", is_flag=True, help="Do not download: verify an existing snapshot offline.")
def main(dest: Path, env_ids: tuple[str, ...], models: tuple[str, ...], dataset_revisions: tuple[str, ...],
         skip_datasets: bool, check: bool) -> None:
    """Download GEM datasets (and models) into DEST in the layout stages.envs reads, with a manifest."""
    env_ids = env_ids or tuple(ENVS)
    if check:
        for env_id, n in check_layout(dest, env_ids).items():
            click.echo(f"{env_id}: {n} rows")
        return
    revisions = {}
    for item in dataset_revisions:
        name, sep, rev = item.partition("=")
        if not sep or not rev:
            raise click.BadParameter(f"expected NAME=REV, got {item!r}", param_hint="--dataset-revision")
        revisions[name] = rev
    dest.mkdir(parents=True, exist_ok=True)
    ds_entries = [] if skip_datasets else snapshot_datasets(dest, env_ids, _hub_dataset, revisions)
    model_entries = snapshot_models(dest, models, _hub_model)
    click.echo(f"wrote {write_manifest(dest, ds_entries, model_entries)}")


if __name__ == "__main__":
    main()
