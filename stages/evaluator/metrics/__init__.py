"""Pure metric functions of the evaluator (no model, no lm-eval): sample-level forgetting, Self-BLEU, distinct-n,
response-length shift, calibration and pass@k. Each follows the exact definitions of the methods reference §9, so
that the evaluator and any later re-analysis compute the same numbers from the same per-item records.
"""
