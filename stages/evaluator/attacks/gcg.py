"""GCG (Zou et al., 2023) through nanoGCG (MIT, ``nanogcg==0.3.0``): an adversarial suffix after the behaviour,
optimised by greedy coordinate steps on the token gradient towards the target response.

nanoGCG keeps no state between calls and cannot resume inside an attack, so resumability is per behaviour (the
runner writes each finished behaviour before the next starts). Three adaptations, none of which changes the
algorithm:
- its prefix KV cache assumes the legacy tuple cache, which transformers 5 replaced (``DynamicCache`` is neither
  subscriptable nor left unchanged by a forward pass), so it runs with ``use_prefix_cache=False`` (the prompt before
  the suffix is recomputed for every candidate: about 1.5x the FLOPs of the cached version for HarmBench-length
  prompts);
- its chat template call gets the study's thinking switch (``enable_thinking``), like every other prompt;
- a stop signal is checked before every step (a preempted job loses the behaviour in progress, not the run), and
  the process-wide deterministic-algorithms switch nanoGCG turns on for a seeded run is restored afterwards;
- nanoGCG calls ``gc.collect()`` for every candidate batch; in the evaluator's process (torch, transformers,
  lm-eval loaded) one full collection takes most of a second, more than a CPU step of the tiny test model, so the
  objects that exist before the attack are frozen out of the collector for its duration (``gc.freeze``).

Each behaviour's seed is derived from the suite's seed and the behaviour id, so a behaviour's attack is the same
whatever ran before it (a resumed run equals an uninterrupted one).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from stages.evaluator.attacks.behaviours import Behaviour
from stages.evaluator.attacks.outcome import Outcome, behaviour_seed
from stages.evaluator.attacks.params import GCGParams

SUFFIX = "{optim_str}"


class GCGAttack:
    def __init__(self, model: Any, tokenizer: Any, params: GCGParams, thinking: bool, check_stop: Callable[[], None]):
        import logging

        from nanogcg.gcg import GCG, GCGConfig

        class _Stoppable(GCG):
            def compute_token_gradient(self, optim_ids):  # called once per step
                check_stop()
                return super().compute_token_gradient(optim_ids)

        tokenizer.apply_chat_template = functools.partial(tokenizer.apply_chat_template, enable_thinking=thinking)
        self.params = params
        config = GCGConfig(
            num_steps=params.num_steps, optim_str_init=params.optim_str_init, search_width=params.search_width,
            batch_size=params.batch_size, topk=params.topk, n_replace=params.n_replace,
            early_stop=params.early_stopping, use_prefix_cache=False, allow_non_ascii=params.allow_non_ascii,
            filter_ids=True, verbosity="WARNING",
        )
        logging.getLogger("nanogcg").setLevel(logging.WARNING)
        self.gcg = _Stoppable(model, tokenizer, config)  # the disallowed tokens are computed once, here

    def run(self, b: Behaviour, seed: int) -> Outcome:
        import gc

        import torch

        self.gcg.config.seed = behaviour_seed(seed, "gcg", b.behavior_id)
        self.gcg.stop_flag = False
        deterministic = torch.are_deterministic_algorithms_enabled()
        gc.freeze()
        try:
            result = self.gcg.run([{"role": "user", "content": f"{b.prompt} {SUFFIX}"}], b.target)
        finally:
            gc.unfreeze()
            torch.use_deterministic_algorithms(deterministic)
        return Outcome(f"{b.prompt} {result.best_string}", float(result.best_loss), len(result.losses))
