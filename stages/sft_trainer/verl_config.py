"""Compose overrides against verl's own ``sft_trainer_engine`` config, and run verl's own config checks.

Why: ``verl.trainer.sft_trainer`` starts with exactly this Hydra composition; doing it first turns an unknown key,
a mistyped value or a bad ``extra_overrides`` entry into an ``InputError`` before torchrun starts or a GPU is
taken, and gives the resolved config the manifest records. ``compose`` reads the YAML files shipped inside the
installed verl package through Hydra's config-dir API, without importing verl (about a second; verl reference §7.3).
``validate`` then builds verl's config dataclasses the way ``SFTTrainer._build_config`` does (``HFModelConfig``,
``FSDPEngineConfig``, ``FSDPOptimizerConfig``, ``CheckpointConfig``), whose ``__post_init__`` checks are verl's own
validation of an SFT config; it imports verl (several seconds) and reads the model's config.json.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from stages.core.errors import InputError

CONFIG_NAME = "sft_trainer_engine"
WHERE = "$.spec.params"


def verl_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("verl", "hydra", "omegaconf"))


def verl_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("verl")
    except metadata.PackageNotFoundError:
        return None


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


def config_dir() -> Path:
    """``verl/trainer/config`` of the installed verl, found without importing verl."""
    spec = importlib.util.find_spec("verl")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the verl engine needs verl installed (the sft-trainer image has it)", "$.spec.runtime.engine")
    return Path(next(iter(spec.submodule_search_locations))) / "trainer" / "config"


def _first_lines(e: BaseException, n: int = 3) -> str:
    text = str(e).strip() or e.__class__.__name__
    return " ".join(text.splitlines()[:n])


def compose(overrides: list[str]) -> Any:
    """The composed ``DictConfig`` (unresolved), or ``InputError`` naming what Hydra rejected."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            cfg = hydra_compose(config_name=CONFIG_NAME, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException, ValueError) as e:
        raise InputError(f"verl rejected the overrides: {_first_lines(e)}", WHERE) from None
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise InputError(f"verl's config has mandatory values left unset: {', '.join(missing)}", WHERE)
    return cfg


def resolved(cfg: Any) -> dict[str, Any]:
    """The resolved config as plain data (what the manifest records)."""
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except Exception as e:  # noqa: BLE001 - an interpolation verl cannot resolve is a config error
        raise InputError(f"verl's config does not resolve: {_first_lines(e)}", WHERE) from None


def validate(cfg: Any) -> None:
    """verl's config dataclasses, built as the SFT trainer builds them; their checks become ``InputError``."""
    from verl.utils.config import omega_conf_to_dataclass

    for section in ("model", "engine", "optim", "checkpoint"):
        try:
            omega_conf_to_dataclass(cfg[section])
        except Exception as e:  # noqa: BLE001 - verl raises assertions, ValueErrors and TypeErrors alike
            raise InputError(f"verl's {section} config is invalid: {_first_lines(e)}", WHERE) from None
