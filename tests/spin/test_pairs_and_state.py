"""The pieces under the run: the correct-sample switch (with the real grader), which pairs an iteration trains,
chosen-side encoding, and the chunk log that a killed attempt leaves half-written."""

from __future__ import annotations

import json

import pytest

from tests.spin.conftest import prompt_rows


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    from stages.spin.prompts import read_prompts
    from tests.spin.conftest import write_prompts

    return read_prompts(write_prompts(tmp_path_factory.mktemp("p") / "p.parquet", prompt_rows()), "reference_solution")


@pytest.mark.parametrize("policy, kept", [("keep", [True, True]), ("drop", [True, False])])
def test_correct_sample_policy_with_the_real_grader(rows, policy, kept):
    from stages.envs import grade
    from stages.lm.generation import Completion
    from stages.spin.generate import _record, generation_stats
    from stages.spin.pairs import EncodedPrompt

    prompt = EncodedPrompt(rows[0], [1, 2], [3], False)  # "What is 2 + 3?"
    answers = ["I think it is 7.", "2 + 3 = 5, so the answer is $\\boxed{5}$."]
    graded = [grade(rows[0].data_source, a, rows[0].ground_truth) for a in answers]
    records = [_record(0, prompt, Completion(a, [5, 6], "stop"), v, policy) for a, v in zip(answers, graded)]
    assert [r["rejected_correct"] for r in records] == [False, True]
    assert [r["kept"] for r in records] == kept
    stats = generation_stats(records, policy)
    assert stats["share_correct"] == 0.5 and stats["correct_samples"] == 1
    assert stats["pairs_dropped_correct"] == (1 if policy == "drop" else 0)


def test_training_pairs_are_the_kept_ones_of_this_and_the_previous_iteration(tmp_path):
    from stages.spin.train import training_records

    (tmp_path / "pairs").mkdir()
    for t, kept in [(0, [True, False]), (1, [False, True]), (2, [True, True])]:
        lines = [json.dumps({"iteration": t, "position": i, "kept": k}) for i, k in enumerate(kept)]
        (tmp_path / "pairs" / f"iter-{t}.jsonl").write_text("\n".join(lines) + "\n")
    key = lambda recs: [(r["iteration"], r["position"]) for r in recs]
    assert key(training_records(tmp_path, 0, True)) == [(0, 0)]
    assert key(training_records(tmp_path, 2, True)) == [(1, 1), (2, 0), (2, 1)]
    assert key(training_records(tmp_path, 2, False)) == [(2, 0), (2, 1)]


def test_chosen_side_is_the_chat_format_continuation_and_long_prompts_are_left_out(rows, tiny_model_dir):
    from stages.lm.chat import ChatFormat
    from stages.lm.loading import load_tokenizer
    from stages.spin.pairs import encode_prompts

    tok = load_tokenizer(tiny_model_dir)
    encoded, too_long = encode_prompts(rows, tok, False, 96, 128)
    assert too_long == 0 and len(encoded) == 4
    e = encoded[0]
    assert e.prompt_ids == ChatFormat().prompt_ids(tok, rows[0].messages)  # the prompt generation continues
    assert tok.decode(e.chosen_ids) == rows[0].chosen + "<|im_end|>"
    short, dropped = encode_prompts(rows, tok, False, len(e.prompt_ids) - 1, 128)
    assert dropped >= 1 and all(len(x.prompt_ids) < len(e.prompt_ids) for x in short)
    cut, _ = encode_prompts(rows[:1], tok, False, 96, len(e.prompt_ids) + 3)
    assert cut[0].chosen_truncated and cut[0].chosen_ids == e.chosen_ids[:3]


def test_templated_chosen_side_for_rows_without_a_solution():
    from stages.spin.prompts import templated_answer

    assert templated_answer("math", {"answer": "72"}) == "The answer is $\\boxed{72}$."
    assert templated_answer("qa", {"answers": ["Paris", "paris"], "extract": "tag"}) == "<answer>Paris</answer>"
    assert templated_answer("code", {"tests": {}}) is None


def test_chunk_log_drops_what_a_killed_attempt_wrote_after_its_checkpoint(tmp_path):
    from stages.spin.state import ChunkLog, SpinState, read_jsonl

    path = tmp_path / "log.jsonl"
    with ChunkLog(path, 0) as log:
        good = log.append([{"chunk": 0}])
        log.append([{"chunk": 1, "half": "written"}])  # the state was never told about this one
    state = SpinState(phase="score", chunk=1, bytes=good)
    state.save(tmp_path / "state.json")
    back = SpinState.load(tmp_path / "state.json")
    assert back == state
    with ChunkLog(path, back.bytes) as log:
        log.append([{"chunk": 1}])
    assert read_jsonl(path) == [{"chunk": 0}, {"chunk": 1}]
