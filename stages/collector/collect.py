"""The collection loop: items in seeded order, one chunk of ``batch_size`` positions at a time.

Chunks are aligned to multiples of ``batch_size`` in the global order and each chunk's sampling seed comes from
(runtime seed, chunk number), so an interrupted run, a resumed run and shards that start on a chunk boundary all
produce exactly the records of one uninterrupted run. Grading of chunk c overlaps the generation of chunk c+1 in a
worker thread (the graders are thread-safe and time out without signals); records are appended and checkpointed
chunk by chunk.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from stages.collector.records import CollectState, TrajectoryLog
from stages.collector.targets import ground_truth_response


def chunk_seed(seed: int, chunk: int) -> int:
    return int.from_bytes(hashlib.sha256(f"collector:{seed}:{chunk}".encode()).digest()[:4], "little")


def chunks(start: int, stop: int, size: int) -> Iterator[tuple[int, int, int]]:
    c = start // size
    while c * size < stop:
        lo, hi = max(start, c * size), min(stop, (c + 1) * size)
        if lo < hi:
            yield c, lo, hi
        c += 1


def base_record(item, mode: str, seed: int) -> dict[str, Any]:
    return {
        "env_id": item.env_id,
        "domain": item.domain,
        "item_index": item.index,
        "position": item.metadata.get("position"),
        "split": item.metadata.get("split"),
        "template": item.metadata.get("template"),
        "thinking": item.metadata.get("thinking"),
        "prompt": item.messages,
        "ground_truth": item.ground_truth,
        "reference_solution": item.reference_solution,
        "mode": mode,
        "seed": seed,
    }


class Collector:
    """One mode's work on one shard. ``grade_many(env_id, responses, truths)`` comes from stages.envs."""

    def __init__(self, ds, params, seed: int, log: TrajectoryLog, grade_many: Callable, qa_extract: str,
                 backend=None, model_id: str | None = None, count_tokens: Callable[[Any], int] | None = None):
        self.ds, self.p, self.seed, self.log = ds, params, seed, log
        self.grade_many, self.qa_extract = grade_many, qa_extract
        self.backend, self.model_id, self.count_tokens = backend, model_id, count_tokens

    # --- per-mode record makers --------------------------------------------------------------------------------
    def _prompt_records(self, items: list) -> list[dict]:
        out = []
        for it in items:
            r = base_record(it, "prompts", self.seed)
            r.update(sample_index=0, response=None, reward=None, correct=None, verdict=None)
            if self.count_tokens:
                r["prompt_tokens"] = self.count_tokens(it.messages)
            out.append(r)
        return out

    def _ground_truth_records(self, items: list) -> list[dict]:
        pairs = [(it, *ground_truth_response(it, self.qa_extract)) for it in items]
        kept = [(it, text, kind) for it, text, kind in pairs if text is not None]
        verdicts = self.grade_many(self.ds.env_id, [t for _, t, _ in kept], [it.ground_truth for it, _, _ in kept])
        out = []
        for it, text, kind in pairs:
            r = base_record(it, "ground-truth", self.seed)
            r.update(sample_index=0, response=text, target_kind=kind, source="dataset", model_id=None)
            if text is None:
                r.update(reward=None, correct=None, verdict="no_target")
            else:
                v = verdicts.pop(0)
                r.update(reward=v.score, correct=bool(v.correct), verdict=v.verdict, verdict_details=v.details)
            r.update(terminated=True, truncated=False, finish_reason="stop")
            out.append(r)
        return out

    def _generate(self, items: list, chunk: int):
        from stages.lm.generation import SamplingParams

        s = self.p.sampling
        params = SamplingParams(
            n=self.p.n_samples, temperature=s.temperature, top_p=s.top_p, top_k=max(s.top_k, 0),
            max_tokens=s.max_new_tokens, seed=chunk_seed(self.seed, chunk),
        )
        t0 = time.perf_counter()
        results = self.backend.generate([it.messages for it in items], params)
        return results, time.perf_counter() - t0, params

    def _grade_generated(self, items: list, results, params) -> list[dict]:
        flat = [(it, k, c) for it, res in zip(items, results) for k, c in enumerate(res.completions)]
        verdicts = self.grade_many(self.ds.env_id, [c.text for _, _, c in flat], [it.ground_truth for it, _, _ in flat])
        sampling = {"n": params.n, "temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k,
                    "max_tokens": params.max_tokens, "seed": params.seed}
        out = []
        for (it, k, c), v in zip(flat, verdicts):
            r = base_record(it, "generate", self.seed)
            r.update(
                sample_index=k, response=c.text, source="model", model_id=self.model_id, sampling=sampling,
                reward=v.score, correct=bool(v.correct), verdict=v.verdict, verdict_details=v.details,
                terminated=c.finish_reason == "stop", truncated=c.finish_reason == "length",
                finish_reason=c.finish_reason, response_tokens=len(c.token_ids) if c.token_ids is not None else None,
            )
            if self.count_tokens:
                r["prompt_tokens"] = self.count_tokens(it.messages)
            out.append(r)
        return out

    # --- the loop ------------------------------------------------------------------------------------------------
    def run(self, stop: int, should_stop: Callable[[], bool], report: Callable[[float, str], None],
            checkpoint: Callable[[], None]) -> bool:
        """Collect positions [state.next_position, stop). Returns False if it stopped early on request."""
        state: CollectState = self.log.state
        order_seed = self.seed if self.p.shuffle else None
        total = max(stop - self.p.start, 1)
        pending: tuple[Future, int] | None = None
        pool = ThreadPoolExecutor(max_workers=1)
        started = time.perf_counter()

        def finish(fut_hi: tuple[Future, int]) -> None:
            fut, hi = fut_hi
            self.log.append(fut.result())
            state.next_position = hi
            state.wall_seconds += time.perf_counter() - started_box[0]
            started_box[0] = time.perf_counter()
            checkpoint()
            report((hi - self.p.start) / total, f"{hi - self.p.start}/{total} items")

        started_box = [started]
        try:
            for c, lo, hi in chunks(state.next_position, stop, self.p.batch_size):
                items = list(self.ds.items(seed=order_seed, start=lo, stop=hi))
                if self.p.mode == "generate":
                    results, secs, params = self._generate(items, c)
                    state.generate_seconds += secs
                    fut = pool.submit(self._grade_generated, items, results, params)
                elif self.p.mode == "ground-truth":
                    fut = pool.submit(self._ground_truth_records, items)
                else:
                    fut = pool.submit(self._prompt_records, items)
                if pending is not None:
                    finish(pending)
                pending = (fut, hi)
                if should_stop():
                    break
            if pending is not None:
                finish(pending)
                pending = None
        finally:
            pool.shutdown(wait=True)
        return state.next_position >= stop
