"""The strategies: what to do with the harmful rows D⁻ (``selection``) — relabel them with R
(``targets``), or one of the paper's baselines. ``STRATEGIES`` is the registry: name → function.

All functions work on plain arrays: ``phi`` (N,) as in ``rdia_cli.glossary`` (Φ > 0 harmful),
``probs`` (N, K) the model's probabilities at θ̂, ``labels`` (N,) class indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rdia_cli.cleaning.selection import select_harmful
from rdia_cli.cleaning.targets import relabel_targets
from rdia_cli.errors import InputError


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
        raise InputError(f"`strategy` must be one of {', '.join(STRATEGIES)}, not {strategy!r}.")
    harmful = select_harmful(phi, alpha=alpha, fraction=fraction)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), labels] = 1.0
    keep = np.ones(n, dtype=bool)
    none = np.zeros(n, dtype=bool)
    rng = np.random.default_rng(seed)
    ctx = _Context(phi, np.asarray(probs), labels, harmful, onehot, keep, none, rng, alpha, targets,
                   uids_beta, grad_norm)
    return STRATEGIES[strategy](ctx)


@dataclass
class _Context:
    """What every strategy may use; each takes what it needs."""

    phi: np.ndarray
    probs: np.ndarray
    labels: np.ndarray
    harmful: np.ndarray
    onehot: np.ndarray
    keep: np.ndarray
    none: np.ndarray
    rng: np.random.Generator
    alpha: float | None
    targets: str
    uids_beta: float
    grad_norm: np.ndarray | None


def _rdia(c: _Context) -> Cleaning:
    target = c.onehot.copy()
    if c.harmful.any():
        target[c.harmful] = relabel_targets(c.probs[c.harmful], c.labels[c.harmful],
                                            kind=c.targets)
    return Cleaning(c.keep, target, c.harmful)


def _drop(c: _Context) -> Cleaning:
    return Cleaning(~c.harmful, c.onehot, c.none)


def _uids(c: _Context) -> Cleaning:
    phi, harmful, n = c.phi, c.harmful, len(c.phi)
    threshold = c.alpha if c.alpha is not None else (phi[harmful].min() if harmful.any() else 0.0)
    scale = max(float(np.abs(phi).max()), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):  # α far above every Φ: keep all
        prob = _sigmoid(-c.uids_beta * phi / scale) / _sigmoid(-c.uids_beta * threshold / scale)
    prob = np.nan_to_num(prob, nan=1.0, posinf=1.0)
    keep = ~harmful | (c.rng.random(n) < np.minimum(prob, 1.0))
    return Cleaning(keep, c.onehot, c.none)


def _optlr(c: _Context) -> Cleaning:
    if c.grad_norm is None:
        raise InputError("the optlr strategy needs per-row gradient norms.")
    psi = np.asarray(c.grad_norm, dtype=np.float64)
    top = max(float(psi.max()), 1e-300)
    weight = np.ones(len(c.phi))
    weight[c.harmful] = np.maximum(1.0 / top, np.minimum(1.0, psi[c.harmful] / top))
    return Cleaning(c.keep, c.onehot, c.none, weight)


def _random(c: _Context) -> Cleaning:
    n, k = c.onehot.shape
    labels = c.labels
    count = int(c.harmful.sum())
    chosen = np.zeros(n, dtype=bool)
    chosen[c.rng.choice(n, size=count, replace=False)] = True
    target = c.onehot.copy()
    shift = c.rng.integers(1, k, size=count)
    target[chosen] = 0.0
    target[np.flatnonzero(chosen), (labels[chosen] + shift) % k] = 1.0
    return Cleaning(c.keep, target, chosen)


# name -> strategy, in the order the CLI lists them
STRATEGIES = {"rdia": _rdia, "drop": _drop, "uids": _uids, "optlr": _optlr, "random": _random}


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
