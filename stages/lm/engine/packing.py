"""Pack groups of samples into flat micro-batches with no padding waste and no cross-document attention.

Why: GSM8K-length rows (a few hundred tokens) padded to the longest row of a batch waste most of a GPU. Instead
every micro-batch is one flat row of up to ``micro_batch_tokens`` tokens holding whole documents back to back;
positions restart at 0 for each document, and attention is confined to each document (``cu_seqlens`` for varlen
kernels, a block-diagonal causal mask for SDPA). Groups are assigned to micro-batches first-fit-decreasing, which
fills rows to within a few percent. With ``pad_to`` (static shapes, for ``torch.compile``) the row is topped up
with one padding document that carries no loss.

The packed tensors are aligned with *targets*: position t holds the log-probability of token t+1 of its document,
so ``loss_mask``, per-token fields and ``targets`` are all shifted by one relative to the stage's samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stages.lm.engine.batch import Sample, group_tokens

if TYPE_CHECKING:  # pragma: no cover
    import torch

CU_SEQLENS_MULTIPLE = 32  # cu_seqlens is padded to a multiple of this, so compiled graphs rarely see a new shape


def plan_micro_batches(groups: Sequence[Sequence[Sample]], token_budget: int) -> list[list[int]]:
    """Assign group indices to micro-batches (first-fit decreasing by size); order inside a bin is stable."""
    order = sorted(range(len(groups)), key=lambda i: -group_tokens(groups[i]))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        size = group_tokens(groups[i])
        if size > token_budget:
            raise ValueError(f"group {i} has {size} tokens, over the micro-batch budget {token_budget}")
        for b, free in enumerate(room):
            if size <= free:
                bins[b].append(i)
                room[b] -= size
                break
        else:
            bins.append([i])
            room.append(token_budget - size)
    return [sorted(b) for b in bins]


@dataclass
class PackedBatch:
    """One flat micro-batch. Token tensors have shape (T,); document tensors have shape (num_docs,)."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    targets: torch.Tensor
    loss_mask: torch.Tensor
    doc_index: torch.Tensor  # document of each token; padding tokens carry index num_docs
    group_index: torch.Tensor  # (num_docs,) group of each document, numbered within this micro-batch
    cu_seqlens: torch.Tensor  # int32 document boundaries (padding doc included), padded with repeats
    max_seqlen: int
    num_docs: int
    num_groups: int
    num_real_tokens: int
    token_fields: dict[str, torch.Tensor] = field(default_factory=dict)
    doc_fields: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids.shape[0])

    def to(self, device: torch.device) -> PackedBatch:
        """A copy on ``device``; from the CPU to a GPU through pinned memory, so the copy never blocks the host
        (a copy from pageable memory waits for all earlier GPU work, starving the GPU at every micro-batch)."""
        pin = device.type == "cuda" and self.input_ids.device.type == "cpu"

        def move(t: torch.Tensor) -> torch.Tensor:
            return (t.pin_memory() if pin else t).to(device, non_blocking=True)

        tensors = {k: move(v) for k, v in self.__dict__.items() if hasattr(v, "pin_memory")}
        out = PackedBatch(**{**self.__dict__, **tensors})
        out.token_fields = {k: move(v) for k, v in self.token_fields.items()}
        out.doc_fields = {k: move(v) for k, v in self.doc_fields.items()}
        return out

    def per_doc_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum per-token values into (num_docs,) (padding dropped)."""
        import torch

        out = torch.zeros(self.num_docs + 1, dtype=values.dtype, device=values.device)
        return out.index_add(0, self.doc_index, values)[: self.num_docs]

    def block_causal_mask(self) -> torch.Tensor:
        """(1, 1, T, T) boolean mask: causal and within one document (SDPA fallback)."""
        doc = self.doc_index
        same = doc[:, None] == doc[None, :]
        causal = torch_tril(doc.shape[0], doc.device)
        return (same & causal)[None, None]


def torch_tril(n: int, device: torch.device) -> torch.Tensor:
    import torch

    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


def pack(groups: Sequence[Sequence[Sample]], pad_id: int, pad_to: int | None = None,
         max_doc_tokens: int | None = None) -> PackedBatch:
    """Concatenate the groups' samples into one PackedBatch.

    With ``pad_to`` the row is filled to exactly ``pad_to`` tokens by padding documents of at most
    ``max_doc_tokens`` tokens each, and ``max_seqlen`` is that constant: fixed shapes and fixed kernel arguments
    for compiled graphs (varlen kernels launch work per document and per ``max_seqlen`` block, so a short bound
    keeps the launch small).
    """
    import numpy as np
    import torch

    samples = [sample for group in groups for sample in group]
    group_of_doc = [gi for gi, group in enumerate(groups) for _ in group]
    num_docs = len(samples)
    lengths = np.array([len(sample) for sample in samples], dtype=np.int64)
    real = int(lengths.sum())
    longest = int(lengths.max()) if num_docs else 0
    ends = np.cumsum(lengths)
    starts = ends - lengths
    token_keys = sorted({k for sample in samples for k in sample.token_fields})
    doc_keys = sorted({k for sample in samples for k in sample.doc_fields})

    def shifted(values: np.ndarray, fill: float) -> np.ndarray:
        """Value at t+1 of the same document (targets are the next token); ``fill`` at each document's end."""
        out = np.empty_like(values)
        out[:-1] = values[1:]
        out[ends - 1] = fill
        return out

    ids = np.concatenate([np.asarray(sample.input_ids, dtype=np.int64) for sample in samples]) if samples else np.zeros(0, np.int64)
    tgt = shifted(ids, pad_id) if real else ids
    mask = shifted(np.concatenate([np.asarray(s.loss_mask, dtype=bool) for s in samples]), False) if real else ids.astype(bool)
    pos = np.arange(real, dtype=np.int64) - np.repeat(starts, lengths)
    doc_idx = np.repeat(np.arange(num_docs, dtype=np.int64), lengths)
    tok_vals = {
        k: shifted(np.concatenate([np.asarray(s.token_fields[k], dtype=np.float32) if k in s.token_fields
                                   else np.zeros(len(s), np.float32) for s in samples]), 0.0)
        for k in token_keys
    }
    doc_vals = {k: np.array([float(s.doc_fields.get(k, 0.0)) for s in samples], dtype=np.float32) for k in doc_keys}
    bounds = [0, *ends.tolist()]
    if pad_to is not None:
        if real > pad_to:
            raise ValueError(f"packed {real} tokens into a row of {pad_to}")
        cap = max_doc_tokens or pad_to
        if longest > cap:
            raise ValueError(f"a document of {longest} tokens exceeds max_doc_tokens {cap}")
        extra = pad_to - real
        pieces = [min(cap, extra - i) for i in range(0, extra, cap)]
        ids = np.concatenate([ids, np.full(extra, pad_id, np.int64)])
        tgt = np.concatenate([tgt, np.full(extra, pad_id, np.int64)])
        mask = np.concatenate([mask, np.zeros(extra, bool)])
        doc_idx = np.concatenate([doc_idx, np.full(extra, num_docs, np.int64)])
        pos = np.concatenate([pos, *[np.arange(n, dtype=np.int64) for n in pieces]])
        tok_vals = {k: np.concatenate([v, np.zeros(extra, np.float32)]) for k, v in tok_vals.items()}
        for n in pieces:
            bounds.append(bounds[-1] + n)
        longest = cap
    while (len(bounds) - 1) % CU_SEQLENS_MULTIPLE:
        bounds.append(bounds[-1])  # zero-length documents: harmless to varlen kernels, fixed shape for compile
    return PackedBatch(
        input_ids=torch.from_numpy(ids),
        position_ids=torch.from_numpy(pos),
        targets=torch.from_numpy(tgt),
        loss_mask=torch.from_numpy(mask),
        doc_index=torch.from_numpy(doc_idx),
        group_index=torch.tensor(group_of_doc, dtype=torch.long),
        cu_seqlens=torch.tensor(bounds, dtype=torch.int32),
        max_seqlen=int(longest),
        num_docs=num_docs,
        num_groups=len(groups),
        num_real_tokens=real,
        token_fields={k: torch.from_numpy(v) for k, v in tok_vals.items()},
        doc_fields={k: torch.from_numpy(v) for k, v in doc_vals.items()},
    )
