"""The shared tiny-model fixture: real Qwen3 tokenizer and template, the agreed shape, built once and atomically."""

from __future__ import annotations

import json
import time

from tests.fixtures.tiny_model import BUILDER_VERSION, MARKER_NAME, build_tiny_model, qwen3_tokenizer_dir


def test_tokenizer_files_are_found():
    folder = qwen3_tokenizer_dir()
    assert (folder / "tokenizer.json").is_file()
    assert "chat_template" in json.loads((folder / "tokenizer_config.json").read_text())


def test_tiny_model_has_the_agreed_shape(tiny_model_dir):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["head_dim"]) == (64, 2, 32)
    assert config["vocab_size"] == 151936 and config["tie_word_embeddings"] is True
    assert config["eos_token_id"] == 151645 and config["pad_token_id"] == 151643 and config["bos_token_id"] is None
    assert (tiny_model_dir / MARKER_NAME).read_text().strip() == BUILDER_VERSION


def test_build_is_idempotent_and_leaves_no_temporary_folders(tiny_model_dir):
    started = time.perf_counter()
    assert build_tiny_model(tiny_model_dir) == tiny_model_dir
    assert time.perf_counter() - started < 0.5  # returns at once: no rebuild
    assert not [p for p in tiny_model_dir.parent.iterdir() if ".building-" in p.name]


def test_a_stale_folder_is_rebuilt(tmp_path):
    dest = tmp_path / "tiny"
    dest.mkdir()
    (dest / "config.json").write_text("{}")  # no marker: an interrupted or older build
    build_tiny_model(dest)
    assert json.loads((dest / "config.json").read_text())["model_type"] == "qwen3"
    assert (dest / "model.safetensors").is_file() and (dest / "tokenizer.json").is_file()
