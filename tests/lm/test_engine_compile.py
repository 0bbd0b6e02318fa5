"""The compiled engine compiles each decoder layer once per row length, whatever the document count.

Why: micro-batches of the same padded length carry different numbers of documents, so ``cu_seqlens`` changes
length from one micro-batch to the next. Compiled with static shapes, each new length used to trigger a
recompilation in the middle of training (on an H100 that cost 40.5% vs 47.6% MFU over a dozen steps, see
``bench/results/native_engine.notes.md``). The engine marks that one dimension dynamic; this checks on the CPU that
a second and third document count reuse the first graph, and that the compiled step computes what eager does.
"""

from __future__ import annotations

import pytest
import torch

from stages.lm.engine import Sample, TrainConfig, Trainer
from stages.lm.engine.packing import CU_SEQLENS_MULTIPLE
from stages.lm.losses.nll import NLLLoss

CONFIG = {"lr": 1e-3, "micro_batch_tokens": 256, "max_length": 64, "warmup_ratio": 0.0, "seed": 0,
          "static_shapes": True}


def rows(n_docs: int, length: int, seed: int) -> list[list[Sample]]:
    g = torch.Generator().manual_seed(seed)
    return [[Sample(torch.randint(10, 1000, (length,), generator=g).tolist(), [False] + [True] * (length - 1))]
            for _ in range(n_docs)]


def test_new_document_counts_do_not_recompile(tmp_path, tiny_model_dir):
    from torch._dynamo.utils import counters

    # 256-token rows holding 8, 40 and 64 documents: cu_seqlens of 33, 65 and 97 entries
    batches = [rows(8, 32, 0), rows(40, 6, 1), rows(64, 4, 2)]
    assert CU_SEQLENS_MULTIPLE == 32
    torch._dynamo.reset()
    counters.clear()
    compiled = Trainer(TrainConfig(**CONFIG, compile=True), tiny_model_dir, tmp_path / "compiled", total_steps=3)
    eager = Trainer(TrainConfig(**CONFIG, compile=False), tiny_model_dir, tmp_path / "eager", total_steps=3)
    loss = NLLLoss()
    first = compiled.train_step(batches[0], loss)
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 1, "the decoder layers should have been compiled"
    later = [compiled.train_step(b, loss) for b in batches[1:]]
    assert counters["stats"]["unique_graphs"] == graphs, "a new document count recompiled the layers"
    reference = [eager.train_step(b, loss) for b in batches]
    for got, want in zip([first, *later], reference):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-4)
    compiled.close()
    eager.close()
