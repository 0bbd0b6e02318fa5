"""How fast each engine turns GPU time into work: training tokens, generated tokens, prefill tokens.

Why rates from ``bench/results`` and not a guess per stage: the cost of a study is a few hundred runs of a few
engines, and the measured rates of those engines on the project's own GPU box are the best predictor there is.
Each constant names the file (or reference note) it comes from; ``tests/study/test_cost.py`` checks the measured
ones against those files, so a rerun bench that moves them fails until they are updated. What was not measured
(teacher sizes under tensor parallelism) is marked "estimate" and scaled from the nearest
measurement by the arithmetic written next to it.

Training: model FLOPs per token as the bench counts them, 6 N + 12 L a s (N parameters, L layers, a the attention
width, s the mean sequence length), at a model-FLOPs utilisation (MFU) of the card's dense bf16 peak; activation
checkpointing recomputes the forward, so the same hardware rate yields 6/8 of the useful FLOPs. Decoding (vLLM):
every step reads the weights once and each sequence's KV cache, so a step takes (weights + KV) / (bandwidth x
efficiency) and yields one token per sequence. Transformers ``generate`` is bound by per-step launch overhead
instead, measured per decode step at two batch sizes.
"""

from __future__ import annotations

from stages.study.costing.cards import Card
from stages.study.costing.shapes import ModelShape

# --- training ------------------------------------------------------------------------------------------------------
# bench/results/native_engine.json, results[0]: native engine, compiled, FSDP2 bf16/fp32 master, 8,192-token
# micro-batches, one H100: 44,391 real tokens/s = 47.6% MFU.
NATIVE_MFU_COMPILED = 0.476
# bench/results/native_engine.notes.md, run 1 "eager, same": the same engine without torch.compile: 21.5% MFU (the
# stages run eager; the figure predates FSDP on one GPU and the later packing fixes, so it is a lower bound).
NATIVE_MFU_EAGER = 0.215
# bench/results/native_engine_2gpu_every_side_by_side.json: two H100s, FSDP2 reducing every micro-batch: 31.6% MFU
# per GPU against 47.6% on one (same compiled engine): the share a GPU keeps when sharding, 0.66.
NATIVE_MULTI_GPU_SCALING = 0.316 / 0.476
# bench/results/verl_sft_gpu.json: verl's FSDP SFT beside the native engine on one H100, the same 32-row batch (5,636
# tokens) for both, checkpointing on: verl's steady step 1.448 s = 5.5% MFU (counted here as 6 N + 12 L a s, before
# the checkpointing factor), the native engine's 0.331 s (24%). The same card type ran verl's GRPO actor update at
# about the same rate (bench/results/pi_distill_verl.json, grpo_arm: 4.9 s for 64 sequences of a GSM8K prompt and
# about 250 generated tokens, some 4.7k tokens/s against SFT's 3.9k), so every verl update is costed at it.
# Measured with SDPA (no flash-attn on the GPU box; the images ship flash-attn 2.8.3), which verl's remove-padding
# and padded runs both reached: the attention kernel is not what costs the difference.
VERL_MFU = 0.055
CHECKPOINTING_FACTOR = 6 / 8  # a recomputed forward: 8 N FLOPs of work per token for 6 N counted

# --- decoding ------------------------------------------------------------------------------------------------------
# ../shared/reference/vllm-gpu.md: vLLM 0.26 on an H100, Qwen3-1.7B shape, batch 256: 36.5k output tokens/s = 41% of
# the decode roofline (weights + KV at 3.05 TB/s); batch 64: 43%. The cost model takes 41% at every size and
# tensor-parallel degree (estimate beyond 1.7B).
VLLM_DECODE_EFFICIENCY = 0.41
VLLM_MAX_BATCH = 256  # vLLM's default max_num_seqs: sequences decoded at once per replica
VLLM_STARTUP_S = 125.0  # vllm-gpu.md: LLM() start-up on a fresh machine (24 s with warm caches)
# Prefill (and log-likelihood scoring) is compute-bound: 2 N FLOPs per prompt token. Estimate: the native engine's
# compiled training MFU (the same matmuls without a backward).
PREFILL_MFU = NATIVE_MFU_COMPILED
# bench/results/hf_generate.json: transformers generate, Qwen3-1.7B shape (28 layers), one H100: 9.5 decode steps/s
# at batch 64 and 6.3 at batch 256. A step costs a + b x batch seconds (the two rows give a and b); the launch
# overhead grows with the layer count, so other shapes scale it by layers / 28.
HF_STEPS_PER_S = {64: 9.5, 256: 6.3}
HF_REFERENCE_LAYERS = 28

