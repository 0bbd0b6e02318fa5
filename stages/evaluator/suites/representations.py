"""The ``representations`` suite: how far post-training moved the model's internals from its base (plan §4.2).

Three analyses of the evaluated checkpoint against ``base_model`` (the starting checkpoint the planner wires in):
- CKA per layer: the residual stream after every block (and the embeddings), pooled per text, for fixed seeded text
  sets from each domain and from general text (``stages.evaluator.representations.texts`` says which rows and why),
  linear and debiased CKA between base and post (``stages.evaluator.metrics.cka``);
- linear probes for factual knowledge per layer: true/false NQ-open statements; a probe trained on the base's
  activations, tested on the base's (before), applied unchanged to the post-trained model's (the base's readout
  retained), and retrained on the post-trained model's (what remains decodable), with a shuffled-label control
  (``stages.evaluator.metrics.probes``);
- weight deltas per module and layer: norms, stable and effective rank, top-k energy and the overlap of ΔW's top
  singular subspaces with the base weight's (``stages.evaluator.metrics.weight_delta``), streamed from safetensors.

Without ``base_model`` (the base's own evaluation) only the probes run, on the model itself: its ``post`` column is
then what the base encodes, the same number a trained run reports as ``base``.

Results go to ``results.json`` under ``extensions.representations`` (rows per set × layer, per layer, per matrix; see
``EXTENSION_VERSION``). Resumable: each model's pooled activations are saved once captured
(``checkpoints/representations/acts-*.npz``, float32, n × d per layer, never per token), and every CKA, probe and
weight row is appended to a JSONL file as soon as it is computed; a preempted run computes only what is missing.
The activation files are removed when the suite is done. GPU use: one model on the device at a time, batches of
``batch_size`` texts, the evaluator's ``dtype``; probes and spectra run on the same device.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from stages.core.errors import InputError
from stages.evaluator.representations.params import RepresentationsParams
from stages.evaluator.representations.rows import Rows
from stages.evaluator.session import Session

log = logging.getLogger("stages.evaluator")
EXTENSION = "representations"
EXTENSION_VERSION = 1
PHASE = "representations"


def _texts(session: Session, p: RepresentationsParams) -> tuple[dict[str, Any], Any]:
    from stages.evaluator.representations.texts import cka_set, probe_statements
    from stages.evaluator.tasks.fllm_loaders import BenchmarkDataMissing

    bench = Path(session.benchmarks) if session.benchmarks else None
    try:
        sets = {name: cka_set(name, bench, p.texts_per_set, p.seed) for name in p.sets}
        reserved = len(sets["qa"].texts) if "qa" in sets else 0
        probe = probe_statements(bench, p.probe_questions, p.seed, reserved)
    except (BenchmarkDataMissing, ValueError) as e:
        raise InputError(f"representations suite: {e}", "$.spec.inputs.benchmarks") from None
    return sets, probe


def _device() -> str:
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


class _Work:
    """The suite's working folder under the run's checkpoints, and the stop check between units of work."""

    def __init__(self, session: Session):
        self.session = session
        self.dir = session.ctx.checkpoint_dir / "representations"
        self.dir.mkdir(parents=True, exist_ok=True)

    def check_stop(self) -> None:
        if self.session.ctx.stop_requested:
            raise self.session.ctx.preempt(str(self.dir))

    def activations(self, role: str, model_dir: str, sequences: dict[str, list[list[int]]],
                    pooling: dict[str, str]) -> dict[str, np.ndarray]:
        """Pooled activations of one model for every text group (captured once, then read back)."""
        path = self.dir / f"acts-{role}.npz"
        if path.is_file():
            with np.load(path) as saved:
                if set(saved.files) == set(sequences):
                    return {k: saved[k] for k in saved.files}
        self.check_stop()
        from stages.evaluator.representations.capture import capture
        from stages.lm.loading import load_model

        p = self.session.params
        t0 = time.monotonic()
        try:
            model = load_model(model_dir, dtype=p.dtype)
        except (OSError, ValueError, KeyError) as e:
            where = "$.spec.inputs." + ("base_model" if role == "base" else "model")
            raise InputError(f"model folder {model_dir} does not load: {e}", where) from None
        try:
            acts = {k: capture(model, seqs, pooling[k], p.batch_size) for k, seqs in sequences.items()}
        finally:
            del model
            _free()
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, **acts)
        tmp.replace(path)
        log.info("representations: %s activations captured in %.1f s", role, time.monotonic() - t0)
        return acts


def _free() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _cka_rows(work: _Work, base: dict[str, np.ndarray], post: dict[str, np.ndarray], sets: list[str],
              debiased: bool) -> list[dict[str, Any]]:
    from stages.evaluator.metrics.cka import cka_from_grams, gram

    rows = Rows(work.dir / "cka.jsonl", ("set", "layer"))
    for name in sets:
        for layer in range(base[name].shape[0]):
            if rows.has(set=name, layer=layer):
                continue
            work.check_stop()
            kx, ly = gram(base[name][layer]), gram(post[name][layer])
            n = int(kx.shape[0])
            rows.add({"set": name, "layer": layer, "n": n, "linear": _num(cka_from_grams(kx, ly)),
                      "debiased": _num(cka_from_grams(kx, ly, debiased=True)) if debiased and n >= 4 else None})
    return sorted(rows.all(), key=lambda r: (sets.index(r["set"]), r["layer"]))


def _probe_rows(work: _Work, base: np.ndarray | None, post: np.ndarray, probe: Any,
                p: RepresentationsParams) -> list[dict[str, Any]]:
    from stages.evaluator.metrics.probes import fold_ids, probe_layer

    rows = Rows(work.dir / "probes.jsonl", ("layer",))
    folds = fold_ids(probe.groups, p.probe_folds, p.seed)
    device = _device()
    for layer in range(post.shape[0]):
        if rows.has(layer=layer):
            continue
        work.check_stop()
        if base is None:  # the model alone: what it encodes is its `post` column
            s = probe_layer(post[layer], probe.labels, folds, p.probe_l2, p.seed, device=device)
            row = {"layer": layer, "n": s.n, "post": s.base, "control": s.control}
        else:
            s = probe_layer(base[layer], probe.labels, folds, p.probe_l2, p.seed, post[layer], device=device)
            row = {"layer": layer, **s.as_dict()}
        rows.add(row)
    return sorted(rows.all(), key=lambda r: r["layer"])


def _weight_rows(work: _Work, base_dir: Path, post_dir: Path,
                 p: RepresentationsParams) -> tuple[list[dict[str, Any]], list[str]]:
    from stages.evaluator.metrics.weight_delta import delta_metrics
    from stages.evaluator.representations.weights import matrices, pairs, weight_files

    try:
        base_files, post_files = weight_files(base_dir), weight_files(post_dir)
        mats, only_one = matrices(base_files, post_files, p.modules)
    except ValueError as e:
        raise InputError(f"representations suite: {e}", "$.spec.inputs") from None
    if not mats:
        raise InputError(f"representations.modules {p.modules} match no 2-D weight of both checkpoints",
                         "$.spec.params.representations.modules")
    rows = Rows(work.dir / "weights.jsonl", ("name",))
    todo = [m for m in mats if not rows.has(name=m.name)]
    for i, (m, wb, wp) in enumerate(pairs(todo, base_files, post_files, _device())):
        work.check_stop()
        metrics = delta_metrics(wb, wp, p.top_k, p.spectrum == "exact", p.oversample, p.power_iterations, p.seed)
        rows.add({"name": m.name, "layer": m.layer, "module": m.module, **metrics})
        work.session.ctx.report(note=f"representations: weights {i + 1}/{len(todo)}")
    order = {m.name: i for i, m in enumerate(mats)}
    return sorted((r for r in rows.all() if r["name"] in order), key=lambda r: order[r["name"]]), only_one


def _num(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def run(session: Session) -> None:
    if not session.phase(PHASE):
        return
    p: RepresentationsParams = session.params.representations
    inputs = session.ctx.inputs
    base_dir = Path(inputs["base_model"].path) if "base_model" in inputs else None
    work = _Work(session)
    sets, probe = _texts(session, p)
    session.close()  # the lm-eval model, if a phase before loaded one

    from stages.evaluator.representations.capture import tokenise
    from stages.lm.loading import load_tokenizer

    tokenizer = load_tokenizer(str(base_dir) if base_dir else session.model_dir)
    sequences = {k: tokenise(tokenizer, s.texts, p.max_tokens) for k, s in sets.items()}
    sequences["probe"] = tokenise(tokenizer, probe.texts, p.max_tokens)
    pooling = {**{k: p.pooling for k in sets}, "probe": p.probe_pooling}
    seconds: dict[str, float] = {}

    t0 = time.monotonic()
    post = work.activations("post", session.model_dir, sequences, pooling)
    base = work.activations("base", str(base_dir), sequences, pooling) if base_dir else None
    seconds["activations"] = time.monotonic() - t0
    if base is not None and base["probe"].shape != post["probe"].shape:
        raise InputError(f"base_model and model differ in shape: {base['probe'].shape[0]} layers of width "
                         f"{base['probe'].shape[2]} against {post['probe'].shape[0]} of {post['probe'].shape[2]}",
                         "$.spec.inputs.base_model")
    block: dict[str, Any] = {
        "version": EXTENSION_VERSION,
        "base_model": inputs["base_model"].uri if base_dir else None,
        "layers": int(post["probe"].shape[0]),
        "hidden_size": int(post["probe"].shape[2]),
        "settings": p.model_dump(mode="json"),
        "sets": {k: {"n": len(s.texts), "digest": s.digest, "tokens": sum(map(len, sequences[k]))}
                 for k, s in sets.items()},
        "probe_set": {"n": len(probe.texts), "questions": len(set(probe.groups)), "digest": probe.digest},
        "device": _device(),
    }
    t0 = time.monotonic()
    block["cka"] = _cka_rows(work, base, post, list(sets), p.debiased) if base is not None else []
    seconds["cka"] = time.monotonic() - t0
    t0 = time.monotonic()
    block["probes"] = _probe_rows(work, base["probe"] if base is not None else None, post["probe"], probe, p)
    seconds["probes"] = time.monotonic() - t0
    block["weights"], block["weights_in_one_checkpoint_only"] = [], []
    if base_dir is not None and p.weight_delta:
        t0 = time.monotonic()
        block["weights"], block["weights_in_one_checkpoint_only"] = _weight_rows(work, base_dir,
                                                                                Path(session.model_dir), p)
        seconds["weights"] = time.monotonic() - t0
    block["seconds"] = {k: round(v, 3) for k, v in seconds.items()}  # of this attempt (a resumed one skips work)
    session.results.extensions[EXTENSION] = block
    session.finish(PHASE)
    for f in work.dir.glob("acts-*.npz"):
        f.unlink()
