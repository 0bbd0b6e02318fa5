"""The verl paths on one GPU: GRPO with vLLM rollouts (stop on SIGUSR2, resume, export, evaluator loads the model)
and SFT on verl beside the native engine, through the stages' own CLIs. Results as JSON under --out.

Why one driver with steps: a device call is limited to minutes and the machine stays warm only briefly between
calls, so the work is cut into steps that each finish within one call and leave their state in --work:
  prepare   random-init Qwen3 at the 1.7B shape with the real tokenizer (bench/gpu/make_model.py)
  hf        HF `generate` tokens/s on the same card (bench/bench_hf_generate.py), the rollout baseline
  grpo      grpo-trainer engine verl: run until verl saved step --stop-at, send SIGUSR2 (expect exit 75), rerun
            (expect exit 0 after resuming), then the evaluator's target suite on the exported model
  sft       sft-trainer engine native and engine verl on the same batch: first-step loss, tokens/s, memory
Every step writes <out>/<step>.json (and the logs it read) even when the stage under test fails.
Usage (after bench/gpu/install.sh): PYTHONPATH=/tmp/site:SRC python bench/gpu/verl_paths.py STEP --data DIR ...
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write(out: Path, name: str, payload: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1, default=str))
    print(json.dumps(payload, default=str)[:3000], flush=True)


def manifest(stage: str, run_id: str, inputs: dict, params: dict, out_dir: Path, engine: str, gpus: int = 1) -> dict:
    return {"schema": "forgetting-llms/manifest/v1", "stage": stage, "run_id": run_id,
            "spec": {"inputs": {k: {"uri": str(v[0]), "kind": v[1]} for k, v in inputs.items()}, "params": params,
                     "output_dir": str(out_dir), "resources": {"gpus_per_node": gpus, "cpus_per_task": 8},
                     "runtime": {"seed": 0, "engine": engine}}}


def stage_cmd(module: str, path: Path) -> list[str]:
    return [sys.executable, "-m", f"stages.{module}.cli", "--manifest", str(path)]


def run_stage(module: str, m: dict, work: Path, log: Path, stop_when=None, timeout: float = 540) -> dict:
    """Run one stage; with stop_when(m), send SIGUSR2 to the stage once it holds. Returns rc, seconds, record."""
    path = work / f"{m['run_id']}.json"
    path.write_text(json.dumps(m))
    t0 = time.time()
    with log.open("a") as fh:
        proc = subprocess.Popen(stage_cmd(module, path), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        signalled, peak, sampled = None, 0, 0.0
        while proc.poll() is None:
            if time.time() - sampled >= 2:  # nvidia-smi every 2 s; the stop condition every 0.25 s, so a short run
                peak, sampled = max(peak, gpu_used_mib()), time.time()  # is still signalled mid-training
            if time.time() - t0 > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            if stop_when and signalled is None and stop_when():
                signalled = time.time() - t0
                proc.send_signal(signal.SIGUSR2)
            time.sleep(0.25)
        rc = proc.wait()
    record = Path(m["spec"]["output_dir"]) / "manifest.json"
    rec = json.loads(record.read_text()) if record.exists() else {}
    result = {"rc": rc, "seconds": round(time.time() - t0, 1), "signalled_at_s": signalled, "gpu_peak_used_mib": peak,
              "status": rec.get("status"), "summary": rec.get("summary"), "outputs": rec.get("outputs")}
    if rc not in (0, 75):  # the cause travels with the record: logs may not come back from the machine
        result["log_tail"] = log.read_text(errors="replace")[-6000:]
    return result


def gpu_used_mib() -> int:
    """GPU memory in use as nvidia-smi sees it (every process, allocator cache and CUDA context included), sampled
    every 2 s by run_stage: the figure to size a card by, beside the engines' own allocator peaks."""
    try:
        p = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                           check=False, capture_output=True, text=True, timeout=10)
        return max((int(x) for x in p.stdout.split()), default=0)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0


def tidy(out_dir: Path) -> None:
    """Drop a finished run's checkpoints once its figures are read: verl keeps fp32 model and AdamW state (21 GB at
    1.7B) and the GPU machine's disk is 64 GB (bench/README.md, Disk)."""
    shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)


def tracker(out_dir: Path) -> int:
    for f in out_dir.rglob("latest_checkpointed_iteration.txt"):
        try:
            return int(f.read_text().strip() or 0)
        except ValueError:
            return 0
    return 0


