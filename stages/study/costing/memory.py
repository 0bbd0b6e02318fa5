"""Peak GPU memory of one trainer run per GPU: weights, gradients, AdamW state, activations, logits, rollouts.

Why a model and not a trial run: an out-of-memory error costs a queue wait and the first minutes of an allocation,
and 14B full fine-tuning cannot fit one 80 GB card whatever the batch. So ``study check`` adds up, per GPU and per
phase of a step (forward/backward, optimizer step, rollout), what each engine keeps, and refuses a run whose peak
exceeds the card, naming the smallest resources that fit.

What each engine keeps (bytes per parameter P, per GPU of N sharing the FSDP mesh):
- native engine (``stages.lm.engine``: FSDP2, bf16 compute over fp32 masters): fp32 masters 4P/N and AdamW's m
  and v 8P/N (in CPU memory outside the optimizer step with ``native.optimizer_offload``); fp32 gradients 4P/N,
  but 4P unsharded when gradients wait for the step's last micro-batch (``grad_sync`` last_micro_batch, the
  one-process default: FSDP2 accumulates them in the reduce dtype, fp32); the bf16 compute copy 2P stays gathered
  on one GPU (no reshard there) and with last_micro_batch, otherwise only the units in flight (two decoder layers
  and the root) are gathered. So one GPU holds 18 bytes per parameter.
- verl (FSDP, ``model_dtype`` fp32, bf16 compute): 4P/N parameters, 4P/N gradients, 8P/N AdamW state, the units in
  flight in bf16; ``param_offload`` moves parameters, gradients and the optimizer step to the CPU,
  ``optimizer_offload`` keeps AdamW's state on the CPU between steps (it comes back for the step itself).
- LoRA: only adapter parameters get masters, gradients and AdamW state; the frozen base stays fp32 (sharded).

Activations of one micro-batch of T tokens (bf16): without activation checkpointing every layer keeps the tensors
its backward needs (``_layer_bytes``); with it each layer keeps its input (2h bytes a token) and one layer is
recomputed at a time. The log-prob head (``stages.lm.engine.logprobs``) keeps the bf16 logits of the micro-batch
(2 x vocab bytes a token) and works on ``logprob_chunk_tokens`` rows at a time with two fp32 vocabulary-sized
tensors when compiled, three fp32 and one bf16 when eager (the stages run eager). verl's head is an estimate: bf16
logits, their fp32 log-softmax copy and the bf16 gradient, 8 x vocab bytes a token (``../shared/reference/scale.md``
§2.2: 0.6 MB a token in fp32 before the log-softmax copy).

Checked against the native engine's measured peaks at the 1.7B shape on an H100 (``bench/results/native_engine*``,
compiled, no checkpointing; 1 GPU at 8k and 16k-token micro-batches, 2 GPUs both ``grad_sync`` modes): the model
is 3-5% above each (``tests/study/test_memory.py`` reads the files). Eager layers, checkpointing and verl are not
measured here: ``bench/bench_memory.py`` measures the stages' own settings on the GPU machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from stages.study.costing.cards import Card
from stages.study.costing.shapes import ModelShape

GIB = 2 ** 30
VERL_HEAD_BYTES_PER_VOCAB = 8  # bf16 logits + fp32 log-softmax copy + bf16 gradient (estimate, scale.md §2.2)
VLLM_ACTIVATION_GIB = 2.0  # vLLM's profiling peak beside weights and KV cache (estimate)
VLLM_SHARE = "vLLM share of the card"
TIGHT = 0.85  # estimates above this share of the usable memory are within the model's 15% error: a warning


@dataclass(frozen=True)
class Generation:
    """Sampling during the run. ``inprocess``: transformers ``generate`` with the training weights, beside the
    resident training state (native GRPO, pi-distill); ``colocated``: verl's vLLM, which takes ``utilization`` of
    the card while the actor's state stays resident; ``separate``: a phase without the trainer (SPIN), by vLLM
    (``utilization``) or transformers (``batch`` sequences of ``seq_len`` tokens)."""

    kind: str  # inprocess | colocated | separate
    batch: int = 0  # sequences generated at once (KV cache)
    seq_len: int = 0  # prompt + new tokens
    utilization: float = 0.0  # vLLM's share of the card (0 = transformers)
    tensor_parallel: int = 1


@dataclass(frozen=True)
class TrainSetup:
    stage: str
    engine: str  # native | verl
    shape: ModelShape
    gpus_per_node: int
    nodes: int = 1
    micro_tokens: int = 8192  # tokens of one training forward pass per GPU
    activation_checkpointing: bool = True
    bf16: bool = True
    compiled: bool = False  # the native engine compiles its layers only when asked (the bench does; stages do not)
    lora_rank: int = 0
    lora_targets: str = "all-linear"
    grad_sync: str = "auto"  # native: auto | every_micro_batch | last_micro_batch
    param_offload: bool = False  # verl
    optimizer_offload: bool = False  # verl; the native engine's native.optimizer_offload
    reference: bool = False  # a frozen bf16 reference copy beside the policy (GRPO with a KL term)
    logprob_chunk: int = 4096  # native log-prob head rows per chunk (TrainConfig.logprob_chunk_tokens)
    generation: Generation | None = None
    min_micro_tokens: int = 0  # the stage's floor for micro_tokens (a sequence, a pair)
    micro_knob: str = "micro_batch_tokens"  # the param that sets micro_tokens (verl: sequences per GPU)
    offloads: tuple[str, ...] = ()  # offload switches the stage's params have (in the engine's block)

    @property
    def world(self) -> int:
        return max(1, self.gpus_per_node) * max(1, self.nodes)


@dataclass
class Estimate:
    """Bytes per GPU by phase and component; ``peak`` is the largest phase."""

    phases: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def peak_phase(self) -> str:
        return max(self.phases, key=lambda p: sum(self.phases[p].values()))

    @property
    def peak_gib(self) -> float:
        return sum(self.phases[self.peak_phase].values()) / GIB

    def breakdown(self, most: int = 5) -> str:
        """The largest components of the peak phase, in GiB."""
        parts = sorted(self.phases[self.peak_phase].items(), key=lambda kv: -kv[1])
        shown = ", ".join(f"{k} {v / GIB:.1f}" for k, v in parts[:most] if v >= 0.05 * GIB)
        rest = sum(v for _, v in parts[most:])
        return shown + (f", other {rest / GIB:.1f}" if rest >= 0.05 * GIB else "")


def _layer_bytes(s: ModelShape, compiled: bool, act: int) -> float:
    """Bytes a decoder layer keeps for its backward, per token: input and the two norm outputs and the residual
    (4h), q/k/v projections (q + 2kv), q and k after norm and rope (q + kv), the attention output (q), the MLP's
    gate, up, activation and product (4I), all in the compute dtype. Eager layers also keep each RMSNorm's fp32
    input (2h + q + kv, 4 bytes) and the K/V heads repeated to every query head for the packed attention (2q)."""
    h, q, kv, i = s.hidden, s.q_dim, s.kv_dim, s.intermediate
    base = act * (4 * h + 3 * q + 3 * kv + 4 * i)
    if compiled:
        return base
    return base + 4 * (2 * h + q + kv) + act * 2 * q


def _native_head(s: ModelShape, t: int, chunk: int, compiled: bool, act: int) -> dict[str, float]:
    rows = min(chunk, t)
    transient = (2 * 4 if compiled else 3 * 4 + act) * s.vocab * rows
    return {"logits kept": act * s.vocab * t, "log-prob head (chunk)": transient}


def _activations(x: TrainSetup) -> dict[str, float]:
    s, t = x.shape, x.micro_tokens
    act = 2 if x.bf16 else 4
    layer = _layer_bytes(s, x.compiled, act)
    if x.activation_checkpointing:
        out = {"checkpointed layer inputs": s.layers * s.hidden * act * t, "recomputed layer": layer * t}
    else:
        out = {"layer activations": s.layers * layer * t}
    if x.engine == "verl":
        out["logits"] = VERL_HEAD_BYTES_PER_VOCAB * s.vocab * t
    else:
        out.update(_native_head(s, t, x.logprob_chunk, x.compiled, act))
    return out


def _trainable(x: TrainSetup) -> tuple[int, int]:
    """(trainable, frozen) parameter counts."""
    p = x.shape.params
    if x.lora_rank > 0:
        t = x.shape.lora_params(x.lora_rank, x.lora_targets)
        return t, p
    return p, 0


def _in_flight(s: ModelShape, act: int) -> float:
    """FSDP units gathered at once when sharded: the root (embedding, head) and two decoder layers (prefetch)."""
    return act * (2 * s.layer_params + s.root_params)


def _native_states(x: TrainSetup) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """(forward/backward, optimizer step, resident while sampling) of the native engine; ``optimizer_offload``
    keeps AdamW's state in CPU memory except during the step."""
    n, s = x.world, x.shape
    pt, pf = _trainable(x)
    act = 2 if x.bf16 else 4
    sync = x.grad_sync if x.grad_sync != "auto" else ("last_micro_batch" if n == 1 else "every_micro_batch")
    keep = {"fp32 master weights": 4 * pt / n}
    if pf:
        keep["frozen base (fp32)"] = 4 * pf / n
    if x.bf16:
        gathered = n == 1 or sync == "last_micro_batch"
        keep["bf16 compute weights"] = 2 * s.params if gathered else _in_flight(s, act)
    if x.reference:
        keep["reference (bf16)"] = 2 * s.params / n if n > 1 else 2 * s.params
    adam = {"AdamW m, v": 8 * pt / n}
    resident = keep if x.optimizer_offload else {**keep, **adam}
    unsharded = n == 1 or sync == "last_micro_batch"
    grads = {"fp32 gradients": 4 * pt if unsharded else 4 * pt / n}
    return {**resident, **grads}, {**keep, **adam, "fp32 gradients": 4 * pt / n}, resident


