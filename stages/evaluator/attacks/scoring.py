"""What both attacks ask of the attacked model: the chat prompt of a user message, the loss of the target response
after many candidate prompts (AutoDAN's fitness), and a greedy completion (the judged output, and AutoDAN's refusal
check).

Candidate prompts differ in length, so a batch is left-padded, with position ids that start at each row's first real
token: every row's target then ends the sequence, and only the target's logits are computed (``logits_to_keep``),
never the whole vocabulary at every prompt position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stages.lm.chat import ChatFormat


def chat_prompt(tokenizer: Any, user: str, thinking: bool) -> str:
    """The text the model continues when ``user`` is the whole conversation (the study's thinking switch)."""
    return ChatFormat(thinking=thinking).render_prompt(tokenizer, [{"role": "user", "content": user}])


def ids_of(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def target_losses(model: Any, prompts: Sequence[list[int]], target: list[int], batch_size: int) -> list[float]:
    """Mean cross-entropy of ``target`` after each prompt (token ids), batch by batch."""
    import torch

    pad = 0
    losses: list[float] = []
    device = next(model.parameters()).device
    labels = torch.tensor(target, device=device)
    for start in range(0, len(prompts), batch_size):
        rows = [list(p) + target for p in prompts[start:start + batch_size]]
        width = max(map(len, rows))
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                           logits_to_keep=len(target) + 1).logits[:, :-1].float()
        ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels.expand(len(rows), -1), reduction="none")
        losses.extend(ce.mean(-1).tolist())
    return losses


def complete(model: Any, tokenizer: Any, prompt_text: str, max_new_tokens: int) -> str:
    """Greedy continuation of a rendered chat prompt, special tokens dropped."""
    import torch

    device = next(model.parameters()).device
    ids = torch.tensor([ids_of(tokenizer, prompt_text)], device=device)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
