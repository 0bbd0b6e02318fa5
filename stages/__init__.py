"""forgetting-llms: containerized per-stage microtools for studying catastrophic forgetting in LLM post-training.

Each sub-package is either shared substrate (``core``: manifests and the run lifecycle; ``envs``: GEM environments
and graders; ``lm``: models, generation and the native training engine) or one stage with its own CLI and image
(``collector``, ``sft_trainer``, ``grpo_trainer``, ``spin``, ``pi_distill``, ``evaluator``, ``analyzer``), plus the
conductor (``study``). A stage never imports another stage: stages talk only through JSON manifests and files.
"""

__version__ = "0.1.0"
