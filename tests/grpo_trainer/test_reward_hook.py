"""The reward function the stage hands verl, loaded by verl's own reward-loading code from its file path
(``verl/trainer/ppo/reward.py``: ``load_reward_manager`` -> ``get_custom_reward_fn``) and driven through verl's
naive reward manager (token ids decoded as verl decodes them), scores real benchmark responses exactly as
``stages.envs`` grades them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("verl")

from stages.grpo_trainer.params import GRPOParams
from stages.grpo_trainer.reward_fn import project_reward_path
from stages.grpo_trainer.verl_overrides import VerlJob, build_overrides
from stages.lm.verl.config import compose_ppo
from tests.grpo_trainer.helpers import REPO

DATA = REPO.parent / "shared" / "data"


def _jsonl(path: Path, n: int) -> list[dict]:
    with path.open() as fh:
        return [json.loads(next(fh)) for _ in range(n)]


def cases() -> list[tuple[str, str, object]]:
    """(data_source, response, ground_truth) from real GSM8K and NQ-open rows, right and wrong, plus code."""
    out: list[tuple[str, str, object]] = []
    for row in _jsonl(DATA / "gsm8k" / "test.jsonl", 4):
        final = row["answer"].split("####")[-1].strip().replace(",", "")
        out += [
            ("math:GSM8K", f"Step by step... so the answer is \\boxed{{{final}}}.", final),
            ("math:GSM8K", f"The answer is \\boxed{{{int(final) + 1}}}.", json.dumps({"answer": final})),
            ("math:GSM8K", f"The answer is {final}.", final),
        ]
    for row in _jsonl(DATA / "nq_open" / "NQ-open.dev.jsonl", 3):
        gt = {"answers": row["answer"], "extract": "tag"}
        out += [
            ("qa:NaturalQuestions", f"Thinking... <answer>{row['answer'][0]}</answer>", json.dumps(gt)),
            ("qa:NaturalQuestions", "<answer>certainly not this</answer>", json.dumps(gt)),
        ]
    tests = {"tests": {"inputs": ["2 3\n", "10 -4\n"], "outputs": ["5\n", "6\n"]}}
    out += [
        ("code:CodeContest", "```python\na, b = map(int, input().split())\nprint(a + b)\n```", json.dumps(tests)),
        ("code:CodeContest", "```python\nprint(5)\n```", json.dumps(tests)),
        ("code:CodeContest", "no code at all", json.dumps(tests)),
    ]
    return out


@pytest.fixture(scope="module")
def verl_reward_manager(tiny_model_dir):
    from transformers import AutoTokenizer
    from verl.trainer.ppo.reward import load_reward_manager

    reward_path = project_reward_path()
    job = VerlJob(model_path=str(tiny_model_dir), train_files="/d/train.parquet", output_dir="/o",
                  reward_path=str(reward_path), total_steps=1)
    cfg = compose_ppo(build_overrides(GRPOParams(), job))
    assert cfg.reward.custom_reward_function.path == str(reward_path)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir), local_files_only=True)
    return load_reward_manager(cfg, tokenizer), tokenizer


def _data_item(tokenizer, source: str, response: str, ground_truth: object):
    import numpy as np
    import torch
    from verl import DataProto

    prompt = tokenizer("Q?", add_special_tokens=False)["input_ids"]
    resp = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    pad = 4  # right padding after the response, as verl's batches have
    ids = torch.tensor([prompt + resp + [tokenizer.pad_token_id] * pad])
    mask = torch.tensor([[1] * (len(prompt) + len(resp)) + [0] * pad])
    batch = {"prompts": ids[:, : len(prompt)], "responses": ids[:, len(prompt):], "attention_mask": mask}
    non_tensor = {
        "data_source": np.array([source], dtype=object),
        "reward_model": np.array([{"ground_truth": ground_truth}], dtype=object),
        "extra_info": np.array([{"index": 0}], dtype=object),
    }
    return DataProto.from_dict(tensors=batch, non_tensors=non_tensor)


def test_verl_loads_our_reward_file_and_grades_like_envs(verl_reward_manager):
    from stages.envs import grade

    manager, tokenizer = verl_reward_manager
    assert type(manager).__name__ == "NaiveRewardManager"
    results = []
    for source, response, gt in cases():
        item = _data_item(tokenizer, source, response, gt)
        out = manager.loop.run_until_complete(manager.run_single(item))  # verl's own event loop
        expected = grade(source, response, gt)
        assert out["reward_score"] == pytest.approx(float(expected.score)), (source, response, gt, expected)
        assert out["reward_extra_info"]["correct"] == float(expected.correct)  # our dict, not verl's default
        results.append(out["reward_score"])
    assert 0 < sum(results) < len(results)  # the cases hold right and wrong answers in every domain


def test_missing_reward_file_is_reported_by_name(tmp_path):
    from stages.core.errors import InputError
    from stages.grpo_trainer.reward_fn import check_reward_file

    with pytest.raises(InputError, match="does not exist"):
        check_reward_file(tmp_path / "nope.py", "compute_score")
    other = tmp_path / "r.py"
    other.write_text("def score(**kw):\n    return 1.0\n")
    with pytest.raises(InputError, match="defines no 'compute_score'"):
        check_reward_file(other, "compute_score")
    assert check_reward_file(other, "score") == other.resolve()
    assert sys.modules.get("r") is None  # checked by parsing, never imported
