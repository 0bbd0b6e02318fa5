"""Estimated GPU-hours of every planned run, per stage and in total, beside the ceiling the resources ask for.

Why both figures: the ceiling (GPUs x time limit) is what the scheduler reserves and an upper bound nobody should
budget with (phase 1's ceiling is several times the plan's 180 GPU-h); the estimate is the work each run's params
describe (rows, epochs, steps, batch, sequence lengths, rollouts, samples, suites) at the rates measured in
``bench/results`` (``throughput.py``), plus start-up. A run whose estimate exceeds its time limit is not wrong (the
stages checkpoint and requeue) but is listed, since it pays each restart's start-up again.

Checked against a measurement: an sft-trainer run of the native engine bench's own workload (4,000 rows of 298
tokens on average, about 65k tokens a step, the 1.7B shape on one H100) is estimated from the compiled engine's
rate and set beside the wall time of the bench's timed steps in ``bench/results/native_engine_1gpu_lr1e-4.json``
and the two-GPU files (``tests/study/test_cost.py``). Rows of collected data count every item (teachers' wrong
answers are dropped in reality, so SF/CF-SFT estimates are upper bounds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from stages.study.costing import evaluation, safety, throughput, tokens
from stages.study.costing.cards import Card
from stages.study.costing.setups import engine_of, params_of, shape_of
from stages.study.costing.shapes import ModelShape
from stages.study.dag import Plan, PlannedRun


@dataclass
class RunCost:
    run_id: str
    stage: str
    gpus: int  # nodes x GPUs per node
    hours: float  # estimated wall-clock hours (0 for CPU runs)
    limit_hours: float  # the time limit asked for
    basis: str = ""  # what the estimate counted, for a person
    shared: bool = False  # planned under the shared root (one run for every study with the same spec)
    suite: str | None = None  # an evaluator run's suite

    @property
    def group(self) -> str:
        """The line it is counted on: its stage, or for the attack and refusal-direction suites the suite too."""
        return f"{self.stage}:{self.suite}" if self.suite in safety.SUITES else self.stage

    @property
    def gpu_hours(self) -> float:
        return self.gpus * self.hours

    @property
    def ceiling(self) -> float:
        return self.gpus * self.limit_hours


def _domain(run: PlannedRun) -> str | None:
    return run.labels.get("domain")


def _upstream(plan: Plan, run: PlannedRun) -> Any | None:
    """Params of the collector run that feeds a trainer."""
    for dep in run.deps:
        up = plan.runs.get(dep)
        if up is not None and up.stage == "collector":
            return params_of(up)
    return None


def _items(plan: Plan, run: PlannedRun) -> int:
    """Rows the upstream collection yields (every item: an upper bound for graded teacher data)."""
    up = _upstream(plan, run)
    if up is None:
        return tokens.PLAN_ITEMS
    return tokens.rows(up.env_id, up.max_items, up.start, up.stop)


def _row_tokens(plan: Plan, run: PlannedRun) -> float:
    """Tokens of one SFT row: the prompt and a ground-truth target or a teacher's sampled answer."""
    d, up = _domain(run), _upstream(plan, run)
    if up is not None and up.mode == "generate":
        return tokens.prompt(d) + tokens.response(d, up.sampling.max_new_tokens)
    return tokens.prompt(d) + tokens.target(d)


def _sft(plan: Plan, run: PlannedRun, p: Any, s: ModelShape, card: Card, world: int) -> tuple[float, str]:
    rows = _items(plan, run)
    per = min(_row_tokens(plan, run), p.max_length)
    steps = math.ceil(p.epochs * rows / p.global_batch_size)
    if p.max_steps:
        steps = min(steps, p.max_steps)
    trained = steps * p.global_batch_size * per
    secs = throughput.train_seconds(trained, s, card, world, engine_of(run), per,
                                    checkpointing=p.precision.activation_checkpointing)
    return secs, f"{steps} steps x {p.global_batch_size} rows x {per:.0f} tokens"


