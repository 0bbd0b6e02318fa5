"""Checks made before anything is written: the dataset opens with the needed columns, a model is given and
loadable when one is needed, the openai endpoint answers, merge inputs are trajectories. Faults exit with code 2.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from stages.core import InputError
from stages.envs.sandbox.gate import WHERE as ISOLATION_WHERE
from stages.envs.sandbox.gate import grades_code, refusal


def _check_model(path: Path) -> None:
    if not (path / "config.json").is_file():
        raise InputError(f"model folder {path} has no config.json: not a Hugging Face model", "$.spec.inputs.model")
    try:
        cfg = json.loads((path / "config.json").read_text())
    except ValueError as e:
        raise InputError(f"model folder {path}: config.json is not JSON ({e})", "$.spec.inputs.model") from None
    if "model_type" not in cfg:
        raise InputError(f"model folder {path}: config.json has no model_type", "$.spec.inputs.model")
    if not any((path / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        raise InputError(f"model folder {path} has no tokenizer files", "$.spec.inputs.model")


def _probe_endpoint(base_url: str, key_env: str) -> None:
    req = urllib.request.Request(base_url.rstrip("/") + "/models")
    key = os.environ.get(key_env)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read(1 << 16)
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise InputError(
                f"teacher endpoint {base_url} refused the credentials in ${key_env} (HTTP {e.code})",
                "$.spec.params.openai",
            ) from None
        if e.code >= 500:
            raise InputError(f"teacher endpoint {base_url} answers HTTP {e.code}", "$.spec.params.openai") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise InputError(f"teacher endpoint {base_url} cannot be reached: {reason}", "$.spec.params.openai") from None


def preflight(spec, inputs) -> None:
    p = spec.params
    if p.mode == "merge":
        shards = [i for n, i in inputs.items() if n not in ("dataset", "model")]
        if not shards:
            raise InputError("merge mode needs shard inputs of kind trajectories (any names)", "$.spec.inputs")
        return
    extra = sorted(n for n in inputs if n not in ("dataset", "model"))
    if extra:
        raise InputError(f"input {extra[0]!r} is only taken in merge mode", f"$.spec.inputs.{extra[0]}")
    if "dataset" not in inputs:
        raise InputError(f"mode {p.mode!r} needs the input 'dataset' (gem_dataset)", "$.spec.inputs")
    from stages.envs import EnvError, open_env

    try:
        ds = open_env(p.env_id, inputs["dataset"].path, p.split, template=p.template, thinking=spec.runtime.thinking)
    except (EnvError, ValueError) as e:
        raise InputError(str(e), "$.spec.inputs.dataset") from None
    if p.mode != "prompts" and grades_code([p.env_id]) and (why := refusal(p.allow_unisolated_code)):
        raise InputError(why, ISOLATION_WHERE)
    if p.start >= len(ds):
        raise InputError(f"start {p.start} is past the end of the split ({len(ds)} items)", "$.spec.params.start")
    if p.mode != "generate":
        return
    engine = spec.runtime.engine or "hf"
    if engine == "openai":
        if p.openai is None:
            raise InputError("runtime.engine openai needs params.openai (base_url, model)", "$.spec.params.openai")
        _probe_endpoint(p.openai.base_url, p.openai.api_key_env)
        return
    if "model" not in inputs:
        raise InputError(f"generate mode with engine {engine!r} needs the input 'model' (hf_model)", "$.spec.inputs")
    _check_model(inputs["model"].path)