def _verl_states(x: TrainSetup) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """(forward/backward, optimizer step, resident while vLLM samples) of verl's FSDP workers."""
    n, s = x.world, x.shape
    pt, pf = _trainable(x)
    act = 2 if x.bf16 else 4
    on_gpu = not x.param_offload
    params = {"fp32 weights": 4 * (pt + pf) / n} if on_gpu else {}
    grads = {"fp32 gradients": 4 * pt / n} if on_gpu else {}
    adam = {"AdamW m, v": 8 * pt / n} if on_gpu else {}
    ref = {"reference (bf16)": 2 * s.params / n} if x.reference and on_gpu else {}
    flight = {"gathered FSDP units (bf16)": _in_flight(s, act)}
    resident_adam = {} if x.optimizer_offload else adam
    train = {**params, **grads, **resident_adam, **ref, **flight}
    step = {**params, **grads, **adam, **ref}
    resident = {**params, **resident_adam, **ref}
    return train, step, resident


def _kv(g: Generation, s: ModelShape) -> float:
    return g.batch * g.seq_len * s.kv_bytes_per_token()


def estimate(x: TrainSetup, card: Card, total_gib: float | None = None) -> Estimate:
    """Per-GPU bytes of each phase of one training step of ``x`` on ``card``."""
    total = (total_gib or card.total_gib) * GIB
    acts = _activations(x)
    g = x.generation
    est = Estimate()
    if x.engine == "verl":
        train, step, resident = _verl_states(x)
        est.phases["forward/backward"] = {**train, **acts}
        if x.optimizer_offload and not x.param_offload:
            est.phases["optimizer step"] = step
        if g is not None and g.kind == "colocated":
            est.phases["rollout (vLLM colocated)"] = {**resident, VLLM_SHARE: g.utilization * total}
    else:
        train, step, keep = _native_states(x)
        est.phases["forward/backward"] = {**train, **acts}
        if x.optimizer_offload:
            est.phases["optimizer step"] = step
        if g is not None and g.kind == "inprocess":
            est.phases["sampling (in-process generate)"] = {**keep, "KV cache": _kv(g, x.shape),
                                                             "sampling logits (fp32)": 2 * 4 * g.batch * x.shape.vocab}
    if g is not None and g.kind == "separate":
        if g.utilization:
            est.phases["generation (vLLM)"] = {VLLM_SHARE: g.utilization * total}
        else:
            est.phases["generation (transformers)"] = {"bf16 weights": 2 * x.shape.params, "KV cache": _kv(g, x.shape)}
    return est


