"""The native training engine: one optimizer step at a time, any loss, one process or many.

Why this shape (a torchtune-style recipe core): the four training stages (sft-trainer, grpo-trainer, spin,
pi-distill) own their data flow and their loss; the engine owns everything that must be identical between them:
loading, precision, packing, AdamW, schedule, clipping, sharding, checkpoints, export and metrics. A stage calls
``train_step(groups, loss)`` with the groups of one global batch (or ``fit`` for a fixed dataset), fills per-token
fields it needs with ``logprobs(...)`` (old policy, reference model), and checks ``should_stop`` between steps.

One global batch = one optimizer step. Each rank takes every world_size-th group, packs its groups into
micro-batches of at most ``micro_batch_tokens`` tokens, and accumulates gradients; losses are sums scaled by the
global unit count, so 1 process and N processes compute the same gradient for the same global batch.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stages.lm.engine import checkpoint as ckpt
from stages.lm.engine.batch import Sample, check_groups
from stages.lm.engine.config import TrainConfig
from stages.lm.engine.distributed import DistInfo, all_reduce, broadcast_object, init_distributed, shard_model
from stages.lm.engine.export import export_hf
from stages.lm.engine.metrics import MetricsLogger
from stages.lm.engine.model import PackedCausalLM
from stages.lm.engine.packing import PackedBatch, pack, plan_micro_batches
from stages.lm.engine.schedule import lr_at
from stages.lm.errors import LMInputError
from stages.lm.loading import load_model, load_tokenizer


@dataclass
class FitResult:
    status: str  # "completed" | "preempted"
    step: int
    checkpoint: Path | None


class Trainer:
    """Holds the model, optimizer and run folder of one training run.

    ``run_dir`` receives ``checkpoints/step-XXXXXXXX`` (or ``checkpoint_root`` does, where a stage keeps its
    checkpoints elsewhere) and ``metrics.jsonl``. ``reference=True`` also loads a frozen copy of the starting model
    (DPO/SPIN, KL terms); with LoRA the reference is the adapter-free base.
    """

    def __init__(self, config: TrainConfig, model_dir: str | Path | Any, run_dir: str | Path, *,
                 total_steps: int | None = None, device: str = "auto", reference: bool = False,
                 run_name: str | None = None, tokenizer: Any = None,
                 checkpoint_root: str | Path | None = None) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self._checkpoint_root = Path(checkpoint_root) if checkpoint_root is not None else self.run_dir / "checkpoints"
        probe = init_distributed(device)
        self.use_fsdp = config.use_fsdp(probe.device.type, probe.world_size)
        self.info: DistInfo = init_distributed(device, single_process_group=self.use_fsdp)
        self.precision = config.resolved_precision(self.info.device.type)
        self.total_steps = total_steps
        self.step = 0
        self._data: Any = None
        torch.manual_seed(config.seed)
        load_device = "cpu" if self.info.distributed else str(self.info.device)
        if isinstance(model_dir, (str, Path)):
            self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model_dir)
            model = load_model(model_dir, device=load_device, attn_implementation="sdpa", lora=config.lora,
                               dtype="bfloat16" if self.precision == "bf16" else "float32", trainable=True)
        else:  # an already built model (benchmarks, tests); it must be on the right device and dtype already
            if reference or config.lora is not None:
                raise LMInputError("reference models and LoRA need a model folder, not a model object")
            model, self.tokenizer = model_dir, tokenizer
            model.train()
        pad = self.tokenizer.pad_token_id if self.tokenizer is not None else model.config.pad_token_id
        self.pad_id = int(pad if pad is not None else 0)
        if config.activation_checkpointing:
            lm = model.get_base_model() if hasattr(model, "get_base_model") else model
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if config.lora is not None:
                model.enable_input_require_grads()
        on_gpu = self.info.device.type == "cuda"
        self.module = PackedCausalLM(model, logprob_chunk_tokens=config.logprob_chunk_tokens,
                                     compile_head=config.compile and on_gpu, keep_logits=on_gpu)
        if config.compile:
            import torch._dynamo.config as dynamo_config

            # one compiled graph serves all layers; allow a few more variants (eval vs train, doc-count buckets)
            dynamo_config.cache_size_limit = max(dynamo_config.cache_size_limit, 64)
            for layer in self.module.decoder_layers:
                layer.compile(dynamic=False)
        if self.use_fsdp:
            shard_model(self.module, self.info, self.precision)
        self.module.train()
        self.static_shapes = config.static_shapes if config.static_shapes is not None else config.compile
        self.optimizer = self._make_optimizer(on_gpu)
        self.reference = self._make_reference(model_dir, load_device) if reference else None
        self.metrics = MetricsLogger(self.run_dir / "metrics.jsonl", enabled=self.info.is_main,
                                     total_steps=total_steps, wandb_project=config.wandb_project,
                                     wandb_mode=config.wandb_mode, run_name=run_name, config=config.to_dict())

    # ----------------------------------------------------------------- setup
    def _make_optimizer(self, on_gpu: bool) -> torch.optim.Optimizer:
        decay, no_decay = [], []
        for name, param in self.module.named_parameters():
            if param.requires_grad:
                (decay if param.ndim >= 2 and "norm" not in name else no_decay).append(param)
        groups = [{"params": decay, "weight_decay": self.config.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW([g for g in groups if g["params"]], lr=self.config.lr, betas=self.config.betas,
                                 eps=self.config.eps, fused=on_gpu or None)

    def _make_reference(self, model_dir: str | Path, load_device: str) -> PackedCausalLM | None:
        if self.config.lora is not None:
            return None  # the adapter-disabled policy is the reference (see _reference_context)
        dtype = "bfloat16" if self.precision != "fp32" else "float32"
        ref = PackedCausalLM(load_model(model_dir, device=load_device, dtype=dtype, attn_implementation="sdpa"),
                             logprob_chunk_tokens=self.config.logprob_chunk_tokens)
        if self.use_fsdp:
            shard_model(ref, self.info, "fp32")
        ref.requires_grad_(False)
        return ref.eval()

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "bf16-mixed" and not self.use_fsdp and self.info.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -------------------------------------------------------------- batching
    def _local_groups(self, groups: Sequence[Sequence[Sample]], sharded: bool) -> list[list[Sample]]:
        # under torchrun a rank may get none (a global batch smaller than the world): it runs dummy micro-batches
        if groups or not self.info.distributed:
            check_groups(groups, self.config.max_length)
        local = list(groups) if sharded else list(groups[self.info.rank::self.info.world_size])
        return [list(g) for g in local]

    def _micro_batches(self, groups: list[list[Sample]]) -> list[PackedBatch]:
        budget = self.config.micro_batch_tokens
        return [self._pack([groups[i] for i in plan]) for plan in plan_micro_batches(groups, budget)]

    def _pack(self, groups: list[list[Sample]]) -> PackedBatch:
        if self.static_shapes:
            # rows are padded to a quarter-budget bucket: full rows share one compiled graph, and an under-filled
            # last micro-batch wastes at most a quarter row (at most four shapes ever)
            budget = self.config.micro_batch_tokens
            bucket = max(self.config.max_length, budget // 4)
            tokens = sum(len(s) for g in groups for s in g)
            pad_to = min(budget, -(-tokens // bucket) * bucket)
            return pack(groups, self.pad_id, pad_to, self.config.max_length)
        return pack(groups, self.pad_id)

    def _dummy_batch(self) -> PackedBatch:
        return self._pack([[Sample([self.pad_id, self.pad_id], [False, False])]])

    # ------------------------------------------------------------------ step
    def train_step(self, groups: Sequence[Sequence[Sample]], loss_fn: Any, *, sharded: bool = False) -> dict[str, float]:
        """One optimizer step over a global batch of groups; returns the logged metrics."""
        started = time.perf_counter()
        if self.total_steps is None:
            raise LMInputError("Trainer needs total_steps (for the schedule) before train_step; pass it or use fit")
        micro = self._micro_batches(self._local_groups(groups, sharded))
        n_micro = int(all_reduce(float(len(micro)), self.info, op="max"))
        total_units = all_reduce(sum(float(loss_fn.units(mb)) for mb in micro), self.info)
        micro = [mb.to(self.info.device) for mb in micro]  # all uploads queued before the first forward
        if total_units <= 0:
            raise LMInputError("this batch has nothing to train on (the loss counts 0 units: empty loss masks?)")
        scale = self.info.world_size / total_units
        sums: dict[str, torch.Tensor] = {}
        real_tokens = 0
        for i in range(n_micro):
            self._set_grad_sync(last=i == n_micro - 1)
            mb = micro[i] if i < len(micro) else self._dummy_batch().to(self.info.device)
            with self._autocast():
                logp = self.module(mb)
            if i >= len(micro):
                (logp.sum() * 0.0).backward()  # keeps FSDP collectives in step across ranks
                continue
            out = loss_fn(logp, mb)
            (out.loss * scale).backward()
            real_tokens += mb.num_real_tokens
            for k, v in {"loss": out.loss, **out.metrics}.items():  # stays on the device: no sync per micro-batch
                sums[k] = sums[k] + v.detach().float() if k in sums else v.detach().float()
        grad_norm = self._clip()  # a device tensor: read with the other metrics, one host sync per step
        names = sorted(sums)
        if self.info.distributed and all_reduce(0.0 if micro else 1.0, self.info, op="max") > 0:
            names = broadcast_object(names, self.info)  # a rank without groups logs zeros under rank 0's names
        lr = lr_at(self.step, base_lr=self.config.lr, total_steps=self.total_steps, warmup_ratio=self.config.warmup_ratio,
                   schedule=self.config.schedule, min_lr_ratio=self.config.min_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self._optimizer_state_to(self.info.device)
        self.optimizer.step()
        self._optimizer_state_to("cpu")
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        if self.info.device.type == "cuda":
            torch.cuda.synchronize(self.info.device)
        elapsed = time.perf_counter() - started
        tokens = all_reduce(float(real_tokens), self.info)
        zero = grad_norm.new_zeros(()).float()
        values = torch.stack([grad_norm.detach().float().reshape(()), *(sums.get(k, zero) for k in names)]).tolist()
        record = {k: all_reduce(v, self.info) / total_units for k, v in zip(names, values[1:])}
        record.update(lr=lr, grad_norm=values[0], tokens=tokens, units=total_units, micro_batches=n_micro,
                      step_time_s=elapsed, tokens_per_s=tokens / elapsed if elapsed > 0 else 0.0)
        if self.info.device.type == "cuda":  # the peak so far, as verl logs it (perf/max_memory_allocated_gb)
            record["max_memory_allocated_gb"] = torch.cuda.max_memory_allocated(self.info.device) / 2**30
        if self.step % self.config.log_every == 0 or self.step == self.total_steps:
            self.metrics.log(self.step, record)
        return record

    def _set_grad_sync(self, last: bool) -> None:
        """FSDP2 with ``grad_sync`` last_micro_batch (the one-process default): keep parameters gathered and
        gradients unreduced until the last micro-batch.

        Otherwise every micro-batch pays a full parameter gather and gradient reduction (a quarter of a step's
        time on one H100). Unreduced gradients accumulate in the reduce dtype (fp32). Under torchrun the default
        keeps the per-micro-batch reduction: accumulating unsharded gradients undoes the memory sharding.
        """
        if not self.use_fsdp or self.config.grad_sync == "every_micro_batch":
            return
        if self.config.grad_sync == "auto" and self.info.distributed:
            return
        self.module.set_requires_gradient_sync(last)
        self.module.set_reshard_after_backward(last)
        if self.info.distributed:
            self.module.set_reshard_after_forward(last)

    def _optimizer_state_to(self, device: torch.device | str) -> None:
        """``optimizer_offload`` on a GPU: AdamW's moments stay in CPU memory outside the optimizer step.

        They are a step's largest state (8 bytes per parameter, sharded), and forward and backward never read them,
        so moving them out frees that much GPU memory for activations; the price is one copy each way per step.
        """
        if not self.config.optimizer_offload or self.info.device.type != "cuda":
            return
        for state in self.optimizer.state.values():
            for key, value in state.items():
                if torch.is_tensor(value):
                    state[key] = value.to(device, non_blocking=True)

    def _clip(self) -> torch.Tensor:
        """Clip gradients to ``grad_clip`` (if set); the total norm, left on the device (no host sync)."""
        params = [p for p in self.module.parameters() if p.grad is not None]
        max_norm = self.config.grad_clip if self.config.grad_clip is not None else math.inf
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
        if hasattr(norm, "full_tensor"):
            norm = norm.full_tensor()
        return norm

    # -------------------------------------------------------------- log-probs
    @torch.no_grad()
    def logprobs(self, groups: Sequence[Sequence[Sample]], *, reference: bool = False,
                 sharded: bool = True) -> list[list[list[float]]]:
        """log p(token t | tokens < t) for every sample (index 0 gets 0.0), aligned with ``input_ids``.

        ``reference=True`` scores with the frozen reference model. By default each rank scores the groups it is
        given (``sharded=True``); every rank must call this the same number of times under FSDP.
        """
        local = self._local_groups(groups, sharded)
        model = self.module
        context: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if reference:
            if self.reference is not None:
                model = self.reference
            elif self.config.lora is not None:
                context = self.module.model.disable_adapter()
            else:
                raise LMInputError("reference log-probs need Trainer(..., reference=True)")
        results: list[list[list[float]]] = [[] for _ in local]
        plans = plan_micro_batches(local, self.config.micro_batch_tokens)
        n = int(all_reduce(float(len(plans)), self.info, op="max"))
        was_training = model.training
        model.eval()
        try:
            with context:
                for i in range(n):
                    if i >= len(plans):
                        with self._autocast():
                            model(self._dummy_batch().to(self.info.device))
                        continue
                    chosen = [local[g] for g in plans[i]]
                    mb = self._pack(chosen)
                    with self._autocast():
                        logp = model(mb.to(self.info.device)).float().cpu()
                    offset = 0
                    for gi, group in zip(plans[i], chosen):
                        for sample in group:
                            n_tok = len(sample)
                            results[gi].append([0.0] + logp[offset:offset + n_tok - 1].tolist())
                            offset += n_tok
        finally:
            model.train(was_training)
        return results

    # ------------------------------------------------------------ checkpoints
    @property
    def checkpoint_root(self) -> Path:
        return self._checkpoint_root

    def attach_state(self, state: Any) -> None:
        """Save ``state.state_dict()`` in every checkpoint and restore it on ``resume(state)`` (``fit`` attaches
        its data this way; a stage with its own loop attaches its own position, e.g. a rollout state)."""
        self._data = state

    def save_checkpoint(self) -> Path:
        state = {"data": self._data.state_dict() if self._data is not None else None,
                 "total_steps": self.total_steps, "config": self.config.to_dict()}
        self._optimizer_state_to(self.info.device)  # checkpoints hold the state where the optimizer keeps it
        try:
            return ckpt.save_checkpoint(self.checkpoint_root, self.step, self.module, self.optimizer, state,
                                        self.info, keep_last=self.config.keep_last)
        finally:
            self._optimizer_state_to("cpu")

    def load_checkpoint(self, path: str | Path, data: Any = None) -> dict[str, Any]:
        state = ckpt.load_checkpoint(path, self.module, self.optimizer, self.info)
        self._optimizer_state_to("cpu")
        self.step = int(state["step"])
        if state.get("total_steps") is not None:
            self.total_steps = int(state["total_steps"])
        if data is not None and state.get("data") is not None:
            data.load_state_dict(state["data"])
        return state

    def resume(self, data: Any = None) -> bool:
        """Load the latest checkpoint of this run, if any (and restore ``data``'s position)."""
        latest = broadcast_object(ckpt.latest_checkpoint(self.checkpoint_root), self.info)
        if latest is None:
            return False
        self.load_checkpoint(latest, data)
        return True

    @contextlib.contextmanager
    def generation_model(self) -> Iterator[Any]:
        """The policy being trained as an ordinary transformers model (standard attention), for on-policy
        ``generate`` with the very weights in training; training mode is restored afterwards."""
        try:
            with self.module.standard_attention() as model:
                yield model
        finally:
            self.module.train()

    def export_hf(self, dest: str | Path) -> Path:
        return export_hf(self.module, dest, self.info, tokenizer=self.tokenizer)

    # ------------------------------------------------------------------- fit
    def fit(self, data: Any, loss_fn: Any, *, should_stop: Callable[[], bool] | None = None,
            resume: bool = True) -> FitResult:
        """Train over ``data`` (an ``EpochBatches``) until done, or until ``should_stop()`` says so.

        On a stop request the trainer checkpoints and returns status ``preempted``; rerunning ``fit`` on the same
        ``run_dir`` resumes exactly where it stopped.
        """
        self.attach_state(data)
        if self.total_steps is None:
            steps = data.total_steps()
            self.total_steps = min(steps, self.config.max_steps) if self.config.max_steps else steps
        if resume:
            self.resume(data)
        last: Path | None = None
        every = self.config.checkpoint_every
        while self.step < self.total_steps:
            if self._stop_requested(should_stop):
                return FitResult("preempted", self.step, self.save_checkpoint())
            batch = data.next_batch()
            if batch is None:
                break
            self.train_step(batch, loss_fn)
            if every and self.step % every == 0:
                last = self.save_checkpoint()
        if every and (last is None or self.step % every):
            last = self.save_checkpoint()
        return FitResult("completed", self.step, last)

    def _stop_requested(self, should_stop: Callable[[], bool] | None) -> bool:
        local = 1.0 if should_stop is not None and should_stop() else 0.0
        return all_reduce(local, self.info, op="max") > 0

    def close(self) -> None:
        self.metrics.close()
