"""The process torchrun starts on every rank: verl's own SFT trainer, given our overrides.

Why a launcher module rather than ``-m verl.trainer.sft_trainer``: on a machine without a GPU the CPU platform
(``stages.lm.verl.cpu_platform``) must be registered before verl's trainer is imported, and that has to happen
inside each rank's process. On GPUs it adds nothing: it hands the overrides to ``verl.trainer.sft_trainer.main``
unchanged.
Usage (what the stage runs): ``torchrun ... -m stages.sft_trainer.verl_launch [--cpu] key=value ...``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    cpu = "--cpu" in args
    overrides = [a for a in args if a != "--cpu"]
    if cpu:
        from stages.lm.verl.cpu_platform import install

        install()
    from verl.trainer import sft_trainer

    sys.argv = [sft_trainer.__file__, *overrides]
    sft_trainer.main()


if __name__ == "__main__":
    main()
