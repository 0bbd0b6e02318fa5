"""Issue 26's runs on 2-4 GPUs of one host, through the stages' own CLIs: SPIN and native SFT under torchrun.

Why a driver of its own: a machine with several GPUs is lent rarely and briefly, so everything such a lease should
measure is one command per step, each leaving a JSON record under --out even when the stage under test fails (as
``verl_paths.py``, whose helpers it uses). verl's GRPO and π-Distill on N GPUs are ``verl_paths.py grpo --gpus N``
and ``bench_pi_distill_verl.py pi --gpus N``.

Steps:
  prepare  random-init models at each --shapes entry with the real tokenizer (make_model.py)
  spin     one SPIN iteration at --shape on 1 GPU and on --gpus N, the same prompts, seed and global batches:
           per-step losses side by side (max relative difference), training tokens/s and allocator peak per run
           beside the planner's memory model; then on N GPUs again, stopped by SIGUSR2 once --stop-at training
           steps are logged (expect exit 75), resumed (exit 0), its losses against the uninterrupted N-GPU run
  sft      native SFT at --shape on --gpus N: tokens/s, MFU per GPU, allocator peak, then the same with
           ``native.optimizer_offload`` (AdamW's moments in host memory between steps)
Usage (after bench/gpu/install.sh): PYTHONPATH=/tmp/site:SRC python bench/gpu/multi_gpu.py STEP --data DIR ...
On a CPU, ``--cpu`` runs the same steps with the tiny fixture model and gloo ranks (a smoke run, no figures).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from bench.gpu.verl_paths import card, first_rows, manifest, run_stage, step_parser, tidy, write  # noqa: E402

PEAK_TFLOPS = 989.0  # H100/H200 dense bf16, as verl's counter


def model_dir(a, shape: str) -> Path:
    return a.tiny if a.cpu else a.work / f"model-{shape}"


def step_prepare(a) -> dict:
    if a.cpu:
        return {"model": str(a.tiny)}
    out = {}
    for shape in a.shapes.split(","):
        cmd = [sys.executable, str(HERE / "make_model.py"), "--shape", shape, "--tokenizer", str(a.data / "tokenizer"),
               "--out", str(model_dir(a, shape))]
        p = subprocess.run(cmd, check=False, capture_output=True, text=True)
        out[shape] = {"rc": p.returncode, "out": p.stdout[-2000:], "err": p.stderr[-3000:]}
    return out


def spin_manifest(a, gpus: int, tag: str) -> dict:
    params = {"iterations": 1, "epochs_per_iteration": 1, "global_batch_size": a.batch,
              "micro_batch_tokens": a.micro_tokens, "max_length": 1024, "max_prompt_length": 512,
              "sampling": {"max_new_tokens": a.new_tokens}, "keep_previous_iteration": False,
              "save_every_steps": 1000, "keep_checkpoints": 1, "precision": {"bf16": not a.cpu},
              "optim": {"lr": 1e-6}}
    prompts = first_rows(a.data / "prompts" / "gsm8k.parquet", a.prompts, a.work / f"spin-prompts-{a.prompts}.parquet")
    inputs = {"model": (model_dir(a, a.shape), "hf_model"), "prompts": (prompts, "rl_prompts")}
    return manifest("spin", f"multi.spin.{tag}", inputs, params, a.work / f"spin-{tag}", "native", gpus)


def train_records(out_dir: Path) -> list[dict]:
    path = out_dir / "metrics.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []
    return [r for r in rows if "loss" in r]


def logged_steps(out_dir: Path) -> int:
    return sum(len(f.read_text().splitlines()) for f in (out_dir / "work").glob("iter-*/metrics.jsonl"))


def loss_difference(a_rows: list[dict], b_rows: list[dict]) -> float | None:
    pairs = list(zip([r["loss"] for r in a_rows], [r["loss"] for r in b_rows]))
    if not pairs or len(a_rows) != len(b_rows):
        return None
    return max(abs(x - y) / max(abs(x), abs(y), 1e-12) for x, y in pairs)


def spin_memory_model(a, gpus: int) -> float | None:
    """The planner's forward/backward peak per GPU for this run (the training process's allocator figure)."""
    from stages.study.costing.cards import CARDS
    from stages.study.costing.memory import TrainSetup, estimate
    from stages.study.costing.shapes import SHAPES

    if a.cpu or a.shape not in SHAPES:
        return None
    x = TrainSetup("spin", "native", SHAPES[a.shape], gpus, micro_tokens=a.micro_tokens, activation_checkpointing=True)
    phases = estimate(x, CARDS["H100-80GB"]).phases
    return round(sum(phases.get("forward/backward", {}).values()) / 2 ** 30, 2)


def summarize_run(run: dict, out_dir: Path, gpus: int, a) -> dict:
    rows = train_records(out_dir)
    later = rows[1:] or rows
    run["losses"] = [round(r["loss"], 6) for r in rows]
    run["tokens_per_s"] = statistics.median(r["tokens_per_s"] for r in later) if later else None
    run["max_memory_allocated_gb"] = max((r["max_memory_allocated_gb"] for r in rows if "max_memory_allocated_gb" in r),
                                         default=None)  # logged on a GPU only
    run["memory_model_gib"] = spin_memory_model(a, gpus)
    return run


def step_spin(a) -> dict:
    result: dict = {"card": card(), "shape": a.shape, "gpus": a.gpus}
    runs = {}
    for gpus, tag in ((1, "1gpu"), (a.gpus, f"{a.gpus}gpu")):
        m = spin_manifest(a, gpus, tag)
        out = Path(m["spec"]["output_dir"])
        shutil.rmtree(out, ignore_errors=True)
        runs[tag] = summarize_run(run_stage("spin", m, a.work, a.out / f"spin-{tag}.log", timeout=a.timeout), out,
                                  gpus, a)
        runs[tag]["rows"] = train_records(out)
        tidy(out)
    many = f"{a.gpus}gpu"
    result["max_relative_loss_difference"] = loss_difference(runs["1gpu"]["rows"], runs[many]["rows"])
    # the same N-GPU run stopped by SIGUSR2 after --stop-at logged steps, then resumed
    m = spin_manifest(a, a.gpus, f"{many}-stopped")
    out = Path(m["spec"]["output_dir"])
    shutil.rmtree(out, ignore_errors=True)
    first = run_stage("spin", m, a.work, a.out / "spin-stopped.log", stop_when=lambda: logged_steps(out) >= a.stop_at,
                      timeout=a.timeout)
    resumed = run_stage("spin", m, a.work, a.out / "spin-stopped.log", timeout=a.timeout)
    stopped_rows = train_records(out)
    result["stop_resume"] = {"first_rc": first["rc"], "signalled_at_s": first["signalled_at_s"],
                             "resume_rc": resumed["rc"], "status": resumed.get("status"),
                             "max_relative_loss_difference_to_uninterrupted": loss_difference(runs[many]["rows"],
                                                                                              stopped_rows),
                             **({"log_tail": first["log_tail"]} if "log_tail" in first else {})}
    tidy(out)
    for r in runs.values():
        r.pop("rows")
    result["runs"] = runs
    return result


def sft_manifest(a, offload: bool) -> dict:
    params = {"max_steps": a.sft_steps, "global_batch_size": a.batch, "micro_batch_tokens": a.micro_tokens,
              "max_length": 1024, "val_fraction": 0.0, "save_every_steps": 1000,
              "precision": {"bf16": not a.cpu}, "optim": {"lr": 1e-5, "warmup_ratio": 0.0},
              "native": {"optimizer_offload": offload}}
    inputs = {"model": (model_dir(a, a.shape), "hf_model"), "data": (a.data / "sft" / "gsm8k.parquet", "sft_data")}
    tag = "offload" if offload else "resident"
    return manifest("sft-trainer", f"multi.sft.{tag}", inputs, params, a.work / f"sft-{tag}", "native", a.gpus)


def mfu_per_gpu(a, tokens_per_s: float | None) -> float | None:
    from stages.study.costing.shapes import SHAPES
    from stages.study.costing.throughput import train_flops_per_token

    if a.cpu or not tokens_per_s or a.shape not in SHAPES:
        return None  # counted as the cost model counts: 6 N + 12 L a s at ~300-token rows, per GPU
    return round(tokens_per_s * train_flops_per_token(SHAPES[a.shape], 300.0) / (PEAK_TFLOPS * 1e12) / a.gpus, 4)


def step_sft(a) -> dict:
    result: dict = {"card": card(), "shape": a.shape, "gpus": a.gpus}
    for offload in (False, True):
        m = sft_manifest(a, offload)
        out = Path(m["spec"]["output_dir"])
        shutil.rmtree(out, ignore_errors=True)
        run = summarize_run(run_stage("sft_trainer", m, a.work, a.out / f"sft-{offload}.log", timeout=a.timeout), out,
                            a.gpus, a)
        run.pop("memory_model_gib")
        run["mfu_per_gpu"] = mfu_per_gpu(a, run["tokens_per_s"])
        result["offload" if offload else "resident"] = run
        tidy(out)
    return result


def main() -> None:
    ap = step_parser(__doc__, ["prepare", "spin", "sft"], "folder with tokenizer/, prompts/, sft/ (bench data)")
    ap.add_argument("--gpus", type=int, default=2)
    ap.add_argument("--shape", default="1.7B", help="the model of the spin and sft steps")
    ap.add_argument("--shapes", default="1.7B,8B", help="the models prepare writes")
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64, help="global batch (pairs for SPIN, rows for SFT)")
    ap.add_argument("--micro-tokens", type=int, default=8192)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--stop-at", type=int, default=2, help="SPIN training steps logged before SIGUSR2")
    ap.add_argument("--sft-steps", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=540)
    ap.add_argument("--cpu", action="store_true", help="smoke run: the tiny model (--tiny) and gloo ranks")
    ap.add_argument("--tiny", type=Path, default=Path(".fixtures/tiny-qwen3"))
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    a.out.mkdir(parents=True, exist_ok=True)
    try:
        payload = globals()[f"step_{a.step}"](a)
    except Exception as exc:  # noqa: BLE001 - the record says what broke
        payload = {"error": repr(exc)}
    write(a.out, f"multi-{a.step}", payload)


if __name__ == "__main__":
    main()
