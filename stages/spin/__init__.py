"""The spin stage: SELF, Self-Play Fine-Tuning (arXiv 2401.01335). Each iteration the current model answers the
training prompts and a DPO-style loss pushes it toward the ground truth and away from its own answer, against the
model at the start of the iteration as reference.

- `stage`, `params`, `preflight`   the declaration, its parameters (the paper's defaults) and the checks before a run
- `prompts`                        the rl_prompts file, checked row by row; the chosen (ground-truth) response
- `run`                            the iteration loop: generate -> reference log-probs -> train -> export
- `generate`, `served`             the generation phase (hf in the stage, or a vLLM server it starts per iteration)
- `iteration`, `pairs`, `train`    reference log-probs, training and export, in one process or on every torchrun rank;
                                   `loss` is the engine's DPO loss plus the policy's own log-probs
- `session`, `launch`, `worker`    what those phases need from the run; the torchrun job that runs them on several
                                   GPUs or nodes, and what each of its ranks runs
- `state`                          where the run is (atomic state file, chunked logs cut back on resume)
- `metrics`                        metrics.jsonl and the summary; `stop_points` lets tests stop a run at a named point
"""
