"""The sft-trainer stage: GT-SFT, SF-SFT and CF-SFT. The three methods differ only in which `sft_data` artifact
they train on; the stage trains with verl's `sft_trainer` at scale or with the native engine (`stages.lm`).

Files, in the order a run meets them: ``stage``/``params`` (declaration), ``preflight`` -> ``prepare`` (``data``,
``selection``, ``plan``: rows, lengths, split, step arithmetic), ``run`` (dispatch), then for verl ``verl_engine``
(``verl_job``, ``verl_overrides``, ``verl_config``, ``launcher``, ``verl_launch`` + ``verl_dataset`` inside
torchrun; the shared verl pieces, CPU platform shim, checkpoints and merger, are ``stages.lm.verl``) and for native
``native_engine`` (``native_train``, ``native_worker``); ``metrics`` gives both one metrics shape and the summary.
"""
