"""One rollout batch: encode both views, sample from the sampling view, grade, score both views, shape, pack.

Why these steps (methods reference §5, what the reference code does): the sampler is the teacher (prompt +
privileged information) for π-Distill and the student (prompt alone) for OPSD. Each response is graded by the
project's graders (``stages.envs.grade_many``, binary rewards) and scored under *both* views with the current
weights; the per-response log-ratio sum_t (log pi_sampler - log pi_other) is the Monte-Carlo KL of the sampler
from the other view (KL(T||S) for π-Distill, the reverse KL(S||T) for OPSD). GRPO advantages over each group are
shaped by -beta times that sum, once per rollout batch, before any update. A training group is the pair
[teacher view, student view] of one response (π-Distill: both views in one forward pass) or the student view
alone (OPSD); every response is its own group so long responses pack freely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stages.pi_distill.prompts import PromptRow


@dataclass(frozen=True)
class Encoded:
    row: PromptRow
    student: list[int]  # prompt ids of the student view
    teacher: list[int]  # prompt ids of the teacher view


@dataclass
class Rollout:
    prompt: int  # index into the step's prompt list
    token_ids: list[int]
    text: str
    finish: str
    reward: float = 0.0
    correct: bool = False
    verdict: str = ""
    lp_teacher: list[float] = field(default_factory=list)  # per response token
    lp_student: list[float] = field(default_factory=list)
    advantage: float = 0.0
    shaped: float = 0.0
    keep: bool = True

    def log_ratio(self, sampler: str) -> float:
        """sum_t (log pi_sampler - log pi_other) over the response."""
        diff = sum(self.lp_teacher) - sum(self.lp_student)
        return diff if sampler == "teacher" else -diff


def encode(rows: Sequence[PromptRow], tokenizer: Any, thinking: bool, limit: int) -> tuple[list[Encoded], int]:
    """Prompt ids of both views for the rows whose teacher prompt fits ``limit`` tokens; and how many did not."""
    from stages.lm.chat import ChatFormat

    fmt = ChatFormat(thinking=thinking)
    kept, too_long = [], 0
    for row in rows:
        teacher = fmt.prompt_ids(tokenizer, row.teacher)
        if len(teacher) > limit:
            too_long += 1
            continue
        kept.append(Encoded(row, fmt.prompt_ids(tokenizer, row.messages), teacher))
    return kept, too_long


def sample(trainer: Any, prompts: Sequence[Encoded], view: str, *, n: int, sampling: Any, seed: int,
           thinking: bool, batch_size: int) -> list[Rollout]:
    """``n`` responses per prompt from the ``view`` ("teacher" | "student") prompts, prompt-major order."""
    from stages.pi_distill.engine import generate

    ids = [e.teacher if view == "teacher" else e.student for e in prompts]
    out = []
    for p, completions in enumerate(generate(trainer, ids, n=n, sampling=sampling, seed=seed, thinking=thinking,
                                             batch_size=batch_size)):
        for c in completions:
            out.append(Rollout(p, list(c.token_ids or []), c.text, c.finish_reason))
    return out


def grade(rollouts: list[Rollout], prompts: Sequence[Encoded]) -> None:
    from stages.envs import grade_many

    rows = [prompts[r.prompt].row for r in rollouts]
    verdicts = grade_many([row.data_source for row in rows], [r.text for r in rollouts],
                          [row.ground_truth for row in rows])
    for r, v in zip(rollouts, verdicts):
        r.reward, r.correct, r.verdict = float(v.score), bool(v.correct), v.verdict


def pair(e: Encoded, r: Rollout) -> list[Any]:
    """[teacher view, student view] of one response; the loss trains the response tokens of both."""
    from stages.lm.engine.batch import Sample

    def view(prompt: list[int], teacher: float) -> Sample:
        return Sample(prompt + r.token_ids, [False] * len(prompt) + [True] * len(r.token_ids),
                      doc_fields={"teacher": teacher})

    return [view(e.teacher, 1.0), view(e.student, 0.0)]


def score_views(trainer: Any, prompts: Sequence[Encoded], rollouts: list[Rollout]) -> list[list[Any]]:
    """Score every response under both views with the current weights; returns the pairs (unfilled fields)."""
    from stages.pi_distill.engine import score

    pairs = [pair(prompts[r.prompt], r) for r in rollouts if r.token_ids]
    scored = [r for r in rollouts if r.token_ids]
    for r, pr, (lp_t, lp_s) in zip(scored, pairs, score(trainer, pairs)):
        n = len(r.token_ids)
        r.lp_teacher, r.lp_student = lp_t[-n:], lp_s[-n:]
        pr[0].token_fields["logprobs"], pr[1].token_fields["logprobs"] = lp_t, lp_s
    return pairs


def shape(rollouts: list[Rollout], group_size: int, beta: float, sampler: str, drop_equal: bool) -> None:
    """GRPO advantages per group, shaped: A - beta * sum_t(log pi_sampler - log pi_other); all-equal groups are
    marked to drop when ``drop_equal``."""
    import torch

    from stages.lm.losses.grpo import group_advantages
    from stages.lm.losses.pi_distill import shaped_advantages

    rewards = [r.reward for r in rollouts]
    adv = group_advantages(rewards, group_size)
    ratio = torch.tensor([r.log_ratio(sampler) for r in rollouts], dtype=torch.float64)
    shaped = shaped_advantages(torch.tensor(adv, dtype=torch.float64), ratio, torch.zeros_like(ratio), beta)
    for start in range(0, len(rollouts), group_size):
        group = rollouts[start:start + group_size]
        informative = max(r.reward for r in group) - min(r.reward for r in group) > 1e-9
        for r in group:
            r.keep = (informative or not drop_equal) and bool(r.token_ids)
    for r, a, s in zip(rollouts, adv, shaped.tolist()):
        r.advantage, r.shaped = float(a), float(s)


def training_groups(variant: str, rollouts: list[Rollout], pairs: list[list[Any]]) -> list[tuple[int, list[Any]]]:
    """(prompt index, group) of every kept response with its shaped advantage and old log-probs filled in.

    π-Distill: [teacher view, student view], ``old_logprobs`` = each view's log-probs at sampling time (the loss
    reads the teacher's; the student's ratio is against the live teacher). OPSD: [student view] alone.
    """
    out = []
    for r, (teacher, student) in zip([r for r in rollouts if r.token_ids], pairs):
        if not r.keep:
            continue
        views = [teacher, student] if variant == "pi-distill" else [student]
        for s in views:
            n_prompt = len(s.input_ids) - len(r.token_ids)
            s.token_fields = {"old_logprobs": s.token_fields["logprobs"],
                              "advantages": [0.0] * n_prompt + [r.shaped] * len(r.token_ids)}
        out.append((r.prompt, views))
    return out
