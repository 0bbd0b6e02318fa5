"""The GPU cards of the project's clusters: memory, dense bf16 throughput and memory bandwidth.

Why a table: the cluster profiles name their card (``gpu_card``) and may state its memory (``gpu_memory_gib``); the
memory model needs what a process can allocate on it, the cost model its bf16 FLOP/s (training, prefill) and its
bandwidth (decoding reads every weight and the KV cache once per token).

Sources: total memory as the driver reports it (H100 80GB HBM3 81,559 MiB; A100 81,920 / 40,960 MiB; H200
143,771 MiB); ``../shared/reference/infra.md`` §9 gives what a process sees on the project's GPU box: about 78 GiB
on the H100 and 139 GiB on the H200, i.e. the total less about 1.5 GiB of CUDA context (``CONTEXT_GIB``). bf16: the
nominal dense peak the bench and infra reference use for MFU (989 TFLOP/s for H100 and H200); A100 312 TFLOP/s
(NVIDIA's A100 datasheet). Bandwidth: 3.05 TB/s for the H100, the figure the vLLM measurement in
``../shared/reference/vllm-gpu.md`` takes as its decode roofline; H200 4.8, A100-80GB 2.04, A100-40GB 1.56 TB/s
(datasheets).
"""

from __future__ import annotations

from dataclasses import dataclass

CONTEXT_GIB = 1.5  # CUDA context, cuBLAS/NCCL workspaces: the H100's 79.6 GiB total vs 78 GiB usable (infra.md §9)
# Share of the rest lost to the caching allocator's fragmentation (reserved but not allocatable). Estimate: the
# bench's largest peak, 70.9 GiB allocated (bench/results/native_engine.json, 16,384-token micro-batches), ran on
# the H100, whose limit with this margin is 74.2 GiB.
FRAGMENTATION = 0.05


@dataclass(frozen=True)
class Card:
    name: str
    total_gib: float
    bf16_tflops: float
    hbm_tb_s: float

    def usable_gib(self, total_gib: float | None = None) -> float:
        """What the memory model may plan for on one card: total less context, less the fragmentation margin."""
        return ((total_gib or self.total_gib) - CONTEXT_GIB) * (1.0 - FRAGMENTATION)


CARDS: dict[str, Card] = {
    c.name: c
    for c in (
        Card("H100-80GB", 79.6, 989.0, 3.05),
        Card("H200-141GB", 140.4, 989.0, 4.8),
        Card("A100-80GB", 80.0, 312.0, 2.04),
        Card("A100-40GB", 40.0, 312.0, 1.56),
    )
}
DEFAULT_CARD = "H100-80GB"  # the project's GPU box, where every bench result was measured


def card(name: str | None) -> Card:
    """A card of the table by name (``None``: the default card); unknown names list the known ones."""
    key = name or DEFAULT_CARD
    if key not in CARDS:
        raise KeyError(f"unknown GPU card {key!r}; known cards: {', '.join(CARDS)}")
    return CARDS[key]
