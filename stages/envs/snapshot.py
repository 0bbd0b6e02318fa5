"""Snapshot GEM's datasets and models from a Hugging Face hub into scratch, in the layout the stages read.

Run once on a machine with internet; compute nodes then read only the snapshot. ``study stage STUDY`` is the usual
way in (it stages exactly what a study names, where the study reads it); this module holds the download code it
uses, and a command for fetching by hand:

    python -m stages.envs.snapshot --dest $SCRATCH/forgetting-llms [--env math:GSM8K ...] \
        [--model Qwen/Qwen3-4B-Base[@revision] ...] [--dataset-revision axon-rl/GSM-8k=<sha> ...] [--endpoint URL]
    python -m stages.envs.snapshot --dest $SCRATCH/forgetting-llms --check     # offline: verify the layout

Layout:  <dest>/datasets/<folder>/<split>.parquet   (every split of each GEM dataset, worked solutions joined in
         a ``solution`` column where a source has them: stages.envs.solutions; folder names from stages.envs.registry)
         <dest>/models/<name>/                       (a Hugging Face model folder; <name> is the repo id's last part,
                                                     the folder a study's ``models.root`` reads by default)
         <dest>/snapshot-manifest.json              (names, resolved revisions, licences, sha256 and row counts)

Downloads go through huggingface_hub's own client (``snapshot_download`` into a local folder, pinned to the
resolved commit), so an interrupted download resumes file by file, and every LFS file is checked against the
sha256 the hub lists for it. ``endpoint`` (or ``HF_ENDPOINT``) picks the hub; tests point it at a local server.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from stages.envs.registry import ENVS, env_spec

MANIFEST = "snapshot-manifest.json"
DATA_SUFFIXES = (".parquet", ".jsonl")
_SHARD = re.compile(r"^(?P<split>.+?)-\d{5}-of-\d{5}$")
Echo = Callable[[str], None]


class SnapshotError(click.ClickException):
    """A download or a layout that cannot be made (a missing split, a digest that differs from the hub's)."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def folder_files(folder: Path) -> list[Path]:
    """The files of a downloaded folder, without the hub client's own bookkeeping (``.cache/``)."""
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and ".cache" not in p.relative_to(folder).parts]


def folder_digest(files: Mapping[str, Mapping[str, Any]]) -> str:
    """``sha256-dir:`` over (path, size, sha256) rows: the digest ``stages.core.digest`` gives the same folder."""
    rows = [f"{rel}\t{info['size']}\t{info['sha256']}" for rel, info in sorted(files.items())]
    return "sha256-dir:" + hashlib.sha256("\n".join(rows).encode()).hexdigest()


def hub_licence(info: Any) -> str | None:
    """The licence a hub repo declares (its card's ``license``, else a ``license:`` tag)."""
    card = getattr(info, "card_data", None)
    lic = getattr(card, "license", None) if card is not None else None
    if not lic:
        lic = next((t.split(":", 1)[1] for t in (getattr(info, "tags", None) or []) if t.startswith("license:")), None)
    return ", ".join(lic) if isinstance(lic, list) else lic


@dataclass
class Fetched:
    repo_id: str
    repo_type: str
    revision: str
    licence: str | None
    folder: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # rel path -> {size, sha256}

    @property
    def bytes(self) -> int:
        return sum(f["size"] for f in self.files.values())


def fetch_repo(repo_id: str, folder: Path, *, repo_type: str = "model", revision: str | None = None,
               patterns: Iterable[str] | None = None, endpoint: str | None = None, token: str | None = None,
               keep_cache: bool = False) -> Fetched:
    """Download a hub repo (the files matching ``patterns``) into ``folder``, resuming what a previous attempt left,
    and check every LFS file against the hub's sha256. ``keep_cache`` keeps the client's resume bookkeeping."""
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.hf_api import RepoFile

    if constants.HF_HUB_OFFLINE:
        raise SnapshotError("HF_HUB_OFFLINE is set: staging downloads, so unset it on this (login) node")
    api = HfApi(endpoint=endpoint, token=token)
    info = api.repo_info(repo_id, repo_type=repo_type, revision=revision)
    patterns = list(patterns) if patterns else None
    folder.mkdir(parents=True, exist_ok=True)
    snapshot_download(repo_id, repo_type=repo_type, revision=info.sha, local_dir=str(folder), allow_patterns=patterns,
                      endpoint=endpoint, token=token)
    lfs = {f.path: f.lfs.sha256 for f in api.list_repo_tree(repo_id, repo_type=repo_type, revision=info.sha,
                                                            recursive=True)
           if isinstance(f, RepoFile) and f.lfs is not None}
    out = Fetched(repo_id, repo_type, info.sha, hub_licence(info), folder)
    for p in folder_files(folder):
        rel = p.relative_to(folder).as_posix()
        digest = sha256_file(p)
        if rel in lfs and lfs[rel] != digest:
            p.unlink()
            raise SnapshotError(f"{repo_id}: {rel} has sha256 {digest}, the hub lists {lfs[rel]}: removed it, "
                                "run again to fetch it anew")
        out.files[rel] = {"size": p.stat().st_size, "sha256": digest}
    if not keep_cache:
        shutil.rmtree(folder / ".cache", ignore_errors=True)
    return out


