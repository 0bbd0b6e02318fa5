"""Where things are on a given cluster: model folders, dataset folders, run folders.

Paths keep their ``$SCRATCH``-style variables (stages expand them at run time, so one manifest reads the same on a
login node and a compute node); only plain relative paths are made absolute, relative to the directory where
``study`` runs. A study without a path for the chosen cluster is an error naming the key to add.
"""

from __future__ import annotations

import os
from pathlib import Path

from stages.core import storage
from stages.study.catalog import dataset_folder
from stages.study.definition import StudyDef
from stages.study.errors import StudyError


def absolute(path: str) -> str:
    """Make a plain relative path absolute; leave URIs, ``~`` and ``$VAR`` paths to be expanded at run time."""
    if "://" in path or path.startswith(("~", "$", "/")):
        return path.rstrip("/") or "/"
    return os.path.abspath(path)


def expanded(path: str) -> str:
    """A path a stage reads from its params (a judge's folder, a direction file), with ``$VARS`` expanded where they
    are set: inputs are expanded by the stage, params are read as written. Unset, the path stays as written (planning
    for another cluster: its own ``study plan`` writes the manifests there)."""
    if path == "<missing>":
        return path
    try:
        return str(local(path))
    except StudyError:
        return path


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])


def local(path: str) -> Path:
    """The local path of a (possibly ``$VAR``) path, for the conductor's own reads and writes."""
    try:
        return storage.local_path(storage.expand(path))
    except storage.StorageError as e:
        raise StudyError(str(e)) from None


def model_path(study: StudyDef, key: str, cluster: str) -> str:
    ck = study.models.checkpoints[key]
    if cluster in ck.paths:
        return absolute(ck.paths[cluster])
    if ck.path:
        return absolute(ck.path)
    folder = ck.folder or (ck.repo_id.rsplit("/", 1)[-1] if ck.repo_id else key)
    root = study.models.clusters.get(cluster) or study.models.root
    if root:
        return absolute(join(root, folder))
    raise StudyError(
        f"model {key!r} has no path for cluster {cluster!r}: set models.checkpoints.{key}.paths.{cluster}, "
        f"models.checkpoints.{key}.path, models.clusters.{cluster} or models.root",
        f"models.checkpoints.{key}",
    )


def dataset_path(study: StudyDef, env_id: str, cluster: str) -> str:
    if env_id in study.data.paths:
        return absolute(study.data.paths[env_id])
    root = study.data.clusters.get(cluster) or study.data.root
    if root:
        return absolute(join(root, dataset_folder(env_id)))
    raise StudyError(
        f"no dataset folder for {env_id!r} on cluster {cluster!r}: set data.paths[{env_id!r}], "
        f"data.clusters.{cluster} or data.root",
        "data",
    )


def check_exists(path: str, what: str) -> None:
    """Fail early, with the name of the thing, when a declared input folder is absent."""
    try:
        expanded = storage.expand(path)
    except storage.StorageError as e:
        raise StudyError(f"{what}: {e} (set it, or plan with --no-check-paths on another machine)") from None
    if not storage.exists(expanded):
        raise StudyError(f"{what}: {expanded} does not exist (snapshot it first, or fix the study's path)")
