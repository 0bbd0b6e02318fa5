"""The few numbers a person wants at a glance (the manifest's ``summary``) and a readable ``summary.md``."""

from __future__ import annotations

from stages.core.results import EvalResults


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 6)


def _pm(value: float | None, stderr: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}" + ("" if stderr is None else f" ± {stderr:.2g} (s.e.)")


def summary_numbers(r: EvalResults) -> dict[str, float | int | str | bool | None]:
    out: dict[str, float | int | str | bool | None] = {"suites": ",".join(r.suites), "scores": len(r.scores)}
    overall = next((f for f in r.forgetting if f.task == "overall"), None)
    if overall is not None:
        out.update(forgetting=_round(overall.forgetting), backward_transfer=_round(overall.backward_transfer),
                   forgetting_items=overall.n, noise_flip_rate=_round(overall.noise_flip_rate))
    if r.policy is not None:
        out.update(self_bleu=_round(r.policy.self_bleu), distinct_2=_round(r.policy.distinct_2),
                   ece=_round(r.policy.ece), brier=_round(r.policy.brier), mean_length=_round(r.policy.mean_length))
    if r.safety is not None:
        out.update(xstest_over_refusal=_round(r.safety.xstest_over_refusal),
                   xstest_under_refusal=_round(r.safety.xstest_under_refusal),
                   harmbench_asr=_round(r.safety.harmbench_asr), harmbench_classifier=r.safety.harmbench_classifier)
    for s in r.scores:
        if s.tier == "target" and s.metric == "pass@1":
            out["target_pass@1"] = _round(s.value)
    if r.kl_target_exact is not None:
        out["kl_target_exact"] = _round(r.kl_target_exact)
    if r.kl_target is not None:
        out["kl_target"] = _round(r.kl_target)
    return out


def summary_markdown(r: EvalResults) -> str:
    lines = [f"# {r.run_id}", "", f"model: `{r.model_uri}`  suites: {', '.join(r.suites)}", ""]
    if r.scores:
        lines += ["| task | metric | value | n |", "|---|---|---|---|"]
        lines += [f"| {s.task} | {s.metric} | {s.value:.4f} | {s.n if s.n is not None else ''} |" for s in r.scores]
        lines.append("")
    if r.forgetting:
        lines += ["| task | n | F | BT | F_cond | F_true | McNemar p |", "|---|---|---|---|---|---|---|"]
        for f in r.forgetting:
            cells = [f.forgetting_conditional, f.forgetting_true, f.mcnemar_p]
            txt = ["" if c is None else f"{c:.4f}" for c in cells]
            lines.append(f"| {f.task} | {f.n} | {f.forgetting:.4f} | {f.backward_transfer:.4f} | " + " | ".join(txt)
                         + " |")
        lines.append("")
    for name, block in (("policy", r.policy), ("safety", r.safety)):
        if block is not None:
            vals = {k: v for k, v in block.model_dump().items() if v not in (None, {}, [])}
            lines += [f"**{name}**: " + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                                  for k, v in vals.items()), ""]
    if r.kl_target_exact is not None:
        exact, mc = _pm(r.kl_target_exact, r.kl_target_exact_stderr), _pm(r.kl_target, r.kl_target_stderr)
        lines += [f"**KL(base || post)** on target prompts, exact per token: {exact}; Monte Carlo check: {mc} "
                  f"(n={r.kl_target_n} base samples)", ""]
    elif r.kl_target is not None:
        lines += [f"**KL(base || post)** on target prompts (Monte Carlo): {_pm(r.kl_target, r.kl_target_stderr)} "
                  f"(n={r.kl_target_n})", ""]
    return "\n".join(lines) + "\n"
