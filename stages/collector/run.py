"""The collector's run: open the env on local data, collect a shard in one of the modes (or merge shards), and
derive SFT data, prompts and statistics from the trajectory records."""

from __future__ import annotations

from pathlib import Path

from stages.collector.collect import Collector
from stages.collector.outputs import sort_records, write_outputs
from stages.collector.records import CollectState, TrajectoryLog, read_records
from stages.collector.stats import compute_stats
from stages.core import InputError, RunContext, StageResult
from stages.envs.sandbox.gate import summary as isolation_summary


def _backend(ctx: RunContext):
    from stages.lm.generation import make_backend

    p, rt = ctx.params, ctx.runtime
    if ctx.engine == "openai":
        o = p.openai
        return make_backend("openai", base_url=o.base_url, model=o.model, api_key_env=o.api_key_env,
                            max_concurrency=o.max_concurrency, max_retries=o.max_retries, timeout=o.timeout_s,
                            thinking=rt.thinking), p.teacher_id or o.model
    model = ctx.inputs["model"].path
    if ctx.engine == "vllm":
        tp = max(1, ctx.spec.resources.gpus_per_node)
        return make_backend("vllm", model=str(model), tensor_parallel_size=tp, thinking=rt.thinking,
                            seed=rt.seed), p.teacher_id or model.name
    return make_backend("hf", model=str(model), thinking=rt.thinking, batch_size=p.batch_size), p.teacher_id or model.name


def _token_counter(ctx: RunContext):
    if "model" not in ctx.inputs:
        return None
    from stages.lm.chat import ChatFormat
    from stages.lm.loading import load_tokenizer

    tok = load_tokenizer(ctx.inputs["model"].path)
    fmt = ChatFormat(thinking=ctx.runtime.thinking)
    return lambda messages: len(fmt.prompt_ids(tok, messages))


def _merge(ctx: RunContext) -> StageResult:
    records, seen = [], {}
    for name, inp in sorted(ctx.inputs.items()):
        for r in read_records(inp.path):
            key = (r["position"], r["sample_index"])
            if key in seen and seen[key] != r:
                raise InputError(f"shard {name!r} disagrees with another shard on position {key[0]}",
                                 f"$.spec.inputs.{name}")
            if key not in seen:
                seen[key] = r
                records.append(r)
    modes = {r["mode"] for r in records}
    if len(modes) != 1 or len({r["env_id"] for r in records}) != 1:
        raise InputError("merge shards must come from one env and one mode", "$.spec.inputs")
    mode = modes.pop()
    records = sort_records(records)
    out = ctx.local_output_dir
    with open(out / "trajectories.jsonl", "w", encoding="utf-8") as f:
        import json

        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    n = max((r.get("sampling") or {}).get("n", 1) for r in records)
    stats = compute_stats(records, mode, n)
    stats["merged_shards"] = len(ctx.inputs)
    outputs = write_outputs(records, mode, ctx.params, out, stats)
    return StageResult(outputs=outputs, summary=_summary(stats))


def _summary(stats: dict) -> dict:
    keys = ("records", "items", "accuracy", "sft_rows", "prompts", "samples_per_s")
    return {**{k: stats[k] for k in keys if stats.get(k) is not None}, **isolation_summary()}


def run(ctx: RunContext) -> StageResult:
    from stages.envs import grade_many, open_env
    from stages.envs.templates import qa_extract_mode

    p = ctx.params
    if p.mode == "merge":
        return _merge(ctx)
    ds = open_env(p.env_id, ctx.inputs["dataset"].path, p.split, template=p.template, thinking=ctx.runtime.thinking)
    stop = min(p.stop or len(ds), len(ds))
    if p.max_items:
        stop = min(stop, p.start + p.max_items)
    out: Path = ctx.local_output_dir
    state_path = ctx.checkpoint_dir / "collect_state.json"
    state = CollectState.load(state_path, p.start)
    log = TrajectoryLog(out / "trajectories.jsonl", state)
    backend, model_id = (_backend(ctx) if p.mode == "generate" else (None, None))
    collector = Collector(ds, p, ctx.runtime.seed, log, grade_many, qa_extract_mode(p.template), backend=backend,
                          model_id=model_id, count_tokens=_token_counter(ctx))

    def checkpoint() -> None:
        state.save(state_path)
        ctx.manifest.status.last_checkpoint = str(state_path)

    try:
        done = collector.run(stop, lambda: ctx.stop_requested, lambda f, note: ctx.report(f, note), checkpoint)
    finally:
        log.close()
        if backend is not None:
            backend.close()
    if not done:
        raise ctx.preempt(str(state_path))
    records = read_records(out / "trajectories.jsonl")
    stats = compute_stats(records, p.mode, p.n_samples)
    if state.wall_seconds > 0 and records:
        stats["samples_per_s"] = round(len(records) / state.wall_seconds, 3)
    if state.generate_seconds > 0:
        stats["generate_seconds"] = round(state.generate_seconds, 3)
    stats["wall_seconds"] = round(state.wall_seconds, 3)
    outputs = write_outputs(records, p.mode, p, out, stats)
    return StageResult(outputs=outputs, summary=_summary(stats))
