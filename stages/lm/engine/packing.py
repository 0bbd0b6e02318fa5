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

    input_ids: "torch.Tensor"
    position_ids: "torch.Tensor"
    targets: "torch.Tensor"
    loss_mask: "torch.Tensor"
    doc_index: "torch.Tensor"  # document of each token; padding tokens carry index num_docs
    group_index: "torch.Tensor"  # (num_docs,) group of each document, numbered within this micro-batch
    cu_seqlens: "torch.Tensor"  # int32 document boundaries (padding doc included), padded with repeats
    max_seqlen: int
    num_docs: int
    num_groups: int
    num_real_tokens: int
    token_fields: dict[str, "torch.Tensor"] = field(default_factory=dict)
    doc_fields: dict[str, "torch.Tensor"] = field(default_factory=dict)

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids.shape[0])

    def to(self, device: "torch.device") -> "PackedBatch":
        moved = {k: v.to(device, non_blocking=True) for k, v in self.__dict__.items() if hasattr(v, "to") and not isinstance(v, dict)}
        out = PackedBatch(**{**self.__dict__, **moved})
        out.token_fields = {k: v.to(device, non_blocking=True) for k, v in self.token_fields.items()}
        out.doc_fields = {k: v.to(device, non_blocking=True) for k, v in self.doc_fields.items()}
        return out

    def per_doc_sum(self, values: "torch.Tensor") -> "torch.Tensor":
        """Sum per-token values into (num_docs,) (padding dropped)."""
        import torch

        out = torch.zeros(self.num_docs + 1, dtype=values.dtype, device=values.device)
        return out.index_add(0, self.doc_index, values)[: self.num_docs]

    def block_causal_mask(self) -> "torch.Tensor":
        """(1, 1, T, T) boolean mask: causal and within one document (SDPA fallback)."""
        doc = self.doc_index
        same = doc[:, None] == doc[None, :]
        causal = torch_tril(doc.shape[0], doc.device)
        return (same & causal)[None, None]


def torch_tril(n: int, device: "torch.device") -> "torch.Tensor":
    import torch

    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


def pack(groups: Sequence[Sequence[Sample]], pad_id: int, pad_to: int | None = None) -> PackedBatch:
    """Concatenate the groups' samples into one PackedBatch (optionally padded to exactly ``pad_to`` tokens)."""
    import torch

    ids: list[int] = []
    pos: list[int] = []
    tgt: list[int] = []
    mask: list[bool] = []
    doc_idx: list[int] = []
    group_of_doc: list[int] = []
    bounds = [0]
    token_keys = sorted({k for g in groups for s in g for k in s.token_fields})
    doc_keys = sorted({k for g in groups for s in g for k in s.doc_fields})
    tok_vals: dict[str, list[float]] = {k: [] for k in token_keys}
    doc_vals: dict[str, list[float]] = {k: [] for k in doc_keys}
    for gi, group in enumerate(groups):
        for sample in group:
            n = len(sample)
            d = len(group_of_doc)
            ids.extend(sample.input_ids)
            pos.extend(range(n))
            tgt.extend(sample.input_ids[1:] + [pad_id])
            mask.extend(list(sample.loss_mask[1:]) + [False])
            doc_idx.extend([d] * n)
            for k in token_keys:
                vals = sample.token_fields.get(k)
                tok_vals[k].extend((list(vals[1:]) + [0.0]) if vals is not None else [0.0] * n)
            for k in doc_keys:
                doc_vals[k].append(float(sample.doc_fields.get(k, 0.0)))
            group_of_doc.append(gi)
            bounds.append(bounds[-1] + n)
    real = len(ids)
    num_docs = len(group_of_doc)
    longest = max((b - a for a, b in zip(bounds, bounds[1:])), default=0)
    if pad_to is not None:
        if real > pad_to:
            raise ValueError(f"packed {real} tokens into a row of {pad_to}")
        extra = pad_to - real
        if extra:
            ids.extend([pad_id] * extra)
            pos.extend(range(extra))
            tgt.extend([pad_id] * extra)
            mask.extend([False] * extra)
            doc_idx.extend([num_docs] * extra)
            for k in token_keys:
                tok_vals[k].extend([0.0] * extra)
            bounds.append(bounds[-1] + extra)
            longest = max(longest, extra)
        longest = 1 << max(6, (longest - 1).bit_length())  # few distinct values keep compiled graphs stable
    while (len(bounds) - 1) % CU_SEQLENS_MULTIPLE:
        bounds.append(bounds[-1])  # zero-length documents: harmless to varlen kernels, fixed shape for compile
    long = torch.long
    return PackedBatch(
        input_ids=torch.tensor(ids, dtype=long),
        position_ids=torch.tensor(pos, dtype=long),
        targets=torch.tensor(tgt, dtype=long),
        loss_mask=torch.tensor(mask, dtype=torch.bool),
        doc_index=torch.tensor(doc_idx, dtype=long),
        group_index=torch.tensor(group_of_doc, dtype=long),
        cu_seqlens=torch.tensor(bounds, dtype=torch.int32),
        max_seqlen=int(longest),
        num_docs=num_docs,
        num_groups=len(groups),
        num_real_tokens=real,
        token_fields={k: torch.tensor(v, dtype=torch.float32) for k, v in tok_vals.items()},
        doc_fields={k: torch.tensor(v, dtype=torch.float32) for k, v in doc_vals.items()},
    )
