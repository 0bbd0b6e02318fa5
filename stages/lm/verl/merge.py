"""A verl checkpoint as a Hugging Face folder, through verl's own model merger (verl reference §2.7).

Why the merger and a fold: the merger gathers the per-rank FSDP shards on the CPU and writes bf16 safetensors with
the tokenizer and chat template the checkpoint carries, which every later stage loads. With LoRA it writes the base
weights and the adapter separately (verl #4553, not folded); downstream stages want one plain model, so the adapter
is folded into the weights here with peft and kept beside the model (``lora_adapter/`` next to ``dest``). The
result is built in a hidden sibling folder and renamed into place, so a half-merged model never looks finished.
SFT checkpoints are merged from ``global_step_N/``, PPO ones (grpo-trainer, pi-distill) from ``global_step_N/actor``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from stages.lm.launch.process_group import log_tail
from stages.lm.launch.torchrun import child_environment
from stages.lm.verl.checkpoints import step_dir


def merge_command(folder: Path, target: Path) -> list[str]:
    return [sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp", "--local_dir", str(folder),
            "--target_dir", str(target)]


def fold_lora(model_dir: Path, adapter_dir: Path) -> None:
    """Fold a peft adapter into the base weights saved in ``model_dir`` (in place)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(model_dir), torch_dtype=torch.float32, local_files_only=True)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.to(torch.bfloat16).save_pretrained(str(model_dir))


def merge_checkpoint(folder: Path, dest: Path, log_path: Path) -> Path:
    """Write the model of checkpoint ``folder`` to ``dest`` as a Hugging Face folder; raise with the merger's log."""
    tmp = dest.with_name(f".{dest.name}.merging")
    shutil.rmtree(tmp, ignore_errors=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        code = subprocess.run(merge_command(folder, tmp), stdout=log, stderr=subprocess.STDOUT,
                              env=child_environment({}), check=False).returncode
    if code != 0 or not (tmp / "config.json").is_file():
        raise RuntimeError(f"verl's model merger failed (exit {code}) on {folder}; log {log_path}:\n"
                           f"{log_tail(log_path)}")
    adapter = tmp / "lora_adapter"
    if adapter.is_dir():
        fold_lora(tmp, adapter)
        kept = dest.parent / "lora_adapter"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.move(str(adapter), str(kept))
    if dest.exists():
        shutil.rmtree(dest)
    tmp.replace(dest)
    return dest


def merge_actor(checkpoint_root: Path, step: int, dest: Path, log_path: Path) -> Path:
    """The actor of a PPO-family checkpoint (grpo-trainer, pi-distill): ``global_step_N/actor``."""
    return merge_checkpoint(step_dir(checkpoint_root, step) / "actor", dest, log_path)
