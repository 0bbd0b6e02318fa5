"""The openai backend against a local fault-injecting OpenAI-compatible server: retries with backoff on 429 and
5xx, immediate failure on other errors, the key only from the environment, and n completed when a server
returns fewer choices."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stages.lm.errors import GenerationBackendError
from stages.lm.generation import SamplingParams, make_backend


class FaultyServer:
    """Answers /v1/chat/completions; ``script`` lists the status codes to return first, then 200s."""

    def __init__(self, script: list[int], choices_per_answer: int | None = None) -> None:
        self.script = list(script)
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.choices_per_answer = choices_per_answer
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                status = server.script.pop(0) if server.script else 200
                if status != 200:
                    payload = json.dumps({"error": {"message": f"injected {status}"}}).encode()
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                n = body.get("n", 1) if server.choices_per_answer is None else server.choices_per_answer
                choices = [{"index": i, "finish_reason": "length",
                            "message": {"role": "assistant", "content": f"answer {len(server.requests)}.{i}"},
                            "logprobs": {"content": [{"token": "a", "logprob": -0.5}, {"token": "b", "logprob": -1.5}]}}
                           for i in range(n)]
                payload = json.dumps({"id": "x", "object": "chat.completion", "choices": choices}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def backend(url, **kw):
    return make_backend("openai", base_url=url, model="teacher", backoff_base_s=0.01, **kw)


def test_retries_429_and_5xx_then_succeeds(monkeypatch):
    monkeypatch.setenv("TEST_TEACHER_KEY", "sk-secret-123")
    with FaultyServer([429, 503, 500]) as server:
        b = backend(server.url, api_key_env="TEST_TEACHER_KEY", max_retries=4)
        out = b.generate([[{"role": "user", "content": "hi"}]], SamplingParams(n=2, max_tokens=4, logprobs=True))
    assert len(server.requests) == 4 and b.retries_done == 3
    assert [c.text for c in out[0].completions] == ["answer 4.0", "answer 4.1"]
    assert out[0].completions[0].logprobs == [-0.5, -1.5] and out[0].completions[0].finish_reason == "length"
    assert all(h.get("Authorization") == "Bearer sk-secret-123" for h in server.headers)
    assert "sk-secret-123" not in json.dumps(b.describe()) and b.describe()["api_key_env"] == "TEST_TEACHER_KEY"
    assert server.requests[0]["messages"] == [{"role": "user", "content": "hi"}] and server.requests[0]["n"] == 2


def test_gives_up_after_max_retries():
    with FaultyServer([500] * 10) as server:
        b = backend(server.url, max_retries=2)
        with pytest.raises(GenerationBackendError, match="kept failing after 2 retries .*HTTP 500"):
            b.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_tokens=4))
    assert len(server.requests) == 3


def test_client_errors_fail_at_once():
    with FaultyServer([400]) as server:
        b = backend(server.url, max_retries=5)
        with pytest.raises(GenerationBackendError, match="refused the request .*HTTP 400"):
            b.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_tokens=4))
    assert len(server.requests) == 1


def test_connection_errors_are_retried_and_reported():
    b = backend("http://127.0.0.1:9/v1", max_retries=1)  # nothing listens on the discard port
    with pytest.raises(GenerationBackendError, match="kept failing"):
        b.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_tokens=4))
    assert b.retries_done == 1


def test_missing_choices_are_requested_again_with_new_seeds():
    with FaultyServer([], choices_per_answer=1) as server:  # like llama.cpp: one choice whatever n is
        b = backend(server.url, max_concurrency=2)
        out = b.generate([[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]],
                         SamplingParams(n=3, max_tokens=4, seed=5))
    assert [len(r.completions) for r in out] == [3, 3]
    assert len(server.requests) == 6 and len({r["seed"] for r in server.requests}) == 6


def test_vllm_extensions_only_when_asked():
    with FaultyServer([]) as server:
        backend(server.url).generate([[{"role": "user", "content": "a"}]], SamplingParams(max_tokens=4))
        backend(server.url, server="vllm", thinking=True).generate([[{"role": "user", "content": "a"}]],
                                                                    SamplingParams(max_tokens=4, top_k=5))
    generic, vllm = server.requests
    assert "chat_template_kwargs" not in generic and "top_k" not in generic
    assert vllm["chat_template_kwargs"] == {"enable_thinking": True} and vllm["top_k"] == 5
