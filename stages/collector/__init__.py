"""The collector stage: runs a model (or no model, for ground truth) through a GEM environment and records what
happened. It makes the data of GT-SFT, SF-SFT and CF-SFT, the prompts of GRPO, SPIN and π-Distill, and the raw
trajectories for analysis.
"""
