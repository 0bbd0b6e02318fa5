"""Write a random-init Qwen3 at a real shape (0.6B to 8B) with the real Qwen3 tokenizer as a Hugging Face folder.

Why: the GPU runs measure the verl and native paths at the sizes the study trains without downloading weights (the
GPU machine reaches no hub); throughput and memory depend on the shape, not on the values. The tokenizer files
come from the test fixture (`.fixtures/tiny-qwen3`, the real Qwen3 tokenizer).
Usage: python bench/gpu/make_model.py --shape 1.7B --tokenizer DIR --out DIR
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.bench_native_engine import QWEN3_1P7B  # noqa: E402

SHAPES = {
    "0.6B": {**QWEN3_1P7B, "hidden_size": 1024, "intermediate_size": 3072, "num_attention_heads": 16,
             "num_key_value_heads": 8},
    "1.7B": QWEN3_1P7B,
    "4B": {**QWEN3_1P7B, "hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36,
           "num_attention_heads": 32, "num_key_value_heads": 8},
    "8B": {**QWEN3_1P7B, "hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36,
           "num_attention_heads": 32, "num_key_value_heads": 8, "tie_word_embeddings": False},
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="1.7B")
    ap.add_argument("--tokenizer", type=Path, required=True, help="folder holding the Qwen3 tokenizer files")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(**SHAPES[args.shape], pad_token_id=151643, eos_token_id=151645, bos_token_id=None)
    torch.manual_seed(args.seed)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    for name in TOKENIZER_FILES:
        if (args.tokenizer / name).exists():
            shutil.copy(args.tokenizer / name, args.out / name)
    print(f"{args.shape}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters -> {args.out}")


if __name__ == "__main__":
    main()
