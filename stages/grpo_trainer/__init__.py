"""The grpo-trainer stage: ON-RL, GRPO with binary rewards from the GEM graders, on verl at scale or on the native
engine.
"""
