"""Adversarial attacks on HarmBench behaviours (the evaluator's ``attacks`` suite): GCG through nanoGCG and the
project's own AutoDAN, each behaviour attacked, completed and judged by the HarmBench classifier. ``params`` is light;
everything else imports torch lazily."""
