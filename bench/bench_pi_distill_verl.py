"""π-Distill on verl on one GPU with vLLM rollouts, beside GRPO on verl on the same card, model, prompts and batch:
rollout tokens/s, the old-log-prob and update phases, step time, verl's throughput and the GPU's peak memory.

Why beside GRPO: π-Distill on verl is GRPO's trainer plus one forward over the other view and, with 0 < alpha < 1,
an update over twice the rows (reference/scale.md §1.5 estimates 1.5-2x GRPO's update phase); the ratio on one card
is the number the cost model and the phase files' time limits need. Both arms run through the stages' own CLIs
(``pi-distill`` and ``grpo-trainer`` with ``engine: verl``), so the launcher, Ray, vLLM and FSDP are what a study runs.

On the GPU machine, after ``bench/gpu/install.sh`` and ``bench/gpu/verl_paths.py prepare`` (a random-init Qwen3 at
the 1.7B shape with the real tokenizer in ``/tmp/gpu-work/model``), one step per device call (each < 10 minutes):

    export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH
    python3 bench/bench_pi_distill_verl.py pi --data DIR      # pi-distill, engine verl (alpha 0.5, beta 0.1)
    python3 bench/bench_pi_distill_verl.py grpo --data DIR    # grpo-trainer, engine verl, same batch
    python3 bench/bench_pi_distill_verl.py report             # pi_distill_verl.{json,md} in --out

``--data`` is the bench data of ``bench/README.md`` (``prompts/gsm8k.parquet``: RL prompts with reference solutions).
The random model earns no reward, so zero-variance groups are kept (``drop_zero_variance_groups: false``) and the
update runs every step. Steps after the first are averaged (the first pays vLLM's and FSDP's warm-up).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.gpu.verl_paths import (  # noqa: E402
    card, manifest, run_stage, step_parser, tidy, verl_metrics, write)

KEYS = {"gen_s": "timing_s/gen", "old_log_prob_s": "timing_s/old_log_prob", "update_s": "timing_s/update_actor",
        "step_s": "timing_s/step", "response_tokens": "response_length/mean", "throughput": "perf/throughput",
        "actor_max_mem_gb": "actor/perf/max_memory_allocated_gb", "kl_teacher_student": "pi_distill/kl_teacher_student",
        "row_kinds": "pi_distill/row_kinds"}


class GpuMemory:
    """Peak memory used on GPU 0 (vLLM and the FSDP actor together), polled with nvidia-smi while a stage runs."""

    def __init__(self, every_s: float = 1.0) -> None:
        self.peak_mib, self.every_s, self._stop = 0, every_s, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                                      "-i", "0"], capture_output=True, text=True, timeout=10).stdout
                self.peak_mib = max(self.peak_mib, int(out.strip().splitlines()[0]))
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                pass
            self._stop.wait(self.every_s)

    def __enter__(self) -> GpuMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def common(a) -> dict:
    return {"group_size": a.group_size, "prompts_per_step": a.prompts_per_step, "max_steps": a.steps,
            "max_prompt_length": 1024, "sampling": {"max_new_tokens": a.new_tokens, "temperature": 1.0},
            "save_every_steps": 1000, "drop_zero_variance_groups": False, "ppo_epochs": 1,
            "precision": {"bf16": True}, "optim": {"lr": 1e-6}}


def pi_manifest(a) -> dict:
    params = {**common(a), "alpha": a.alpha, "beta": a.beta, "mini_batch_size": None,
              "verl": {"rollout_gpu_memory_utilization": a.vllm_memory, "log_prob_micro_batch_size_per_gpu": 16,
                       "micro_batch_size_per_gpu": 8}}
    inputs = {"model": (a.work / "model", "hf_model"), "prompts": (a.data / "prompts" / "gsm8k.parquet", "rl_prompts")}
    return manifest("pi-distill", "gpu.pi-distill.verl", inputs, params, a.work / "bench-pi", "verl", a.gpus)


def grpo_manifest(a) -> dict:
    params = {**common(a), "mini_batch_size": a.prompts_per_step, "micro_batch_size_per_gpu": 8,
              "verl": {"rollout_gpu_memory_utilization": a.vllm_memory, "log_prob_micro_batch_size_per_gpu": 16}}
    inputs = {"model": (a.work / "model", "hf_model"), "prompts": (a.data / "prompts" / "gsm8k.parquet", "rl_prompts")}
    return manifest("grpo-trainer", "gpu.grpo.verl.bench-pi", inputs, params, a.work / "bench-grpo", "verl", a.gpus)


def per_step(out_dir: Path, sequences: int) -> list[dict]:
    rows = []
    for r in verl_metrics(out_dir):
        d = r.get("data") or {}
        if "timing_s/step" not in d:
            continue
        row = {"step": r.get("step"), **{ours: d.get(theirs) for ours, theirs in KEYS.items()}}
        if row["gen_s"] and row["response_tokens"]:
            row["rollout_tokens_per_s"] = round(row["response_tokens"] * sequences / row["gen_s"], 1)
        rows.append(row)
    return rows


def run_arm(a, name: str) -> dict:
    m, module = (pi_manifest(a), "pi_distill") if name == "pi" else (grpo_manifest(a), "grpo_trainer")
    out_dir = Path(m["spec"]["output_dir"])
    with GpuMemory() as mem:
        result = run_stage(module, m, a.work, a.out / f"{name}.log", timeout=a.timeout)
    steps = per_step(out_dir, a.prompts_per_step * a.group_size)
    tidy(out_dir)
    return {"card": card(), "params": m["spec"]["params"], "run": result, "gpu_peak_mib": mem.peak_mib,
            "steps": steps, "mean_after_first": mean_after_first(steps)}


def mean_after_first(steps: list[dict]) -> dict:
    later = steps[1:] or steps
    out = {}
    for key in ("gen_s", "old_log_prob_s", "update_s", "step_s", "rollout_tokens_per_s", "throughput",
                "actor_max_mem_gb"):
        vals = [s[key] for s in later if s.get(key) is not None]
        out[key] = round(sum(vals) / len(vals), 3) if vals else None
    return out


def report(a) -> dict:
    arms = {n: json.loads((a.out / f"{n}.json").read_text()) for n in ("pi", "grpo") if (a.out / f"{n}.json").exists()}
    pi, grpo = (arms.get(n, {}).get("mean_after_first", {}) for n in ("pi", "grpo"))
    ratios = {k: round(pi[k] / grpo[k], 2) for k in ("update_s", "old_log_prob_s", "step_s")
              if pi.get(k) and grpo.get(k)}
    payload = {"card": card(), "arms": arms, "pi_over_grpo": ratios}
    lines = ["# π-Distill on verl vs GRPO on verl, one GPU", "",
             f"Card: {payload['card']}. Command: `python3 bench/bench_pi_distill_verl.py pi|grpo|report` "
             "(bench/README.md). Means over the steps after the first.", "",
             "| arm | rollout tok/s | gen s | old-log-prob s | update s | step s | verl throughput | actor peak GB | "
             "GPU peak MiB |", "|---|---|---|---|---|---|---|---|---|"]
    for name, arm in arms.items():
        s = arm.get("mean_after_first", {})
        lines.append(f"| {name} | {s.get('rollout_tokens_per_s')} | {s.get('gen_s')} | {s.get('old_log_prob_s')} | "
                     f"{s.get('update_s')} | {s.get('step_s')} | {s.get('throughput')} | {s.get('actor_max_mem_gb')} "
                     f"| {arm.get('gpu_peak_mib')} |")
    lines += ["", f"π-Distill / GRPO: {ratios}"]
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "pi_distill_verl.md").write_text("\n".join(lines) + "\n")
    (a.out / "pi_distill_verl.json").write_text(json.dumps(payload, indent=1, default=str))
    return payload


def main() -> None:
    ap = step_parser(__doc__, ["pi", "grpo", "report"], "bench data folder with prompts/gsm8k.parquet")
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--prompts-per-step", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--vllm-memory", type=float, default=0.4)
    ap.add_argument("--gpus", type=int, default=1, help="GPUs of one host (verl's FSDP and one vLLM replica each)")
    ap.add_argument("--timeout", type=float, default=540)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    a.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    try:
        payload = report(a) if a.step == "report" else run_arm(a, a.step)
    except Exception as exc:  # noqa: BLE001 - the record says what broke
        payload = {"error": repr(exc)}
    payload["seconds"] = round(time.time() - started, 1)
    write(a.out, a.step if a.step != "report" else "pi_distill_verl_summary", payload)


if __name__ == "__main__":
    main()
