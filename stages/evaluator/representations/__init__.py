"""The pieces of the ``representations`` suite (``stages.evaluator.suites.representations`` runs them): its params,
its probe texts, activation capture with hooks, and streaming of weight pairs. The metrics themselves (CKA, probes,
weight-delta spectra) are pure functions in ``stages.evaluator.metrics``.
"""
