"""Runs one π-Distill update step on both engines from the same rollouts and writes every term to a JSON file.

``python -m tests.pi_distill.verl_parity_probe OUT.json`` (a process of its own: it installs verl's CPU platform
and a one-rank gloo group, which must not leak into the test process). ``test_verl_parity.py`` reads the file.

What runs, on the tiny Qwen3 fixture (fp32, CPU), for each configuration (variant, alpha, beta, dropping):

- rollouts: sampled once per sampling view by the native engine from real GSM8K prompts (fixture), with given
  rewards (the tiny random model never answers right; a group of equal rewards exercises the dropping);
- native: the stage's own functions (``rollout.score_views``/``shape``/``training_groups``, the objectives) and, for
  the ``UPDATED`` configurations, one ``Trainer.train_step`` (learning rate 1e-12: the weights stay put throughout);
- verl: verl's real actor worker (``ActorRolloutRefWorker``, role actor, FSDP2 on the CPU platform) driven by the
  stage's real ``PiDistillTrainer`` methods, with verl's ``RayPPOTrainer._compute_old_log_prob`` (old-log-prob pass),
  verl's ``compute_advantage`` (GRPO), and ``PiDistillTrainer._update_actor`` (other-view rows, shaping, duplicated
  rows, verl's stock ``update_actor``; for the ``UPDATED`` configurations); per-token terms with
  ``core_algos.compute_policy_loss_vanilla``.

Only Ray's process boundary and the vLLM rollout are not exercised: the worker is called in this process, and the
responses come from the native engine's sampler (verl 0.9.1 generates only through vLLM/SGLang/TRT-LLM servers).
"""

from __future__ import annotations

import copy
import json
import os
import socket
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
G = 2
PROMPTS = 2
REWARDS = {"teacher": [1.0, 0.0, 0.0, 0.0], "student": [1.0, 1.0, 0.0, 1.0]}
CONFIGS = [("pi-distill", a, b, b > 0) for a in (0.0, 0.5, 1.0) for b in (0.0, 0.5)] + [("opsd", 0.5, 0.5, True)]
UPDATED = {("pi-distill", 0.5, 0.5), ("opsd", 0.5, 0.5)}  # the whole update step too
MAX_NEW = 10
LR = 1e-12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup_process() -> None:
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(_free_port()), TOKENIZERS_PARALLELISM="false")
    from stages.lm.verl.cpu_platform import install

    install()
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _native_trainer(model: Path, work: Path):
    from stages.lm.engine.config import TrainConfig
    from stages.lm.engine.trainer import Trainer

    config = TrainConfig(lr=LR, schedule="constant", warmup_ratio=0.0, micro_batch_tokens=4096, max_length=1024,
                         precision="fp32", fsdp="off", grad_clip=None, weight_decay=0.0)
    return Trainer(config, model, work, total_steps=100, checkpoint_root=work / "ck")


def _params(variant: str, alpha: float, beta: float, drop: bool):
    from stages.pi_distill.params import PiDistillParams

    cpu = ["actor_rollout_ref.actor.strategy=fsdp2", "actor_rollout_ref.actor.use_torch_compile=false",
           "+actor_rollout_ref.actor.fsdp_config.mixed_precision="
           "{param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}",
           "actor_rollout_ref.actor.optim.lr_warmup_steps_ratio=0.0", "trainer.device=cpu"]
    return PiDistillParams(
        variant=variant, alpha=alpha, beta=beta, drop_zero_variance_groups=drop, group_size=G, prompts_per_step=PROMPTS,
        ppo_epochs=1, max_prompt_length=512, sampling={"temperature": 1.0, "max_new_tokens": MAX_NEW},
        optim={"lr": LR, "schedule": "constant", "warmup_ratio": 0.0, "weight_decay": 0.0, "grad_clip": 100.0},
        precision={"bf16": False, "activation_checkpointing": False},
        verl={"micro_batch_size_per_gpu": 2, "log_prob_micro_batch_size_per_gpu": 2, "extra_overrides": cpu})


