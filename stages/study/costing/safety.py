"""GPU-seconds of the two safety suites a study plans from its own blocks: ``attacks`` (GCG and AutoDAN per HarmBench
behaviour) and ``refusal_direction`` (difference in means, candidate selection, refusal rates under intervention).

Why measured constants times the work: both suites run transformers forwards whose time is linear in candidates x
tokens x parameters, and one H100 measured each constant at the 4B shape (``bench/bench_attacks.py`` and
``bench/bench_refusal_direction.py``, results in ``bench/results/attacks.md`` and ``refusal_direction.md``); other
cards scale by their bf16 peak. What remains an estimate is the token counts of the prompts and the completions.

- GCG, per behaviour and step: the measured step (1.25 s for a standard behaviour's 66-token prompt, 10.4 s for a
  contextual one's 351 tokens: nanoGCG's prefix cache is off under transformers 5, so the whole prompt is run),
  linear in search width and parameters, mixed in HarmBench's proportion of the two when both are drawn (copyright
  behaviours are not attacked). Every step runs (``early_stopping`` off, HarmBench's setting).
- AutoDAN, per behaviour and generation: the measured generation (0.86-0.88 s at population 64), linear in the
  population and parameters, plus a greedy refusal check every ``eval_steps`` generations; counted to the last
  generation, so an upper bound.
- Both: one final completion of ``max_new_tokens`` per behaviour and method, then the HarmBench classifier's
  forward over prompt and completion (a 13B model, Llama-2 shape taken as 13e9 parameters).
- Refusal direction (helper formulas of the suite, ``stages/evaluator/refusal``): the SAFE baseline's own run takes
  the train means (2 n_train), scores every candidate (K layers in the first 80% x 9 post-instruction positions) on
  3 n_val prompts, the eval means (n_eval); a checkpoint with the baseline's file takes 2 n_train + 5 n_eval prompt
  forwards; each run generates ``max_new_tokens`` for 4 n_eval prompts (none and ablation on harmful, none and
  addition on harmless).
"""

from __future__ import annotations

import math
from typing import Any

from stages.study.costing import throughput
from stages.study.costing.cards import Card
from stages.study.costing.shapes import ModelShape

HF_FORWARD_MFU = 0.30  # estimate: batched transformers forwards (the native engine's eager training reached 21.5%)
H100_TFLOPS = 989.0  # the card the constants below were measured on
BENCH_PARAMS = 4.022e9  # the 4B shape the attack rates were measured at (bench/results/attacks.md, one H100)
GCG_STEP_S = {"standard": 1.2492, "contextual": 10.4125}  # s per step at search width 512 (66 and 351 tokens)
AUTODAN_STEP_S = {"standard": 0.8615, "contextual": 0.8817}  # s per generation at population 64 (107, 392 tokens)
CONTEXTUAL_SHARE = 81 / 240  # HarmBench's text test split without copyright: 159 standard, 81 contextual
K_PROMPT_FORWARD = 0.00191 / (40 * 4.022e9)  # s per prompt token per parameter, batch 32, refusal_direction.md
K_GENERATED = 0.002006 / 4.022e9  # s per generated token per prompt per parameter, batch 40, refusal_direction.md
POST_INSTRUCTION_POSITIONS = 9  # Qwen3's template after the instruction, thinking off (the suite's own count)
MAX_LAYER_SHARE = 0.8  # the paper's filter: candidates from the first 80% of the layers
HF_LOAD_S = 60.0  # estimate: loading one model from scratch storage into a GPU (transformers, bf16)
BEHAVIOUR_PROMPT = 40.0  # estimate: a HarmBench behaviour in the chat template (tokens)
TARGET = 20.0  # estimate: HarmBench's target strings ("Sure, here is ...")
AUTODAN_PROTOTYPE = 350.0  # estimate: an AutoDAN prototype prompt with its behaviour (tokens)
CLASSIFIER_PARAMS = 13e9  # cais/HarmBench-Llama-2-13b-cls
CLASSIFIER_PROMPT = 350.0  # estimate: the classifier's template with the behaviour
INSTRUCTION = 40.0  # estimate: a harmful or harmless instruction in the chat template (tokens)


