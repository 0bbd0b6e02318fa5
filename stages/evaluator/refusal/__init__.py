"""The refusal-direction suite's parts (Arditi et al., 2024): its params, instruction sets, the direction file, the
batched passes that extract and intervene, and the checks made before anything runs."""