def verl_metrics(out_dir: Path) -> list[dict]:
    rows = []
    for f in sorted(out_dir.rglob("metrics-attempt-*.jsonl")):
        for line in f.read_text().splitlines():
            try:
                rows.append({"file": f.name, **json.loads(line)})
            except json.JSONDecodeError:
                pass
    return rows


def rollout_rate(rows: list[dict], sequences: int) -> list[dict]:
    """Generated tokens per second of vLLM per step: mean response length x sequences / the step's gen time."""
    out = []
    for r in rows:
        d = r.get("data", r)
        gen, length = d.get("timing_s/gen"), d.get("response_length/mean")
        if gen and length:
            out.append({"step": r.get("step"), "gen_s": gen, "mean_response_tokens": length,
                        "rollout_tokens_per_s": round(length * sequences / gen, 1),
                        "step_s": d.get("timing_s/step"), "throughput": d.get("perf/throughput"),
                        "max_mem_gb": d.get("actor/perf/max_memory_allocated_gb")})
    return out


def step_prepare(a) -> dict:
    """The model every step trains (``--shape``) and the smaller one of the GRPO lifecycle (``--grpo-shape``)."""
    out = {}
    folders = {a.work / "model": a.shape, grpo_model(a): a.grpo_shape}  # one folder when the shapes are equal
    for folder, shape in folders.items():
        cmd = [sys.executable, str(HERE / "make_model.py"), "--shape", shape, "--tokenizer", str(a.tokenizer),
               "--out", str(folder)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        out[shape] = {"rc": p.returncode, "out": p.stdout[-2000:], "err": p.stderr[-3000:]}
    return out


def grpo_model(a) -> Path:
    """GRPO's stop/resume/export lifecycle runs at a small shape: verl keeps the FSDP model and AdamW state in fp32 per
    checkpoint (about 12 bytes a parameter, 21 GB at 1.7B), and two of them beside the wheels filled the GPU
    machine's 64 GB disk at 1.7B, which stopped the machine twice."""
    return a.work / ("model" if a.grpo_shape == a.shape else f"model-{a.grpo_shape}")


def step_hf(a) -> dict:
    cmd = [sys.executable, str(HERE.parent / "bench_hf_generate.py"), "--out", str(a.out / "hf"),
           "--batches", str(a.prompts_per_step * a.group_size), "--new-tokens", str(a.new_tokens)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    return {"rc": p.returncode, "out": p.stdout[-3000:], "err": p.stderr[-3000:]}


def grpo_manifest(a) -> dict:
    params = {"group_size": a.group_size, "prompts_per_step": a.prompts_per_step, "mini_batch_size": a.prompts_per_step,
              "micro_batch_size_per_gpu": 8, "max_steps": a.steps, "max_prompt_length": 512,
              "sampling": {"max_new_tokens": a.new_tokens}, "save_every_steps": 1, "keep_checkpoints": 1,
              "drop_zero_variance_groups": False, "precision": {"bf16": True},
              "verl": {"rollout_gpu_memory_utilization": 0.4, "log_prob_micro_batch_size_per_gpu": 16}}
    inputs = {"model": (grpo_model(a), "hf_model"), "prompts": (a.data / "prompts" / "gsm8k.parquet", "rl_prompts")}
    return manifest("grpo-trainer", "gpu.grpo.verl", inputs, params, a.work / "grpo", "verl", a.gpus)


def step_grpo(a) -> dict:
    m = grpo_manifest(a)
    out_dir = Path(m["spec"]["output_dir"])
    log = a.out / "grpo.log"
    result: dict = {"card": card(), "params": m["spec"]["params"]}
    if a.phase in ("all", "first"):
        result["first"] = run_stage("grpo_trainer", m, a.work, log, stop_when=lambda: tracker(out_dir) >= a.stop_at,
                                    timeout=a.timeout)
        result["tracker_after_stop"] = tracker(out_dir)
    if a.phase in ("all", "resume"):
        result["resume"] = run_stage("grpo_trainer", m, a.work, log, timeout=a.timeout)
        result["tracker_after_resume"] = tracker(out_dir)
    rows = verl_metrics(out_dir)
    result["rollout"] = rollout_rate(rows, a.prompts_per_step * a.group_size)
    result["metrics_keys"] = sorted({k for r in rows for k in (r.get("data") or {})})[:400]
    if (out_dir / "verl").exists():  # verl's own logs and configs, without the weights
        shutil.copytree(out_dir / "verl", a.out / "grpo-verl", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.pt", "*.safetensors", "*.bin"))
    return result


def step_evaluate(a) -> dict:
    model = a.work / "grpo" / "model"
    rec = a.work / "grpo" / "manifest.json"
    if rec.exists():
        outs = json.loads(rec.read_text()).get("outputs") or {}
        if "model" in outs:
            model = Path(outs["model"]["uri"])
    params = {"suite": "target", "target_env_id": "eval:MATH500", "target_limit": 8, "target_samples": 1,
              "greedy": {"temperature": 0.0, "max_new_tokens": 64}, "batch_size": 8}
    inputs = {"model": (model, "hf_model"), "target_data": (a.data / "datasets" / "math-eval", "gem_dataset")}
    m = manifest("evaluator", "gpu.evaluator.grpo-export", inputs, params, a.work / "eval", "hf")
    files = sorted(f.name for f in model.iterdir()) if model.is_dir() else None
    result = run_stage("evaluator", m, a.work, a.out / "evaluator.log", timeout=a.timeout)
    tidy(a.work / "grpo")  # the lifecycle is over: its checkpoints only take disk from the next steps
    return {"model": str(model), "model_files": files, **result}


SFT_BATCH = 32


def sft_rows(a) -> Path:
    """The first ``SFT_BATCH`` rows of the bench data: a global batch that is the whole set is the same batch for
    both engines whatever their shuffles, so their first-step losses compare (tests/sft_trainer/test_engine_parity.py
    does the same on the CPU); every step then trains those rows again, which changes nothing in tokens/s."""
    return first_rows(a.data / "sft" / "gsm8k.parquet", SFT_BATCH, a.work / "sft-rows.parquet")


def first_rows(src: Path, n: int, dest: Path) -> Path:
    """The first ``n`` rows of a bench parquet file, written to ``dest``: every run of a step reads the same rows."""
    import pyarrow.parquet as pq

    pq.write_table(pq.read_table(src).slice(0, n), dest)
    return dest


def sft_manifest(a, engine: str, rows: Path) -> dict:
    # one micro-batch holds the batch (about 10k tokens), so both engines log the token mean over the batch
    params = {"max_steps": a.sft_steps, "epochs": a.sft_steps, "global_batch_size": SFT_BATCH,
              "micro_batch_tokens": 16384, "max_length": 1024, "val_fraction": 0.0, "save_every_steps": 1000,
              "precision": {"bf16": True}, "optim": {"lr": 1e-5, "warmup_ratio": 0.0}}
    if engine == "verl" and a.verl_extra:  # a variant of verl's run (e.g. model.use_remove_padding=false)
        params["verl"] = {"extra_overrides": a.verl_extra}
    inputs = {"model": (a.work / "model", "hf_model"), "data": (rows, "sft_data")}
    return manifest("sft-trainer", f"gpu.sft.{engine}", inputs, params, a.work / f"sft-{engine}", engine, a.gpus)


def step_sft(a) -> dict:
    result: dict = {"card": card()}
    rows = sft_rows(a)
    for engine in a.engines.split(","):
        shutil.rmtree(a.work / f"sft-{engine}", ignore_errors=True)  # a rerun starts afresh, not from a checkpoint
        m = sft_manifest(a, engine, rows)
        r = run_stage("sft_trainer", m, a.work, a.out / f"sft-{engine}.log", timeout=a.timeout)
        metrics = Path(m["spec"]["output_dir"]) / "metrics.jsonl"
        r["metrics"] = [json.loads(x) for x in metrics.read_text().splitlines()] if metrics.exists() else []
        result[engine] = r
        tidy(Path(m["spec"]["output_dir"]))
    firsts = {e: result[e]["metrics"][0].get("loss") for e in a.engines.split(",") if result[e].get("metrics")}
    if len(firsts) == 2 and None not in firsts.values():
        a_, b_ = firsts.values()
        result["first_step_loss"] = {**firsts, "relative_difference": abs(a_ - b_) / max(abs(a_), abs(b_), 1e-12)}
    try:
        result["comparison"] = sft_comparison(a.work / "model", result, a.engines.split(","))
    except Exception as exc:  # noqa: BLE001 - the runs' own records stay
        result["comparison"] = {"error": repr(exc)}
    return result


def sft_comparison(model: Path, result: dict, engines: list[str]) -> dict:
    """Per step and engine: tokens, seconds, tokens/s, MFU and the allocator's peak, by one formula for both.

    FLOPs per step come from verl's own counter (``verl.utils.flops_counter``, the one behind verl's ``train/mfu``)
    on the step's token count, every row at the batch's mean length (the attention term, the only one that depends
    on the lengths, is about 1% of the FLOPs at these ~170-token rows). The native engine logs its step time, so its
    MFU is FLOPs / (time x the card's promised FLOPs); verl logs its MFU and not its time, so its time is
    FLOPs / (MFU x promised). Step 1 carries the warm-up; the steady figure is the median of the later steps."""
    import statistics

    from transformers import AutoConfig
    from verl.utils.flops_counter import FlopsCounter

    counter = FlopsCounter(AutoConfig.from_pretrained(model))
    out: dict = {}
    for engine in engines:
        rows = []
        for m in result.get(engine, {}).get("metrics", []):
            tokens = float(m.get("tokens") or 0)
            if not tokens:
                continue
            base, extra = divmod(int(tokens), SFT_BATCH)  # lengths as even as the step's exact token sum allows
            lengths = [base + 1] * extra + [base] * (SFT_BATCH - extra)
            tflop, promised = counter.estimate_flops(lengths, 1.0)  # TFLOP/s at 1 s: the step's TFLOPs; promised in T
            if engine == "native":
                seconds = m["step_time_s"]
                mfu = tflop / seconds / promised
            else:
                mfu = m.get("train/mfu")
                if not mfu:
                    continue
                seconds = tflop / (mfu * promised)
            mem = m.get("max_memory_allocated_gb", m.get("perf/max_memory_allocated_gb"))
            rows.append({"step": m["step"], "loss": m.get("loss"), "tokens": tokens, "seconds": round(seconds, 4),
                         "tokens_per_s": round(tokens / seconds, 1), "mfu": round(mfu, 4),
                         "max_memory_allocated_gb": round(mem, 2) if mem is not None else None})
        later = rows[1:] or rows
        out[engine] = {"steps": rows, "promised_tflops": promised if rows else None,
                       "steady_tokens_per_s": statistics.median(r["tokens_per_s"] for r in later) if later else None,
                       "steady_mfu": statistics.median(r["mfu"] for r in later) if later else None,
                       "gpu_peak_used_mib": result.get(engine, {}).get("gpu_peak_used_mib")}
    if all(out.get(e, {}).get("steady_tokens_per_s") for e in engines) and len(engines) == 2:
        out["verl_over_native_tokens_per_s"] = round(out[engines[1]]["steady_tokens_per_s"]
                                                     / out[engines[0]]["steady_tokens_per_s"], 3)
    return out


def step_parser(doc: str, steps: list[str], data_help: str) -> argparse.ArgumentParser:
    """The arguments every GPU bench driver shares: the step, its work folder, where results go, the bench data."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("step", choices=steps)
    ap.add_argument("--work", type=Path, default=Path("/tmp/gpu-work"))
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "bench/results/gpu")))
    ap.add_argument("--data", type=Path, help=data_help)
    return ap


def card() -> str:
    try:
        import torch
        return torch.cuda.get_device_name(0)
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return f"unknown ({exc})"


def main() -> None:
    ap = step_parser(__doc__, ["prepare", "hf", "grpo", "evaluate", "sft"],
                     "folder with prompts/, sft/, datasets/ (bench data)")
    ap.add_argument("--tokenizer", type=Path)
    ap.add_argument("--shape", default="1.7B")
    ap.add_argument("--grpo-shape", default="0.6B", help="the shape of GRPO's stop/resume/export run (disk: 64 GB)")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--prompts-per-step", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--stop-at", type=int, default=2)
    ap.add_argument("--phase", choices=["all", "first", "resume"], default="all")
    ap.add_argument("--sft-steps", type=int, default=12)
    ap.add_argument("--gpus", type=int, default=1, help="GPUs of the grpo and sft runs (one host)")
    ap.add_argument("--engines", default="native,verl")
    ap.add_argument("--verl-extra", action="append", default=[], metavar="KEY=VALUE",
                    help="a verl Hydra override for the sft step's verl run (repeatable); use a separate --out")
    ap.add_argument("--timeout", type=float, default=500)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    a.out.mkdir(parents=True, exist_ok=True)
    name = a.step if a.step != "grpo" or a.phase == "all" else f"grpo-{a.phase}"
    try:
        payload = globals()[f"step_{a.step}"](a)
    except Exception as exc:  # noqa: BLE001 - the record says what broke
        payload = {"error": repr(exc)}
    write(a.out, name, payload)


if __name__ == "__main__":
    main()
