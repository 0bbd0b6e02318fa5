"""The native engine on the tiny model: SFT learns, metrics are written, export loads back, losses plug in."""

from __future__ import annotations

import json

import pytest
import torch

from stages.lm.engine import EpochBatches, Sample, TrainConfig, TrainConfigError, Trainer, read_metrics
from stages.lm.engine.schedule import lr_at
from stages.lm.errors import LMInputError
from stages.lm.losses.dpo import DPOLoss
from stages.lm.losses.grpo import GRPOLoss
from stages.lm.losses.nll import NLLLoss
from stages.lm.losses.pi_distill import PiDistillLoss
from tests.lm.helpers import fixture_groups


def test_sft_loss_falls(reference_run):
    records = read_metrics(reference_run.run_dir / "metrics.jsonl")
    assert reference_run.status == "completed" and reference_run.step == 12 == len(records)
    losses = [r["loss"] for r in records]
    assert losses[-1] < losses[0] - 1.0, losses
    assert all(r["tokens"] > 0 and r["grad_norm"] > 0 and r["units"] > 0 for r in records)


def test_metrics_jsonl_follows_the_schedule_and_wandb_stays_offline(reference_run):
    run_dir = reference_run.run_dir
    records = read_metrics(run_dir / "metrics.jsonl")
    expected = [lr_at(i, base_lr=2e-3, total_steps=12, warmup_ratio=0.1, schedule="cosine") for i in range(12)]
    assert [r["lr"] for r in records] == pytest.approx(expected)
    assert expected[0] == pytest.approx(2e-3 / 2) and expected[-1] < 1e-4
    assert list((run_dir / "wandb").glob("offline-run-*")), "wandb should have written an offline run"


def test_export_loads_with_transformers_and_generates(reference_run, tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from stages.lm.generation import SamplingParams, make_backend

    export = reference_run.export
    config = json.loads((export / "config.json").read_text())
    assert config["model_type"] == "qwen3" and config.get("_attn_implementation") in (None, "sdpa")
    model = AutoModelForCausalLM.from_pretrained(export, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(export, local_files_only=True)
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
    changed = any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), original.state_dict().values()))
    assert changed, "training should have changed the exported weights"
    backend = make_backend("hf", model=export, tokenizer=tokenizer)
    out = backend.generate([[{"role": "user", "content": "What is 4 plus 9?"}]], SamplingParams(max_tokens=8, temperature=0))
    assert len(out[0].completions) == 1 and out[0].completions[0].token_ids


def test_config_rejects_bad_values():
    with pytest.raises(TrainConfigError, match="lr must be > 0"):
        TrainConfig(lr=0)
    with pytest.raises(TrainConfigError, match="micro_batch_tokens"):
        TrainConfig(micro_batch_tokens=100, max_length=200)
    with pytest.raises(TrainConfigError, match="unknown key"):
        TrainConfig.from_dict({"lr": 1e-5, "learning_rate": 1e-5})
    assert isinstance(TrainConfigError("x"), ValueError)
    assert TrainConfig.from_dict(TrainConfig(lora={"r": 4, "alpha": 8}).to_dict()).lora.r == 4


def test_schedules():
    kw = {"base_lr": 1.0, "total_steps": 10, "warmup_ratio": 0.2}
    assert [lr_at(i, schedule="constant", **kw) for i in (0, 1, 5)] == [0.5, 1.0, 1.0]
    assert lr_at(2, schedule="cosine", **kw) == pytest.approx(1.0) and lr_at(10, schedule="cosine", **kw) == pytest.approx(0.0)
    assert lr_at(6, schedule="linear", **kw) == pytest.approx(0.5)
    assert lr_at(10, schedule="linear", min_lr_ratio=0.1, **kw) == pytest.approx(0.1)


def test_epoch_batches_are_deterministic_and_resumable():
    groups = [[Sample([1] * (5 + i), [False] * (5 + i))] for i in range(10)]
    a = EpochBatches(groups, epochs=2, seed=3, batch_groups=4)
    first = [a.next_batch() for _ in range(3)]
    state = a.state_dict()
    rest = [a.next_batch() for _ in range(3)]
    b = EpochBatches(groups, epochs=2, seed=3, batch_groups=4)
    b.load_state_dict(state)
    assert [b.next_batch() for _ in range(3)] == rest and a.next_batch() is None
    assert a.total_steps() == 6 and [len(x) for x in first] == [4, 4, 2]
    by_tokens = EpochBatches(groups, seed=0, batch_tokens=20)
    sizes = [sum(len(g[0]) for g in batch) for batch in iter(by_tokens.next_batch, None)]
    assert all(s <= 20 for s in sizes) and sum(sizes) == sum(5 + i for i in range(10))
    with pytest.raises(LMInputError, match="same data"):
        EpochBatches(groups[:5], seed=3).load_state_dict(state)


def flat(nested: list) -> list[float]:
    return [x for group in nested for sample in group for x in sample]


