"""The suite's passes over a model: batched forwards that keep only what is needed, under an intervention or none.

One forward per batch gives both things the suite reads: the residual stream each block reads (its input, captured
by pre-hooks) at the post-instruction positions only, summed over the batch on the device (the suite needs means:
a difference in means and a mean projection are both linear in them), and the next-token logits after the prompt
(``logits_to_keep=1``: no vocabulary-sized tensor for the other positions), from which the paper's refusal score
is read. Prompts are sorted by length and left-padded in batches, with position ids counted from each prompt's
first real token, so a padded prompt gives the same activations as it would alone. Greedy generations for the
string matcher go through the project's HF backend with the same hooks in place (``stages.lm``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from stages.evaluator.safety import direction as D

SENTINEL = "\u2063REFUSAL-DIRECTION-INSTRUCTION\u2063"


def post_instruction_ids(tokenizer: Any, fmt: Any) -> list[int]:
    """Token ids the chat template puts after the user's instruction (end of turn, the assistant header and, with
    thinking off, the empty think block): the paper's post-instruction positions."""
    text = fmt.render_prompt(tokenizer, [{"role": "user", "content": SENTINEL}])
    return list(tokenizer(text[text.index(SENTINEL) + len(SENTINEL):], add_special_tokens=False)["input_ids"])


def encode(tokenizer: Any, fmt: Any, instructions: Sequence[str], suffix: Sequence[int]) -> list[list[int]]:
    """Chat-formatted prompt ids of each instruction; each must end with the post-instruction ids."""
    out = []
    for text in instructions:
        ids = fmt.prompt_ids(tokenizer, [{"role": "user", "content": text}])
        if len(ids) <= len(suffix) or ids[-len(suffix):] != list(suffix):
            raise ValueError(f"the chat template does not end {text[:40]!r}... with its post-instruction tokens")
        out.append(ids)
    return out


def refusal_token_ids(tokenizer: Any, tokens: Sequence[str]) -> list[int]:
    """The first token id of each refusal opening (as the answer's first token would spell it)."""
    ids = []
    for t in tokens:
        got = tokenizer(t, add_special_tokens=False)["input_ids"]
        if not got:
            raise ValueError(f"refusal token {t!r} tokenises to nothing")
        ids.append(int(got[0]))
    return sorted(set(ids))


@dataclass
class Pass:
    means: torch.Tensor | None  # [layers, positions, d] float64 on the CPU (mean over prompts)
    scores: list[float]  # refusal score per prompt, in input order
    logits: torch.Tensor | None  # [n, vocab] float32 on the CPU, in input order


class Runner:
    """A loaded model, the number of post-instruction positions, and the batch size of every pass."""

    def __init__(self, model: Any, tokenizer: Any, positions: int, batch_size: int, refusal_ids: Sequence[int],
                 thinking: bool):
        self.model, self.tokenizer, self.positions, self.batch_size = model, tokenizer, positions, batch_size
        self.refusal_ids, self.thinking = list(refusal_ids), thinking
        self.blocks = D.decoder_layers(model)
        self.device = next(model.parameters()).device
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = int(pad if pad is not None else 0)

    @property
    def layers(self) -> int:
        return len(self.blocks)

    def _batches(self, seqs: Sequence[Sequence[int]]):
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = len(seqs[rows[0]])
            ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for j, i in enumerate(rows):
                ids[j, width - len(seqs[i]):] = torch.as_tensor(list(seqs[i]))
                mask[j, width - len(seqs[i]):] = 1
            position_ids = (mask.cumsum(-1) - 1).clamp_min(0)
            yield rows, ids.to(self.device), mask.to(self.device), position_ids.to(self.device)

    @torch.inference_mode()
    def run(self, seqs: Sequence[Sequence[int]], means: bool = True, logits: bool = False) -> Pass:
        """One pass over ``seqs`` under whatever hooks are registered."""
        n, p = len(seqs), self.positions
        width = self.model.get_input_embeddings().weight.shape[1]
        sums = torch.zeros(self.layers, p, width, dtype=torch.float64, device=self.device) if means else None
        handles = []
        if means:
            def capture(i: int):
                def pre_hook(_module, args, kwargs):
                    hidden = args[0] if args else kwargs["hidden_states"]
                    sums[i] += hidden[:, -p:, :].double().sum(0)
                return pre_hook
            handles = [b.register_forward_pre_hook(capture(i), with_kwargs=True) for i, b in enumerate(self.blocks)]
        scores = [0.0] * n
        kept = [None] * n if logits else None
        try:
            for rows, ids, mask, position_ids in self._batches(seqs):
                out = self.model(input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=False,
                                 logits_to_keep=1)
                last = out.logits[:, -1, :].float()
                for j, s in zip(rows, D.refusal_score(last, self.refusal_ids).tolist()):
                    scores[j] = float(s)
                if kept is not None:
                    for j, row in zip(rows, last.cpu()):
                        kept[j] = row
        finally:
            for h in handles:
                h.remove()
        return Pass(means=(sums / n).cpu() if sums is not None else None, scores=scores,
                    logits=torch.stack(kept) if kept is not None else None)

    def generate(self, seqs: Sequence[Sequence[int]], max_new_tokens: int, ignore_eos: bool = False) -> list[str]:
        """Greedy completions under whatever hooks are registered (``ignore_eos``: always ``max_new_tokens``)."""
        from stages.lm.generation import SamplingParams
        from stages.lm.generation.hf_backend import HFBackend

        backend = HFBackend(self.model, tokenizer=self.tokenizer, thinking=self.thinking, batch_size=self.batch_size)
        params = SamplingParams(n=1, temperature=0.0, max_tokens=max_new_tokens, ignore_eos=ignore_eos)
        results = backend.generate_from_ids(seqs, params)
        return [r.completions[0].text for r in results]

    # --- interventions -----------------------------------------------------------------------------------------------
    def ablated(self, direction: torch.Tensor) -> AbstractContextManager:
        return D.ablation(self.model, direction)

    def added(self, direction: torch.Tensor, layer: int) -> AbstractContextManager:
        return D.addition(self.model, direction.to(self.device), layer)

    def intervention(self, name: str, direction: torch.Tensor, layer: int) -> AbstractContextManager:
        if name == "ablation":
            return self.ablated(direction)
        if name == "addition":
            return self.added(direction, layer)
        return nullcontext()