def _generate(engine: str, seqs: float, prompt: float, new: float, s: ModelShape, card: Card, world: int,
              batch: int, tp: int = 1) -> float:
    if engine in ("verl", "vllm"):
        return throughput.vllm_decode_seconds(seqs, prompt, new, s, card, world, tp)
    return throughput.hf_decode_seconds(seqs, prompt, new, s, card, batch)


def _grpo(plan: Plan, run: PlannedRun, p: Any, s: ModelShape, card: Card, world: int) -> tuple[float, str]:
    d, engine = _domain(run), engine_of(run)
    prompts = _items(plan, run)
    steps = p.max_steps or math.ceil(p.epochs * prompts / p.prompts_per_step)
    rollouts = p.prompts_per_step * p.group_size
    prompt, new = tokens.prompt(d), tokens.response(d, p.sampling.max_new_tokens)
    tp = p.verl.rollout_tensor_parallel if engine == "verl" else 1
    gen = _generate(engine, rollouts, prompt, new, s, card, world, p.native.generation_batch_size, tp)
    seq = prompt + new
    train = throughput.train_seconds(p.ppo_epochs * rollouts * seq, s, card, world, engine, seq,
                                     checkpointing=p.precision.activation_checkpointing)
    scoring = throughput.forward_seconds((2 if p.kl_enabled else 1) * rollouts * seq, s, card, world)
    return steps * (gen + train + scoring), f"{steps} steps x {rollouts} rollouts of {new:.0f} tokens"


def _spin(plan: Plan, run: PlannedRun, p: Any, s: ModelShape, card: Card, world: int) -> tuple[float, str]:
    d = _domain(run)
    prompts = _items(plan, run)
    prompt, new, chosen = tokens.prompt(d), tokens.response(d, p.sampling.max_new_tokens), tokens.target(d)
    pair = 2 * prompt + chosen + new
    vllm = p.generation_backend in ("auto", "vllm")  # auto: vLLM on the images' GPUs, one replica per GPU group
    tp = p.vllm.tensor_parallel_size if hasattr(p, "vllm") else 1
    total = 0.0
    for t in range(p.iterations):
        pairs = prompts * (2 if p.keep_previous_iteration and t > 0 else 1)
        if vllm:
            total += throughput.vllm_decode_seconds(prompts, prompt, new, s, card, max(1, run.gpus), tp)
        else:
            total += throughput.hf_decode_seconds(prompts, prompt, new, s, card, p.generation_batch_size)
        total += (throughput.VLLM_STARTUP_S if vllm else 0.0) + throughput.TRAINER_STARTUP_S
        total += throughput.forward_seconds(pairs * pair, s, card, world)
        total += throughput.train_seconds(p.epochs_per_iteration * pairs * pair, s, card, world, "native", pair / 2,
                                          checkpointing=p.precision.activation_checkpointing)
    return total, f"{p.iterations} iterations x {prompts} prompts (samples of {new:.0f} tokens)"


def _pi(plan: Plan, run: PlannedRun, p: Any, s: ModelShape, card: Card, world: int) -> tuple[float, str]:
    d = _domain(run)
    prompts = math.floor(_items(plan, run) * (1 - p.heldout_fraction))
    steps = p.max_steps or math.ceil(p.epochs * prompts / p.prompts_per_step)
    rollouts = p.prompts_per_step * p.group_size
    student, new = tokens.prompt(d), tokens.response(d, p.sampling.max_new_tokens)
    teacher = student + tokens.target(d)
    engine = engine_of(run)  # native: transformers generate in the training process; verl: colocated vLLM
    tp = p.verl.rollout_tensor_parallel if engine == "verl" else 1
    gen = _generate(engine, rollouts, teacher, new, s, card, world, p.generation_batch_size, tp)
    gen += _generate(engine, p.student_eval_prompts, student, new, s, card, world, p.generation_batch_size, tp)
    pair = teacher + student + 2 * new
    scoring = throughput.forward_seconds(rollouts * pair, s, card, world)
    train = throughput.train_seconds(p.ppo_epochs * rollouts * pair, s, card, world, engine, pair / 2,
                                     checkpointing=p.precision.activation_checkpointing)
    return steps * (gen + scoring + train), f"{steps} steps x {rollouts} teacher samples of {new:.0f} tokens"


