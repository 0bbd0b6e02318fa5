"""Linear probes on one layer's activations: how well a labelled property (here, whether a question-answer statement
is true) is linearly decodable, and whether the base model's readout still works after post-training.

Per layer, with k folds that keep both statements of a question together (so a probe never sees the question it is
tested on), the pooled accuracy over all held-out rows of:
- ``base``: a probe trained on the base model's activations, tested on the base's (what the base encodes);
- ``transfer``: that same probe — its standardisation included — applied unchanged to the post-trained model's
  activations of the held-out rows (retention of the base's readout), and ``agreement``, the share of held-out rows
  the probe labels the same on both models;
- ``post``: a probe retrained on the post-trained model's activations (what remains decodable at all);
- ``control``: a probe trained on the base's activations with the training labels shuffled (seeded), tested on the
  true labels: chance level, the floor that says an accuracy above it is not the probe memorising noise.

The probe is L2-regularised logistic regression on standardised features (mean and scale of the training rows),
fitted by Newton's method from zero (deterministic, see ``fit_logistic``), in float64 on a CPU and float32 on a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass
class ProbeScores:
    n: int
    base: float
    control: float
    transfer: float | None = None
    agreement: float | None = None
    post: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fold_ids(groups: Sequence[object], folds: int, seed: int) -> np.ndarray:
    """Fold index of every row; rows of one group share a fold; groups are dealt to folds in a seeded order."""
    uniq = list(dict.fromkeys(groups))
    if len(uniq) < folds:
        raise ValueError(f"{folds} folds need at least {folds} groups, got {len(uniq)}")
    order = np.random.default_rng(seed).permutation(len(uniq))
    fold_of = {uniq[g]: i % folds for i, g in enumerate(order)}
    return np.asarray([fold_of[g] for g in groups], dtype=np.int64)


def _device_dtype(device: str | None) -> tuple[Any, Any]:
    import torch

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return dev, torch.float64 if dev.type == "cpu" else torch.float32


def fit_logistic(x: Any, y: Any, l2: float, max_iter: int = 50) -> Any:
    """Weights (d + 1, bias last) minimising mean logistic loss + l2/2 ‖w‖² (the bias, a constant feature of 1, is
    penalised alike: features are standardised and labels balanced, so it stays near 0).

    Newton's method with a backtracking line search, from zero: the loss is strongly convex, so it converges to the
    unique optimum in a few tens of steps, deterministically. Each step solves with the smaller of the d × d Hessian
    and, through the Woodbury identity, an n × n system on the precomputed Gram matrix (d is up to 5,120 at 14B
    against a few hundred training rows).
    """
    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    xa = torch.cat([x, torch.ones(n, 1, dtype=x.dtype, device=x.device)], dim=1)
    d = xa.shape[1]
    eye = torch.eye(min(n, d), dtype=x.dtype, device=x.device)
    gram = xa @ xa.T if d > n else None

    def loss_of(w: Any) -> Any:
        return F.binary_cross_entropy_with_logits(xa @ w, y) + 0.5 * l2 * (w @ w)

    w = torch.zeros(d, dtype=x.dtype, device=x.device)
    loss = loss_of(w)
    for _ in range(max_iter):
        p = torch.sigmoid(xa @ w)
        g = xa.T @ (p - y) / n + l2 * w
        s = p * (1 - p) / n
        if gram is not None:  # (l2 I + Xᵀ S X)⁻¹ g = (g − Xᵀ R (l2 I + R X Xᵀ R)⁻¹ R X g) / l2, R = S^½
            r = s.sqrt()
            chol = torch.linalg.cholesky(l2 * eye + r[:, None] * gram * r[None, :])
            inner = torch.cholesky_solve((r * (xa @ g))[:, None], chol)[:, 0]
            step = (g - xa.T @ (r * inner)) / l2
        else:
            chol = torch.linalg.cholesky(xa.T @ (s[:, None] * xa) + l2 * eye)
            step = torch.cholesky_solve(g[:, None], chol)[:, 0]
        decrement = float(g @ step)
        if decrement < 1e-12:
            break
        t = 1.0
        while True:
            candidate = w - t * step
            new_loss = loss_of(candidate)
            if float(new_loss) <= float(loss) - 0.25 * t * decrement or t < 1e-8:
                break
            t *= 0.5
        w, loss = candidate, new_loss
    return w


class _Probe:
    """A fitted readout: standardisation of its training rows, then a linear score."""

    def __init__(self, x: Any, y: Any, l2: float):
        std = x.std(dim=0)
        self.mean = x.mean(dim=0)
        self.scale = std.clamp_min(1e-6 * float(std.max()) + 1e-12)
        self.w = fit_logistic((x - self.mean) / self.scale, y, l2)

    def predict(self, x: Any) -> Any:
        return ((x - self.mean) / self.scale) @ self.w[:-1] + self.w[-1] > 0


def probe_layer(base: np.ndarray, labels: Sequence[int], folds: np.ndarray, l2: float, seed: int,
                post: np.ndarray | None = None, device: str | None = None) -> ProbeScores:
    """Cross-validated probe accuracies of one layer (see the module docstring); ``post`` rows match ``base`` rows."""
    import torch

    dev, dtype = _device_dtype(device)
    y_all = torch.as_tensor(np.asarray(labels), dtype=dtype, device=dev)
    xb = torch.as_tensor(np.asarray(base), dtype=dtype, device=dev)
    xp = None if post is None else torch.as_tensor(np.asarray(post), dtype=dtype, device=dev)
    if xp is not None and xp.shape != xb.shape:
        raise ValueError(f"post activations {tuple(xp.shape)} do not match the base's {tuple(xb.shape)}")
    rng = np.random.default_rng(seed)
    hits = {"base": 0, "control": 0, "transfer": 0, "agreement": 0, "post": 0}
    for f in range(int(folds.max()) + 1):
        train = torch.as_tensor(np.flatnonzero(folds != f), device=dev)
        test = torch.as_tensor(np.flatnonzero(folds == f), device=dev)
        y_train, y_test = y_all[train], y_all[test].bool()
        probe = _Probe(xb[train], y_train, l2)
        on_base = probe.predict(xb[test])
        hits["base"] += int((on_base == y_test).sum())
        shuffled = y_train[torch.as_tensor(rng.permutation(len(train)), device=dev)]
        hits["control"] += int((_Probe(xb[train], shuffled, l2).predict(xb[test]) == y_test).sum())
        if xp is not None:
            on_post = probe.predict(xp[test])
            hits["transfer"] += int((on_post == y_test).sum())
            hits["agreement"] += int((on_post == on_base).sum())
            hits["post"] += int((_Probe(xp[train], y_train, l2).predict(xp[test]) == y_test).sum())
    n = len(y_all)
    scores = ProbeScores(n=n, base=hits["base"] / n, control=hits["control"] / n)
    if xp is not None:
        scores.transfer, scores.agreement, scores.post = (hits[k] / n for k in ("transfer", "agreement", "post"))
    return scores
