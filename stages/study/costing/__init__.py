"""What a study will cost before it runs: a memory model (does each trainer run fit the GPUs it asks for?) and a
cost model (GPU-hours per run, per stage and in total, beside the ceiling the resources ask for).

Why a package of its own: both models are arithmetic over the same few facts (a model's shape, a card's memory,
bandwidth and bf16 throughput, the throughputs measured in ``bench/results``) and neither needs a GPU, torch or any
stage's code; ``study plan`` and ``study check`` call them on every planned manifest. Every constant names its
source (a bench result file, a reference note, or "estimate" where nothing was measured) where it is defined.
"""