def _collector(plan: Plan, run: PlannedRun, p: Any, s: ModelShape, card: Card, world: int) -> tuple[float, str]:
    if p.mode != "generate":
        return 0.0, f"{p.mode}: no model"
    d = _domain(run)
    items = tokens.rows(p.env_id, p.max_items, p.start, p.stop)
    seqs = items * p.n_samples
    new = tokens.response(d, p.sampling.max_new_tokens)
    secs = _generate(engine_of(run), seqs, tokens.prompt(d), new, s, card, world, p.batch_size, world)
    return secs + throughput.VLLM_STARTUP_S, f"{items} items x {p.n_samples} samples of {new:.0f} tokens"


def _evaluator(plan: Plan, run: PlannedRun, p: Any, s: ModelShape, card: Card, world: int) -> tuple[float, str]:
    from stages.study.catalog import domains

    if p.suite in safety.SUITES:
        return safety.SUITES[p.suite](p, s, card, world)
    suites = list(evaluation.ALL_SUITES) if p.suite == "all" else [p.suite]
    d = _domain(run)
    eval_env = p.target_env_id or (domains()[d][1] if d in domains() else None)
    w = evaluation.work(p, suites, d, eval_env)
    engine = engine_of(run)
    secs = sum(_generate(engine, n, prompt, new, s, card, world, p.batch_size, world) for n, prompt, new in w.generate)
    secs += throughput.forward_seconds(w.forward_tokens, s, card, world)
    secs += w.judge_tokens * 2.0 * evaluation.JUDGE_PARAMS / (throughput.PREFILL_MFU * card.bf16_tflops * 1e12)
    secs += w.engines * throughput.VLLM_STARTUP_S + w.tasks * evaluation.PER_TASK_OVERHEAD_S
    if w.weight_pass:
        secs += evaluation.REPRESENTATION_WEIGHT_S_PER_BPARAM * s.params / 1e9 / world
    new_tokens = sum(n * new for n, _, new in w.generate)
    return secs, f"{w.tasks} tasks, {new_tokens / 1e6:.2f}M generated + {w.forward_tokens / 1e6:.1f}M scored tokens"


ESTIMATORS = {"sft-trainer": _sft, "grpo-trainer": _grpo, "spin": _spin, "pi-distill": _pi, "collector": _collector,
              "evaluator": _evaluator}
STARTUP = {"sft-trainer": throughput.TRAINER_STARTUP_S, "grpo-trainer": throughput.TRAINER_STARTUP_S,
           "pi-distill": throughput.TRAINER_STARTUP_S}


def _is_shared(run: PlannedRun) -> bool:
    from stages.study import builders

    folder = getattr(builders, "SHARED_DIR", None)
    return bool(folder) and f"/{folder}/" in run.run_dir


def estimate_run(plan: Plan, run: PlannedRun, card: Card) -> RunCost:
    res = run.resources
    gpus = int(res.get("gpus_per_node", 0)) * int(res.get("nodes", 1))
    limit = float(res.get("time_minutes", 60)) / 60.0
    suite = run.manifest["spec"]["params"].get("suite") if run.stage == "evaluator" else None
    cost = RunCost(run.run_id, run.stage, gpus, 0.0, limit, shared=_is_shared(run), suite=suite)
    if gpus == 0:
        cost.basis = "CPU only"
        return cost
    fn = ESTIMATORS.get(run.stage)
    p = params_of(run) if fn else None
    s = shape_of(run) if fn else None
    if fn is None or p is None or s is None:
        cost.hours, cost.basis = limit, "no estimate: counted at its time limit"
        return cost
    secs, cost.basis = fn(plan, run, p, s, card, gpus)
    cost.hours = (secs + STARTUP.get(run.stage, 0.0)) / 3600.0
    return cost


def estimate_plan(plan: Plan, card: Card) -> list[RunCost]:
    return [estimate_run(plan, run, card) for run in plan.runs.values()]
