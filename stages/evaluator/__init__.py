"""The evaluator stage: the forgetting profile of one checkpoint — lm-eval suites, the target domain's pass@k,
policy metrics (diversity, length, calibration), safety, and KL to the base model on target prompts.
"""
