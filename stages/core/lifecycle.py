"""The one lifecycle every stage runs through (design §4).

load -> validate -> resolve inputs -> preflight -> spec hash -> skip if already succeeded with that hash ->
lock the output folder -> write ``running`` -> install stop-signal handlers -> run (the stage resumes from its own
checkpoints) -> digest outputs -> write the final manifest atomically -> release the lock.

Exit codes: 0 done or skipped; 1 failed; 2 invalid manifest or input (nothing written under output_dir);
75 preempted (the sbatch wrapper requeues the job).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
import traceback
from dataclasses import dataclass

from stages.core import storage
from stages.core.digest import digest
from stages.core.errors import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_PREEMPTED,
    ManifestError,
    NotImplementedYet,
    Preempted,
)
from stages.core.inputs import resolve_inputs
from stages.core.locking import OutputLock
from stages.core.manifest import ManifestBase, RunState
from stages.core.provenance import capture
from stages.core.signals import StopFlag
from stages.core.stage import ResolvedInput, RunContext, StageDef
from stages.core.validation import load_manifest

log = logging.getLogger("stages.lifecycle")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Prepared:
    manifest: ManifestBase
    inputs: dict[str, ResolvedInput]
    spec_hash: str
    engine: str

    @property
    def output_dir(self) -> str:
        return storage.expand(self.manifest.spec.output_dir)

    @property
    def record_uri(self) -> str:
        return storage.join(self.output_dir, "manifest.json")


def spec_hash(stage: StageDef, manifest: ManifestBase, inputs: dict[str, ResolvedInput], engine: str) -> str:
    """What decides whether two runs are the same work: stage, params, input contents, seed, engine, thinking."""
    rt = manifest.spec.runtime
    key = {
        "stage": stage.name,
        "params": manifest.spec.params.model_dump(mode="json"),  # type: ignore[attr-defined]
        "inputs": {name: inp.digest for name, inp in sorted(inputs.items())},
        "seed": rt.seed,
        "engine": engine,
        "thinking": rt.thinking,
    }
    blob = json.dumps(key, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def prepare(stage: StageDef, manifest_uri: str) -> Prepared:
    """Everything that can fail because of the user's input, done before anything is written."""
    manifest = load_manifest(stage, manifest_uri)
    inputs = resolve_inputs(stage, manifest.spec.inputs)
    engine = manifest.spec.runtime.engine or stage.default_engine()
    if stage.preflight:
        try:
            stage.load(stage.preflight)(manifest.spec, inputs)
        except ManifestError:
            raise
        except ValueError as e:
            raise ManifestError(str(e), "$.spec") from None
    return Prepared(manifest, inputs, spec_hash(stage, manifest, inputs, engine), engine)


def read_record(uri: str, stage: StageDef) -> ManifestBase | None:
    if not storage.exists(uri):
        return None
    try:
        return stage.manifest_cls.model_validate_json(storage.read_text(uri))
    except Exception as e:  # a record from another version or stage: refuse rather than guess
        raise ManifestError(f"{uri} exists but is not a readable {stage.name} record ({e.__class__.__name__})")


def _set_environment(manifest: ManifestBase, output_dir: str) -> None:
    rt = manifest.spec.runtime
    if rt.offline:
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            os.environ.setdefault(var, "1")
    os.environ["WANDB_MODE"] = rt.tracking.mode if rt.tracking.wandb else "disabled"
    if storage.is_local(output_dir):
        os.environ.setdefault("WANDB_DIR", str(storage.local_path(output_dir)))


