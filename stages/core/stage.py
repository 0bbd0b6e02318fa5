"""What a stage is: a name, a params model, declared inputs and outputs, engines, and a ``run`` function.

A stage folder defines one ``StageDef`` (in ``stage.py``, importing nothing heavy) and points ``run`` at a module
that imports torch & co. inside. The lifecycle hands ``run`` a ``RunContext``: resolved inputs, the output folder,
the checkpoint folder, progress reporting and the stop flag. ``run`` returns a ``StageResult`` naming its outputs.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from stages.core import storage
from stages.core.artifacts import ArtifactKind
from stages.core.errors import InputPending, Preempted
from stages.core.manifest import ManifestBase, manifest_model
from stages.core.model_base import StrictModel
from stages.core.signals import StopFlag

T = TypeVar("T")


@dataclass(frozen=True)
class InputDecl:
    kinds: tuple[ArtifactKind, ...]
    help: str
    required: bool = True


@dataclass(frozen=True)
class OutputDecl:
    kind: ArtifactKind
    help: str
    path: str  # relative to output_dir
    required: bool = True


@dataclass(frozen=True)
class ResolvedInput:
    name: str
    uri: str
    kind: ArtifactKind
    digest: str
    upstream: str | None = None  # plan-time checks only: the run that will produce this input, not run yet

    @property
    def ready(self) -> bool:
        """False only in plan-time checks (``<stage> check``) for an output an upstream run has not produced yet."""
        return self.upstream is None

    @property
    def path(self) -> Path:
        """Local path of the input (stages that need local files call this)."""
        if self.upstream is not None:
            raise InputPending(self.name, self.upstream)
        return storage.local_path(self.uri)


@dataclass
class StageResult:
    outputs: dict[str, str] = field(default_factory=dict)  # output name -> path relative to output_dir (or a URI)
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageDef:
    name: str
    description: str
    params: type[StrictModel]
    inputs: dict[str, InputDecl]
    outputs: dict[str, OutputDecl]
    run: str  # "module:function", imported only when the stage runs
    engines: tuple[str, ...] = ("native",)
    variadic_inputs: ArtifactKind | None = None  # accept any extra input names of this kind (analyzer)
    preflight: str | None = None  # "module:function(spec, inputs)" raising InputError before anything is written
    _manifest_cls: type[ManifestBase] | None = field(default=None, repr=False)

    @property
    def manifest_cls(self) -> type[ManifestBase]:
        if self._manifest_cls is None:
            self._manifest_cls = manifest_model(self.name, self.params)
        return self._manifest_cls

    def default_engine(self) -> str:
        import os

        env = os.environ.get("FLLM_DEFAULT_ENGINE")
        return env if env in self.engines else self.engines[0]

    def load(self, ref: str) -> Callable:
        module, func = ref.split(":")
        return getattr(importlib.import_module(module), func)


class RunContext:
    """Everything a running stage may touch. Created by the lifecycle, never by a stage."""

    def __init__(
        self,
        stage: StageDef,
        manifest: ManifestBase,
        inputs: dict[str, ResolvedInput],
        stop: StopFlag,
        write_status: Callable[[], None],
        resuming: bool,
    ):
        self.stage = stage
        self.manifest = manifest
        self.spec = manifest.spec
        self.params = manifest.spec.params  # type: ignore[attr-defined]
        self.runtime = manifest.spec.runtime
        self.engine = manifest.provenance.engine or stage.default_engine()
        self.inputs = inputs
        self.output_dir = storage.expand(manifest.spec.output_dir)
        self.resuming = resuming
        self.log = logging.getLogger(f"stages.{stage.name}")
        self._stop = stop
        self._write_status = write_status
        self._last_write = 0.0

    # --- paths -------------------------------------------------------------------------------------------------
    def out(self, *parts: str) -> str:
        return storage.join(self.output_dir, *parts)

    @property
    def local_output_dir(self) -> Path:
        return storage.local_path(self.output_dir)

    @property
    def checkpoint_dir(self) -> Path:
        p = self.local_output_dir / "checkpoints"
        p.mkdir(parents=True, exist_ok=True)
        return p

    # --- stop signals ------------------------------------------------------------------------------------------
    @property
    def stop_requested(self) -> bool:
        return self._stop.requested

    def preempt(self, checkpoint: str | None = None) -> Preempted:
        """Record the checkpoint and return the exception to raise: ``raise ctx.preempt(path)``."""
        if checkpoint:
            self.note_checkpoint(checkpoint)
        return Preempted(checkpoint=checkpoint, signal_name=self._stop.signal_name)

    def add_child_process_group(self, pgid: int) -> None:
        """Forward stop signals to a child process group (e.g. a torchrun launcher started with a new session)."""
        self._stop.children.append(pgid)

    # --- status --------------------------------------------------------------------------------------------------
    def note_checkpoint(self, path: str) -> None:
        self.manifest.status.last_checkpoint = str(path)
        self._write_status()

    def set_engine_config(self, config: dict[str, Any]) -> None:
        self.manifest.provenance.engine_config = config
        self._write_status()

    def report(self, progress: float | None = None, note: str | None = None, force: bool = False) -> None:
        """Update the live status in the manifest, at most every few seconds unless forced."""
        if progress is not None:
            self.manifest.status.progress = max(0.0, min(1.0, float(progress)))
        if note is not None:
            self.manifest.status.progress_note = note
        now = time.monotonic()
        if force or now - self._last_write > 5.0:
            self._last_write = now
            self._write_status()

    def progress(self, items: Iterable[T], total: int | None = None, desc: str = "", start: int = 0) -> Iterator[T]:
        """Iterate with a progress bar on a terminal and progress written to the manifest."""
        from tqdm import tqdm

        bar = tqdm(items, total=total, desc=desc, initial=start, disable=not sys.stderr.isatty(), leave=False)
        done = start
        for item in bar:
            yield item
            done += 1
            if total:
                self.report(done / total, f"{desc} {done}/{total}")
        bar.close()
