"""The method and wiring tables name only inputs and outputs the stages really declare, with matching kinds."""

from __future__ import annotations

import pytest

from stages.core.artifacts import ArtifactKind as K
from stages.registry import BY_NAME, load_stage
from stages.study.catalog import COLLECTOR_DATASET_INPUT, COLLECTOR_MODEL_INPUT, DATA_JOBS, EVAL, METHODS, domains


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_wiring_matches_declarations(name):
    m = METHODS[name]
    assert m.stage in BY_NAME
    trainer = load_stage(m.stage)
    collector = load_stage("collector")
    job = DATA_JOBS[m.data]
    produced = collector.outputs[job.output].kind
    assert produced in trainer.inputs[m.data_input].kinds
    assert K.hf_model in trainer.inputs[m.model_input].kinds
    assert trainer.outputs[m.model_output].kind == K.hf_model
    assert job.mode in collector.params.model_fields["mode"].annotation.__args__


def test_collector_and_evaluator_inputs_exist():
    collector = load_stage("collector")
    assert K.gem_dataset in collector.inputs[COLLECTOR_DATASET_INPUT].kinds
    assert K.hf_model in collector.inputs[COLLECTOR_MODEL_INPUT].kinds
    ev = load_stage("evaluator")
    for name in (EVAL.model, EVAL.base_model, EVAL.base_results, EVAL.target_data, EVAL.benchmarks):
        assert name in ev.inputs, name
    assert ev.outputs[EVAL.results_output].kind == K.eval_results
    assert K.eval_results in ev.inputs[EVAL.base_results].kinds
    assert load_stage("analyzer").variadic_inputs == K.eval_results


def test_three_domains_with_train_and_eval_envs():
    assert domains() == {
        "math": ("math:GSM8K", "eval:MATH500"),
        "code": ("code:CodeContest", "eval:CodeContest"),
        "qa": ("qa:NaturalQuestions", "eval:NaturalQuestions"),
    }