def _attach_log_file(output_dir: str, attempt: int) -> logging.Handler | None:
    if not storage.is_local(output_dir):
        return None
    logs = storage.local_path(output_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(logs / f"attempt-{attempt}.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def _clear_output_dir(output_dir: str) -> None:
    for name in storage.listdir(output_dir):
        if name != ".lock":
            storage.remove(storage.join(output_dir, name), recursive=True)


def _collect_outputs(stage: StageDef, ctx: RunContext, produced: dict[str, str]) -> dict:
    from stages.core.artifacts import ArtifactRef

    unknown = set(produced) - set(stage.outputs)
    if unknown:
        raise RuntimeError(f"stage produced undeclared outputs: {', '.join(sorted(unknown))}")
    outputs = {}
    for name, decl in stage.outputs.items():
        rel = produced.get(name)
        if rel is None:
            if decl.required:
                raise RuntimeError(f"stage did not produce its required output {name!r} ({decl.path})")
            continue
        uri = rel if "://" in rel or rel.startswith("/") else ctx.out(rel)
        if not storage.exists(uri):
            raise RuntimeError(f"output {name!r} was declared written but {uri} does not exist")
        outputs[name] = ArtifactRef(uri=uri, kind=decl.kind, digest=digest(uri))
    return outputs


def execute(stage: StageDef, manifest_uri: str, force: bool = False) -> int:
    """Run one manifest through the lifecycle and return the process exit code."""
    try:
        prep = prepare(stage, manifest_uri)
        existing = read_record(prep.record_uri, stage)
    except ManifestError as e:
        print(f"{stage.name}: invalid manifest: {e}", file=sys.stderr)
        return EXIT_INVALID
    same = existing is not None and existing.provenance.spec_hash == prep.spec_hash
    if same and existing.status.state == RunState.succeeded and not force:  # type: ignore[union-attr]
        print(f"{stage.name}: skipped: {prep.record_uri} already succeeded with the same spec ({prep.spec_hash[:19]})")
        return EXIT_OK
    if existing is not None and not same and not force:
        print(
            f"{stage.name}: invalid manifest: $.spec.output_dir: {prep.output_dir} already holds run "
            f"{existing.run_id!r} ({existing.status.state.value}) made from a different spec; use --force to "
            "replace it, or choose another output_dir",
            file=sys.stderr,
        )
        return EXIT_INVALID

    lock = OutputLock(prep.output_dir)
    try:
        lock.acquire()
    except ManifestError as e:
        print(f"{stage.name}: refused: {e}", file=sys.stderr)
        return EXIT_INVALID
    try:
        if force and existing is not None and (not same or existing.status.state == RunState.succeeded):
            _clear_output_dir(prep.output_dir)
            existing = None
        return _run_locked(stage, prep, existing if same else None)
    finally:
        lock.release()


def _run_locked(stage: StageDef, prep: Prepared, previous: ManifestBase | None) -> int:
    manifest = prep.manifest
    manifest.status.attempt = (previous.status.attempt if previous else 0) + 1
    manifest.status.restart_count = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
    manifest.status.state = RunState.running
    manifest.status.started_at = now()
    if previous is not None:
        manifest.status.last_checkpoint = previous.status.last_checkpoint
    manifest.provenance = capture(prep.spec_hash, prep.engine)

    def write() -> None:
        manifest.status.updated_at = now()
        storage.write_text_atomic(prep.record_uri, manifest.to_json())

    _set_environment(manifest, prep.output_dir)
    handler = _attach_log_file(prep.output_dir, manifest.status.attempt)
    write()
    stop = StopFlag()
    stop.install()
    ctx = RunContext(stage, manifest, prep.inputs, stop, write, resuming=previous is not None)
    code = EXIT_FAILED
    try:
        log.info("%s %s attempt %d (%s)", stage.name, manifest.run_id, manifest.status.attempt, prep.engine)
        result = stage.load(stage.run)(ctx)
        # the work is done: a stop signal from here on is only recorded (the handlers stay installed until the final
        # record is written, so a late SIGTERM cannot kill the process between the last step and the record)
        manifest.outputs = _collect_outputs(stage, ctx, result.outputs)
        manifest.summary = result.summary
        manifest.status.state = RunState.succeeded
        manifest.status.progress = 1.0
        manifest.status.message = None
        code = EXIT_OK
    except Preempted as e:
        manifest.status.state = RunState.preempted
        manifest.status.message = str(e)
        if e.checkpoint:
            manifest.status.last_checkpoint = e.checkpoint
        code = EXIT_PREEMPTED
    except ManifestError as e:
        manifest.status.state = RunState.failed
        manifest.status.message = f"invalid input found during the run: {e}"
        code = EXIT_INVALID
    except NotImplementedYet as e:
        manifest.status.state = RunState.failed
        manifest.status.message = str(e)
    except Exception as e:  # noqa: BLE001 - any crash must leave a `failed` record behind
        traceback.print_exc()
        manifest.status.state = RunState.failed
        manifest.status.message = f"{e.__class__.__name__}: {e}"
    finally:
        stop.restore()
        manifest.status.exit_code = code
        manifest.status.ended_at = now()
        write()
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
    state = manifest.status.state.value
    stream = sys.stdout if code == EXIT_OK else sys.stderr
    msg = f": {manifest.status.message}" if manifest.status.message else ""
    print(f"{stage.name}: {manifest.run_id} {state}{msg} -> {prep.record_uri}", file=stream)
    return code
