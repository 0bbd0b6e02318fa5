"""A fixture task on which GRPO can raise the reward of the tiny random Qwen3 within a few dozen CPU steps.

The task: ten small arithmetic questions whose answer is always 2 (``1+1=?``, ``4/2=?``, ...), answered as
``\\boxed{2}`` and graded by the project's real math grader (``math:GSM8K``). A random-init model never writes
``\\boxed{}``, so it first gets a short SFT warm-up through ``stages.lm``'s own trainer on the *format* only:
every warm-up answer is a boxed digit 0-3 drawn at random, so the warmed-up model answers in the right form but
right only by chance (about 1 in 4: most groups of 8 then hold both rewards, so GRPO has signal from the first
step). That the answer is 2 it learns from the reward alone; a tiny 2-layer model learns one shared preference in
a few dozen steps, where learning ten different sums would take hundreds.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from tests.grpo_trainer.helpers import rl_row, write_parquet

QUESTIONS = ["1+1=?", "0+2=?", "2+0=?", "3-1=?", "4-2=?", "5-3=?", "1*2=?", "2*1=?", "4/2=?", "6/3=?"]
WARMUP_STEPS = 30


def task_rows() -> list[dict]:
    return [rl_row(q, "2", i) for i, q in enumerate(QUESTIONS * 2)]


def task_prompts(dest: Path) -> Path:
    return write_parquet(dest, task_rows())


def warm_up(base_model: Path, dest: Path, seed: int = 0) -> Path:
    """SFT the tiny model on randomly boxed digits (format only) and export it to ``dest`` (cached)."""
    if (dest / "config.json").is_file():
        return dest
    from stages.lm.chat import ChatFormat
    from stages.lm.engine import EpochBatches, TrainConfig
    from stages.lm.engine.batch import Sample
    from stages.lm.engine.trainer import Trainer
    from stages.lm.losses.nll import NLLLoss

    rng = random.Random(seed)
    work = dest.with_name(dest.name + ".work")
    shutil.rmtree(work, ignore_errors=True)
    config = TrainConfig(lr=1e-2, schedule="constant", warmup_ratio=0.0, micro_batch_tokens=4096, max_length=128,
                         global_batch_groups=8, seed=seed, log_every=1000, weight_decay=0.0)
    trainer = Trainer(config, base_model, work, total_steps=WARMUP_STEPS)
    fmt = ChatFormat(thinking=False)
    groups = []
    for row in task_rows() * 4:
        messages = row["prompt"] + [{"role": "assistant", "content": f"\\boxed{{{rng.randint(0, 3)}}}"}]
        groups.append([Sample.from_chat(fmt.encode(trainer.tokenizer, messages))])
    data = EpochBatches(groups, epochs=100, seed=seed, batch_groups=8)
    trainer.fit(data, NLLLoss(), resume=False)
    trainer.export_hf(dest)
    trainer.close()
    shutil.rmtree(work, ignore_errors=True)
    return dest
