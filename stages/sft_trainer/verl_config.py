"""The SFT trainer's own part of the verl config check: its Hydra config and what its trainer module imports.

Why here and not in ``stages.lm.verl.config`` (which composes and validates for every verl stage): the config
name ``sft_trainer_engine`` and the modules ``verl.trainer.sft_trainer`` needs (missing from verl 0.9.1's base
requirements, verl reference §1) are the SFT trainer's alone. ``compose`` reads the YAML without importing verl
(about a second); ``stages.lm.verl.config.validate_sft`` then runs verl's own SFT config classes.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from typing import Any

from stages.core.errors import InputError
from stages.lm.verl.config import SFT_CONFIG
from stages.lm.verl.config import compose as compose_config
from stages.lm.verl.config import verl_installed

# imported by verl.trainer.sft_trainer but missing from verl 0.9.1's base requirements (verl reference §1)
RUNTIME_MODULES = {"uvicorn": "uvicorn", "fastapi": "fastapi", "cachetools": "cachetools", "torchdata": "torchdata",
                   "tensordict": "tensordict", "codetiming": "codetiming", "peft": "peft"}


def check_install() -> None:
    """``InputError`` naming what verl's SFT trainer will fail to import, before torchrun starts it."""
    missing = sorted(pkg for mod, pkg in RUNTIME_MODULES.items() if importlib.util.find_spec(mod) is None)
    if not verl_installed():
        missing.insert(0, "verl==0.9.1")
    if missing:
        raise InputError(f"the verl engine needs {', '.join(missing)} installed (`pip install "
                         f"forgetting-llms[sft-trainer]`, or use the sft-trainer image)", "$.spec.runtime.engine")


def compose(overrides: Iterable[str]) -> Any:
    """The composed ``sft_trainer_engine`` config, or ``InputError`` naming what Hydra rejected."""
    return compose_config(SFT_CONFIG, overrides)
