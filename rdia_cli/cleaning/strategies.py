"""Relabeling function R, selection of the harmful set, and the paper's baseline strategies.

All functions work on plain arrays: ``phi`` (N,) as in ``rdia_cli.glossary`` (Φ > 0 harmful),
``probs`` (N, K) the model's probabilities at θ̂, ``labels`` (N,) class indices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rdia_cli.errors import InputError

STRATEGIES = ("rdia", "drop", "uids", "optlr", "random")
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
        raise InputError(f"--targets must be one of {', '.join(TARGETS)}, not {kind!r}.")
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


def select_harmful(
    phi: np.ndarray, *, alpha: float | None = None, fraction: float | None = None
) -> np.ndarray:
    """Boolean mask of the harmful set D⁻.

    ``alpha``: Φ > α (the paper's rule, in this normalization).
    ``fraction``: the ⌈Q·N⌉ rows with the largest Φ, never a row with Φ ≤ 0 (such a row does not
    hurt the validation loss by definition).
    """
    phi = np.asarray(phi, dtype=np.float64)
    if (alpha is None) == (fraction is None):
        raise InputError("give exactly one of --alpha and --fraction.")
    if alpha is not None:
        if not math.isfinite(alpha):
            raise InputError(f"--alpha must be a finite number, not {alpha}.")
        return phi > alpha
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"--fraction must be between 0 and 1, not {fraction}.")
    count = int(math.ceil(fraction * len(phi)))
    mask = np.zeros(len(phi), dtype=bool)
    if count:
        order = np.argsort(-phi, kind="stable")[:count]
        mask[order] = True
    return mask & (phi > 0)


@dataclass
class Cleaning:
    """What a strategy decided for each training row.

    keep     rows that stay in the cleaned file (all but drop/uids removals)
    target   (N, K) training targets (one-hot where unchanged)
    relabeled rows whose target changed
    weight   per-row weights, or None when the strategy does not weight
    """

    keep: np.ndarray
    target: np.ndarray
    relabeled: np.ndarray
    weight: np.ndarray | None = None

    @property
    def n_relabeled(self) -> int:
        return int(self.relabeled.sum())

    @property
    def n_removed(self) -> int:
        return int((~self.keep).sum())


def clean(
    phi: np.ndarray,
    probs: np.ndarray,
    labels: np.ndarray,
    *,
    strategy: str = "rdia",
    alpha: float | None = None,
    fraction: float | None = None,
    targets: str = "paper",
    seed: int = 0,
    uids_beta: float = 10.0,
    grad_norm: np.ndarray | None = None,
) -> Cleaning:
    """Apply ``strategy`` to the harmful set chosen by ``alpha`` or ``fraction``.

    rdia    rows in D⁻ get the target ``targets`` (paper Eq. 12 by default).
    drop    rows in D⁻ are removed (Dropout, Wang et al. 2018).
    uids    rows with Φ ≤ α are kept; the others are kept with probability
            σ(-β Φ_i / max|Φ|) / σ(-β α / max|Φ|) (sigmoid subsampling, Wang et al. 2020).
    optlr   every row weighted max(a, min(1, ψ_i / max ψ)) (Ting & Brochu 2018 as the paper sets
            it, a = 1 / max ψ), ψ_i = ‖∇ℓ_i‖ (``grad_norm``; the identity-Hessian estimate of the
            parameter influence), rows outside D⁻ get weight 1.
    random  as many rows as D⁻, drawn uniformly, get a random other class (hard label).
    """
    phi = np.asarray(phi, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n, k = np.asarray(probs).shape
    if strategy not in STRATEGIES:
        raise InputError(f"--strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}.")
    harmful = select_harmful(phi, alpha=alpha, fraction=fraction)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), labels] = 1.0
    keep = np.ones(n, dtype=bool)
    none = np.zeros(n, dtype=bool)
    rng = np.random.default_rng(seed)
    if strategy == "rdia":
        target = onehot.copy()
        if harmful.any():
            target[harmful] = relabel_targets(probs[harmful], labels[harmful], kind=targets)
        return Cleaning(keep, target, harmful)
    if strategy == "drop":
        return Cleaning(~harmful, onehot, none)
    if strategy == "uids":
        threshold = alpha if alpha is not None else (phi[harmful].min() if harmful.any() else 0.0)
        scale = max(float(np.abs(phi).max()), 1e-300)
        with np.errstate(divide="ignore", invalid="ignore"):  # α far above every Φ: keep all
            prob = _sigmoid(-uids_beta * phi / scale) / _sigmoid(-uids_beta * threshold / scale)
        prob = np.nan_to_num(prob, nan=1.0, posinf=1.0)
        keep = ~harmful | (rng.random(n) < np.minimum(prob, 1.0))
        return Cleaning(keep, onehot, none)
    if strategy == "optlr":
        if grad_norm is None:
            raise InputError("the optlr strategy needs per-row gradient norms.")
        psi = np.asarray(grad_norm, dtype=np.float64)
        top = max(float(psi.max()), 1e-300)
        weight = np.ones(n)
        weight[harmful] = np.maximum(1.0 / top, np.minimum(1.0, psi[harmful] / top))
        return Cleaning(keep, onehot, none, weight)
    # random
    count = int(harmful.sum())
    chosen = np.zeros(n, dtype=bool)
    chosen[rng.choice(n, size=count, replace=False)] = True
    target = onehot.copy()
    shift = rng.integers(1, k, size=count)
    target[chosen] = 0.0
    target[np.flatnonzero(chosen), (labels[chosen] + shift) % k] = 1.0
    return Cleaning(keep, target, chosen)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def gradient_norms(probs: np.ndarray, labels: np.ndarray, row_norms: np.ndarray) -> np.ndarray:
    """‖∇ℓ_i‖ for logistic regression with a one-hot target: ‖p_i - e_m‖ · ‖x̃_i‖ (C' = K), or
    |1 - p_m| · ‖x̃_i‖ for the binary one-logit model."""
    probs = np.asarray(probs, dtype=np.float64)
    n, k = probs.shape
    r = probs.copy()
    r[np.arange(n), labels] -= 1.0
    rn = np.abs(r[:, 1]) if k == 2 else np.linalg.norm(r, axis=1)
    return rn * np.asarray(row_norms, dtype=np.float64)
