"""The lm-evaluation-harness side of the evaluator: the task catalog (tiers, capabilities), the runner around
lm-eval's Python API, and the conversion of its per-sample logs into the evaluator's item records.
"""