# --- start-up ------------------------------------------------------------------------------------------------------
TRAINER_STARTUP_S = 300.0  # estimate: model load, FSDP wrap, first compile / Ray and vLLM start for verl


def train_flops_per_token(s: ModelShape, mean_len: float) -> float:
    """The bench's MFU numerator per token: 6 N + 12 L a s."""
    return 6.0 * s.params + 12.0 * s.layers * s.q_dim * mean_len


def train_mfu(engine: str, world: int, compiled: bool = False, checkpointing: bool = True) -> float:
    """Useful MFU of one GPU of a training run (counted as 6 N per token)."""
    if engine == "verl":
        mfu = VERL_MFU
    else:
        mfu = NATIVE_MFU_COMPILED if compiled else NATIVE_MFU_EAGER
        if world > 1:
            mfu *= NATIVE_MULTI_GPU_SCALING
    return mfu * (CHECKPOINTING_FACTOR if checkpointing else 1.0)


def train_seconds(tokens: float, s: ModelShape, card: Card, world: int, engine: str, mean_len: float,
                  compiled: bool = False, checkpointing: bool = True) -> float:
    """Seconds to train on ``tokens`` (forward + backward) over ``world`` GPUs."""
    rate = train_mfu(engine, world, compiled, checkpointing) * card.bf16_tflops * 1e12 * world
    return tokens * train_flops_per_token(s, mean_len) / rate


def forward_seconds(tokens: float, s: ModelShape, card: Card, world: int) -> float:
    """Seconds of forward passes only (prefill, log-prob scoring, log-likelihood tasks)."""
    return tokens * 2.0 * s.params / (PREFILL_MFU * card.bf16_tflops * 1e12 * max(1, world))


def vllm_decode_seconds(sequences: float, prompt: float, new: float, s: ModelShape, card: Card, gpus: int,
                        tensor_parallel: int = 1) -> float:
    """Seconds for vLLM to generate ``new`` tokens for each of ``sequences`` (prompts of ``prompt`` tokens), with
    ``gpus / tensor_parallel`` replicas each decoding up to ``VLLM_MAX_BATCH`` sequences at once."""
    if sequences <= 0 or new <= 0:
        return 0.0
    tp = max(1, tensor_parallel)
    replicas = max(1, gpus // tp)
    batch = max(1.0, min(VLLM_MAX_BATCH, sequences / replicas))
    context = prompt + new / 2.0
    step_bytes = (2.0 * s.params + batch * context * s.kv_bytes_per_token()) / tp
    step_s = step_bytes / (card.hbm_tb_s * 1e12 * VLLM_DECODE_EFFICIENCY)
    steps = (sequences / replicas) / batch * new
    prefill = forward_seconds(sequences * prompt, s, card, gpus)
    return steps * step_s + prefill


def hf_decode_seconds(sequences: float, prompt: float, new: float, s: ModelShape, card: Card, batch: int) -> float:
    """Seconds for transformers ``generate`` on one GPU, ``batch`` sequences per call."""
    if sequences <= 0 or new <= 0:
        return 0.0
    (b1, r1), (b2, r2) = sorted(HF_STEPS_PER_S.items())
    slope = (1 / r2 - 1 / r1) / (b2 - b1)
    base = 1 / r1 - slope * b1
    b = max(1, min(batch, int(sequences)))
    overhead = (base + slope * b) * s.layers / HF_REFERENCE_LAYERS
    roofline = (2.0 * s.params + b * (prompt + new / 2) * s.kv_bytes_per_token()) / (card.hbm_tb_s * 1e12)
    calls = -(-sequences // b)
    return calls * new * max(overhead, roofline) + forward_seconds(sequences * prompt, s, card, 1)
