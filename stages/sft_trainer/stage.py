"""The SFT trainer's declaration. Imports nothing heavy.

Engines: ``native`` (``stages.lm``; the default outside the image) and ``verl`` (verl 0.9.1's ``sft_trainer``; the
sft-trainer image sets ``FLLM_DEFAULT_ENGINE=verl``). ``preflight`` checks the data and the batch arithmetic before
anything is written, so bad input exits 2 without spending GPU time.
"""

from stages.core import ArtifactKind as K
from stages.core import InputDecl, OutputDecl, StageDef
from stages.sft_trainer.params import SFTParams

STAGE = StageDef(
    name="sft-trainer",
    description="Supervised fine-tuning (GT-SFT, SF-SFT, CF-SFT) on an sft_data artifact.",
    params=SFTParams,
    engines=("native", "verl"),
    inputs={
        "model": InputDecl((K.hf_model,), "The starting checkpoint (BASE or SAFE)."),
        "data": InputDecl((K.sft_data,), "Training rows: parquet with `messages` (the collector's `sft`)."),
    },
    outputs={
        "model": OutputDecl(K.hf_model, "The fine-tuned model as a Hugging Face folder.", "model"),
        "checkpoints": OutputDecl(K.checkpoints, "Resumable checkpoints.", "checkpoints", required=False),
        "metrics": OutputDecl(K.metrics, "Per-step loss, lr, throughput.", "metrics.jsonl"),
    },
    run="stages.sft_trainer.run:run",
    preflight="stages.sft_trainer.preflight:preflight",
)
