"""The evaluator's suites, one module each: lm-eval tasks (forgetting), policy metrics, safety, target, and KL."""