def vllm_problem(shape: ModelShape, utilization: float, tensor_parallel: int, card: Card, seq_len: int,
                 total_gib: float | None = None) -> str | None:
    """Why vLLM cannot hold this model in its share of the card (weights, one sequence's KV, its profiling
    activations), or None."""
    share = utilization * (total_gib or card.total_gib) * GIB
    need = (2 * shape.params + seq_len * shape.kv_bytes_per_token()) / tensor_parallel + VLLM_ACTIVATION_GIB * GIB
    if need <= share:
        return None
    return (f"vLLM needs {need / GIB:.1f} GiB per GPU for {shape.name} (bf16 weights over {tensor_parallel} "
            f"GPU(s), one {seq_len}-token sequence's KV cache, {VLLM_ACTIVATION_GIB:g} GiB of activations) but gets "
            f"{utilization:g} x {(total_gib or card.total_gib):.0f} GiB = {share / GIB:.1f} GiB")


@dataclass
class Verdict:
    estimate: Estimate
    usable_gib: float
    card: str

    @property
    def fits(self) -> bool:
        return self.estimate.peak_gib <= self.usable_gib

    @property
    def tight(self) -> bool:
        """Fits, but some phase's modelled part is within the model's error (15%) of what the card leaves it; the
        vLLM share is exact (vLLM takes that fraction of the card), not modelled."""
        if not self.fits:
            return False
        for parts in self.estimate.phases.values():
            exact = parts.get(VLLM_SHARE, 0.0) / GIB
            modelled = sum(parts.values()) / GIB - exact
            if modelled > TIGHT * (self.usable_gib - exact):
                return True
        return False

    def line(self) -> str:
        e = self.estimate
        others = ", ".join(f"{k} {sum(v.values()) / GIB:.1f}" for k, v in e.phases.items() if k != e.peak_phase)
        return f"{e.peak_gib:.1f} GiB/GPU at {e.peak_phase}: {e.breakdown()}" + (f" [{others}]" if others else "")


