"""Train the tiny model with SFT for a few steps; the tests run this one process or under torchrun.

Why a script: the resume and FSDP tests need real separate processes (killed mid-run, or launched by torchrun),
so the training run they compare lives here. Usage:
``train_sft_tiny.py MODEL_DIR RUN_DIR [--epochs N] [--stop-after K] [--slow S] [--checkpoint-every C] [--export DIR]
[--micro-tokens T] [--grad-sync MODE]``.
"""

from __future__ import annotations

import argparse
import json
import time


def fixture_groups(tokenizer, n: int = 24):
    from stages.lm.chat import ChatFormat
    from stages.lm.engine import Sample

    fmt = ChatFormat()
    groups = []
    for i in range(n):
        a, b = 3 * i + 1, 7 * i + 2
        messages = [{"role": "user", "content": f"What is {a} plus {b}?"},
                    {"role": "assistant", "content": f"{a} plus {b} is {a + b}."}]
        groups.append([Sample.from_chat(fmt.encode(tokenizer, messages))])
    return groups


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("run_dir")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--micro-tokens", type=int, default=128)
    parser.add_argument("--checkpoint-every", type=int, default=0)
    parser.add_argument("--stop-after", type=int, default=0, help="request a stop after this many steps")
    parser.add_argument("--slow", type=float, default=0.0, help="sleep per step (lets a test kill mid-run)")
    parser.add_argument("--export", default=None)
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--fsdp", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--grad-sync", default="auto", choices=["auto", "every_micro_batch", "last_micro_batch"])
    args = parser.parse_args()

    from stages.lm.engine import EpochBatches, TrainConfig, Trainer
    from stages.lm.loading import LoraSettings
    from stages.lm.losses.nll import NLLLoss

    config = TrainConfig(lr=2e-3, epochs=args.epochs, global_batch_groups=args.batch, micro_batch_tokens=args.micro_tokens,
                         max_length=args.micro_tokens, warmup_ratio=0.1, checkpoint_every=args.checkpoint_every,
                         keep_last=2, seed=0, weight_decay=0.01, lora=LoraSettings(r=4, alpha=8) if args.lora else None,
                         fsdp=args.fsdp, grad_sync=args.grad_sync)
    trainer = Trainer(config, args.model_dir, args.run_dir)
    data = EpochBatches(fixture_groups(trainer.tokenizer), epochs=args.epochs, seed=0, batch_groups=args.batch)
    loss = NLLLoss()
    steps_seen = {"n": 0}
    original = trainer.train_step

    def paced_step(*a, **k):
        out = original(*a, **k)
        steps_seen["n"] += 1
        if args.slow:
            time.sleep(args.slow)
        return out

    trainer.train_step = paced_step  # type: ignore[method-assign]
    stop = (lambda: steps_seen["n"] >= args.stop_after) if args.stop_after else None
    result = trainer.fit(data, loss, should_stop=stop)
    if args.export and result.status == "completed":
        trainer.export_hf(args.export)
    if trainer.info.is_main:
        print(json.dumps({"status": result.status, "step": result.step}), flush=True)
    trainer.close()
    from stages.lm.engine.distributed import destroy

    destroy(trainer.info)


if __name__ == "__main__":
    main()