def _verl_config(params, model: Path):
    from omegaconf import OmegaConf

    from stages.lm.verl.config import compose_ppo
    from stages.lm.verl.ppo_overrides import VerlJob
    from stages.pi_distill.verl_overrides import build_overrides

    job = VerlJob(model_path=str(model), train_files="/unused/train.parquet", val_files="/unused/val.parquet",
                  output_dir="/unused", reward_path=str(REPO / "stages" / "envs" / "verl_reward.py"), cpus=1,
                  attn_implementation="sdpa", total_steps=100, total_epochs=1)
    cfg = compose_ppo(build_overrides(params, job))
    OmegaConf.resolve(cfg)
    return cfg


def _rollout_batch(encoded, rollouts, sampler: str, tokenizer, cfg):
    """The rollout batch as verl's agent loop hands it to the trainer (left-padded prompts tokenized by verl's
    Continuous Token builder, right-padded responses, rewards on the last response token)."""
    import numpy as np
    from verl import DataProto
    from verl.utils.model import compute_position_id_with_mask
    from verl.utils.tokenizer.continuous_token import ContinuousTokenBuilder

    from stages.pi_distill.verl_data import verl_row

    builder = ContinuousTokenBuilder(tokenizer, chat_template_kwargs=dict(cfg.data.apply_chat_template_kwargs))
    rows = [verl_row(encoded[r.prompt].row, sampler, "train") for r in rollouts]
    prompts = [builder.build_initial_tokens(row["prompt"]) for row in rows]
    native = [encoded[r.prompt].teacher if sampler == "teacher" else encoded[r.prompt].student for r in rollouts]
    pad = tokenizer.pad_token_id
    width, n = max(map(len, prompts)) + 3, len(rollouts)
    ids, pmask = torch.full((n, width), pad), torch.zeros((n, width), dtype=torch.long)
    resp, rmask = torch.full((n, MAX_NEW), pad), torch.zeros((n, MAX_NEW), dtype=torch.long)
    scores = torch.zeros((n, MAX_NEW))
    for i, (p, r) in enumerate(zip(prompts, rollouts)):
        ids[i, width - len(p):], pmask[i, width - len(p):] = torch.tensor(p), 1
        resp[i, :len(r.token_ids)], rmask[i, :len(r.token_ids)] = torch.tensor(r.token_ids), 1
        scores[i, len(r.token_ids) - 1] = r.reward
    attention = torch.cat([pmask, rmask], dim=1)
    batch = DataProto.from_dict(
        tensors={"prompts": ids, "responses": resp, "input_ids": torch.cat([ids, resp], 1), "attention_mask": attention,
                 "position_ids": compute_position_id_with_mask(attention), "response_mask": rmask,
                 "token_level_scores": scores, "token_level_rewards": scores},
        non_tensors={"uid": np.array([f"g{r.prompt}" for r in rollouts], dtype=object),
                     "extra_info": np.array([row["extra_info"] for row in rows], dtype=object)},
        meta_info={"temperature": 1.0, "global_token_num": attention.sum(-1).tolist()})
    return batch, prompts == native


def _per_token(old, current, adv, mask, actor_config) -> list[float]:
    """verl's clipped loss of every masked token on its own (``compute_policy_loss_vanilla``, token-sum of one)."""
    from verl.trainer.ppo.core_algos import compute_policy_loss_vanilla

    out = []
    for i, j in mask.nonzero().tolist():
        one = (slice(i, i + 1), slice(j, j + 1))
        loss, _ = compute_policy_loss_vanilla(old[one], current[one], adv[one], mask[one].bool(), "token-sum",
                                              actor_config)
        out.append(float(loss))
    return out


