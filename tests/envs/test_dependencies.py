"""verl (Hydra/OmegaConf, antlr4 4.9) and GEM's math grader (math-verify's LaTeX parser) in one interpreter."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from stages.envs.gem_bridge import missing_gem_dependencies


@pytest.mark.timeout(180)
def test_verl_config_and_math_verify_latex_parsing_coexist():
    pytest.importorskip("verl", reason="verl is not installed (grpo-trainer / dev extra)")
    assert version("antlr4-python3-runtime") == "4.9.3"  # the version hydra-core's grammar needs
    assert version("gem-llm") == "0.1.0"
    assert not missing_gem_dependencies()
    import verl  # noqa: F401
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=[
            "reward.custom_reward_function.path=stages/envs/verl_reward.py",
            "algorithm.adv_estimator=grpo",
        ])
    assert cfg.algorithm.adv_estimator == "grpo"
    assert cfg.reward.custom_reward_function.name == "compute_score"
    assert OmegaConf.select(cfg, "actor_rollout_ref.rollout.n") is not None

    from latex2sympy2_extended import latex2sympy
    from math_verify import parse, verify

    assert str(latex2sympy(r"\frac{1}{2} + \sqrt{4}").simplify()) == "5/2"  # parsed by the antlr4 grammar
    assert verify(parse(r"$\frac{1}{2}$"), parse("$0.5$"))
    assert not verify(parse(r"$\frac{1}{3}$"), parse("$0.5$"))

    from gem.envs.math_env import MathEnv  # GEM's grader, whose last check goes through math-verify

    assert MathEnv.check_correct("\\boxed{${1,2,3,4}$}", "${1,3} \\cup {2,4}$")
