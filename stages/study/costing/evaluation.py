"""The work of one evaluator run: log-likelihood tokens scored and tokens generated, per suite.

Why a table of tasks here: the evaluator's catalog (``stages.evaluator.lmeval.catalog``) says which tasks a tier
runs; what a task costs (items, answer choices, prompt and answer lengths) is not the evaluator's business, so it
lives beside the cost model. ``tests/study/test_cost.py`` checks that every task of the catalog's tiers is here.

Item counts are the benchmarks' evaluation splits (or the catalog's seeded subsets: hellaswag and triviaqa 2,000);
prompt and answer lengths are estimates (chat template on, thinking off, each task's own few-shot setting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stages.study.costing import tokens


@dataclass(frozen=True)
class Task:
    items: int
    choices: int = 0  # > 0: log-likelihood multiple choice (one scored continuation per choice)
    prompt: float = 150.0  # tokens per request
    answer: float = 0.0  # generated tokens per item (generative tasks), before the greedy cap


TIERS: dict[str, dict[str, Task]] = {
    "A": {
        "mmlu": Task(14042, choices=4, prompt=130),
        "arc_challenge": Task(1172, choices=4, prompt=70),
        "hellaswag": Task(2000, choices=4, prompt=110),
        "winogrande": Task(1267, choices=2, prompt=40),
        "truthfulqa_mc2": Task(817, choices=8, prompt=60),
    },
    "B": {
        "ifeval": Task(541, prompt=80, answer=400),
        "gsm8k_cot_zeroshot": Task(1319, prompt=100, answer=300),
        "hendrycks_math500": Task(500, prompt=110, answer=500),
        "triviaqa": Task(2000, prompt=60, answer=16),
        "nq_open": Task(3610, prompt=50, answer=16),
        "humaneval_instruct": Task(164, prompt=200, answer=300),
        "mbpp": Task(500, prompt=600, answer=250),
    },
    "C": {
        "bbh_cot_fewshot": Task(6511, prompt=1000, answer=200),
        "gpqa_diamond_cot_zeroshot": Task(198, prompt=300, answer=800),
        "mmlu_pro": Task(12032, prompt=1500, answer=400),
        "aime24": Task(30, prompt=150, answer=1024),
        "aime25": Task(30, prompt=150, answer=1024),
    },
}
ALL_SUITES = ("forgetting", "policy", "safety", "target")  # what suite `all` runs (stages/evaluator/protocol.py)
UNKNOWN_TASK = Task(1000, prompt=150, answer=200)  # a task named explicitly that the table does not know
SAFETY_ITEMS = {"xstest": 450, "harmbench": 320}  # XSTest v2 prompts; HarmBench text behaviours, test split
SAFETY_RESPONSE_TOKENS = 200.0  # estimate: a refusal or a short answer
PER_TASK_OVERHEAD_S = 30.0  # estimate: lm-eval's task set-up (dataset load, few-shot build) per task
# The representations suite at its default params reads about 91k tokens per model (its texts' mean lengths under
# the Qwen3 tokenizer, bench/bench_representations.py) for the post-trained model and its base, and analyses every
# weight pair. Measured on one H100 at the 4B shape (bench/results/representations.md): the exact weight spectra
# 15.4 s, the probes 37.4 s and CKA 1.0 s beyond the two models' passes, 53.8 s in all for 4.02 B parameters, so
# 13.4 s per billion parameters (the probes grow with layers x hidden, slower than the parameter count: at 14B this
# over-counts a little).
REPRESENTATION_TOKENS_PER_MODEL = 91_000.0
REPRESENTATION_WEIGHT_S_PER_BPARAM = 13.4
# The safety judges (refusal_classifier judge: XSTest's rubric to judge_model; harmbench_classifier): each is one more
# vLLM engine reading every item's rubric or classifier prompt and the response, and writing a few tokens. Estimates:
# the rubric and classifier templates' lengths, and 14e9 parameters (the phase files' judges are 13B and 14.7B).
JUDGE_PROMPT = {"xstest": 330.0, "harmbench": 400.0}
JUDGE_PARAMS = 14e9


@dataclass
class EvalWork:
    """Tokens of one evaluator run: generation (sequences x prompt x new tokens) and scoring forward passes."""

    generate: list[tuple[float, float, float]]  # (sequences, prompt tokens, new tokens)
    forward_tokens: float = 0.0
    tasks: int = 0
    engines: int = 1  # vLLM engines started (the model; the base model too for KL)
    weight_pass: bool = False  # the representations suite's analysis of every weight pair
    judge_tokens: float = 0.0  # tokens the safety judges read (a JUDGE_PARAMS model each)


def _tasks(p: Any) -> dict[str, Task]:
    known = {name: t for tier in TIERS.values() for name, t in tier.items()}
    if p.tasks:
        return {name: known.get(name, UNKNOWN_TASK) for name in p.tasks}
    return {name: t for tier in p.tiers for name, t in TIERS.get(tier, {}).items()}


def work(p: Any, suites: list[str], domain: str | None, eval_env: str | None) -> EvalWork:
    """What an evaluator with params ``p`` does for ``suites`` (``all`` expanded by the caller)."""
    out = EvalWork([])
    if "forgetting" in suites or "policy" in suites:
        for task in _tasks(p).values():
            n = min(task.items, p.limit) if p.limit else task.items
            out.tasks += 1
            if task.choices:
                out.forward_tokens += n * task.choices * task.prompt
            else:
                out.generate.append((n, task.prompt, min(task.answer, p.greedy.max_new_tokens)))
    if "policy" in suites:
        out.generate.append((p.diversity_prompts * p.diversity_samples, tokens.prompt("math"),
                             tokens.response("math", p.diversity_sampling.max_new_tokens)))
    if "safety" in suites:
        for n in SAFETY_ITEMS.values():
            n = min(n, p.max_safety_items) if p.max_safety_items else n
            out.generate.append((n, 60.0, min(SAFETY_RESPONSE_TOKENS, p.safety_max_new_tokens)))
        out.tasks += len(SAFETY_ITEMS)
        judged = {"xstest": p.refusal_classifier == "judge" and bool(p.judge_model),
                  "harmbench": bool(p.harmbench_classifier)}
        for bench, on in judged.items():
            if on:
                n = min(SAFETY_ITEMS[bench], p.max_safety_items) if p.max_safety_items else SAFETY_ITEMS[bench]
                out.judge_tokens += n * (JUDGE_PROMPT[bench] + min(SAFETY_RESPONSE_TOKENS, p.safety_max_new_tokens))
                out.engines += 1
    if "target" in suites and eval_env:
        n = tokens.rows(eval_env, p.target_limit)
        out.generate.append((n * p.target_samples, tokens.prompt(domain),
                             tokens.response(domain, p.target_sampling.max_new_tokens)))
        kl_seqs = p.kl_prompts * p.kl_samples
        out.generate.append((kl_seqs, tokens.prompt(domain), float(p.kl_max_new_tokens)))
        out.forward_tokens += 2 * kl_seqs * (tokens.prompt(domain) + p.kl_max_new_tokens)
        out.engines += 1  # the base model, for KL
    if "representations" in suites:
        out.forward_tokens += 2 * REPRESENTATION_TOKENS_PER_MODEL
        out.weight_pass = True
    return out
