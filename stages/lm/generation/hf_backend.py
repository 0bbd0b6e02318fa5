"""The ``hf`` backend: transformers ``generate``, batched by prompt length; runs on CPU.

Why: CI, laptops and the tiny-model smoke study have no vLLM, and the GPU box has none either; this backend is
the embedded default. Rows (prompt x sample) are sorted by prompt length and generated in batches of similar
length, so left padding wastes little. Each batch is seeded from (seed, batch number), so the same request
reproduces the same samples. Log-probs are recomputed with one teacher-forced forward pass over prompt +
completion through the chunked log-prob head: exactly what a training forward pass would give, with no
vocabulary-sized tensors kept per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from stages.lm.chat import ChatFormat
from stages.lm.generation.types import Completion, Messages, PromptResult, SamplingParams, derive_seed
from stages.lm.loading import load_model, load_tokenizer


class HFBackend:
    name = "hf"

    def __init__(self, model: str | Path | Any, *, tokenizer: Any = None, thinking: bool = False,
                 device: str = "auto", dtype: str = "auto", batch_size: int = 32) -> None:
        if isinstance(model, (str, Path)):
            self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model)
            self.model = load_model(model, device=device, dtype=dtype)
        else:
            self.model, self.tokenizer = model, tokenizer
            self.model.eval()
        self.format = ChatFormat(thinking=thinking)
        self.batch_size = batch_size
        self.device = next(self.model.parameters()).device
        if self.tokenizer is not None:
            self.stop_ids = self.format.stop_token_ids(self.tokenizer)
            self.pad_id = int(self.tokenizer.pad_token_id)
        else:
            eos = self.model.generation_config.eos_token_id
            self.stop_ids = [eos] if isinstance(eos, int) else list(eos or [])
            self.pad_id = int(self.model.config.pad_token_id or 0)

    def generate(self, prompts: Sequence[Messages], params: SamplingParams) -> list[PromptResult]:
        ids = [self.format.prompt_ids(self.tokenizer, p) for p in prompts]
        return self.generate_from_ids(ids, params)

    @torch.no_grad()
    def generate_from_ids(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams) -> list[PromptResult]:
        rows = [(p, s) for p in range(len(prompt_ids)) for s in range(params.n)]
        rows.sort(key=lambda r: (len(prompt_ids[r[0]]), r))
        results = [PromptResult(prompt_index=i, completions=[None] * params.n) for i in range(len(prompt_ids))]  # type: ignore[list-item]
        for number, start in enumerate(range(0, len(rows), self.batch_size)):
            chunk = rows[start:start + self.batch_size]
            outputs = self._generate_batch([list(prompt_ids[p]) for p, _ in chunk], params,
                                           derive_seed(params.seed, number))
            for (p, s), completion in zip(chunk, outputs):
                results[p].completions[s] = completion
        return results

    def _generate_batch(self, prompts: list[list[int]], params: SamplingParams, seed: int) -> list[Completion]:
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):
            input_ids[i, width - len(p):] = torch.tensor(p)
            attention[i, width - len(p):] = 1
        kwargs: dict[str, Any] = {"max_new_tokens": params.max_tokens, "pad_token_id": self.pad_id,
                                      "eos_token_id": self.stop_ids, "return_dict_in_generate": True}
        if params.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None)
        if params.ignore_eos:
            kwargs["min_new_tokens"] = params.max_tokens
        if params.stop and self.tokenizer is not None:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        torch.manual_seed(seed)
        out = self.model.generate(input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device), **kwargs)
        generated = out.sequences[:, width:].tolist()
        completions = [self._completion(ids, params) for ids in generated]
        if params.logprobs:
            scores = self.score(prompts, [c.token_ids or [] for c in completions])
            for c, lp in zip(completions, scores):
                c.logprobs = lp
        return completions

    def _completion(self, ids: list[int], params: SamplingParams) -> Completion:
        finish = "length"
        cut = len(ids)
        for i, tok in enumerate(ids):
            if tok in self.stop_ids and not params.ignore_eos:
                cut, finish = i + 1, "stop"
                break
        ids = ids[:cut]
        text = ""
        if self.tokenizer is not None:
            body = ids[:-1] if finish == "stop" else ids
            text = self.tokenizer.decode(body, skip_special_tokens=True)
            for s in params.stop:
                at = text.find(s)
                if at >= 0:
                    text, finish = text[:at], "stop"
        return Completion(text=text, token_ids=ids, finish_reason=finish)  # type: ignore[arg-type]

    @torch.no_grad()
    def score(self, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]]) -> list[list[float]]:
        """log p(completion token | prompt, earlier completion tokens) for each pair (teacher forcing)."""
        from stages.lm.engine.logprobs import token_logprobs

        lm = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        seqs = [list(p) + list(c) for p, c in zip(prompts, completions)]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)  # right padding: real positions stay 0..n-1, causal masking hides pads
        ids = ids.to(self.device)
        hidden = lm.model(input_ids=ids, use_cache=False).last_hidden_state
        targets = torch.cat([ids[:, 1:], ids[:, :1]], dim=1)
        logp = token_logprobs(hidden.reshape(-1, hidden.shape[-1]), lm.get_output_embeddings().weight,
                              targets.reshape(-1)).view(len(seqs), width).float().cpu()
        return [logp[i, len(p) - 1:len(p) - 1 + len(c)].tolist() for i, (p, c) in enumerate(zip(prompts, completions))]

    def close(self) -> None:
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
