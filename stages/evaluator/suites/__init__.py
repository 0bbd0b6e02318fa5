"""The evaluator's suites, one module each: lm-eval tasks (forgetting), policy metrics, safety, target, KL, and
representations (CKA, probes, weight deltas against the base)."""
