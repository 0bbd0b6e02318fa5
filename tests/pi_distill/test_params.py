"""The params model: alpha and beta bounds, batch shapes, defaults from the reference; the privileged template."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stages.pi_distill.params import PiDistillParams
from stages.pi_distill.privileged import answer_text, privileged_info, teacher_messages


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_alpha_inside_the_unit_interval_is_accepted(alpha):
    assert PiDistillParams(alpha=alpha).alpha == alpha


@pytest.mark.parametrize("alpha", [-0.01, 1.01, 2.0])
def test_alpha_outside_the_unit_interval_is_refused(alpha):
    with pytest.raises(ValidationError, match="alpha"):
        PiDistillParams(alpha=alpha)


def test_beta_must_not_be_negative():
    assert PiDistillParams(beta=0.0).beta == 0.0
    with pytest.raises(ValidationError, match="beta"):
        PiDistillParams(beta=-0.1)


def test_reference_defaults():
    p = PiDistillParams()
    assert (p.variant, p.alpha, p.beta, p.group_size, p.ppo_epochs) == ("pi-distill", 0.5, 0.1, 4, 2)
    assert (p.optim.lr, p.optim.schedule, p.clip_ratio, p.student_clip_ratio, p.sampling.temperature) == \
        (1e-6, "constant", 0.2, 0.2, 0.7)
    assert p.drop_zero_variance_groups and p.privileged_template == "v1"


def test_batch_shapes_are_checked():
    with pytest.raises(ValidationError, match="multiple of `mini_batch_size`"):
        PiDistillParams(prompts_per_step=6, mini_batch_size=4)
    with pytest.raises(ValidationError, match="cannot exceed"):
        PiDistillParams(prompts_per_step=2, mini_batch_size=4)
    with pytest.raises(ValidationError, match="pair shares one forward pass"):
        PiDistillParams(micro_batch_tokens=4096)
    assert PiDistillParams(prompts_per_step=8, mini_batch_size=2, ppo_epochs=3).updates_per_step == 12
    with pytest.raises(ValidationError, match="unknown|Extra inputs"):
        PiDistillParams.model_validate({"gamma": 1})


def test_privileged_information_per_source():
    ref = "48/2 = 24. 48 + 24 = 72. The answer is $\\boxed{72}$."
    assert privileged_info("reference_or_answer", "math", '{"answer": "72"}', ref) == ("reference_solution", ref)
    assert privileged_info("reference_or_answer", "math", '{"answer": "72"}', "  ") == ("answer", "72")
    assert privileged_info("answer", "math", '{"answer": "72"}', ref) == ("answer", "72")
    assert privileged_info("reference_solution", "math", '{"answer": "72"}', None) is None
    qa = '{"answers": ["Paris", "City of Paris"], "extract": "tag"}'
    assert privileged_info("reference_or_answer", "qa", qa, None) == ("answer", "any of: Paris; City of Paris")
    assert privileged_info("reference_or_answer", "code", '{"tests": {"inputs": ["1"], "outputs": ["1"]}}', "") \
        is None
    assert answer_text("math", {"answer": ["1/2", "0.5"]}) == "1/2 or 0.5"


def test_teacher_prompt_keeps_the_question_and_adds_the_information_once():
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "What is 6 x 7? Use \\boxed{}."}]
    teacher = teacher_messages(msgs, "reference_solution", "6 x 7 = 42", "v1")
    assert teacher[0] == msgs[0] and msgs[1]["content"] == "What is 6 x 7? Use \\boxed{}."  # input not mutated
    text = teacher[1]["content"]
    assert text.startswith(msgs[1]["content"]) and text.count("6 x 7 = 42") == 1
    assert "a reference solution" in text and "do not copy" in text
