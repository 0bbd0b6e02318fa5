"""One evaluator run's state: the results under construction, the per-item records, the lm-eval model (built once,
on first use) and the progress file that lets a preempted run skip the phases it already finished.

Why a progress file: a full profile is several long phases (tier runs, the sampled diversity run, safety, target,
KL). Each finished phase leaves its records under ``samples/`` and its numbers in ``checkpoints/progress.json``;
a requeued job reloads them and continues with the next phase. Inside a phase, lm-eval's request cache (sqlite,
under ``checkpoints/``) makes a rerun of greedy requests cheap.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from stages.core import RunContext
from stages.core.common_params import Sampling
from stages.core.errors import InputError
from stages.core.results import EvalResults, Score
from stages.evaluator.codeexec.tasks import IN_PROCESS, SANDBOX, annotate, in_process_code_eval
from stages.evaluator.items import ItemRecord, read_records, subset_hash, write_records
from stages.evaluator.lmeval import runner
from stages.evaluator.lmeval.catalog import info
from stages.evaluator.lmeval.records import records_from_samples
from stages.evaluator.local_paths import with_local_paths
from stages.evaluator.protocol import protocol_of, suites_of

log = logging.getLogger("stages.evaluator")
LM_EVAL_DIR = "lm_eval"


def gen_kwargs(sampling: Sampling, max_new_tokens: int | None = None) -> dict[str, Any]:
    """lm-eval generation kwargs for a Sampling block (greedy when temperature is 0)."""
    out: dict[str, Any] = {"max_gen_toks": max_new_tokens or sampling.max_new_tokens}
    if sampling.temperature == 0:
        out.update(do_sample=False, temperature=0.0)
    else:
        out.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        if sampling.top_k > 0:
            out["top_k"] = sampling.top_k
    return out


class Session:
    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.params = with_local_paths(ctx.params)  # judge and attack files with $VARS expanded
        self.out: Path = ctx.local_output_dir
        self.model_dir = str(ctx.inputs["model"].path)
        self.benchmarks = str(ctx.inputs["benchmarks"].path) if "benchmarks" in ctx.inputs else None
        self.progress_file = ctx.checkpoint_dir / "progress.json"
        self.engine_config: dict[str, Any] = {"code_execution": IN_PROCESS if self.params.allow_unsafe_code
                                              else SANDBOX}
        self.done: list[str] = []
        self._lm: Any = None
        self._tokenizer: Any = None
        self.results = EvalResults(
            run_id=ctx.manifest.run_id,
            model_uri=ctx.inputs["model"].uri,
            model_digest=ctx.inputs["model"].digest,
            labels=self.params.labels,
            suites=suites_of(self.params.suite),
            engine=ctx.engine,
            protocol=protocol_of(ctx.spec),
            samples_dir="samples",
            lm_eval_dir=LM_EVAL_DIR,
        )
        if self.progress_file.exists():
            state = json.loads(self.progress_file.read_text())
            self.done = state["done"]
            self.results = EvalResults.model_validate(state["results"])
            log.info("resuming after phases: %s", ", ".join(self.done) or "none")

    # --- phases ----------------------------------------------------------------------------------------------------
    def phase(self, name: str) -> bool:
        """True if phase ``name`` still has to run; stops here (preempted) when a stop signal arrived."""
        if self.ctx.stop_requested:
            raise self.ctx.preempt(str(self.progress_file))
        if name in self.done:
            log.info("phase %s already done", name)
            return False
        self.ctx.report(note=f"phase {name}", force=True)
        return True

    def finish(self, name: str) -> None:
        self.done.append(name)
        state = {"done": self.done, "results": self.results.model_dump(mode="json", by_alias=True)}
        tmp = self.progress_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.progress_file)

    # --- the lm-eval model -----------------------------------------------------------------------------------------
    @property
    def lm(self) -> Any:
        if self._lm is None:
            p = self.params
            spec = runner.BackendSpec(
                model_dir=self.model_dir, engine=self.ctx.engine, dtype=p.dtype, batch_size=p.batch_size,
                thinking=self.ctx.runtime.thinking, seed=self.ctx.runtime.seed,
                gpus=self.ctx.spec.resources.gpus_per_node, gpu_memory_utilization=p.gpu_memory_utilization,
                max_model_len=p.max_model_len,
            )
            t0 = time.monotonic()
            try:
                self._lm = runner.build_lm(spec)
            except (OSError, ValueError, KeyError) as e:
                raise InputError(f"model folder {self.model_dir} does not load: {e.__class__.__name__}: {e}",
                                 "$.spec.inputs.model") from None
            log.info("model loaded in %.1f s", time.monotonic() - t0)
        return self._lm

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (the lm-eval model's when loaded; else loaded alone, without the weights)."""
        if self._lm is not None:
            return self._lm.tokenizer
        if self._tokenizer is None:
            from stages.lm.loading import load_tokenizer

            self._tokenizer = load_tokenizer(self.model_dir)
        return self._tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def close(self) -> None:
        """Drop the lm-eval model (before another model is loaded for the target suite or KL)."""
        if self._lm is None:
            return
        self._lm = None
        import gc

        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # --- records ---------------------------------------------------------------------------------------------------
    def save_records(self, task: str, records: list[ItemRecord]) -> None:
        self.results.samples_files[task] = write_records(self.out, task, records)
        self.results.item_subset_hash[task] = subset_hash(records)

    def records(self, task: str) -> list[ItemRecord]:
        return read_records(self.out / self.results.samples_files[task])

    # --- one lm-eval call ------------------------------------------------------------------------------------------
    def lmeval(
        self, call: str, tasks: runner.TaskSet, items: dict[str, list[int]], settings: runner.CallSettings,
        thinking: bool, doc_fields: tuple[str, ...] = (),
    ) -> tuple[dict[str, list[ItemRecord]], dict[str, Any]]:
        """Run ``tasks`` once; return the records per leaf task and lm-eval's aggregated results."""
        t0 = time.monotonic()
        if settings.gen_kwargs and settings.gen_kwargs.get("do_sample"):
            cache = None  # lm-eval never caches sampled requests anyway
        else:
            cache = str(self.ctx.checkpoint_dir / f"lm_eval_cache_{call}")
        settings.use_cache = cache
        in_process = IN_PROCESS in tasks.code_execution.values()
        with runner.thinking_mode(self.lm, thinking), in_process_code_eval(in_process):
            res = runner.evaluate(self.lm, tasks, items, settings, self.out / LM_EVAL_DIR / call)
        log.info("lm-eval call %s: %d tasks in %.1f s", call, len(tasks.leaves), time.monotonic() - t0)
        records = {
            task: records_from_samples(task, samples, tasks.kinds[task], self.count_tokens, doc_fields)
            for task, samples in res.get("samples", {}).items()
        }
        for task, how in tasks.code_execution.items():
            if task in records:
                annotate(records[task], res["samples"][task], how)
        if tasks.code_execution:
            self.record_code_execution(tasks.code_execution)
        return records, res

    def record_code_execution(self, executed: dict[str, str]) -> None:
        """How model-written code was run, in the manifest's provenance (``engine_config``)."""
        from stages.evaluator.codeexec.runner import TIMEOUT_S, default_runner

        tasks = {**(self.engine_config.get("code_tasks") or {}), **executed}
        self.engine_config.update(code_tasks=dict(sorted(tasks.items())), code_timeout_s=TIMEOUT_S)
        if SANDBOX in tasks.values():
            self.engine_config["sandbox_isolation"] = default_runner().isolation
        self.ctx.set_engine_config(dict(self.engine_config))


def scores_from(res: dict[str, Any], names: list[str], records: dict[str, list[ItemRecord]],
                tier: str | None = None) -> list[Score]:
    """Score rows for the requested (top-level) task names from lm-eval's aggregated results."""
    rows = []
    for name in names:
        block = res.get("results", {}).get(name)
        if not block:
            continue
        entry = info(name)
        n = (res.get("n-samples", {}).get(name) or {}).get("effective")
        hib = res.get("higher_is_better", {}).get(name, {})
        for key, value in block.items():
            if "," not in key or "_stderr," in key or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            metric = key.split(",")[0]
            stderr = block.get(key.replace(",", "_stderr,", 1))
            if not isinstance(stderr, (int, float)):
                stderr = _stderr(records.get(name, []), key)
            rows.append(Score(
                task=name, metric=key, value=float(value), stderr=stderr, n=n if isinstance(n, int) else None,
                capability=entry.capability, tier=tier or entry.tier, higher_is_better=bool(hib.get(metric, True)),
            ))
    return rows


def _stderr(records: list[ItemRecord], key: str) -> float | None:
    values = [r.metrics[key] for r in records if key in r.metrics]
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return (var / len(values)) ** 0.5