def forward_s(tokens: float, params: float, card: Card, world: int = 1) -> float:
    return tokens * 2.0 * params / (HF_FORWARD_MFU * card.bf16_tflops * 1e12 * max(1, world))


def behaviours(a: Any) -> int:
    return len(a.behaviour_ids) if a.behaviour_ids else a.n_behaviours


def _measured(k: float, card: Card, world: int) -> float:
    """A constant measured on one H100, for ``card``. The suites run on one GPU whatever the run is given (their
    batches are not split), so ``world`` does not divide it."""
    return k * H100_TFLOPS / card.bf16_tflops


def _mixed(step_s: dict[str, float], a: Any) -> float:
    """A measured step of the draw's behaviours: HarmBench's mix of standard and contextual ones, or one category."""
    kinds = set(a.functional_categories)
    if kinds == {"standard", "contextual"}:
        return (1 - CONTEXTUAL_SHARE) * step_s["standard"] + CONTEXTUAL_SHARE * step_s["contextual"]
    return step_s["contextual" if "contextual" in kinds else "standard"]


def gcg_seconds(a: Any, s: ModelShape, card: Card, world: int) -> float:
    """One behaviour's GCG optimisation: the measured step, linear in search width and parameters."""
    g = a.gcg
    step = _measured(_mixed(GCG_STEP_S, a), card, world) * g.search_width / 512 * s.params / BENCH_PARAMS
    return g.num_steps * step


def autodan_seconds(a: Any, s: ModelShape, card: Card, world: int) -> float:
    """One behaviour's AutoDAN search: the measured generation, linear in population and parameters."""
    d = a.autodan
    fitness = d.num_steps * _measured(_mixed(AUTODAN_STEP_S, a), card, world) * d.population / 64 * s.params \
        / BENCH_PARAMS
    checks = d.num_steps // d.eval_steps
    return fitness + checks * throughput.hf_decode_seconds(1, AUTODAN_PROTOTYPE, d.check_max_new_tokens, s, card, 1)


PER_BEHAVIOUR = {"gcg": gcg_seconds, "autodan": autodan_seconds}


def attack_seconds(p: Any, s: ModelShape, card: Card, world: int) -> tuple[float, str]:
    """An ``attacks`` run: every method on every behaviour, the final completions and the classifier."""
    a = p.attacks
    n = behaviours(a)
    secs = HF_LOAD_S * 2  # the model, then the classifier
    each = []
    for method in a.methods:
        one = PER_BEHAVIOUR[method](a, s, card, world)
        secs += n * one
        each.append(f"{method} {one / 60:.1f} min")
        secs += throughput.hf_decode_seconds(n, BEHAVIOUR_PROMPT + TARGET, a.max_new_tokens, s, card, n)
        secs += forward_s(n * (CLASSIFIER_PROMPT + a.max_new_tokens), CLASSIFIER_PARAMS, card, world)
    return secs, f"measured rates x estimated tokens: {n} behaviours x ({', '.join(each)} per behaviour)"


def direction_seconds(p: Any, s: ModelShape, card: Card, world: int) -> tuple[float, str]:
    """A ``refusal_direction`` run: extraction when it has no base direction, else the checkpoint against it."""
    d = p.refusal_direction
    extracts = d.base_direction is None
    prompts = 2 * d.n_train + 5 * d.n_eval
    if extracts:
        candidates = max(0, math.ceil(MAX_LAYER_SHARE * s.layers) - 1) * POST_INSTRUCTION_POSITIONS  # layers 1..
        prompts = 2 * d.n_train + d.n_val + 3 * candidates * d.n_val + d.n_eval
    secs = prompts * INSTRUCTION * _measured(K_PROMPT_FORWARD, card, world) * s.params
    secs += 4 * d.n_eval * d.max_new_tokens * _measured(K_GENERATED, card, world) * s.params
    secs += HF_LOAD_S
    what = "extracts the direction" if extracts else "against the baseline's direction"
    return secs, (f"measured rates: {what}, {prompts} prompt forwards, {4 * d.n_eval} generations of "
                  f"{d.max_new_tokens} tokens")


SUITES = {"attacks": attack_seconds, "refusal_direction": direction_seconds}
