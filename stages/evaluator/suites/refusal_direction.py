"""The ``refusal_direction`` suite: the SAFE baseline's refusal direction (Arditi et al., 2024) and how much of it
a post-trained checkpoint keeps.

The direction is extracted once, from the SAFE baseline: its residual activations (the input of every block) at
the post-instruction positions, averaged over harmful and harmless instructions; their difference is one candidate
per (position, layer), and the paper's selection (``refusal.extract.select_candidate``) picks one on held-out
prompts. The baseline's own run of this suite (no ``base_model``, no ``base_direction``: the model is its own base)
writes it to ``refusal_direction.safetensors`` in its output folder; a checkpoint's run reads that file
(``refusal_direction.base_direction``) or, without one, extracts it from its ``base_model`` input.

For the evaluated checkpoint it then reports, under ``extensions["refusal_direction"]`` (the contract of issue 24):
the cosine, per layer, of its own difference in means (train instructions, the chosen position) with the base's
(null where either is zero: the embeddings' input is the same for both kinds of prompt); the mean projection of
its harmful eval activations onto the base direction per layer, beside the base's (attenuation = 1 - own/base);
and its refusal rate (string matcher on greedy generations of ``max_new_tokens``) and mean refusal score (the
paper's log-odds of a refusal token first) on harmful eval prompts with no intervention and with the base direction
ablated from every layer, and on harmless eval prompts with it added at its layer (``harmless_none`` gives the
harmless baseline). Per-prompt generations are saved as records (``samples/refusal_direction.jsonl``). Layer ``l``
is the residual stream block ``l`` reads (layer 0: the embeddings); ``position`` counts back from the prompt's end
(-1: its last token).

Resumable: each finished pass leaves a file under ``checkpoints/refusal_direction/`` (means as tensors, scores and
generations as JSON, one JSONL row per scored candidate); a requeued run recomputes only what is missing. GPU use:
one model on the device at a time, the evaluator's ``dtype`` (bf16 on a GPU) and ``batch_size``, only the
post-instruction positions leave the blocks.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from stages.core.errors import InputError
from stages.evaluator.items import ItemRecord
from stages.evaluator.refusal import store
from stages.evaluator.refusal.data import (HARMFUL_SOURCE, HARMLESS_SOURCES, InstructionSets, sets_for,
                                           settings_of)
from stages.evaluator.refusal.params import DirectionParams
from stages.evaluator.representations.rows import Rows
from stages.evaluator.session import Session

log = logging.getLogger("stages.evaluator")
EXTENSION = PHASE = "refusal_direction"
EXTENSION_VERSION = 1
CONDITIONS = {"none": "harmful", "ablation": "harmful", "addition": "harmless", "none_harmless": "harmless"}


class _Work:
    """The suite's scratch folder, the model on the device, and the stop check between passes."""

    def __init__(self, session: Session, tokenizer: Any, positions: int, refusal_ids: list[int]):
        self.session = session
        self.dir = session.ctx.checkpoint_dir / "refusal_direction"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tokenizer, self.positions, self.refusal_ids = tokenizer, positions, refusal_ids
        self._runner: Any = None
        self._folder: str | None = None

    def check_stop(self) -> None:
        if self.session.ctx.stop_requested:
            raise self.session.ctx.preempt(str(self.dir))

    def runner(self, folder: str, role: str) -> Any:
        if self._folder == folder:
            return self._runner
        self.free()
        from stages.evaluator.refusal.extract import Runner
        from stages.lm.loading import load_model

        try:
            model = load_model(folder, dtype=self.session.params.dtype)
        except (OSError, ValueError, KeyError) as e:
            raise InputError(f"model folder {folder} does not load: {e}", f"$.spec.inputs.{role}") from None
        self._runner = Runner(model, self.tokenizer, self.positions, self.session.params.batch_size,
                              self.refusal_ids, self.session.ctx.runtime.thinking)
        self._folder = folder
        return self._runner

    def free(self) -> None:
        if self._runner is None:
            return
        self._runner = self._folder = None
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # --- saved passes ------------------------------------------------------------------------------------------------
    def tensors(self, name: str, compute) -> dict[str, Any]:
        import torch

        path = self.dir / f"{name}.pt"
        if path.is_file():
            return torch.load(path, weights_only=True)
        self.check_stop()
        value = compute()
        tmp = path.with_suffix(".tmp")
        torch.save(value, tmp)
        tmp.replace(path)
        return value

    def json(self, name: str, compute) -> Any:
        path = self.dir / f"{name}.json"
        if path.is_file():
            return json.loads(path.read_text())
        self.check_stop()
        value = compute()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value))
        tmp.replace(path)
        return value