# --- GEM datasets ------------------------------------------------------------------------------------------------
def split_of(rel: str) -> str:
    """The split a data file holds, as ``datasets`` names them: ``data/train-00000-of-00001.parquet`` -> train,
    ``data/math-00000-of-00001.parquet`` -> math, ``nq.jsonl`` -> nq."""
    stem = Path(rel).name.split(".", 1)[0]
    m = _SHARD.match(stem)
    return m.group("split") if m else stem


def data_splits(folder: Path) -> dict[str, list[Path]]:
    """split -> its data files (parquet or JSON lines) in a downloaded dataset repo."""
    out: dict[str, list[Path]] = {}
    for p in folder_files(folder):
        if p.suffix in DATA_SUFFIXES:
            out.setdefault(split_of(p.relative_to(folder).as_posix()), []).append(p)
    return out


def read_table(files: list[Path]) -> Any:
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    tables = [pq.read_table(p) if p.suffix == ".parquet" else pj.read_json(p) for p in sorted(files)]
    return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]


def write_parquet(table: Any, path: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return {"rows": table.num_rows, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def plan_datasets(env_ids: Iterable[str]) -> dict[str, dict]:
    """GEM dataset name -> {"folder", "env_ids", "splits_needed"} for the given env ids."""
    plan: dict[str, dict] = {}
    for env_id in env_ids:
        spec = env_spec(env_id)
        entry = plan.setdefault(spec.hf_dataset, {"folder": spec.folder, "env_ids": [], "splits_needed": []})
        entry["env_ids"].append(env_id)
        entry["splits_needed"].append(spec.split)
    return plan


def _env_of_split(env_ids: list[str], split: str) -> str:
    return next((e for e in env_ids if env_spec(e).split == split), env_ids[0])


def write_gem_dataset(raw: Fetched, dest: Path, env_ids: list[str], solutions: Mapping[str, Any] | None = None,
                      echo: Echo | None = None) -> dict[str, Any]:
    """Write each split of a downloaded GEM dataset as ``dest/<split>.parquet``, with worked solutions joined in.

    ``solutions``: source name -> (SolutionSource, index, Fetched) for the sources of these envs. Returns the split
    infos and the join's statistics per split."""
    from stages.envs.solutions import join_solutions, source_for

    splits = data_splits(raw.folder)
    needed = sorted({env_spec(e).split for e in env_ids} - set(splits))
    if needed:
        raise SnapshotError(f"dataset {raw.repo_id} has no split(s) {needed}; it has {sorted(splits)}")
    out: dict[str, Any] = {"splits": {}, "joins": {}}
    for split, files in sorted(splits.items()):
        table = read_table(files)
        env_id = _env_of_split(env_ids, split)
        source = source_for(env_id)
        if source is not None and solutions and source.name in solutions:
            _, index, _ = solutions[source.name]
            table, stats = join_solutions(table, env_id, source, index)
            out["joins"][split] = stats.as_dict()
            if echo:
                echo(f"    {raw.repo_id} {split}: worked solutions for {stats.matched + stats.kept} of {stats.rows} "
                     f"rows ({stats.rate:.1%}) from {source.repo_id}")
        out["splits"][split] = write_parquet(table, dest / f"{split}.parquet")
    return out


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


def model_folder(dest: Path, repo_id: str) -> Path:
    """``<dest>/models/<name>``: the folder a study's ``models.root`` reads by default (the repo id's last part)."""
    return dest / "models" / repo_id.rsplit("/", 1)[-1]


def fetch_solution_sources(env_ids: Iterable[str], cache: Path, endpoint: str | None,
                           echo: Echo | None = None) -> dict[str, Any]:
    """source name -> (SolutionSource, index, Fetched) for every solution source of the given envs."""
    from stages.envs.solutions import solution_index, source_for

    out: dict[str, Any] = {}
    for env_id in env_ids:
        source = source_for(env_id)
        if source is None or source.name in out:
            continue
        if echo:
            echo(f"  solutions {source.repo_id} (for {', '.join(source.env_ids)}) ...")
        fetched = fetch_repo(source.repo_id, cache / "datasets" / source.repo_id, repo_type="dataset",
                             patterns=source.files, endpoint=endpoint, keep_cache=True)
        files = [fetched.folder / rel for rel in fetched.files]
        out[source.name] = (source, solution_index(source, files), fetched)
    return out


def snapshot(dest: Path, env_ids: list[str], models: list[str], revisions: Mapping[str, str],
             endpoint: str | None, echo: Echo) -> Path:
    """Fetch the datasets of ``env_ids`` (with worked solutions) and the ``org/name[@rev]`` models; write the
    manifest."""
    cache = dest / ".snapshot-cache"
    datasets = []
    solutions = fetch_solution_sources(env_ids, cache, endpoint, echo) if env_ids else {}
    for name, entry in plan_datasets(env_ids).items():
        echo(f"  dataset {name} ...")
        raw = fetch_repo(name, cache / "datasets" / name, repo_type="dataset", revision=revisions.get(name),
                         endpoint=endpoint, keep_cache=True)
        folder = dest / "datasets" / entry["folder"]
        written = write_gem_dataset(raw, folder, entry["env_ids"], solutions, echo)
        datasets.append({"name": name, "revision": raw.revision, "licence": raw.licence,
                         "folder": str(folder.relative_to(dest)), "env_ids": entry["env_ids"], **written})
    model_entries = []
    for ref in models:
        repo_id, _, rev = ref.partition("@")
        echo(f"  model {repo_id} ...")
        got = fetch_repo(repo_id, model_folder(dest, repo_id), revision=rev or None, endpoint=endpoint)
        model_entries.append({"name": repo_id, "revision": got.revision, "licence": got.licence,
                              "folder": str(got.folder.relative_to(dest)),
                              "files": {k: v["sha256"] for k, v in got.files.items()}})
    sources = [{"name": s.repo_id, "revision": f.revision, "licence": f.licence or s.licence, "for": list(s.env_ids)}
               for s, _, f in solutions.values()]
    return write_manifest(dest, datasets, model_entries, sources)


def write_manifest(dest: Path, datasets: list[dict], models: list[dict], sources: list[dict] | None = None) -> Path:
    manifest = {
        "schema": "forgetting-llms/snapshot/v1",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "datasets": datasets,
        "models": models,
        "solution_sources": sources or [],
    }
    path = dest / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dest", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Snapshot root (e.g. $SCRATCH/forgetting-llms).")
@click.option("--env", "env_ids", multiple=True, type=click.Choice(list(ENVS)),
              help="Env ids whose datasets to fetch (repeatable; default: all six).")
@click.option("--model", "models", multiple=True, metavar="ORG/NAME[@REV]", help="Model to fetch (repeatable).")
@click.option("--dataset-revision", "dataset_revisions", multiple=True, metavar="NAME=REV",
              help="Pin a dataset revision (repeatable).")
@click.option("--skip-datasets", is_flag=True, help="Fetch only the models.")
@click.option("--endpoint", default=None, metavar="URL", help="Hub endpoint (default: HF_ENDPOINT, else the hub's).")
@click.option("--check", is_flag=True, help="Do not download: verify an existing snapshot offline.")
def main(dest: Path, env_ids: tuple[str, ...], models: tuple[str, ...], dataset_revisions: tuple[str, ...],
         skip_datasets: bool, endpoint: str | None, check: bool) -> None:
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
    path = snapshot(dest, [] if skip_datasets else list(env_ids), list(models), revisions, endpoint, click.echo)
    click.echo(f"wrote {path}")


if __name__ == "__main__":
    main()
