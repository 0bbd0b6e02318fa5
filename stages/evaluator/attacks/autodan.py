"""AutoDAN (Liu et al., 2023, "AutoDAN: Generating Stealthy Jailbreak Prompts on Aligned Large Language Models"),
the hierarchical genetic algorithm (HGA), written for this project from the paper's description.

A population of jailbreak prompts (each a template with ``[REPLACE]`` where the behaviour goes) evolves towards a
low target loss, the fitness being the mean cross-entropy of the target response after the prompt:
- initialisation: the prototype prompts, cycled to the population size, every copy after the first of each
  prototype diversified by mutation (the paper diversifies its prototype with an LLM);
- paragraph level (every ``paragraph_every`` generations, starting with the first): the ``num_elites`` share of the
  best prompts is kept as is; the rest are children of parents drawn by roulette wheel (softmax of the negative
  loss), whose sentences are exchanged at ``num_points`` crossover points with probability ``crossover``, and which
  are mutated with probability ``mutation``;
- sentence level (the other generations): every word and phrase of the synonym table gets a score, the mean
  fitness of the prompts that hold it, kept with momentum (the average of the old and the new score); outside the
  elites, each swappable word is replaced by itself or one of its synonyms drawn by roulette over those scores, and
  then mutated with probability ``mutation``;
- termination: after ``num_steps`` generations, or, with ``eval_with_check_refusal``, as soon as the best prompt's
  greedy completion (``check_max_new_tokens``) is not a refusal, checked every ``eval_steps`` generations.

Randomness comes from one ``random.Random`` seeded per behaviour; the model runs greedily. A stop signal is checked
at every generation; an interrupted behaviour is rerun from its start (resumability is per behaviour).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from stages.evaluator.attacks.behaviours import Behaviour
from stages.evaluator.attacks.mutation import WORD, Mutation, match_case, mutable_words, repair
from stages.evaluator.attacks.outcome import Outcome, behaviour_seed
from stages.evaluator.attacks.params import AutoDANParams
from stages.evaluator.attacks.prototypes import PLACEHOLDER, SYNONYMS
from stages.evaluator.attacks.scoring import chat_prompt, complete, ids_of, target_losses
from stages.evaluator.safety.refusal import is_refusal

SENTENCE_END = re.compile(r"(?<=[.!?:])\s+")
PHRASES = sorted({w for k, vs in SYNONYMS.items() for w in (k, *vs)})


def sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_END.split(text.strip()) if s]


def crossover(a: str, b: str, num_points: int, rng: random.Random) -> tuple[str, str]:
    """Exchange the sentence runs between ``num_points`` random cut points (the shorter parent bounds the cuts)."""
    sa, sb = sentences(a), sentences(b)
    n = min(len(sa), len(sb))
    if n < 2:
        return a, b
    cuts = sorted(rng.sample(range(1, n), min(num_points, n - 1)))
    ca, cb, start, swap = [], [], 0, False
    for end in [*cuts, max(len(sa), len(sb))]:
        xa, xb = sa[start:end], sb[start:end]
        ca += xb if swap else xa
        cb += xa if swap else xb
        start, swap = end, not swap
    return repair(" ".join(ca)), repair(" ".join(cb))


def roulette(weights: Sequence[float], rng: random.Random, k: int) -> list[int]:
    top = max(weights)
    return rng.choices(range(len(weights)), weights=[math.exp(w - top) for w in weights], k=k)


def phrase_presence(text: str) -> set[str]:
    low = f" {' '.join(WORD.findall(text.lower()))} "
    return {p for p in PHRASES if f" {p.lower()} " in low}


class AutoDANAttack:
    def __init__(self, model: Any, tokenizer: Any, params: AutoDANParams, thinking: bool,
                 check_stop: Callable[[], None], prototypes: Sequence[str], mutation: Mutation):
        self.model, self.tokenizer, self.p, self.thinking = model, tokenizer, params, thinking
        self.check_stop, self.prototypes, self.mutation = check_stop, list(prototypes), mutation
        self.elites = max(1, int(params.population * params.num_elites)) if params.num_elites > 0 else 0

    # --- fitness -------------------------------------------------------------------------------------------------
    def prompt(self, template: str, b: Behaviour) -> str:
        return template.replace(PLACEHOLDER, b.prompt)

    def losses(self, population: list[str], b: Behaviour) -> list[float]:
        ids = [ids_of(self.tokenizer, chat_prompt(self.tokenizer, self.prompt(t, b), self.thinking))
               for t in population]
        return target_losses(self.model, ids, ids_of(self.tokenizer, b.target), self.p.forward_batch_size)

    def jailbroken(self, template: str, b: Behaviour) -> bool:
        text = chat_prompt(self.tokenizer, self.prompt(template, b), self.thinking)
        return not is_refusal(complete(self.model, self.tokenizer, text, self.p.check_max_new_tokens))

    # --- the genetic operators -----------------------------------------------------------------------------------
    def initial(self, rng: random.Random) -> list[str]:
        out = []
        for i in range(self.p.population):
            text = repair(self.prototypes[i % len(self.prototypes)])
            if i >= len(self.prototypes):
                for _ in range(self.mutation.init_rounds):
                    text = self.mutation.mutate(text, rng)
            out.append(text)
        return out

    def mutated(self, texts: list[str], rng: random.Random) -> list[str]:
        return [repair(self.mutation.mutate(t, rng)) if rng.random() < self.p.mutation else t for t in texts]

    def paragraph_step(self, pop: list[str], losses: list[float], rng: random.Random) -> list[str]:
        order = sorted(range(len(pop)), key=losses.__getitem__)
        elites = [pop[i] for i in order[:self.elites]]
        parents = [pop[i] for i in roulette([-x for x in losses], rng, len(pop) - len(elites))]
        children: list[str] = []
        for j in range(0, len(parents), 2):
            a, b = parents[j], parents[j + 1] if j + 1 < len(parents) else parents[0]
            children += crossover(a, b, self.p.num_points, rng) if rng.random() < self.p.crossover else (a, b)
        return elites + self.mutated(children[:len(parents)], rng)

    def word_step(self, pop: list[str], losses: list[float], scores: dict[str, float],
                  rng: random.Random) -> list[str]:
        held: dict[str, list[float]] = {}
        for text, loss in zip(pop, losses):
            for phrase in phrase_presence(text):
                held.setdefault(phrase, []).append(-loss)
        for phrase, values in held.items():
            now = sum(values) / len(values)
            scores[phrase] = (scores[phrase] + now) / 2 if phrase in scores else now
        order = sorted(range(len(pop)), key=losses.__getitem__)
        elites = [pop[i] for i in order[:self.elites]]
        rest = [self.swap_words(pop[i], scores, rng) for i in order[self.elites:]]
        return elites + self.mutated(rest, rng)

    def swap_words(self, text: str, scores: dict[str, float], rng: random.Random) -> str:
        out, last = [], 0
        for m in mutable_words(text):
            word = m.group(0).lower()
            options = [word, *SYNONYMS[word]]
            own = scores.get(word, 0.0)
            pick = options[roulette([scores.get(o, own) for o in options], rng, 1)[0]]
            out += [text[last:m.start()], match_case(pick, m.group(0)) if pick != word else m.group(0)]
            last = m.end()
        return "".join(out) + text[last:]

    # --- one behaviour -------------------------------------------------------------------------------------------
    def run(self, b: Behaviour, seed: int) -> Outcome:
        rng = random.Random(behaviour_seed(seed, "autodan", b.behavior_id))
        pop, scores = self.initial(rng), {}
        best, best_loss, steps = pop[0], math.inf, 0
        for step in range(self.p.num_steps):
            self.check_stop()
            losses = self.losses(pop, b)
            steps = step + 1
            i = min(range(len(pop)), key=losses.__getitem__)
            best, best_loss = pop[i], losses[i]
            if self.p.eval_with_check_refusal and steps % self.p.eval_steps == 0 and self.jailbroken(best, b):
                break
            if steps == self.p.num_steps:
                break
            if step % self.p.paragraph_every == 0:
                pop = self.paragraph_step(pop, losses, rng)
            else:
                pop = self.word_step(pop, losses, scores, rng)
        return Outcome(self.prompt(best, b), float(best_loss), steps)