def _train_means(runner: Any, enc: dict[str, dict[str, list[list[int]]]]) -> dict[str, Any]:
    return {kind: runner.run(enc[kind]["train"]).means for kind in ("harmful", "harmless")}


def _extract(work: _Work, folder: str, role: str, enc: dict, p: DirectionParams, info: dict[str, Any]) -> Path:
    """The base's candidates, the chosen one and its harmful eval means, written as the direction file."""
    from stages.evaluator.refusal.extract import select_candidate

    train = work.tensors("base-train", lambda: _train_means(work.runner(folder, role), enc))
    candidates = train["harmful"] - train["harmless"]
    rows = Rows(work.dir / "candidates.jsonl", ("position", "layer"))
    try:
        chosen = select_candidate(work.runner(folder, role) if not _all_scored(rows, candidates, p) else None,
                                  candidates, enc["harmful"]["val"], enc["harmless"]["val"], rows, p,
                                  work.check_stop)
    except ValueError as e:
        raise RuntimeError(f"refusal_direction: {e}; see {rows.path}") from None
    base_eval = work.tensors("base-eval", lambda: {"harmful": work.runner(folder, role).run(
        enc["harmful"]["eval"]).means})
    direction = candidates[chosen.layer, chosen.position].float()
    info = {**info, "position": chosen.position, "layer": chosen.layer, "n_layers": int(candidates.shape[0]),
            "n_positions": int(candidates.shape[1]), "hidden_size": int(candidates.shape[2]),
            "selection": {"bypass_score": chosen.bypass_score, "induce_score": chosen.induce_score,
                          "kl_score": chosen.kl_score, "scored": sum(r["bypass_score"] is not None
                                                                     for r in rows.all())},
            "base_projection_per_layer": _projections(base_eval["harmful"], chosen.position, direction)}
    return store.write(work.session.out / store.FILE_NAME, candidates, direction, info)


def _all_scored(rows: Rows, candidates: Any, p: DirectionParams) -> bool:
    layers, positions = candidates.shape[0], candidates.shape[1]
    return all(rows.has(position=q - positions, layer=layer) for layer in range(layers)
               if layer < p.max_layer_share * layers for q in range(positions))


def _projections(means: Any, position: int, direction: Any) -> list[float]:
    from stages.evaluator.safety.direction import unit

    return [float(v) for v in means[:, position, :] @ unit(direction.double())]


def _cosines(own: Any, base: Any) -> list[float | None]:
    out = []
    for a, b in zip(own, base):
        na, nb = float(a.norm()), float(b.norm())
        out.append(None if na == 0 or nb == 0 else float(a @ b) / (na * nb))
    return out


def _condition(work: _Work, runner_of, enc: dict, name: str, direction: Any, layer: int,
               max_new_tokens: int) -> dict[str, Any]:
    kind = CONDITIONS[name]
    seqs = enc[kind]["eval"]

    def compute() -> dict[str, Any]:
        from stages.evaluator.safety.refusal import is_refusal

        runner = runner_of()
        with runner.intervention(name, direction, layer):
            scores = runner.run(seqs, means=False).scores
            generations = runner.generate(seqs, max_new_tokens)
        return {"scores": scores, "generations": generations, "refused": [is_refusal(g) for g in generations]}

    return work.json(f"cond-{name}", compute)


def _records(sets: InstructionSets, conds: dict[str, dict[str, Any]]) -> list[ItemRecord]:
    recs = []
    for name, c in conds.items():
        prompts = getattr(sets, CONDITIONS[name])["eval"]
        for i, (prompt, gen, score, refused) in enumerate(zip(prompts, c["generations"], c["scores"], c["refused"])):
            recs.append(ItemRecord(task=EXTENSION, item_id=f"{name}:{i}", kind="gen", score=score,
                                   metric="refusal_score", responses=[gen], prompt=prompt,
                                   extra={"condition": name, "kind": CONDITIONS[name], "refused": refused}))
    return recs


def _mean(v: list[float]) -> float:
    return sum(map(float, v)) / len(v)