def _native_terms(variant, alpha, beta, drop, rollouts, pairs, trainer):
    from stages.lm.losses.grpo import clipped_surrogate
    from stages.pi_distill import rollout as R
    from stages.pi_distill.objective import make_objective

    sampler = "teacher" if variant == "pi-distill" else "student"
    R.shape(rollouts, G, beta, sampler, drop)
    groups = R.training_groups(variant, rollouts, pairs)
    teacher, student, kl = [], [], []
    for r in rollouts:
        lp_t, lp_s = torch.tensor(r.lp_teacher, dtype=torch.float64), torch.tensor(r.lp_student, dtype=torch.float64)
        kl += (lp_t - lp_s if sampler == "teacher" else lp_s - lp_t).tolist()
        if r.keep:
            adv = torch.full_like(lp_t, r.shaped)
            own = lp_t if sampler == "teacher" else lp_s
            teacher += clipped_surrogate(torch.exp(own - own), adv, 0.2, 0.2).tolist()
            student += clipped_surrogate(torch.exp(lp_s - lp_t), adv, 0.2, 0.2).tolist()
    record = trainer.train_step([g for _, g in groups], make_objective(_params(variant, alpha, beta, drop))) \
        if (variant, alpha, beta) in UPDATED else {}
    return {"advantage": [r.advantage for r in rollouts], "shaped": [r.shaped for r in rollouts],
            "keep": [r.keep for r in rollouts], "kl": kl, "sampler_term": teacher, "student_term": student,
            "lp_teacher": [x for r in rollouts for x in r.lp_teacher],
            "lp_student": [x for r in rollouts for x in r.lp_student],
            "record": {k: float(v) for k, v in record.items() if isinstance(v, (int, float))}}


def _verl_view(sampler, encoded, rollouts, t, tokenizer, cfg):
    """What verl's trainer holds when ``_update_actor`` is called: the rollout batch with the sampler's old
    log-probs (verl's old-log-prob pass) and GRPO advantages (verl's ``compute_advantage``); and the other view's
    rows and log-probs, as the override builds them (computed here once per view for the per-token terms)."""
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer, compute_advantage

    from stages.pi_distill import verl_rows as V

    batch, same_ids = _rollout_batch(encoded, rollouts, sampler, tokenizer, cfg)
    old, _ = RayPPOTrainer._compute_old_log_prob(t, batch)
    batch.batch["old_log_probs"] = old.batch["old_log_probs"]
    batch = compute_advantage(batch, adv_estimator="grpo", num_repeat=G, norm_adv_by_std_in_grpo=True,
                              config=cfg.algorithm)
    other = V.view_rows(batch, t.other_prompt_ids(batch), tokenizer.pad_token_id)
    other_lp = RayPPOTrainer._compute_old_log_prob(t, other)[0].batch["old_log_probs"]
    return batch, other, other_lp, same_ids


def _verl_terms(variant, alpha, beta, drop, view, t, tokenizer):
    from verl.utils.config import omega_conf_to_dataclass

    from stages.pi_distill import verl_rows as V
    from stages.pi_distill.verl_trainer import PiSettings

    batch, other, other_lp, same_ids = view
    t.config.pi_distill.update(variant=variant, alpha=alpha, beta=beta, drop_zero_variance_groups=drop)
    t.pi = PiSettings.from_config(t.config)
    shaped = V.shape(batch, other_lp, beta, drop)
    rows, k = V.update_rows(batch, other, batch.batch["old_log_probs"], shaped, tokenizer.pad_token_id,
                            *t.pi.weights)
    is_other = torch.zeros(len(rows), dtype=torch.bool)
    if k == 2:
        is_other[1::2] = True
    elif t.pi.weights[0] == 0:
        is_other[:] = True
    sampler_lp = batch.batch["old_log_probs"]
    twin_lp = other_lp.repeat_interleave(k, dim=0) if k == 2 else other_lp
    own_lp = sampler_lp.repeat_interleave(k, dim=0) if k == 2 else sampler_lp
    current = torch.where(is_other[:, None], twin_lp, own_lp)  # the update's first forward, before any step
    actor = omega_conf_to_dataclass(t.config.actor_rollout_ref.actor)
    mask = rows.batch["response_mask"]
    contributions = [x / k for x in _per_token(rows.batch["old_log_probs"], current, rows.batch["advantages"],
                                                   mask, actor)]
    kind = [bool(is_other[i]) for i, _ in mask.nonzero().tolist()]
    keep = shaped.keep[:, None] & batch.batch["response_mask"].bool()
    raw_sampler = _per_token(sampler_lp, sampler_lp, shaped.advantages, keep, actor)
    raw_student = _per_token(sampler_lp, other_lp, shaped.advantages, keep, actor)
    rmask = batch.batch["response_mask"].bool()
    updated = (variant, alpha, beta) in UPDATED  # the stage's override, end to end, on verl's worker
    metrics = t._update_actor(copy.deepcopy(batch)).meta_info["metrics"] if updated else {}
    reduced = {key: float(torch.tensor(v, dtype=torch.float64).mean()) for key, v in metrics.items()
               if isinstance(v, (int, float, list)) and not isinstance(v, bool)}
    return {"same_prompt_ids": same_ids, "advantage": shaped.outcome.tolist(),
            "shaped": (shaped.outcome - beta * shaped.gap).tolist(), "keep": shaped.keep.tolist(),
            "kl": (sampler_lp - other_lp)[rmask].tolist(), "sampler_term": raw_sampler, "student_term": raw_student,
            "contribution": contributions, "contribution_is_other": kind, "k": k,
            "lp_sampler": sampler_lp[rmask].tolist(), "lp_other": other_lp[rmask].tolist(), "metrics": reduced}