def verdict(x: TrainSetup, card: Card, total_gib: float | None = None) -> Verdict:
    return Verdict(estimate(x, card, total_gib), card.usable_gib(total_gib), card.name)


# (stage, engine) whose preflight refuses more than one GPU until a multi-GPU path exists for it.
SINGLE_GPU = {
    ("pi-distill", "native"): "the native pi-distill runs in one process (stages/pi_distill/preflight.py)",
}


def _layouts(world: int, per_node_max: int, max_nodes: int = 8) -> list[tuple[int, int]]:
    """(nodes, gpus_per_node) with more GPUs than ``world``, fewest GPUs first, one node before several."""
    out = []
    for gpn in (1, 2, 4, 8):
        if gpn > per_node_max:
            continue
        for nodes in range(1, max_nodes + 1):
            if nodes > 1 and gpn < per_node_max:
                continue  # a second node only once the first is full
            if nodes * gpn >= world:
                out.append((nodes, gpn))
    return sorted(set(out), key=lambda ng: (ng[0] * ng[1], ng[0]))


def _fits(x: TrainSetup, card: Card, total_gib: float | None = None) -> float | None:
    v = verdict(x, card, total_gib)
    return v.estimate.peak_gib if v.fits else None


def _smaller_batches(x: TrainSetup, card: Card, total_gib: float | None) -> list[str]:
    """The largest micro-batch (then generation batch) under the current one that fits, if any."""
    out = []
    seq = x.min_micro_tokens if x.micro_knob == "micro_batch_size_per_gpu" else 1
    micro = x.micro_tokens // 2
    while micro >= max(x.min_micro_tokens, 256):
        got = _fits(replace(x, micro_tokens=micro), card, total_gib)
        if got is not None:
            out.append(f"{x.micro_knob}: {micro // max(1, seq)} ({got:.1f} GiB/GPU)")
            break
        micro //= 2
    g = x.generation
    batch = g.batch // 2 if g is not None and g.kind == "inprocess" else 0
    while batch >= 1:
        got = _fits(replace(x, generation=replace(g, batch=batch)), card, total_gib)
        if got is not None:
            out.append(f"generation_batch_size: {batch} ({got:.1f} GiB/GPU)")
            break
        batch //= 2
    return out


def smallest_fits(x: TrainSetup, card: Card, per_node_max: int = 4, total_gib: float | None = None,
                  bigger: dict[str, list[str]] | None = None) -> list[str]:
    """What would fit, each the cheapest of its kind: more GPUs or nodes on this card, the engine's offload, a
    smaller micro-batch or generation batch, a bigger card (``bigger``: card name -> cluster profiles with it)."""
    out: list[str] = []
    single = SINGLE_GPU.get((x.stage, x.engine))
    layouts = [] if single else _layouts(x.world + 1, per_node_max)
    for nodes, gpn in layouts:
        got = _fits(replace(x, nodes=nodes, gpus_per_node=gpn), card, total_gib)
        if got is not None:
            out.append(f"nodes: {nodes}, gpus_per_node: {gpn} ({got:.1f} GiB/GPU)")
            break
    if single:
        out.append(f"(not more GPUs: {single})")
    offloads = [{k: True for k in x.offloads[:i + 1]} for i in range(len(x.offloads))]
    block = "verl" if x.engine == "verl" else "native"
    for flags in offloads if not x.param_offload else []:
        for nodes, gpn in [(x.nodes, x.gpus_per_node)] + layouts:
            got = _fits(replace(x, nodes=nodes, gpus_per_node=gpn, **flags), card, total_gib)
            if got is not None:
                keys = " + ".join(f"{block}.{k}: true" for k in flags)
                out.append(f"{keys} on nodes: {nodes}, gpus_per_node: {gpn} ({got:.1f} GiB/GPU; slower steps)")
                break
        else:
            continue
        break
    out += _smaller_batches(x, card, total_gib)
    from stages.study.costing.cards import CARDS

    for other in sorted(CARDS.values(), key=lambda c: c.total_gib):
        if other.total_gib <= (total_gib or card.total_gib):
            continue
        got = _fits(x, other)
        if got is not None:
            where = ", ".join((bigger or {}).get(other.name, [])) or "no profile here has it"
            out.append(f"the same resources on {other.name} cards ({got:.1f} GiB/GPU; clusters: {where})")
            break
    return out