def run(session: Session) -> None:
    if not session.phase(PHASE):
        return
    from stages.evaluator.refusal.extract import encode, post_instruction_ids, refusal_token_ids
    from stages.lm.chat import ChatFormat
    from stages.lm.errors import ChatFormatError
    from stages.lm.loading import load_tokenizer

    t_start = time.monotonic()
    p: DirectionParams = session.params.refusal_direction
    thinking = session.ctx.runtime.thinking
    inputs = session.ctx.inputs
    sets = sets_for(p, session.benchmarks)
    session.close()
    tokenizer = load_tokenizer(session.model_dir)
    fmt = ChatFormat(thinking=thinking)
    try:
        suffix = post_instruction_ids(tokenizer, fmt)
        enc = {kind: {split: encode(tokenizer, fmt, rows, suffix) for split, rows in getattr(sets, kind).items()}
               for kind in ("harmful", "harmless")}
        refusal_ids = refusal_token_ids(tokenizer, p.refusal_tokens)
    except (ChatFormatError, ValueError) as e:
        raise InputError(f"refusal_direction suite: {e}", "$.spec.inputs.model") from None
    work = _Work(session, tokenizer, len(suffix), refusal_ids)
    settings = settings_of(p, thinking)
    try:
        if p.base_direction:
            source, base_ref, path = "file", p.base_direction, Path(p.base_direction)
        else:
            base_folder = str(inputs["base_model"].path) if "base_model" in inputs else session.model_dir
            base_ref = inputs["base_model"].uri if "base_model" in inputs else "self"
            info = {"settings": settings, "digests": sets.digests, "post_instruction_ids": suffix,
                    "refusal_ids": refusal_ids, "base_model": base_ref if base_ref != "self" else inputs["model"].uri,
                    "harmful_source": HARMFUL_SOURCE, "harmless_source": HARMLESS_SOURCES[p.harmless]}
            source = "extracted"
            path = session.out / store.FILE_NAME
            if not path.is_file():
                path = _extract(work, base_folder, "base_model" if base_ref != "self" else "model", enc, p, info)
        candidates, direction, info = store.read(path)
        if info.get("post_instruction_ids") != suffix:
            raise InputError(f"refusal_direction.base_direction {path} was made with other post-instruction tokens "
                             f"({info.get('post_instruction_ids')} against {suffix}): another chat template or "
                             "thinking mode", "$.spec.params.refusal_direction.base_direction")
        layer, position = int(info["layer"]), int(info["position"])
        runner_of = lambda: work.runner(session.model_dir, "model")  # noqa: E731
        mine = "base" if base_ref == "self" else "model"  # the baseline's own run: its passes are the base's
        own = work.tensors(f"{mine}-train", lambda: _train_means(runner_of(), enc))
        own_eval = work.tensors(f"{mine}-eval", lambda: {"harmful": runner_of().run(enc["harmful"]["eval"]).means})
        conds = {name: _condition(work, runner_of, enc, name, direction, layer, p.max_new_tokens)
                 for name in CONDITIONS}
    finally:
        work.free()
    own_diff = own["harmful"] - own["harmless"]
    block: dict[str, Any] = {
        "version": EXTENSION_VERSION,
        "source": source,
        "base": base_ref,
        "base_direction_sha256": store.sha256(path),
        "layer": layer,
        "position": position,
        "n_layers": int(candidates.shape[0]),
        "n_positions": int(candidates.shape[1]),
        "hidden_size": int(candidates.shape[2]),
        "cosine_per_layer": _cosines(own_diff[:, position, :], candidates[:, position, :].double()),
        "projection_per_layer": _projections(own_eval["harmful"], position, direction),
        "base_projection_per_layer": [float(v) for v in info["base_projection_per_layer"]],
        "refusal_rate": {k: _mean(conds[k]["refused"]) for k in ("none", "ablation", "addition")},
        "refusal_score": {k: _mean(conds[k]["scores"]) for k in ("none", "ablation", "addition")},
        "harmless_none": {"refusal_rate": _mean(conds["none_harmless"]["refused"]),
                          "refusal_score": _mean(conds["none_harmless"]["scores"])},
        "n_harmful": len(sets.harmful["eval"]),
        "n_harmless": len(sets.harmless["eval"]),
        "selection": info["selection"],
        "settings": settings,
        "digests": sets.digests,
        "harmful_source": HARMFUL_SOURCE,
        "harmless_source": HARMLESS_SOURCES[p.harmless],
        "seconds": round(time.monotonic() - t_start, 3),  # of this attempt (a resumed one skips work)
    }
    session.results.extensions[EXTENSION] = block
    session.save_records(EXTENSION, _records(sets, conds))
    session.finish(PHASE)
