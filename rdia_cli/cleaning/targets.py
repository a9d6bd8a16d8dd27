"""The relabeling function R: new soft targets for the rows chosen as harmful (paper Eq. 12).

Works on plain arrays: ``probs`` (N, K) the model's probabilities at θ̂, ``labels`` (N,) class
indices (``rdia_cli.glossary``).
"""

from __future__ import annotations

import numpy as np

from rdia_cli.errors import InputError

TARGETS = ("paper", "gradient", "hard")


def relabel_targets(probs: np.ndarray, labels: np.ndarray, *, kind: str = "paper") -> np.ndarray:
    """New soft targets (N, K) for rows with current labels ``labels``.

    ``paper``: paper Eq. 12, y'_m = 0 and y'_k = log(1 - p_m) / ((K - 1) log p_k) for k ≠ m.
        y' ∈ [0, 1/(K-1)]^K, CE(y', p) = -log(1 - p_m) (Lemma 2), the flipped label for K = 2.
    ``gradient``: y''_k = p_k / (1 - p_m), y''_m = 0 — the target whose CE gradient at θ̂ equals
        that of -log(1 - p_m) (equal to ``paper`` only for K = 2).
    ``hard``: one-hot on the most likely class other than m.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n, k = probs.shape
    rows = np.arange(n)
    if kind not in TARGETS:
        raise InputError(f"`targets` must be one of {', '.join(TARGETS)}, not {kind!r}.")
    eps = np.finfo(np.float64).tiny
    p = np.clip(probs, eps, 1.0)
    pm = p[rows, labels]
    if kind == "hard" or k == 2 and kind == "paper":
        masked = p.copy()
        masked[rows, labels] = -1.0
        out = np.zeros((n, k))
        out[rows, masked.argmax(1)] = 1.0
        return out
    if kind == "gradient":
        others = p.copy()
        others[rows, labels] = 0.0
        return others / np.maximum(others.sum(1, keepdims=True), eps)
    # paper Eq. 12, computed in logs: log(1 - p_m) via log1p, log p_k ≤ log(1 - p_m) < 0
    num = np.log1p(-np.minimum(pm, 1.0 - 1e-16))[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / ((k - 1) * np.log(np.minimum(p, 1.0 - 1e-16)))
    out = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
    out = np.clip(out, 0.0, 1.0 / (k - 1))
    out[rows, labels] = 0.0
    return out
