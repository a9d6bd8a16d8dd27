"""Training under label noise: the comparison methods of the paper's Tables 6-9.

The functions work on one mini-batch (logits, given labels) and return a loss tensor, or are
small numpy helpers. Each method is one class (``Erm``, ``RdiaLs``, ``SelfTeaching``,
``CoTeaching``, ``Sigua``, ``FCorrection``, ``SModel``) holding its typed settings
(``SelectionSettings``, ``RdiaLsSettings``, ``SiguaSettings``, ``FCorrectionSettings``,
``SModelSettings``), its batch selection and loss and its per-run state (co-teaching's peer
network, the transition matrix, the S-model's channel); ``method_from_options`` builds one from
the dict form that ``rdia train`` and the model files use, and
``rdia_cli.models.nets.training.train_net`` runs it. Names: B rows per batch, K classes,
``labels`` the given (possibly wrong) labels, CE the per-row cross-entropy ``-log p_y``, ρ the
share of a batch kept as clean (smallest CE first), τ the expected noise rate.

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
* ``rdia_ls_loss``      RDIA-LS as the paper's Algorithm 2 states it (appendix F, Lemma 2).
* ``rdia_ls_reference_loss`` RDIA-LS as the authors' code computes it (see its docstring).
* ``tune_gamma``        pick γ by a held-out score (``--gamma auto``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, NamedTuple

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


def _split_by_loss(ce, rho: float):
    order = small_loss_order(ce)
    k = n_keep(ce.shape[0], rho)
    return order[:k], order[k:]


def ce_rows(logits, labels, target=None, weight=None):
    """Per-row CE with the given labels, or with soft ``target`` rows; times ``weight``."""
    import torch.nn.functional as F

    logp = F.log_softmax(logits, dim=1)
    ce = -logp.gather(1, labels.long().unsqueeze(1)).squeeze(1) if target is None \
        else -(target * logp).sum(1)
    return ce if weight is None else ce * weight


# --- RDIA-LS and self-teaching --------------------------------------------------------------------
def rdia_ls_loss(logits, labels, *, rho: float, gamma: float, target=None, weight=None):
    """The RDIA-LS mini-batch loss (paper appendix F, Algorithm 2, with Lemma 2).

    Rows are sorted by cross-entropy; the ``ceil(ρ·B)`` smallest form D+, the rest D-.
    ``L_R = (1-γ) · mean_{D+} CE + γ · mean_{D-} -log(1 - p_m)``, m = the row's given label
    (``labels``); the second term is the cross-entropy with the relabeled target R(y) (Lemma 2),
    so no target is formed. ``target`` (B, K soft labels) replaces the one-hot of ``labels`` in CE;
    ``weight`` (B,) multiplies each row's term (means still divide by the row count). An empty
    group contributes 0.
    """
    import torch
    import torch.nn.functional as F

    logp = F.log_softmax(logits, dim=1)
    labels = labels.long()
    if target is None:
        ce = -logp.gather(1, labels.unsqueeze(1)).squeeze(1)
    else:
        ce = -(target * logp).sum(1)
    # log(1 - p_m) = logsumexp_{k≠m} z_k - logsumexp_k z_k, stable for p_m → 1.
    masked = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf"))
    neg = -(torch.logsumexp(masked, dim=1) - torch.logsumexp(logits, dim=1))
    if weight is not None:
        ce, neg = ce * weight, neg * weight
    clean, noisy = _split_by_loss(ce, rho)
    zero = logits.sum() * 0.0
    loss_clean = ce[clean].mean() if len(clean) else zero
    loss_noisy = neg[noisy].mean() if len(noisy) else zero
    return (1.0 - gamma) * loss_clean + gamma * loss_noisy


def self_teaching_loss(logits, labels, *, rho: float, target=None, weight=None):
    """Self-teaching (Jiang et al. 2018; one network): mean CE over the ⌈ρB⌉ smallest-loss rows."""
    ce = ce_rows(logits, labels, target, weight)
    clean, _ = _split_by_loss(ce, rho)
    return ce[clean].mean()


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
    (``rdia_ls_loss``): γ weighs the *clean* part; the clean part
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


# --- settings -----------------------------------------------------------------------------------
# the keys each method's dict form takes (`rdia train` options, ``meta["training"]``)
OPTION_KEYS = {
    "rdia_ls": {"noise_rate", "tk", "tk_steps", "gamma", "variant", "gamma_grid",
                "gamma_holdout"},
    "self_teaching": {"noise_rate", "tk", "tk_steps"},
    "co_teaching": {"noise_rate", "tk", "tk_steps"},
    "sigua": {"noise_rate", "tk", "tk_steps", "ascent"},
    "f_correction": {"transition", "estimate_epochs", "percentile"},
    "s_model": {"init", "estimate_epochs"},
}


def check_keys(name: str, opts) -> None:
    """``opts`` is a dict with only the keys method ``name`` takes; else InputError."""
    if not isinstance(opts, dict):
        raise InputError(f"`{name}` must be a dict of settings; got {type(opts).__name__}.")
    unknown = set(opts) - OPTION_KEYS[name]
    if unknown:
        raise InputError(f"`{name}` has unknown settings {sorted(unknown)}; allowed: "
                         f"{sorted(OPTION_KEYS[name])}.")


def _gamma(name: str, g) -> float | str:
    if g == "auto":
        return "auto"
    try:
        g = float(g)
    except (TypeError, ValueError):
        raise InputError(f"`{name}.gamma` must be a number in [0, 1] or 'auto'; got "
                         f"{g!r}.") from None
    if not 0.0 <= g <= 1.0:
        raise InputError(f"`{name}.gamma` must be in [0, 1] or 'auto'; got {g}.")
    return g


@dataclass(frozen=True)
class SelectionSettings:
    """Small-loss selection: ρ = 1 - min(t·τ/T_k, τ) of each batch is kept as clean.

    ``tk`` counts epochs (t = epoch from 1, ρ fixed per epoch); ``tk_steps``, when set, counts
    optimizer steps instead (t = step from 1), so a subset and the full set get the same
    schedule per step (``PAPER_TK_STEPS`` matches the paper's T_k)."""

    noise_rate: float
    tk: int = 10
    tk_steps: int | None = None

    @classmethod
    def _common(cls, name: str, opts: dict) -> dict[str, Any]:
        check_keys(name, opts)
        if "noise_rate" not in opts:
            raise InputError(f"`{name}` needs `noise_rate` (τ, the expected share of wrong "
                             "labels).")
        out = {"noise_rate": float(opts["noise_rate"]), "tk": int(opts.get("tk", 10))}
        if not 0.0 <= out["noise_rate"] < 1.0:
            raise InputError(f"`{name}.noise_rate` must be in [0, 1); got {out['noise_rate']}.")
        if out["tk"] < 1:
            raise InputError(f"`{name}.tk` must be ≥ 1; got {out['tk']}.")
        return out

    @staticmethod
    def _tk_steps(name: str, opts: dict) -> int | None:
        tks = opts.get("tk_steps")
        if tks is not None:
            if int(tks) != tks or int(tks) < 1:
                raise InputError(f"`{name}.tk_steps` must be an integer ≥ 1; got {tks!r}.")
            tks = int(tks)
        return tks

    @classmethod
    def from_options(cls, opts: dict, name: str = "self_teaching") -> SelectionSettings:
        return cls(**cls._common(name, opts), tk_steps=cls._tk_steps(name, opts))

    def clock(self, epoch: int, step: int) -> tuple[int, int]:
        """(t, T_k) on T_k's scale for 0-based ``epoch`` and 1-based ``step``."""
        return (step, self.tk_steps) if self.tk_steps else (epoch + 1, self.tk)

    def legacy(self) -> dict[str, Any]:
        """The old flags' record (``meta["training"]["self_teaching"]``)."""
        return {"noise_rate": self.noise_rate, "tk": self.tk}

    def record(self) -> dict[str, Any]:
        return {"noise_rate": self.noise_rate, "tk": self.tk, "tk_steps": self.tk_steps}


@dataclass(frozen=True)
class SiguaSettings(SelectionSettings):
    """Selection plus SIGUA's ``ascent`` (the step-size share of the large-loss rows' ascent)."""

    ascent: float = 0.01

    @classmethod
    def from_options(cls, opts: dict, name: str = "sigua") -> SiguaSettings:
        base = cls._common(name, opts)
        tks = cls._tk_steps(name, opts)
        ascent = float(opts.get("ascent", 0.01))
        if not 0.0 <= ascent <= 1.0:
            raise InputError(f"`sigua.ascent` must be in [0, 1]; got {ascent}.")
        return cls(**base, tk_steps=tks, ascent=ascent)

    def record(self) -> dict[str, Any]:
        return {**super().record(), "ascent": self.ascent}


@dataclass(frozen=True)
class RdiaLsSettings(SelectionSettings):
    """Selection plus RDIA-LS's γ (a number, or "auto" with ``gamma_grid`` and
    ``gamma_holdout``) and ``variant`` ("paper" or the authors' "reference" code)."""

    gamma: float | str = 0.5
    variant: str = "paper"
    gamma_grid: tuple[float, ...] | None = None
    gamma_holdout: float | None = None

    @classmethod
    def legacy_options(cls, opts: dict, name: str = "rdia_ls") -> dict[str, Any]:
        """The old flags' checks and record (``meta["training"]["rdia_ls"]``)."""
        return {**cls._common(name, opts), "gamma": _gamma(name, opts.get("gamma", 0.5))}

    @classmethod
    def from_options(cls, opts: dict, name: str = "rdia_ls") -> RdiaLsSettings:
        base = cls.legacy_options(opts, name)
        tks = cls._tk_steps(name, opts)
        variant = opts.get("variant", "paper")
        if variant not in RDIA_LS_VARIANTS:
            raise InputError(f"`rdia_ls.variant` must be one of {', '.join(RDIA_LS_VARIANTS)}; "
                             f"got {variant!r}.")
        grid = holdout = None
        if base["gamma"] == "auto":
            grid = tuple(float(g) for g in opts.get("gamma_grid", GAMMA_GRID))
            if not grid or any(not 0.0 <= g <= 1.0 for g in grid):
                raise InputError("`rdia_ls.gamma_grid` must list γ values in [0, 1]; got "
                                 f"{list(grid)}.")
            holdout = float(opts.get("gamma_holdout", 0.1))
            if not 0.0 < holdout < 1.0:
                raise InputError(f"`rdia_ls.gamma_holdout` must be in (0, 1); got {holdout}.")
        elif "gamma_grid" in opts or "gamma_holdout" in opts:
            raise InputError("`rdia_ls.gamma_grid` and `gamma_holdout` need `gamma='auto'`.")
        return cls(**base, tk_steps=tks, variant=variant, gamma_grid=grid,
                   gamma_holdout=holdout)

    def legacy(self) -> dict[str, Any]:
        return {"noise_rate": self.noise_rate, "tk": self.tk, "gamma": self.gamma}

    def record(self) -> dict[str, Any]:
        out = {"noise_rate": self.noise_rate, "tk": self.tk, "gamma": self.gamma,
               "tk_steps": self.tk_steps, "variant": self.variant}
        if self.gamma == "auto":
            out.update(gamma_grid=list(self.gamma_grid), gamma_holdout=self.gamma_holdout)
        return out


def _estimate_epochs(name: str, opts: dict, epochs: int) -> int:
    n = opts.get("estimate_epochs")
    if n is None:
        n = max(1, int(round(0.1 * epochs)))
    if int(n) < 1:
        raise InputError(f"`{name}.estimate_epochs` must be ≥ 1; got {n}.")
    return int(n)


@dataclass(frozen=True)
class FCorrectionSettings:
    """F-correction: a known ``transition`` T (K×K lists), or None to estimate it from an ERM
    network trained ``estimate_epochs`` epochs (anchor rows below the ``percentile``-th)."""

    estimate_epochs: int
    transition: list | None = None
    percentile: float = 97.0

    @classmethod
    def from_options(cls, opts: dict, n_classes: int, epochs: int) -> FCorrectionSettings:
        check_keys("f_correction", opts)
        est = _estimate_epochs("f_correction", opts, epochs)
        T = opts.get("transition")
        T = None if T is None else check_transition(
            T, n_classes, "`f_correction.transition`").tolist()
        pct = float(opts.get("percentile", 97.0))
        if not 0.0 < pct <= 100.0:
            raise InputError(f"`f_correction.percentile` must be in (0, 100]; got {pct}.")
        return cls(est, T, pct)

    def record(self) -> dict[str, Any]:
        return {"estimate_epochs": self.estimate_epochs, "transition": self.transition,
                "percentile": self.percentile}


@dataclass(frozen=True)
class SModelSettings:
    """S-model: the channel starts from ``init`` = "estimate" (a baseline's confusion), "identity"
    or a K×K matrix (lists)."""

    estimate_epochs: int
    init: str | list = "estimate"

    @classmethod
    def from_options(cls, opts: dict, n_classes: int, epochs: int) -> SModelSettings:
        check_keys("s_model", opts)
        est = _estimate_epochs("s_model", opts, epochs)
        init = opts.get("init", "estimate")
        if isinstance(init, str):
            if init not in ("estimate", "identity"):
                raise InputError("`s_model.init` must be 'estimate', 'identity' or a K×K "
                                 f"transition matrix; got {init!r}.")
        else:
            init = check_transition(init, n_classes, "`s_model.init`").tolist()
        return cls(est, init)

    def record(self) -> dict[str, Any]:
        return {"estimate_epochs": self.estimate_epochs, "init": self.init}


# --- the methods --------------------------------------------------------------------------------
class Batch(NamedTuple):
    """One mini-batch: input rows, the first network's logits, given labels, soft targets and
    row weights (None when the data has none)."""

    x: Any
    logits: Any
    labels: Any
    target: Any
    weight: Any


class NetRun(NamedTuple):
    """What a method may use to set itself up for one training run."""

    ds: Any                                # the training Dataset
    dev: Any                               # torch.device
    seed: int
    build: Callable[[int], Any]            # a fresh network (on ``dev``) from a seed
    fit_erm: Callable[[int, int], Any]     # (epochs, seed) -> ERM ModelFile on the same rows
    predict: Callable[[Any], np.ndarray]   # ModelFile -> (N, K) probabilities on the rows


@dataclass
class Method:
    """Plain ERM; the base of every method. ``start_step`` sets ρ for the coming step,
    ``loss`` gives one loss per trained network (the first is the reported one)."""

    name: ClassVar[str] = "erm"
    settings: Any = None
    rho: float | None = field(default=None, init=False)

    @property
    def hard_only(self) -> bool:
        """Trains on hard labels only: soft targets and row weights are refused."""
        return False

    @property
    def tunes_gamma(self) -> bool:
        """Chooses its γ on held-out rows first (RDIA-LS with ``gamma="auto"``)."""
        return False

    @property
    def key(self) -> str:
        return self.name.replace("-", "_")

    def check(self, ds, init) -> None:
        if self.hard_only and (ds.target is not None or ds.weight is not None):
            raise InputError(f"`{self.key}` trains on hard labels without row weights; "
                             f"{ds.source} has soft targets or weights (use ERM, self_teaching "
                             "or rdia_ls).")

    def prepare(self, run: NetRun) -> None:
        """Per-run state needed before the network is built (default: none)."""

    def peers(self, run: NetRun) -> list:
        """Further networks trained alongside the first (default: none)."""
        return []

    def extra_params(self) -> list:
        """Parameters besides the first network's, optimized with it without weight decay."""
        return []

    def start_step(self, epoch: int, step: int) -> None:
        """Called before every optimizer step (``epoch`` from 0, ``step`` from 1)."""

    def loss(self, b: Batch) -> list:
        return [ce_rows(b.logits, b.labels, b.target, b.weight).mean()]

    def legacy(self) -> tuple[dict | None, dict | None]:
        """``meta["training"]``'s ``rdia_ls`` and ``self_teaching`` records (old flags)."""
        return None, None

    def record(self) -> dict | None:
        """``meta["training"]["method_settings"]``: the settings with defaults filled in and
        what the run chose or estimated."""
        return None if self.settings is None else self.settings.record()


Erm = Method


@dataclass
class _Selecting(Method):
    """A method that keeps the ⌈ρB⌉ smallest-loss rows of a batch (ρ from ``rho_at``)."""

    clock: tuple[int, int] = field(default=(0, 1), init=False)

    def start_step(self, epoch: int, step: int) -> None:
        s = self.settings
        self.clock = s.clock(epoch, step)
        self.rho = rho_at(self.clock[0], s.noise_rate, self.clock[1])


@dataclass
class RdiaLs(_Selecting):
    name: ClassVar[str] = "rdia-ls"

    @property
    def hard_only(self) -> bool:
        return self.settings.variant == "reference"

    @property
    def tunes_gamma(self) -> bool:
        return self.settings.gamma == "auto"

    def with_gamma(self, gamma: float) -> RdiaLs:
        """This method with a fixed γ (no grid, no held-out share)."""
        return RdiaLs(replace(self.settings, gamma=gamma, gamma_grid=None, gamma_holdout=None))

    def loss(self, b: Batch) -> list:
        s = self.settings
        if s.variant == "reference":
            if self.clock[0] < self.clock[1]:  # the authors' warm-up: small-loss rows only
                return [reference_warmup_loss(b.logits, b.labels, rho=self.rho)]
            return [rdia_ls_reference_loss(b.logits, b.labels, rho=self.rho,
                                           noise_rate=s.noise_rate, gamma=s.gamma)]
        return [rdia_ls_loss(b.logits, b.labels, rho=self.rho, gamma=s.gamma, target=b.target,
                             weight=b.weight)]

    def legacy(self) -> tuple[dict | None, dict | None]:
        return self.settings.legacy(), None


@dataclass
class SelfTeaching(_Selecting):
    name: ClassVar[str] = "self-teaching"

    def loss(self, b: Batch) -> list:
        return [self_teaching_loss(b.logits, b.labels, rho=self.rho, target=b.target,
                                   weight=b.weight)]

    def legacy(self) -> tuple[dict | None, dict | None]:
        return None, self.settings.legacy()


@dataclass
class CoTeaching(_Selecting):
    """Two networks (seeds ``seed`` and ``seed + 1``); the first is the one kept."""

    name: ClassVar[str] = "co-teaching"
    peer: Any = field(default=None, init=False)

    @property
    def hard_only(self) -> bool:
        return True

    def check(self, ds, init) -> None:
        super().check(ds, init)
        if init is not None:
            raise InputError("`co_teaching` trains two networks from scratch; it cannot "
                             "warm-start from `init`.")

    def peers(self, run: NetRun) -> list:
        self.peer = run.build(run.seed + 1)
        return [self.peer]

    def loss(self, b: Batch) -> list:
        return list(co_teaching_loss(b.logits, self.peer(b.x), b.labels, rho=self.rho))

    def record(self) -> dict | None:
        return {**self.settings.record(),
                "saved_network": "the first of the two (seed `seed`; the peer had seed+1)"}


@dataclass
class Sigua(_Selecting):
    name: ClassVar[str] = "sigua"

    @property
    def hard_only(self) -> bool:
        return True

    def loss(self, b: Batch) -> list:
        return [sigua_loss(b.logits, b.labels, rho=self.rho, ascent=self.settings.ascent)]


@dataclass
class _Transition(Method):
    """A method built on a K×K matrix that may be estimated from a short ERM probe run."""

    probe: dict = field(default_factory=dict, init=False)
    PROBE_SEED: ClassVar[int] = 7919  # the probe network's seed is ``seed + 7919``

    @property
    def hard_only(self) -> bool:
        return True

    def fixed(self, n_classes: int):
        raise NotImplementedError

    def estimate(self, probs, labels, n_classes: int) -> np.ndarray:
        raise NotImplementedError

    def matrix(self, run: NetRun):
        """The given matrix, or one estimated from an ERM probe (recorded in ``probe``)."""
        K = run.ds.n_classes
        fixed = self.fixed(K)
        if fixed is None:
            seed = run.seed + self.PROBE_SEED
            probs = run.predict(run.fit_erm(self.settings.estimate_epochs, seed))
            est = self.estimate(probs, run.ds.y, K)
            self.probe = {"estimated": est.tolist(),
                          "estimate_epochs": self.settings.estimate_epochs,
                          "estimate_seed": seed}
            fixed = est
        return fixed

    def record(self) -> dict | None:
        return {**self.settings.record(), **self.probe}


@dataclass
class FCorrection(_Transition):
    name: ClassVar[str] = "f-correction"
    transition: Any = field(default=None, init=False)

    def fixed(self, n_classes: int):
        return self.settings.transition

    def estimate(self, probs, labels, n_classes: int) -> np.ndarray:
        return estimate_transition(probs, percentile=self.settings.percentile)

    def prepare(self, run: NetRun) -> None:
        import torch

        self.transition = torch.as_tensor(np.asarray(self.matrix(run)), dtype=torch.float32,
                                          device=run.dev)

    def loss(self, b: Batch) -> list:
        return [forward_corrected_loss(b.logits, b.labels, self.transition)]


@dataclass
class SModel(_Transition):
    name: ClassVar[str] = "s-model"
    channel: Any = field(default=None, init=False)

    def fixed(self, n_classes: int):
        init = self.settings.init
        if not isinstance(init, str):
            return init
        return np.eye(n_classes).tolist() if init == "identity" else None

    def estimate(self, probs, labels, n_classes: int) -> np.ndarray:
        return confusion_init(probs, labels, n_classes)

    def prepare(self, run: NetRun) -> None:
        import torch

        self.channel = torch.nn.Parameter(torch.as_tensor(
            channel_init(self.matrix(run)), dtype=torch.float32, device=run.dev))

    def extra_params(self) -> list:
        return [self.channel]

    def loss(self, b: Batch) -> list:
        return [s_model_loss(b.logits, b.labels, self.channel)]

    def record(self) -> dict | None:
        import torch

        out = super().record()
        out["channel"] = torch.softmax(self.channel.detach().double(), 1).cpu().tolist()
        return out


# option key -> (method class, settings parser(opts, n_classes, epochs))
METHOD_CLASSES: dict[str, tuple[type[Method], Callable[[dict, int, int], Any]]] = {
    "rdia_ls": (RdiaLs, lambda o, k, e: RdiaLsSettings.from_options(o)),
    "self_teaching": (SelfTeaching, lambda o, k, e: SelectionSettings.from_options(o)),
    "co_teaching": (CoTeaching,
                    lambda o, k, e: SelectionSettings.from_options(o, "co_teaching")),
    "sigua": (Sigua, lambda o, k, e: SiguaSettings.from_options(o)),
    "f_correction": (FCorrection, FCorrectionSettings.from_options),
    "s_model": (SModel, SModelSettings.from_options),
}


def method_from_options(options: dict[str, dict | None], *, n_classes: int,
                        epochs: int) -> Method:
    """The method of the dict form ``{"rdia_ls": {...}, "sigua": None, ...}`` (at most one
    given; none is ERM), its settings validated with defaults filled in."""
    given = {k: v for k, v in options.items() if v is not None}
    if len(given) > 1:
        if set(given) == {"rdia_ls", "self_teaching"}:
            raise InputError("Use either `rdia_ls` or `self_teaching`, not both.")
        raise InputError(f"Use either one noisy-label method, not {sorted(given)}.")
    if not given:
        return Erm()
    key, opts = next(iter(given.items()))
    cls, parse = METHOD_CLASSES[key]
    return cls(parse(opts, n_classes, epochs))
