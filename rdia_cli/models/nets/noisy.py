"""Training under label noise: the comparison methods of the paper's Tables 6-9, as pure pieces.

Every function here works on one mini-batch (logits, given labels) and returns a loss tensor, or
is a small numpy helper; ``rdia_cli.models.nets.training.train_net`` wires them into the
training loop. Names: B rows per batch, K classes, ``labels`` the given (possibly wrong)
labels, CE the per-row cross-entropy ``-log p_y``, ρ the share of a batch kept as clean
(smallest CE first), τ the expected noise rate.

* ``co_teaching_loss``  Co-teaching (Han et al. 2018): two networks; each is updated on the ⌈ρB⌉
  rows that the *other* network finds smallest-loss.
* ``sigua_loss``        SIGUA (Han et al. 2020, SIGUA-SL): gradient descent on the small-loss rows,
  gradient *ascent*, scaled down by ``ascent``, on the large-loss rows.
* ``forward_corrected_loss`` F-correction (Patrini et al. 2017, "forward"): CE of the given label
  under the corrected prediction ``softmax(z) @ T``, T[i, j] = P(given j | true i).
* ``estimate_transition`` Patrini et al.'s estimator of T from a model's probabilities on the noisy
  training rows: for each class i the anchor is the row with the largest p_i below that column's
  ``percentile``-th percentile (their outlier filter, 97 by default); T[i] = p(anchor).
* ``s_model_loss``      S-model (Goldberger & Ben-Reuven 2017): a noise-adaptation softmax layer,
  ``p(given j | x) = Σ_i p(true i | x) θ_ij`` with θ = row-softmax of a learned K×K matrix W;
  ``channel_init(T)`` = log T gives θ = T (the identity gives plain softmax).
* ``rdia_ls_reference_loss`` RDIA-LS as the authors' code computes it (see its docstring); the
  paper's Algorithm 2 is ``rdia_cli.models.nets.training.rdia_ls_loss``.
* ``tune_gamma``        pick γ by a held-out score (``--gamma auto``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from rdia_cli.errors import InputError

METHODS = ("erm", "rdia-ls", "self-teaching", "co-teaching", "sigua", "f-correction", "s-model")
RDIA_LS_VARIANTS = ("paper", "reference")
# the paper's grid for γ (appendix G.1): 0.05, 0.10, ..., 0.95
GAMMA_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))
# The paper's T_k = 10 epochs of the 60,000 MNIST rows at batch 128 (469 steps per epoch, the last
# one partial), counted in optimizer steps: what `--tk-steps` should be to match it on any subset.
PAPER_TK_STEPS = 10 * math.ceil(60000 / 128)


# --- shared pieces ------------------------------------------------------------------------------
def per_row_ce(logits, labels):
    """CE ``-log softmax(z)_y`` per row, shape (B,)."""
    import torch.nn.functional as F

    return F.cross_entropy(logits, labels.long(), reduction="none")


def small_loss_order(loss):
    """Row indices sorted by ascending ``loss`` (stable, detached)."""
    import torch

    return torch.argsort(loss.detach(), stable=True)


def n_keep(batch: int, rho: float) -> int:
    """⌈ρ·B⌉ rows kept as clean (the paper's |D+| ≥ ρ|D|), at most B."""
    return min(batch, max(0, math.ceil(rho * batch - 1e-9)))


def rho_at(t: int, noise_rate: float, tk: int) -> float:
    """ρ = 1 - min(t·τ/T_k, τ); ``t`` and ``tk`` in the same unit (epochs or steps), t from 1."""
    return 1.0 - min(t * noise_rate / tk, noise_rate)


# --- Co-teaching --------------------------------------------------------------------------------
def co_teaching_split(ce1, ce2, rho: float):
    """(rows to train net 1 on, rows to train net 2 on): each net gets the ⌈ρB⌉ rows of
    smallest loss under the *peer* network (Han et al. 2018, Algorithm 1, "cross-update")."""
    k = n_keep(ce1.shape[0], rho)
    return small_loss_order(ce2)[:k], small_loss_order(ce1)[:k]


def co_teaching_loss(logits1, logits2, labels, *, rho: float):
    """(loss of net 1, loss of net 2): mean CE of each net over the rows its peer selected."""
    ce1, ce2 = per_row_ce(logits1, labels), per_row_ce(logits2, labels)
    for1, for2 = co_teaching_split(ce1, ce2, rho)
    zero = logits1.sum() * 0.0
    loss1 = ce1[for1].mean() if len(for1) else zero
    loss2 = ce2[for2].mean() if len(for2) else logits2.sum() * 0.0
    return loss1, loss2


# --- SIGUA --------------------------------------------------------------------------------------
def sigua_loss(logits, labels, *, rho: float, ascent: float):
    """SIGUA-SL: ``mean_{D+} CE - ascent · mean_{D-} CE``, D+ the ⌈ρB⌉ smallest-CE rows.

    The minus sign makes the optimizer climb the loss of the large-loss rows ("gradient ascent
    on bad data", Han et al. 2020), at ``ascent`` times the learning rate. An empty group gives 0.
    """
    ce = per_row_ce(logits, labels)
    order = small_loss_order(ce)
    k = n_keep(ce.shape[0], rho)
    good, bad = order[:k], order[k:]
    zero = logits.sum() * 0.0
    lg = ce[good].mean() if len(good) else zero
    lb = ce[bad].mean() if len(bad) else zero
    return lg - ascent * lb


# --- F-correction -------------------------------------------------------------------------------
def check_transition(T, n_classes: int, what: str = "transition matrix") -> np.ndarray:
    """T as a (K, K) float64 array with non-negative rows summing to 1; else InputError."""
    try:
        T = np.asarray(T, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"The {what} is not a numeric matrix.") from None
    if T.shape != (n_classes, n_classes):
        raise InputError(f"The {what} has shape {T.shape}; the data has {n_classes} classes, so "
                         f"it must be ({n_classes}, {n_classes}).")
    if not np.isfinite(T).all() or (T < 0).any():
        raise InputError(f"The {what} must hold finite non-negative values.")
    rows = T.sum(1)
    if np.abs(rows - 1).max() > 1e-6:
        bad = int(np.argmax(np.abs(rows - 1)))
        raise InputError(f"Row {bad} of the {what} sums to {rows[bad]:.6g}; every row "
                         "T[i] = P(given label | true class i) must sum to 1.")
    return T


def forward_corrected_loss(logits, labels, transition):
    """Mean ``-log (softmax(z) @ T)_y`` (Patrini et al. 2017, forward correction), in log space.

    ``transition`` is a (K, K) tensor, T[i, j] = P(given j | true i); T = I is plain CE.
    """
    import torch

    logp = torch.log_softmax(logits, dim=1)
    logT = torch.log(transition.clamp_min(1e-12)).to(logp.dtype)
    noisy = torch.logsumexp(logp.unsqueeze(2) + logT.unsqueeze(0), dim=1)  # (B, K)
    return -noisy.gather(1, labels.long().unsqueeze(1)).squeeze(1).mean()


def estimate_transition(probs, *, percentile: float = 97.0) -> np.ndarray:
    """Patrini et al.'s anchor-point estimate of T from ``probs`` (N, K) on the noisy rows.

    For each class i: the anchor is the row with the largest p_i among rows whose p_i is below
    the ``percentile``-th percentile of column i (100 = the plain arg-max); T[i] = p(anchor).
    """
    P = np.asarray(probs, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] < 1:
        raise InputError(f"`probs` must be (N, K) with N ≥ 1; got shape {P.shape}.")
    if not 0.0 < percentile <= 100.0:
        raise InputError(f"`percentile` must be in (0, 100]; got {percentile}.")
    K = P.shape[1]
    T = np.empty((K, K))
    for i in range(K):
        col = P[:, i].copy()
        if percentile < 100.0:
            thresh = np.percentile(col, percentile, method="higher")
            below = col < thresh
            if below.any():
                col[~below] = -np.inf
        T[i] = P[int(np.argmax(col))]
    return T / T.sum(1, keepdims=True)


# --- S-model ------------------------------------------------------------------------------------
def channel_init(T) -> np.ndarray:
    """The S-model's channel weights W with row-softmax(W) = T: W = log T (zeros → 1e-12)."""
    return np.log(np.clip(np.asarray(T, dtype=np.float64), 1e-12, None))


def confusion_init(probs, labels, n_classes: int) -> np.ndarray:
    """Goldberger & Ben-Reuven's initial channel: θ_ij = Σ_t p(i|x_t)·1[y_t = j] / Σ_t p(i|x_t)
    from a baseline network's probabilities on the noisy rows."""
    P = np.asarray(probs, dtype=np.float64)
    Y = np.eye(n_classes)[np.asarray(labels, dtype=np.int64)]
    theta = P.T @ Y
    return theta / np.maximum(theta.sum(1, keepdims=True), 1e-12)


def s_model_loss(logits, labels, channel):
    """Mean ``-log Σ_i p(i|x) θ_{i,y}``, θ = row-softmax(``channel``) (K, K), in log space."""
    import torch

    logp = torch.log_softmax(logits, dim=1)
    logtheta = torch.log_softmax(channel, dim=1).to(logp.dtype)
    noisy = torch.logsumexp(logp.unsqueeze(2) + logtheta.unsqueeze(0), dim=1)
    return -noisy.gather(1, labels.long().unsqueeze(1)).squeeze(1).mean()


# --- RDIA-LS as in the authors' code ------------------------------------------------------------
def reference_counts(batch: int, rho: float, noise_rate: float) -> tuple[int, int]:
    """(k_clean, k_drop) of the authors' code: ``int(ρB)`` smallest-loss rows as clean (all rows if
    that is 0) and the ``int(τ/2·B)`` largest dropped; the band between is relabeled. With
    k_drop = 0 their slice ``[k_clean:-0]`` is empty, so no row is relabeled: kept as is."""
    k_clean = int(rho * batch + 1e-9)
    if k_clean == 0:
        k_clean = batch
    return k_clean, int(noise_rate / 2 * batch + 1e-9)


def rdia_ls_reference_loss(logits, labels, *, rho: float, noise_rate: float, gamma: float):
    """RDIA-LS as the authors' code (Viperccc/RDIA, RDIA-LS/loss.py) computes it, after warm-up.

    Rows sorted by CE: the ``int(ρB)`` smallest are clean, the ``int(τ/2·B)`` largest are
    dropped, the middle band is relabeled. Differences from the paper's Algorithm 2
    (``rdia_cli.models.nets.training.rdia_ls_loss``): γ weighs the *clean* part; the clean part
    is cross-entropy applied to the softmax *probabilities* (``-log softmax(p)_y``, as their
    ``F.cross_entropy(outputs, t)`` on ``outputs = softmax(logits)``); the relabeled part,
    ``mean_band -log(clamp(1 - p_y, 1e-7))``, is divided once more by B:

        L = γ · mean_clean CE(softmax(p), y) + (1 - γ) · mean_band(-log(1 - p_y)) / B

    (their constant ``- k_drop`` has no gradient and is left out). Empty groups give 0.
    """
    import torch

    B = logits.shape[0]
    ce = per_row_ce(logits, labels)
    order = small_loss_order(ce)
    k_clean, k_drop = reference_counts(B, rho, noise_rate)
    clean = order[:k_clean]
    band = order[k_clean:B - k_drop] if k_drop > 0 else order[:0]
    p = torch.softmax(logits, dim=1)
    zero = logits.sum() * 0.0
    lc = per_row_ce(p[clean], labels[clean]).mean() if len(clean) else zero
    if len(band):
        p_y = p[band].gather(1, labels[band].long().unsqueeze(1)).squeeze(1)
        ln = -torch.log(torch.clamp(1.0 - p_y, min=1e-7, max=1.0)).mean()
    else:
        ln = zero
    return gamma * lc + (1.0 - gamma) * ln / B


def reference_warmup_loss(logits, labels, *, rho: float):
    """The authors' warm-up loss: mean CE over the ``int(ρB)`` smallest-CE rows (all if 0)."""
    ce = per_row_ce(logits, labels)
    k, _ = reference_counts(ce.shape[0], rho, 0.0)
    return ce[small_loss_order(ce)[:k]].mean()


# --- γ tuning -----------------------------------------------------------------------------------
def tune_gamma(fit: Callable[[float], object], score: Callable[[object], float],
               grid: Sequence[float] = GAMMA_GRID) -> tuple[float, list[dict]]:
    """(best γ, one record per candidate): ``fit(γ)`` trains, ``score(model)`` rates it, higher
    is better; ties go to the smaller γ. Used by ``--gamma auto``."""
    grid = [float(g) for g in grid]
    if not grid:
        raise InputError("`gamma_grid` is empty; give at least one γ in [0, 1].")
    if any(not 0.0 <= g <= 1.0 for g in grid):
        raise InputError(f"Every γ in `gamma_grid` must be in [0, 1]; got {grid}.")
    table = []
    best, best_score = None, -math.inf
    for g in sorted(set(grid)):
        s = float(score(fit(g)))
        table.append({"gamma": g, "score": s})
        if s > best_score:
            best, best_score = g, s
    return float(best), table


def holdout_split(n: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, held-out rows): a seeded random ``share`` of ``range(n)`` held out, ≥ 1 each."""
    if not 0.0 < share < 1.0:
        raise InputError(f"`gamma_holdout` must be in (0, 1); got {share}.")
    k = int(round(share * n))
    if k < 1 or k >= n:
        raise InputError(f"`gamma_holdout` {share} of {n} rows leaves no held-out or no "
                         "training rows; use more data or another share.")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[k:]), np.sort(perm[:k])
