"""What post-training did to one weight matrix: the size, rank and direction of ΔW = W_post − W_base.

Per matrix (m × n, r = min(m, n), k = top_k capped at r):
- ``fro`` = ‖ΔW‖_F and ``rel_fro`` = ‖ΔW‖_F / ‖W_base‖_F; ``spectral`` = σ₁(ΔW) and ``rel_spectral`` = σ₁(ΔW) / σ₁(W);
- ``stable_rank`` = ‖ΔW‖²_F / σ₁(ΔW)² (between 1 and r; robust to tiny singular values);
- ``effective_rank`` = exp(entropy of σᵢ / Σσⱼ) (Roy and Vetterli, 2007), which needs every singular value: only with
  the exact spectrum; ``effective_rank_ratio`` divides it by r so that matrices of different shapes compare;
- ``energy_top_k`` = Σ_{i≤k} σᵢ² / ‖ΔW‖²_F, the share of the update in its k strongest directions;
- ``overlap_left`` / ``overlap_right`` = ‖U_Δᵀ U_W‖²_F / k for the top-k left (output-space) and right (input-space)
  singular subspaces of ΔW and of W_base: 1 when the update lives in the base's dominant directions, about k/m (k/n)
  for a random subspace, given as ``overlap_left_chance`` / ``overlap_right_chance``.

How this stays fast at 14B (280 matrices up to 17,408 × 5,120): nothing needs a full SVD with vectors.
- The exact spectrum (``exact=True``) is the square root of the eigenvalues of the smaller Gram matrix (ΔWᵀΔW or
  ΔWΔWᵀ, at most 5,120²), formed and diagonalised in float64 (values only, ``eigvalsh``): float64 keeps σᵢ accurate
  to about 1e-8 σ₁, far below what effective rank resolves.
- The top-k singular vectors (both subspaces) and, without the exact spectrum, the top-k singular values come from a
  randomized SVD (Halko, Martinsson and Tropp, 2011): a seeded Gaussian sketch of k + ``oversample`` columns,
  ``power_iterations`` rounds of re-orthonormalised power iteration, then the SVD of the small projected matrix.
  σ₁(W_base) (for ``rel_spectral``) always comes from it. The tests check it against numpy's exact SVD.
"""

from __future__ import annotations

import math
from typing import Any


def singular_values(a: Any) -> Any:
    """Every singular value of ``a`` (descending, float64), from the eigenvalues of its smaller Gram matrix."""
    import torch

    x = a.to(torch.float64)
    g = x @ x.T if x.shape[0] <= x.shape[1] else x.T @ x
    return torch.linalg.eigvalsh(g).clamp_min(0.0).sqrt().flip(0)


def randomized_svd(a: Any, k: int, oversample: int = 16, power_iterations: int = 4,
                   seed: int = 0) -> tuple[Any, Any, Any]:
    """Top-k (U, S, V) of ``a`` by a seeded randomized range finder; U is m × k, V is n × k."""
    import torch

    m, n = a.shape
    r = min(k + oversample, m, n)
    gen = torch.Generator(device=a.device).manual_seed(seed)
    omega = torch.randn(n, r, generator=gen, device=a.device, dtype=a.dtype)
    q = torch.linalg.qr(a @ omega).Q
    for _ in range(power_iterations):
        z = torch.linalg.qr(a.T @ q).Q
        q = torch.linalg.qr(a @ z).Q
    ub, s, vt = torch.linalg.svd(q.T @ a, full_matrices=False)
    k = min(k, r)
    return (q @ ub)[:, :k], s[:k], vt[:k].T


def effective_rank(s: Any) -> float:
    """exp(H(p)) with p = σ / Σσ (zero singular values contribute nothing)."""
    import torch

    total = float(s.sum())
    if total <= 0:
        return math.nan
    p = s[s > 0] / total
    return math.exp(float(-(p * torch.log(p)).sum()))


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 and math.isfinite(a / b) else None


def delta_metrics(base: Any, post: Any, top_k: int = 16, exact: bool = True, oversample: int = 16,
                  power_iterations: int = 4, seed: int = 0) -> dict[str, Any]:
    """The metrics of the module docstring for one pair of same-shape matrices (any dtype, any device)."""
    import torch

    if base.shape != post.shape or base.dim() != 2:
        raise ValueError(f"weight-delta metrics need two matrices of one shape, got {tuple(base.shape)} and "
                         f"{tuple(post.shape)}")
    w = base.to(torch.float32)
    d = post.to(torch.float32) - w
    m, n = d.shape
    r = min(m, n)
    k = min(top_k, r)
    fro = float(torch.linalg.vector_norm(d, dtype=torch.float64))
    w_fro = float(torch.linalg.vector_norm(w, dtype=torch.float64))
    out: dict[str, Any] = {"shape": [m, n], "max_rank": r, "k": k, "fro": fro, "rel_fro": _ratio(fro, w_fro),
                           "overlap_left_chance": k / m, "overlap_right_chance": k / n, "exact": exact}
    uw, sw, vw = randomized_svd(w, k, oversample, power_iterations, seed)
    if fro == 0.0:
        return {**out, "spectral": 0.0, "rel_spectral": 0.0, "stable_rank": None, "effective_rank": None,
                "effective_rank_ratio": None, "energy_top_k": None, "overlap_left": None, "overlap_right": None}
    ud, sd, vd = randomized_svd(d, k, oversample, power_iterations, seed + 1)
    if exact:
        s_all = singular_values(d)
        top = s_all[:k]
        eff = effective_rank(s_all)
    else:
        top, eff = sd.to(torch.float64), None
    spectral = float(top[0])
    out.update(
        spectral=spectral,
        rel_spectral=_ratio(spectral, float(sw[0])),
        stable_rank=fro**2 / spectral**2,
        effective_rank=eff,
        effective_rank_ratio=None if eff is None else eff / r,
        energy_top_k=float((top**2).sum()) / fro**2,
        overlap_left=float((ud.T @ uw).pow(2).sum()) / k,
        overlap_right=float((vd.T @ vw).pow(2).sum()) / k,
    )
    return out
