"""Compose overrides against verl's packaged Hydra configs and run verl's own checks on the result.

Why one place: every verl stage starts the same way verl's entry points do (Hydra composition of ``ppo_trainer``
or ``sft_trainer_engine`` from the YAML inside the installed verl package, then verl's validation), and doing it
first turns an unknown key, a mistyped value or a batch shape verl rejects into an ``InputError`` before a job
takes any GPU time; the resolved config is what the manifest records. ``compose`` reads the YAML through Hydra's
config-dir API without importing verl (about a second; verl reference §7.3); ``validate_ppo`` is verl's
``validate_config`` exactly as ``main_ppo`` calls it, and imports verl (several seconds). Callers that may run
without verl (``validate`` on a login node) ask ``verl_installed()`` first.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stages.core.errors import InputError

WHERE = "$.spec.params"
PPO_CONFIG = "ppo_trainer"
SFT_CONFIG = "sft_trainer_engine"
# mandatory in verl's YAML but read only with a reward model, which no stage enables
UNUSED_MANDATORY = frozenset({"reward.reward_model.rollout.name"})


def verl_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("verl", "hydra", "omegaconf"))


def verl_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("verl")
    except metadata.PackageNotFoundError:
        return None


def config_dir() -> Path:
    """``verl/trainer/config`` of the installed verl, found without importing verl."""
    spec = importlib.util.find_spec("verl")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the verl engine needs verl installed (the stage's image has it)", "$.spec.runtime.engine")
    return Path(next(iter(spec.submodule_search_locations))) / "trainer" / "config"


def first_lines(e: BaseException, n: int = 3) -> str:
    text = str(e).strip() or e.__class__.__name__
    return " ".join(text.splitlines()[:n])


def compose(config_name: str, overrides: Iterable[str], ignore_missing: Iterable[str] = ()) -> Any:
    """The composed ``DictConfig`` (unresolved), or ``InputError`` naming what Hydra rejected or left unset."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException, ValueError) as e:
        raise InputError(f"verl rejected the overrides: {first_lines(e)}", WHERE) from None
    missing = sorted(OmegaConf.missing_keys(cfg) - set(ignore_missing))
    if missing:
        raise InputError(f"verl's config has mandatory values left unset: {', '.join(missing)}", WHERE)
    return cfg


def compose_ppo(overrides: Iterable[str]) -> Any:
    """``main_ppo``'s config (what grpo-trainer and pi-distill run) with these overrides."""
    return compose(PPO_CONFIG, overrides, UNUSED_MANDATORY)


def resolved(cfg: Any) -> dict[str, Any]:
    """The resolved config as plain data (what the manifest records)."""
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except Exception as e:  # noqa: BLE001 - an interpolation verl cannot resolve is a config error
        raise InputError(f"verl's config does not resolve: {first_lines(e)}", WHERE) from None


def validate_ppo(cfg: Any) -> None:
    """verl's own ``validate_config``, as ``main_ppo`` calls it; its assertion messages become ``InputError``.

    Its last check (the LoRA rank against vLLM's allowed ranks) imports vLLM; where vLLM is not installed (a CPU
    box) that one check is left to the stage's rules and the rest runs on a copy with LoRA off.
    """
    from omegaconf import OmegaConf, open_dict
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    if importlib.util.find_spec("vllm") is None and cfg.actor_rollout_ref.model.get("lora_rank", 0) > 0:
        cfg = OmegaConf.create(OmegaConf.to_container(cfg))
        with open_dict(cfg):
            cfg.actor_rollout_ref.model.lora_rank = 0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Disabled critic")
        try:
            validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
        except (AssertionError, ValueError, TypeError) as e:
            raise InputError(f"verl's validate_config rejected the config: {first_lines(e)}", WHERE) from None


def compose_and_validate_ppo(overrides: Iterable[str]) -> Any:
    cfg = compose_ppo(overrides)
    validate_ppo(cfg)
    return cfg


def validate_sft(cfg: Any) -> None:
    """verl's SFT config dataclasses, built as ``SFTTrainer._build_config`` builds them (their ``__post_init__``
    checks are verl's own validation of an SFT config); failures become ``InputError``."""
    from verl.utils.config import omega_conf_to_dataclass

    for section in ("model", "engine", "optim", "checkpoint"):
        try:
            omega_conf_to_dataclass(cfg[section])
        except Exception as e:  # noqa: BLE001 - verl raises assertions, ValueErrors and TypeErrors alike
            raise InputError(f"verl's {section} config is invalid: {first_lines(e)}", WHERE) from None