def main(out: Path) -> None:
    _setup_process()
    import torch.distributed as dist
    from transformers import AutoTokenizer

    from stages.core.common_params import Sampling
    from stages.pi_distill import rollout as R
    from stages.pi_distill.prompts import read_prompts
    from tests.fixtures.build import fixtures_root

    fixtures = fixtures_root()
    model, prompts = fixtures / "tiny-qwen3", fixtures / "prompts" / "gsm8k.parquet"
    tokenizer = AutoTokenizer.from_pretrained(str(model), local_files_only=True)
    encoded, _ = R.encode(read_prompts(prompts, "answer", "v1"), tokenizer, False, 512)
    encoded = sorted(encoded, key=lambda e: len(e.teacher))[:PROMPTS]  # short sequences: a 152k-word head
    trainer = _native_trainer(model, out.parent / "native")
    native = {}
    for view, seed in (("teacher", 11), ("student", 12)):
        rollouts = R.sample(trainer, encoded, view, n=G, sampling=Sampling(temperature=1.0, max_new_tokens=MAX_NEW),
                            seed=seed, thinking=False, batch_size=8)
        assert all(r.token_ids for r in rollouts), "an empty response: change the seed"
        for r, reward in zip(rollouts, REWARDS[view]):
            r.reward = reward
        native[view] = (rollouts, R.score_views(trainer, encoded, rollouts))
    dist.init_process_group("gloo")
    from verl.workers.engine_workers import ActorRolloutRefWorker

    from stages.pi_distill.verl_trainer import PiDistillTrainer

    cfg = _verl_config(_params("pi-distill", 0.5, 0.0, False), model)
    worker = ActorRolloutRefWorker(config=cfg.actor_rollout_ref, role="actor")
    worker.init_model()
    t = PiDistillTrainer.__new__(PiDistillTrainer)  # the driver's state that _update_actor reads, without Ray
    t.config, t.tokenizer, t.actor_rollout_wg = cfg, tokenizer, worker
    verl = {view: _verl_view(view, encoded, native[view][0], t, tokenizer, cfg) for view in native}
    print(f"probe: set up in {time.process_time():.1f}s cpu", file=sys.stderr, flush=True)
    results = []
    for variant, alpha, beta, drop in CONFIGS:
        view = "teacher" if variant == "pi-distill" else "student"
        rollouts, pairs = copy.deepcopy(native[view])
        results.append({"variant": variant, "alpha": alpha, "beta": beta, "drop": drop,
                        "native": _native_terms(variant, alpha, beta, drop, rollouts, pairs, trainer),
                        "verl": _verl_terms(variant, alpha, beta, drop, verl[view], t, tokenizer)})
        print(f"probe: {variant} {alpha} {beta} done at {time.process_time():.1f}s cpu", file=sys.stderr, flush=True)
    trainer.close()
    out.write_text(json.dumps(results))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
