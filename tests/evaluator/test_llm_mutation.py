"""AutoDAN's paraphrasing mutation (``attacks.autodan.mutate_model``) with real local chat models: it loads the
folder, answers greedily (an attack stays seeded whatever the generator draws), returns the model's reply with
exactly one placeholder, hands the text back unchanged when the reply is blank, and names the model it used."""

from __future__ import annotations

import random
import shutil

from safetensors.torch import load_file, save_file

from stages.evaluator.attacks.mutation import LLMMutation
from stages.evaluator.attacks.prototypes import PLACEHOLDER, PROTOTYPES

NEW_TOKENS = 12


def test_a_blank_reply_hands_the_text_back(tiny_model_dir):
    """The tiny random model answers with newlines only: nothing to use, so the prototype stays as it was."""
    mutation = LLMMutation(str(tiny_model_dir), "float32", thinking=False, max_new_tokens=NEW_TOKENS)
    assert mutation.name == f"llm:{tiny_model_dir.name}"
    text = PROTOTYPES[0]
    assert mutation.mutate(text, random.Random(0)) == text


def test_the_reply_replaces_the_text_greedily_with_one_placeholder(tiny_model_dir, tmp_path):
    """A model whose every logit is equal (zero embeddings, tied to the output layer) answers token 0 every step;
    that reply, not the text, comes back, with the placeholder it lacked appended, whatever the generator draws."""
    flat = tmp_path / "flat-model"
    shutil.copytree(tiny_model_dir, flat)
    weights = load_file(flat / "model.safetensors")
    weights["model.embed_tokens.weight"].zero_()
    save_file(weights, flat / "model.safetensors", metadata={"format": "pt"})

    mutation = LLMMutation(str(flat), "float32", thinking=False, max_new_tokens=NEW_TOKENS)
    reply = mutation.tokenizer.decode([0] * NEW_TOKENS).strip()
    assert reply  # token 0 is a visible character
    text = PROTOTYPES[1]
    first, again = mutation.mutate(text, random.Random(0)), mutation.mutate(text, random.Random(1))
    assert first == again == f"{reply} {PLACEHOLDER}"
    assert first.count(PLACEHOLDER) == 1 and mutation.name == "llm:flat-model"
