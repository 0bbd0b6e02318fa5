"""The LM core shared by every stage that touches a model.

Why one package: the forgetting comparison is only fair if all six methods load models, format chats, generate and
train through the same code, so they differ only in data and loss. Submodules import torch/transformers lazily;
importing `stages.lm` itself is cheap.

- `loading`     model + tokenizer from a local folder, dtype/device/attention choice, LoRA, frozen reference
- `chat`        the Qwen3 chat format (thinking on/off) and assistant-token masks
- `generation`  one interface over `hf`, `vllm` and `openai` backends
- `engine`      the native training engine (packing, AdamW, schedule, FSDP2, checkpoints, export, metrics)
- `losses`      small loss functions (NLL, DPO/SPIN, GRPO, pi-Distill) that plug into the engine
"""
