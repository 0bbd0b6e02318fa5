"""The spin stage: SELF, Self-Play Fine-Tuning (arXiv 2401.01335). Each iteration the current model answers the
training prompts and a DPO-style loss pushes it toward the ground truth and away from its own answer, against the
model at the start of the iteration as reference.
"""