def test_dpo_grpo_and_pi_distill_steps_run_on_the_engine(tiny_model_dir, tmp_path):
    trainer = Trainer(TrainConfig(lr=1e-3, micro_batch_tokens=128, max_length=128, warmup_ratio=0.0), tiny_model_dir,
                      tmp_path, total_steps=4, reference=True)
    g = torch.Generator().manual_seed(0)

    def seq(prompt_len: int, response: list[int]) -> tuple[list[int], list[bool]]:
        return torch.randint(0, 3000, (prompt_len,), generator=g).tolist() + response, [False] * prompt_len + [True] * len(response)

    # DPO: reference log-probs from the frozen copy equal the policy's before any step
    pairs = []
    for _ in range(2):
        ids_c, m_c = seq(5, [11, 12, 13])
        ids_r, m_r = seq(5, [21, 22])
        pairs.append([Sample(ids_c, m_c, doc_fields={"chosen": 1.0}), Sample(ids_r, m_r, doc_fields={"chosen": 0.0})])
    ref = trainer.logprobs(pairs, reference=True)
    pol = trainer.logprobs(pairs)
    assert flat(ref) == pytest.approx(flat(pol), abs=1e-5)
    for group, lps in zip(pairs, ref):
        for s, lp in zip(group, lps):
            s.token_fields["ref_logprobs"] = lp
    first = trainer.train_step(pairs, DPOLoss(beta=0.5))
    assert first["loss"] == pytest.approx(-torch.nn.functional.logsigmoid(torch.tensor(0.0)).item(), abs=1e-4)
    after = trainer.train_step(pairs, DPOLoss(beta=0.5))
    assert after["loss"] < first["loss"] and after["reward_accuracy"] == 1.0
    assert flat(trainer.logprobs(pairs, reference=True)) == pytest.approx(flat(ref), abs=1e-6)  # reference stays frozen

    # GRPO: old log-probs from the current policy make the first ratio exactly 1 (nothing clipped)
    rollouts = [[Sample(*seq(4, [31, 32, 33]))] for _ in range(4)]
    old = trainer.logprobs(rollouts)
    with pytest.raises(LMInputError, match="group 0 sample 0: token field 'advantages' has 1 values"):
        rollouts[0][0].token_fields["advantages"] = [1.0]
        trainer.train_step(rollouts, GRPOLoss())
    for (s,), (lp,), adv in zip(rollouts, old, [1.0, -1.0, 0.5, -0.5]):
        s.token_fields.update(old_logprobs=lp, advantages=[adv] * len(lp))
    rec = trainer.train_step(rollouts, GRPOLoss())
    assert rec["ratio"] == pytest.approx(1.0, abs=1e-5) and rec["clip_fraction"] == 0.0

    # pi-Distill: teacher view (with privileged info) and student view of the same response in one forward
    resp = [41, 42, 43]
    t_ids, t_mask = seq(8, resp)
    s_ids, s_mask = t_ids[:3] + t_ids[8:], t_mask[:3] + t_mask[8:]
    pair = [Sample(t_ids, t_mask, doc_fields={"teacher": 1.0}), Sample(s_ids, s_mask, doc_fields={"teacher": 0.0})]
    t_old = trainer.logprobs([pair])[0][0]
    pair[0].token_fields.update(old_logprobs=t_old, advantages=[0.7] * len(t_ids))
    pair[1].token_fields.update(old_logprobs=[0.0] * len(s_ids), advantages=[0.7] * len(s_ids))
    rec = trainer.train_step([pair], PiDistillLoss(alpha=0.5))
    assert rec["units"] == 3 and "kl_teacher_student" in rec
    trainer.close()


def test_lora_trains_adapters_only_and_exports_merged_weights(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    from stages.lm.loading import LoraSettings

    config = TrainConfig(lr=5e-3, micro_batch_tokens=128, max_length=128, lora=LoraSettings(r=4, alpha=8))
    trainer = Trainer(config, tiny_model_dir, tmp_path, total_steps=2)
    trainable = [n for n, p in trainer.module.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    groups = fixture_groups(trainer.tokenizer, 4)
    for _ in range(2):
        trainer.train_step(groups, NLLLoss())
    export = trainer.export_hf(tmp_path / "export")
    merged = AutoModelForCausalLM.from_pretrained(export, local_files_only=True)
    ids = torch.tensor([groups[0][0].input_ids])
    with torch.no_grad(), trainer.module.standard_attention() as model:
        expected = model(ids).logits
        got = merged(ids).logits
    assert torch.allclose(got, expected, atol=1e-4)
    assert not any("lora" in k for k in merged.state_dict())
    trainer.close()


def test_activation_checkpointing_gives_the_same_step(tiny_model_dir, tmp_path):
    records = []
    for checkpointing in (False, True):
        config = TrainConfig(lr=1e-3, micro_batch_tokens=128, max_length=128, activation_checkpointing=checkpointing)
        trainer = Trainer(config, tiny_model_dir, tmp_path / str(checkpointing), total_steps=2)
        groups = fixture_groups(trainer.tokenizer, 6)
        records.append([trainer.train_step(groups, NLLLoss()) for _ in range(2)])
        trainer.close()
    plain, checkpointed = records
    assert [r["loss"] for r in checkpointed] == pytest.approx([r["loss"] for r in plain], abs=1e-5)
    assert checkpointed[0]["grad_norm"] == pytest.approx(plain[0]["grad_norm"], rel=1e-4)