def candidate_scores(runner: Runner, candidate: torch.Tensor, layer: int, harmful_val: Sequence[Sequence[int]],
                     harmless_val: Sequence[Sequence[int]], harmless_logits: torch.Tensor) -> dict[str, float]:
    """The paper's three numbers for one candidate: mean refusal score of harmful val prompts with it ablated
    (bypass), of harmless val prompts with it added at its layer (induce), and the KL of harmless next-token
    distributions under its ablation. The two ablated sets share their batches (one pass under the same hooks)."""
    n = len(harmful_val)
    with runner.ablated(candidate):
        both = runner.run([*harmful_val, *harmless_val], means=False, logits=True)
    bypass, ablated = both.scores[:n], both.logits[n:]
    with runner.added(candidate, layer):
        induce = runner.run(harmless_val, means=False).scores
    return {"bypass_score": sum(bypass) / len(bypass), "induce_score": sum(induce) / len(induce),
            "kl_score": D.next_token_kl(harmless_logits, ablated)}


def select_candidate(runner: Runner, candidates: torch.Tensor, harmful_val: Sequence[Sequence[int]],
                     harmless_val: Sequence[Sequence[int]], rows: Any, params: Any,
                     check_stop: Callable[[], None]) -> D.Candidate:
    """Score every candidate (position, layer) that the layer filter keeps and has a non-zero difference (rows are
    kept in ``rows`` as they are computed, so a preempted run resumes), then apply the paper's choice."""
    layers, positions = candidates.shape[0], candidates.shape[1]
    harmless_logits = None
    floor = 1e-6 * float(candidates.norm(dim=-1).max())
    for layer in range(layers):
        if layer >= params.max_layer_share * layers:
            continue
        for p in range(positions):
            position = p - positions
            if rows.has(position=position, layer=layer):
                continue
            check_stop()
            vec = candidates[layer, p]
            if float(vec.norm()) <= floor:
                rows.add({"position": position, "layer": layer, "norm": float(vec.norm()), "bypass_score": None,
                          "induce_score": None, "kl_score": None})  # no difference here (e.g. the embeddings)
                continue
            if harmless_logits is None:
                harmless_logits = runner.run(harmless_val, means=False, logits=True).logits
            scores = candidate_scores(runner, vec.float(), layer, harmful_val, harmless_val, harmless_logits)
            rows.add({"position": position, "layer": layer, "norm": float(vec.norm()), **scores})
    scored = [D.Candidate(r["position"], r["layer"], r["bypass_score"], r["induce_score"], r["kl_score"])
              for r in rows.all() if r["bypass_score"] is not None]
    return D.select(scored, layers, params.induce_threshold, params.kl_threshold, params.max_layer_share)
