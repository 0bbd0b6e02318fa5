"""Compose overrides against verl's packaged ``ppo_trainer`` config and run verl's own ``validate_config``.

Why: this is exactly what ``main_ppo`` does first (verl reference §7 item 2), minus Ray and the GPUs, in about ten
seconds on a CPU. An unknown key, a bad value type or a batch shape verl rejects becomes an ``InputError`` before
the job takes any GPU time, and the resolved config is what the manifest records. Needs verl installed; callers
that may run without it (``validate`` on a login node) ask ``verl_installed()`` first.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

from stages.core.errors import InputError

WHERE = "$.spec.params"


def verl_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("verl", "hydra", "omegaconf"))


def compose(overrides: list[str]) -> Any:
    """The composed ``DictConfig`` (unresolved), or ``InputError`` naming what Hydra rejected."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_module(config_module="verl.trainer.config", version_base=None):
            cfg = hydra_compose(config_name="ppo_trainer", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException, ValueError) as e:
        raise InputError(f"verl rejected the overrides: {_first_line(e)}", WHERE) from None
    missing = sorted(OmegaConf.missing_keys(cfg) - {"reward.reward_model.rollout.name"})
    if missing:
        raise InputError(f"verl config has mandatory values left unset: {', '.join(missing)}", WHERE)
    return cfg


def validate(cfg: Any) -> None:
    """verl's own ``validate_config``, as ``main_ppo`` calls it; its assertion messages become ``InputError``.

    Its last check (the LoRA rank against vLLM's allowed ranks) imports vLLM; where vLLM is not installed (a CPU
    box) that one check is left to ``rules`` and the rest runs on a copy with LoRA off.
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
            raise InputError(f"verl's validate_config rejected the config: {_first_line(e)}", WHERE) from None


def compose_and_validate(overrides: list[str]) -> Any:
    cfg = compose(overrides)
    validate(cfg)
    return cfg


def resolved(cfg: Any) -> dict[str, Any]:
    """The resolved config as plain data (what the manifest records)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or e.__class__.__name__
    return " ".join(text.splitlines()[:3])
