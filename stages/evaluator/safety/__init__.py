"""Safety scoring: refusal classification (XSTest) and HarmBench attack success, with pluggable judges.

Extension points for what comes later (issue 8 builds only direct requests): attacks (GCG, AutoDAN) produce
prompts that go through the same ``harmbench`` scoring; the refusal direction and representation analyses get
their own modules here and their own optional section in ``results.json`` (``EvalResults.extensions``).
"""
