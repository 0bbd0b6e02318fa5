"""The final verl checkpoint as a Hugging Face folder, through verl's own model merger (verl reference §2.7).

Why the merger and a fold: the merger gathers the per-rank FSDP shards on the CPU and writes bf16 safetensors with
the tokenizer and chat template the checkpoint carries, which every later stage loads. With LoRA it writes the base
weights and the adapter separately (verl #4553, not folded); downstream stages want one plain model, so the adapter
is folded into the weights here with peft and kept beside the model (``lora_adapter/`` in the run folder). The
result is built in a hidden sibling folder and renamed into place, so a half-merged model never looks finished.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from stages.sft_trainer.launcher import child_environment, log_tail


def merge_command(step_dir: Path, target: Path) -> list[str]:
    return [sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp", "--local_dir", str(step_dir),
            "--target_dir", str(target)]


def fold_lora(model_dir: Path, adapter_dir: Path) -> None:
    """Fold a peft adapter into the base weights saved in ``model_dir`` (in place)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(model_dir), torch_dtype=torch.float32, local_files_only=True)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.to(torch.bfloat16).save_pretrained(str(model_dir))


def merge_checkpoint(step_dir: Path, dest: Path, log_path: Path) -> Path:
    """Write the model of ``step_dir`` to ``dest`` as a Hugging Face folder; raise with the merger's log on failure."""
    tmp = dest.with_name(f".{dest.name}.merging")
    shutil.rmtree(tmp, ignore_errors=True)
    with log_path.open("ab") as log:
        code = subprocess.run(merge_command(step_dir, tmp), stdout=log, stderr=subprocess.STDOUT,
                              env=child_environment({}), check=False).returncode
    if code != 0 or not (tmp / "config.json").is_file():
        raise RuntimeError(f"verl's model merger failed (exit {code}) on {step_dir}; log {log_path}:\n"
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
