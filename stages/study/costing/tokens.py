"""How much text a study's runs move: rows per dataset and tokens per prompt and response, per domain.

Why a table: the cost of a run is its token count times a rate, and the planner knows the datasets only by env id.
Measured where rows exist here (Qwen3 tokenizer over ``../shared/data``, the project's prompt templates from
``stages.envs.templates``); the rest is marked estimate. Sampled responses are model-dependent: the estimates are
for thinking off (the study default) and are capped by each run's own ``max_new_tokens``.
"""

from __future__ import annotations

# Rows of each env's split (GEM's datasets): GSM8K train 7,473 (../shared/data/README.md); CodeContests train
# 13,328 problems and test 165 (deepmind/code_contests, which GEM's axon-rl/CodeContest repackages); NQ-open train
# 79,168 (google-research-datasets/natural-questions nq_open); MATH500 500; GEM's NQ eval split 512
# (../shared/reference/gem.md: 512 per source).
PLAN_ITEMS = 10000  # the plan's "~10K per domain" (seed-plan.md §0.3), for a split of unknown size
DATASET_ROWS: dict[str, int] = {
    "math:GSM8K": 7473,
    "eval:MATH500": 500,
    "code:CodeContest": 13328,
    "eval:CodeContest": 165,
    "qa:NaturalQuestions": 79168,
    "eval:NaturalQuestions": 512,
}

# Prompt tokens: the project template's own tokens (qwen3-v1, thinking off: math 29, code 67, qa 51, measured with
# the Qwen3 tokenizer) plus the question: GSM8K 60 and NQ 10.5 tokens on average (measured over
# ../shared/data/gsm8k/train.jsonl and nq_open/NQ-open.dev.jsonl); CodeContests statements: estimate 450.
PROMPT_TOKENS: dict[str, float] = {"math": 29 + 60, "code": 67 + 450, "qa": 51 + 10.5}

# Ground-truth targets (GT-SFT rows, SELF's chosen side, PI's privileged information): GSM8K worked solutions 122
# tokens (measured, ../shared/data/gsm8k/train.jsonl); an accepted Python solution: estimate 400; QA: the templated
# answer, estimate 16.
TARGET_TOKENS: dict[str, float] = {"math": 122, "code": 400, "qa": 16}

# Sampled responses (teachers, rollouts, own samples, generative evaluation), thinking off. Estimates: about 2.5x
# the GSM8K reference solutions for math, a commented program for code, a sentence for QA.
RESPONSE_TOKENS: dict[str, float] = {"math": 300, "code": 600, "qa": 40}


def rows(env_id: str, max_items: int | None = None, start: int = 0, stop: int | None = None) -> int:
    n = DATASET_ROWS.get(env_id, PLAN_ITEMS)
    n = min(n, stop) if stop else n
    n = max(0, n - start)
    return min(n, max_items) if max_items else n


def response(domain: str | None, cap: int) -> float:
    return min(float(cap), RESPONSE_TOKENS.get(domain or "math", 300))


def prompt(domain: str | None) -> float:
    return PROMPT_TOKENS.get(domain or "math", 100)


def target(domain: str | None) -> float:
    return TARGET_TOKENS.get(domain or "math", 122)
