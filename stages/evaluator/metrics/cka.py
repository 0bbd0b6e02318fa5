"""Centered kernel alignment (CKA) between two representations of the same inputs, linear kernel, plain and debiased.

Why CKA: it compares two sets of activations (n inputs × p features and n × q) without needing the features to
correspond, is invariant to orthogonal transforms and isotropic scaling of either side (so a rotated but otherwise
intact residual stream scores 1), and is the measure the representation-similarity literature uses for layer-wise
comparisons of networks (Kornblith et al., 2019, "Similarity of Neural Network Representations Revisited").

- linear CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with K = X Xᵀ, L = Y Yᵀ on column-centred X, Y, where the
  biased HSIC is tr(K L) = ‖Yᵀ X‖²_F. It is biased upwards when the feature count is large against n: two
  independent representations score about sqrt(p q) / n, not 0.
- debiased CKA replaces HSIC by the unbiased estimator of Song et al. (2012), as proposed for CKA by Nguyen, Raghu
  and Kornblith (2021): with K̃ and L̃ the Gram matrices with their diagonals set to zero,
  HSIC_u = [tr(K̃ L̃) + (1ᵀK̃1)(1ᵀL̃1) / ((n−1)(n−2)) − 2 (1ᵀK̃L̃1) / (n−2)] / (n (n−3)).
  Independent representations then score about 0 (it can be slightly negative); it needs n ≥ 4.

Everything works on Gram matrices in float64 (n × n), so the cost is O(n² (p + q)) and the width of a 14B model's
residual stream (5,120) is no problem for the few hundred to few thousand probe texts a suite uses.
"""

from __future__ import annotations

import math

import numpy as np


def _centred(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"a representation is a 2-D array (inputs × features), got shape {a.shape}")
    return a - a.mean(axis=0, keepdims=True)


def gram(x: np.ndarray) -> np.ndarray:
    """The linear-kernel Gram matrix of the column-centred representation (n × n, float64)."""
    a = _centred(x)
    return a @ a.T


def _hsic(k: np.ndarray, l: np.ndarray) -> float:
    return float(np.sum(k * l))  # tr(K L) for symmetric K, L


def _hsic_unbiased(k: np.ndarray, l: np.ndarray) -> float:
    n = k.shape[0]
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    ones_k, ones_l = kt.sum(axis=0), lt.sum(axis=0)  # 1ᵀK̃ and 1ᵀL̃ (symmetric)
    trace = float(np.sum(kt * lt))
    middle = float(ones_k.sum() * ones_l.sum()) / ((n - 1) * (n - 2))
    last = 2.0 * float(ones_k @ ones_l) / (n - 2)
    return (trace + middle - last) / (n * (n - 3))


def _check_pair(kx: np.ndarray, ly: np.ndarray) -> None:
    if kx.shape != ly.shape:
        raise ValueError(f"CKA compares representations of the same inputs: {kx.shape[0]} vs {ly.shape[0]} rows")


def cka_from_grams(kx: np.ndarray, ly: np.ndarray, debiased: bool = False) -> float:
    """CKA from two Gram matrices of centred representations (see ``gram``); NaN when a side is constant."""
    _check_pair(kx, ly)
    if debiased:
        if kx.shape[0] < 4:
            raise ValueError("debiased CKA needs at least 4 inputs")
        h = _hsic_unbiased
    else:
        h = _hsic
    xx, yy = h(kx, kx), h(ly, ly)
    if not (xx > 0 and yy > 0):
        return math.nan
    return h(kx, ly) / math.sqrt(xx * yy)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two representations of the same n inputs (rows)."""
    return cka_from_grams(gram(x), gram(y), debiased=False)


def debiased_linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Debiased linear CKA (unbiased HSIC) of two representations of the same n ≥ 4 inputs."""
    return cka_from_grams(gram(x), gram(y), debiased=True)
