"""The exact KL(base || post): equal to a brute-force sum over the full vocabulary of the models' own logits (chunked
or not), never negative on several tiny checkpoints run through the evaluator's real lifecycle (the base itself, and
copies perturbed from barely to clearly), and with a smaller standard error than the Monte Carlo figure computed on
the same samples, which stays beside it.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from stages.evaluator.items import read_records
from stages.evaluator.metrics.kl import chunk_sizes, mean_stderr, token_kl
from tests.evaluator.conftest import manifest, network_blocked, run_in_process

VOCAB = 151936


def _perturbed(tiny: Path, dest: Path, scale: float, seed: int) -> Path:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny), local_files_only=True)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    model.save_pretrained(str(dest))
    for f in tiny.glob("tokenizer*"):
        shutil.copyfile(f, dest / f.name)
    shutil.copyfile(tiny / "chat_template.jinja", dest / "chat_template.jinja")
    return dest


def _brute_force(base, post, ids):
    """KL at every position from each model's full forward logits, softmax over the whole vocabulary in float64."""
    import torch

    with torch.no_grad():
        lp = torch.log_softmax(base(ids).logits[0].double(), dim=-1)
        lq = torch.log_softmax(post(ids).logits[0].double(), dim=-1)
    return (lp.exp() * (lp - lq)).sum(dim=-1), lp, lq


def test_exact_kl_equals_brute_force(tiny_model_dir, perturbed_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), local_files_only=True).eval()
    post = AutoModelForCausalLM.from_pretrained(str(perturbed_model_dir), local_files_only=True).eval()
    ids = torch.randint(0, VOCAB, (1, 24), generator=torch.Generator().manual_seed(3))
    want, lp, lq = _brute_force(base, post, ids)
    with torch.no_grad():
        hb, hq = base.model(ids).last_hidden_state[0, :-1], post.model(ids).last_hidden_state[0, :-1]
    wb, wq, targets = base.get_output_embeddings().weight, post.get_output_embeddings().weight, ids[0, 1:]
    small = 8 * 4 * 20000  # one position of 20,000 vocabulary columns a chunk: both kinds of chunking
    assert chunk_sizes(VOCAB, small) == (1, 20000) and chunk_sizes(VOCAB)[1] == VOCAB
    for budget, n in ((None, 23), (small, 4)):  # chunked vocabulary: one position a chunk, so a few positions
        got = token_kl(hb[:n], wb, hq[:n], wq, targets[:n], **({} if budget is None else {"budget_bytes": budget}))
        assert got.kl.shape == (n,) and bool((got.kl >= 0).all())
        assert torch.allclose(got.kl, want[:n], rtol=1e-6, atol=1e-12), (got.kl - want[:n]).abs().max()
        assert torch.allclose(got.base_logprob, lp[:n].gather(1, targets[:n, None]).squeeze(1), atol=1e-9)
        assert torch.allclose(got.post_logprob, lq[:n].gather(1, targets[:n, None]).squeeze(1), atol=1e-9)
    assert float(want[:-1].min()) > 1e-4  # the perturbation is visible: the comparison above is not 0 == 0
    # bf16 models (GPU): the logits come from the bf16 values in float32, not rounded back to bf16
    half = [x.bfloat16() for x in (hb, wb, hq, wq)]
    lp16, lq16 = (torch.log_softmax((h.float() @ w.float().t()).double(), -1) for h, w in (half[:2], half[2:]))
    got16 = token_kl(*half, targets)
    assert torch.allclose(got16.kl, (lp16.exp() * (lp16 - lq16)).sum(-1), rtol=1e-6, atol=1e-12)
    same = token_kl(hb, wb, hb.clone(), wb.clone(), targets)
    assert bool((same.kl == 0).all())
    with pytest.raises(ValueError, match="different vocabularies"):
        token_kl(hb, wb, hq, wq[:-1], targets)


def test_mean_stderr():
    assert mean_stderr([]) == (None, None) and mean_stderr([2.0]) == (2.0, None)
    mean, se = mean_stderr([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3)
    assert se == pytest.approx(math.sqrt(sum((x - 7 / 3) ** 2 for x in (1, 2, 4)) / 2 / 3))


@pytest.fixture(scope="module")
def checkpoints(tiny_model_dir, perturbed_model_dir, tmp_path_factory) -> dict[str, Path]:
    """The base itself, a copy perturbed so little that Monte Carlo goes negative on some samples, and the
    evaluator tests' perturbed copy (a clear step)."""
    tiny = _perturbed(tiny_model_dir, tmp_path_factory.mktemp("kl-tiny-step"), 1e-4, 11)
    return {"identical": tiny_model_dir, "tiny-step": tiny, "large-step": perturbed_model_dir}


def test_kl_suite_is_never_negative_and_beats_monte_carlo(checkpoints, tiny_model_dir, fixtures_dir, tmp_path):
    params = {"suite": "target", "target_env_id": "eval:MATH500", "target_limit": 1,
              "greedy": {"temperature": 0.0, "max_new_tokens": 2},
              "kl_prompts": 3, "kl_samples": 3, "kl_max_new_tokens": 12, "batch_size": 9}
    from stages.core.results import EvalResults

    seen = {}
    for name, model in checkpoints.items():
        inputs = {"model": (model, "hf_model"), "base_model": (tiny_model_dir, "hf_model"),
                  "target_data": (fixtures_dir / "datasets" / "math-eval", "gem_dataset")}
        out = tmp_path / name
        m = manifest(tmp_path / f"{name}.json", f"kl.{name}", inputs, params, out)
        with network_blocked():
            assert run_in_process(m) == 0, (out / "manifest.json").read_text()
        res = EvalResults.model_validate_json((out / "results.json").read_text())
        recs = read_records(out / res.samples_files["kl_target"])
        per_sample = [x for r in recs for x in r.extra["kl_exact"]]
        mc = [b - q for r in recs for b, q in zip(r.extra["base_logprob"], r.extra["post_logprob"])]
        assert res.kl_target_n == len(per_sample) == len(mc) == 9
        assert all(x >= 0 for x in per_sample) and res.kl_target_exact >= 0, (name, per_sample)
        assert res.kl_target_exact == pytest.approx(sum(per_sample) / 9)
        assert res.kl_target == pytest.approx(sum(mc) / 9)
        assert (res.kl_target_stderr, res.kl_target_exact_stderr) == pytest.approx(
            (mean_stderr(mc)[1], mean_stderr(per_sample)[1]))
        assert all(r.score == pytest.approx(r.metrics["kl_exact_sum"]) for r in recs)
        seen[name] = (res, mc)
    same, _ = seen["identical"]
    assert same.kl_target_exact == 0.0 and same.kl_target == 0.0
    for name in ("tiny-step", "large-step"):
        res, mc = seen[name]
        assert res.kl_target_exact > 0
        assert res.kl_target_exact_stderr < res.kl_target_stderr, name
        # the Monte Carlo check agrees with the exact value within its noise
        assert abs(res.kl_target - res.kl_target_exact) < 4 * res.kl_target_stderr, name
    tiny_res, tiny_mc = seen["tiny-step"]
    assert min(tiny_mc) < 0 <= tiny_res.kl_target_exact  # the failure mode the exact figure removes
    assert 0 < tiny_res.kl_target_exact < seen["large-step"][0].kl_target_exact
