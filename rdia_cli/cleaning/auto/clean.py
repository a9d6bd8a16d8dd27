"""The `auto` strategy: clean the noisy rows, and let cross-validation on the clean set decide.

What the paper's RDIA does not do, and what measurements on real data showed matters more
(DESIGN.md §2, "What we measured"):

* the clean validation set is first-class training data: the final model is trained on the
  cleaned training rows (weight ω each) **plus** the validation rows (weight 1);
* ω, the cleaning action (drop the harmful rows, or give them the model's most likely other
  class) and how many rows to clean (the top fraction by Φ) are chosen by K-fold
  cross-validation over the clean set — for fold k, Φ is computed against the other folds
  only, the model is fitted on cleaned train + the other folds, and its loss is measured on
  fold k, which neither Φ nor the fit has seen;
* ω = 0 ("train on the clean set alone") and ω = 1 with nothing cleaned ("train on train +
  validation") are among the candidates, so the choice cannot lose to them by more than the
  noise of the cross-validation estimate — and the cross-validated losses tell the user
  whether the noisy rows add anything at all (``verdict``);
* nothing is cleaned unless the training rows show label noise at all (``noise_evidence``):
  their out-of-fold loss must exceed the clean rows' loss under the same models by ``NOISE_Z``
  standard errors (one-sided; or fall below it by ``NOISE_Z_LOW``, the clean rows fitting far
  worse: labels mostly flipped), or their class proportions must differ from the clean labels'
  (chi-square, p < ``NOISE_P_LABELS``: a one-directional flip);
* the final model averages two fits' parameters: the training-based pick (train + clean set,
  cleaned when a cleaning beats it uncleaned by ``GUARD_SE`` standard errors) and the clean set
  alone, the share of the latter (``BLEND_GRID``) chosen by the same CV. For a linear softmax
  model that average is one model whose log-probabilities are the blend of the two's (up to a
  per-row constant), so the CV loss of every share is exact and costs no fit; it is never worse,
  row by row, than the same mixture of the two losses (log-sum-exp is convex). Choosing one of
  the two instead lost where their CV losses were close (revision 6; measured in
  bench/results/default_strategy.md). Only when the training rows show noise — otherwise
  all or nothing, and the clean set alone (every training row dropped) needs the evidence a
  cleaning needs: a CV loss ``GUARD_SE`` standard errors below the pick's;
* the regularization λ of the finalists is tuned by the same cross-validation (a line search
  upwards from λ = 1/rows in steps of ×4, each step on a gain of more than one standard error):
  with a few hundred rows and thousands of features λ = 1/rows overfits badly (measured: CIFAR
  cat-vs-dog test loss 1.14 at 1/rows, 0.70 at 256/rows). Without a sign of noise the λ of
  train + clean set is cross-validated over all of its rows instead, and may also go down
  from 1/rows, a step on two standard errors (digits: 1/rows underfits, λ × 1/16 −40%).

Logistic regression only (a fit takes well under a second); for networks use ``rdia`` with
``--alpha auto``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from rdia_cli.cleaning.strategies import relabel_targets, select_harmful
from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError
from rdia_cli.metrics import row_losses
from rdia_cli.models.io import ModelFile

FRACTIONS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8)
WEIGHTS = (0.0, 1.0)
ACTIONS = ("drop", "hard")
RACE_KEEP_MIN = 12  # candidates that race on through every fold (at least)
CV_TOL = 1e-4  # CV fits need a loss, not parameters precise enough for influence
REG_STEP = 4.0  # the λ line search multiplies λ by this
REG_MAX_STEPS = 6  # … at most this many times (λ × 4096 at most)
REG_SE = 1.0  # … each time it lowers the CV loss by this many standard errors
UNION_FOLDS = 5  # without a sign of noise, λ of train + clean set by CV over all their rows
SMALL_CLEAN = 50  # clean sets below this many rows get a warning in the verdict
BLEND_GRID = tuple(i / 10 for i in range(11))  # shares of "clean set alone" in the final model


@dataclass(frozen=True)
class Config:
    action: str  # drop | hard (relabel to the most likely other class)
    fraction: float  # top fraction of training rows by the ranking score (only score > 0)
    weight: float  # ω: weight of each kept training row; validation rows weigh 1
    ranker: str = "phi"  # phi: influence Φ | clean: -log p(label) under a clean-set model
    #                      oof: -log p(label) under out-of-fold models on the training rows
    reg: float = 1.0  # λ = reg / rows

    @property
    def label(self) -> str:
        lam = "" if self.reg == 1 else f", λ×{self.reg:g}"
        if self.weight == 0:
            return "clean set only" + lam
        if self.fraction == 0:
            return f"train+val, ω={self.weight:g}" + lam
        by = {"phi": "Φ", "clean": "clean-model loss", "oof": "out-of-fold loss"}[self.ranker]
        return f"{self.action} top {self.fraction:.0%} by {by}, ω={self.weight:g}" + lam


@dataclass
class AutoCleanResult:
    config: Config  # the training-based pick (or "clean set alone" when that is all of it)
    cleaned: Dataset  # ``config``'s training rows + validation rows, with weights and targets
    # fitted on ``cleaned`` — or, when 0 < clean_only_share < 1, the parameters of that fit ×
    # (1 − share) plus those of a fit on the clean set alone (``clean_only``, at its λ) × share
    model: ModelFile
    cv: list[dict[str, Any]] = field(default_factory=list)  # every candidate's CV loss
    verdict: dict[str, Any] = field(default_factory=dict)
    clean_only_share: float = 0.0
    clean_only: Config | None = None
    # out-of-fold loss of every clean row, for each candidate measured on all folds, and the
    # probabilities behind it (rows × classes; for "clean set alone" those of the fold fits
    # before the learning-curve correction, which ``alone_shift`` holds per row) — to compare
    # choice rules without refitting (bench/default_strategy.py --candidates)
    row_losses: dict[Config, np.ndarray] = field(default_factory=dict)
    row_probs: dict[Config, np.ndarray] = field(default_factory=dict)
    alone_shift: dict[Config, np.ndarray] = field(default_factory=dict)
    # without a sign of noise: λ multiplier → out-of-fold loss of every training and clean row
    # under "train + clean set" (the CV that chose its λ)
    union_losses: dict[float, np.ndarray] = field(default_factory=dict)
    # fits any candidate on the whole data the way the chosen one was: (training set, model)
    refit: Callable[[Config], tuple[Dataset, ModelFile]] | None = None


RANKERS = ("phi", "clean", "oof")


def candidates(fractions=FRACTIONS, weights=WEIGHTS, actions=ACTIONS,
               rankers=RANKERS) -> list[Config]:
    out = [Config("drop", 0.0, 0.0)]  # clean set alone
    for w in weights:
        if w == 0:
            continue
        out.append(Config("drop", 0.0, w))
        for r in rankers:
            for a in actions:
                out += [Config(a, f, w, r) for f in fractions if f > 0]
    return out


def clean_model_scores(train: Dataset, val: Dataset, erm: ModelFile, *, device="cpu"):
    """-log p(label) of every training row under a model fitted on ``val`` alone, shifted so
    that rows the clean model finds likelier than chance are ≤ 0 (never selected), plus that
    model's probabilities (the hard relabel target for this ranking)."""
    from rdia_cli.models.common import probabilities
    from rdia_cli.models.logreg.training import train_logreg

    clean = train_logreg(val, l2=1.0 / val.n_samples,
                         fit_intercept=erm.arch_args.get("fit_intercept", True), tol=1e-6,
                         device=device)
    probs = probabilities(clean, train, device=device)
    nll = row_losses(probs, train.y)
    return nll - np.log(train.n_classes), probs


def out_of_fold_probabilities(train: Dataset, erm: ModelFile, *, folds: int = 5, seed: int = 0,
                              device="cpu", tol: float = 1e-8, warm: bool = False,
                              also: Dataset | None = None, reg: float = 1.0,
                              fold_models: dict[int, ModelFile] | None = None):
    """(N, K) probabilities of every training row under a model fitted on the other ``folds``
    - 1 parts of the training set (λ = reg / their rows; uniform where those parts hold a
    single class); ``warm`` starts each fit from ``erm``. ``fold_models``, if given, holds the
    fit of each fold by its index: a fold found there starts from it (a λ search along one set
    of folds), and every new fit replaces it. With ``also``, returns as well the (folds, M, K)
    probabilities of ``also``'s rows under each of those models."""
    from rdia_cli.models.common import probabilities
    from rdia_cli.models.logreg.training import train_logreg

    probs = np.zeros((train.n_samples, train.n_classes))
    extra = []
    fit_intercept = erm.arch_args.get("fit_intercept", True)
    for k, held in enumerate(_folds(train.y, folds, seed)):
        part = train.subset(np.setdiff1d(np.arange(train.n_samples), held))
        if len(np.unique(part.y)) < 2:
            probs[held] = 1.0 / train.n_classes
            if also is not None:
                extra.append(np.full((also.n_samples, train.n_classes), 1.0 / train.n_classes))
            continue
        init = (fold_models or {}).get(k, erm if warm else None)
        m = train_logreg(part, l2=reg / part.n_samples, fit_intercept=fit_intercept, tol=tol,
                         device=device, init=init, record_fingerprint=tol < CV_TOL)
        if fold_models is not None:
            fold_models[k] = m
        probs[held] = probabilities(m, train.subset(held), device=device)
        if also is not None:
            extra.append(probabilities(m, also, device=device))
    return probs if also is None else (probs, np.stack(extra))


def out_of_fold_scores(train: Dataset, erm: ModelFile, *, folds: int = 5, seed: int = 0,
                       device="cpu", val: Dataset | None = None):
    """-log p(label) of every training row under out-of-fold models of the training set
    (confident learning's self-confidence, cross-fitted), shifted like ``clean_model_scores``,
    plus those probabilities. Independent of the clean set: the noisy rows' own majority is the
    reference, which is what works at low noise when the clean set is too small to train a good
    model on. With ``val``, also the (folds, M, K) probabilities of its rows under the same
    models (``noise_evidence``)."""
    out = out_of_fold_probabilities(train, erm, folds=folds, seed=seed, device=device,
                                    tol=CV_TOL, warm=True, also=val)
    probs = out if val is None else out[0]
    nll = row_losses(probs, train.y)
    scores = (nll - np.log(train.n_classes), probs)
    return scores if val is None else (scores, out[1])


def noise_evidence(train_y: np.ndarray, oof_probs: np.ndarray, val_y: np.ndarray,
                   val_fold_probs: np.ndarray) -> dict[str, Any]:
    """Do the training labels disagree with the data more (or less) than the clean labels do?

    Two tests; the labels count as noisy (``noisy``) when either fires (``fired`` names which):

    * the **loss test**. Every training row is scored by a model that did not see it
      (out-of-fold), and so is every clean row, by the same models (its loss averaged over them).
      Without label noise in the training rows both are held-out rows of one distribution,
      exchangeable, so their mean losses agree up to sampling noise; noisy labels raise the
      training rows' mean — or, past τ = 0.5 with two classes, the models learn the flipped
      labels and the clean rows' mean is the one that rises. ``z`` is the difference in standard
      errors with the variance pooled over both groups, as it is under that null: losses are
      heavy-tailed, and a small clean set that happens to miss the tail makes Welch's separate
      variances far too small (measured on breast-cancer without noise: Welch z up to 3.0 in 10
      splits, pooled z at most 1.6). **One-sided, on purpose, with a far tail the other way**:
      training rows that fit *worse* count at ``z ≥ NOISE_Z`` (1.645, a 5% one-sided test);
      training rows that fit *better* count only at ``z ≤ -NOISE_Z_LOW`` (3: the majority-
      flipped case, where the clean rows' loss is far above — z below -4 on breast-cancer at
      τ = 0.8); a two-sided |z| ≥ 2 spent half its false alarms on the side where noise below
      τ = 0.5 never lands, and missed 30% symmetric noise with a 50-row clean set in 18% of
      synthetic splits where the one-sided test misses 5%;
    * the **label test**: the class proportions of the training labels against the clean
      labels' (chi-square test of the 2 × K table, ``labels_p`` below ``NOISE_P_LABELS``). A
      one-directional flip (rows of one class labelled as another) moves the proportions even
      where the loss test cannot see it: the models learn the shifted boundary, and the flipped
      rows' high loss and the clean rows' higher loss under the shifted models cancel
      (measured: 30% of one class flipped in a binary task, 200 clean rows, the loss test fired
      in 0 of 40 synthetic splits, the label test in 40). It also fires on a shift of class
      proportions between the training data and the clean set without label noise — the rows
      would then need reweighting rather than cleaning, and auto's cross-validation still
      decides whether any cleaning pays."""
    t = row_losses(oof_probs, train_y)
    v = np.mean([row_losses(p, val_y) for p in val_fold_probs], axis=0)
    labels_p = _label_shift_p(train_y, val_y, oof_probs.shape[1])
    out: dict[str, Any] = {"train_loss": math.nan, "val_loss": math.nan, "z": 0.0,
                           "labels_p": labels_p}
    if len(t) >= 2 and len(v) >= 2:
        sd = float(np.concatenate([t, v]).std(ddof=1))
        diff = float(t.mean() - v.mean())
        se = sd * math.sqrt(1 / len(t) + 1 / len(v))
        out.update(train_loss=float(t.mean()), val_loss=float(v.mean()),
                   z=diff / se if se > 0 else 0.0)
    out["fired"] = noise_tests_fired(out)
    out["noisy"] = bool(out["fired"])
    return out


NOISE_Z = 1.645  # loss test: training rows fit worse by this many standard errors (one-sided 5%)
NOISE_Z_LOW = 3.0  # … or better by this many (clean rows fit worse: labels mostly flipped)
NOISE_P_LABELS = 0.01  # label test: class proportions of train vs clean labels, chi-square p


def noise_tests_fired(noise: dict[str, Any]) -> list[str]:
    """Which of ``noise_evidence``'s tests fire: "loss" (training rows fit worse), "loss-low"
    (clean rows fit far worse), "labels" (class proportions differ)."""
    z = float(noise.get("z", 0.0))
    fired = []
    if z >= NOISE_Z:
        fired.append("loss")
    elif z <= -NOISE_Z_LOW:
        fired.append("loss-low")
    p = noise.get("labels_p")
    if p is not None and not math.isnan(p) and p < NOISE_P_LABELS:
        fired.append("labels")
    return fired


def _label_shift_p(train_y: np.ndarray, val_y: np.ndarray, n_classes: int) -> float:
    """p-value of the chi-square test that training and clean labels share class proportions
    (NaN when there is nothing to compare)."""
    from scipy.stats import chi2_contingency

    table = np.vstack([np.bincount(train_y, minlength=n_classes),
                       np.bincount(val_y, minlength=n_classes)])
    table = table[:, table.sum(0) > 0]
    if table.shape[1] < 2 or table[1].sum() < 2 or table[0].sum() < 2:
        return math.nan
    return float(chi2_contingency(table)[1])


def _stack(blocks):
    return sp.vstack(blocks, format="csr") if any(sp.issparse(b) for b in blocks) else np.vstack(
        blocks
    )


def build_training_set(train: Dataset, phi: np.ndarray, probs: np.ndarray, val: Dataset,
                       config: Config) -> Dataset:
    """Cleaned ``train`` rows (weight ω) followed by the ``val`` rows (weight 1).

    The result carries ``extra['part']`` (0 = training row, 1 = validation row),
    ``extra['relabeled']`` and ``extra['phi']`` (NaN for validation rows)."""
    k = train.n_classes
    harmful = (
        select_harmful(phi, fraction=config.fraction) if config.fraction > 0
        else np.zeros(train.n_samples, dtype=bool)
    )
    t_targets = np.eye(k)[train.y]
    keep = np.ones(train.n_samples, dtype=bool)
    relabeled = np.zeros(train.n_samples, dtype=bool)
    if config.action == "drop":
        keep = ~harmful
    elif harmful.any():
        t_targets[harmful] = relabel_targets(probs[harmful], train.y[harmful], kind="hard")
        relabeled = harmful
    if config.weight == 0:
        keep = np.zeros(train.n_samples, dtype=bool)
    tr = np.flatnonzero(keep)
    X = _stack([train.flat_X()[tr], val.flat_X()]) if len(tr) else val.flat_X()
    n_t, n_v = len(tr), val.n_samples
    target = np.vstack([t_targets[tr], np.eye(k)[val.y]])
    weight = np.concatenate([np.full(n_t, config.weight), np.ones(n_v)])
    extra = {
        "part": np.concatenate([np.zeros(n_t, np.int8), np.ones(n_v, np.int8)]),
        "relabeled": np.concatenate([relabeled[tr], np.zeros(n_v, bool)]),
        "phi": np.concatenate([np.asarray(phi, np.float64)[tr], np.full(n_v, np.nan)]),
    }
    for name, col in train.extra.items():
        if name in val.extra:
            extra[name] = np.concatenate([col[tr], val.extra[name]])
    return Dataset(
        X=X, y=np.concatenate([train.y[tr], val.y]), classes=list(train.classes),
        row_id=np.concatenate([train.row_id[tr], val.row_id]), target=target.astype(np.float32),
        weight=weight, feature_names=train.feature_names, extra=extra, source=train.source,
    )


def _folds(y: np.ndarray, n_folds: int, seed: int) -> list[np.ndarray]:
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(y)
    counts = counts[counts > 0]
    n_folds = max(2, min(n_folds, len(y)))
    if counts.min() >= n_folds:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        return [test for _, test in splitter.split(np.zeros(len(y)), y)]
    splitter = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [test for _, test in splitter.split(np.zeros(len(y)))]


GUARD_SE = 2.0  # standard errors by which a cleaning must beat "train + clean set"


def _guarded_choice(configs: list[Config], row_loss: np.ndarray, z: float = GUARD_SE) -> int:
    """Pick a training-based config from its out-of-fold row losses (configs × validation rows).

    The cleaning candidates (fraction > 0) compete among themselves, and their best must beat
    the plain default (train + validation, nothing cleaned, ω = 1) by more than ``z`` standard
    errors of the paired per-row difference — the smallest of a dozen or more noisy CV
    estimates is optimistic by about two standard errors when nothing really differs (the
    expected maximum of 16 standard normals is 1.8), and a one-SE margin let noise-free data
    get "cleaned" (measured: MNIST 10-class, 5% clean set, τ = 0). "Clean set alone" is not
    chosen here: ``_blend_share`` decides how much of it goes into the final model."""
    losses = row_loss.mean(1)
    default = next((i for i, c in enumerate(configs) if c.weight > 0 and c.fraction == 0), None)
    if default is None:
        return int(np.argmin(losses))
    pick = default
    cleaning = [i for i, c in enumerate(configs) if c.weight > 0 and c.fraction > 0]
    if cleaning:
        best = min(cleaning, key=lambda i: losses[i])
        if _beats(row_loss[best], row_loss[default], z):
            pick = best
    return pick


def _beats(a: np.ndarray, b: np.ndarray, z: float) -> bool:
    """Whether per-row losses ``a`` are below ``b`` by more than ``z`` standard errors of the
    paired difference."""
    diff = a - b
    se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
    return bool(diff.mean() < -z * se)


def _clean_only_at_full_size(fit_predict: Callable[[Dataset, Dataset], np.ndarray],
                             v_in: Dataset, v_out: Dataset, n_full: int, seed: int,
                             repeats: int = 2, share: float = 0.75) -> np.ndarray:
    """Out-of-fold row losses of "clean set alone", corrected to the size it is trained on at
    the end. K-fold CV fits it on (K-1)/K of the clean set, which hurts it far more than any
    candidate whose training set is mostly training rows (measured: it lost to cleaned data
    by 4% in CV where it won on test). Refit on ``share`` of the fold's rows, read the slope of
    the learning curve L(n) = L∞ + c/n between the two sizes, extrapolate to ``n_full`` rows;
    the shift is one number per fold, never upwards. ``fit_predict(fit_on, predict_on)``
    returns the probabilities of a model fitted on ``fit_on`` for the rows of ``predict_on``."""
    full = row_losses(fit_predict(v_in, v_out), v_out.y)
    n1 = v_in.n_samples
    n2 = int(round(share * n1))
    if n2 < 4 or n1 >= n_full:
        return full
    rng = np.random.default_rng(seed)
    smaller = []
    for _ in range(repeats):
        rows = np.sort(rng.choice(n1, n2, replace=False))
        part = v_in.subset(rows)
        if len(np.unique(part.y)) < len(np.unique(v_in.y)):
            continue  # a class went missing: the smaller fit says nothing about the slope
        smaller.append(row_losses(fit_predict(part, v_out), v_out.y).mean())
    if not smaller:
        return full
    ratio = (1.0 / n1 - 1.0 / n_full) / (1.0 / n2 - 1.0 / n1)
    slope = float(np.mean(smaller)) - float(full.mean())
    return full - ratio * max(slope, 0.0)


def _blend_probs(p: np.ndarray, q: np.ndarray, share: float) -> np.ndarray:
    """Probabilities of the model whose parameters are (1 − share) × p's + share × q's: for a
    linear softmax model the logits, hence the log-probabilities up to a per-row constant,
    blend the same way."""
    z = (1 - share) * np.log(np.clip(p, 1e-300, None)) + share * np.log(np.clip(q, 1e-300, None))
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _blend_cv(pick: np.ndarray, alone: np.ndarray, y: np.ndarray, share: float,
              alone_shift: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold row losses of the parameter blend (1 − share) × pick + share × "clean set
    alone", whose own row losses the learning-curve correction lowers by ``alone_shift``; the
    blend's correction is taken as share × that (first order). Share 1 reproduces the corrected
    loss of the clean set alone, share 0 the pick's. (Measured, not adopted: extrapolating each
    blend along its own learning curve, from the clean-set fits on 75% of a fold's rows —
    breast-cancer 20% τ > 0 the same to 0.0003 over 20 seeds, MNIST 1-vs-7 20% τ = 0.4 and 0.6
    worse, 0.0363 and 0.0371 against 0.0360 and 0.0367.)"""
    loss = row_losses(_blend_probs(pick, alone, share), y)
    return loss if alone_shift is None else loss - share * alone_shift


def _blend_share(pick: np.ndarray, alone: np.ndarray, y: np.ndarray,
                 alone_shift: np.ndarray | None = None, grid=BLEND_GRID) -> float:
    """The share of "clean set alone" (out-of-fold probabilities ``alone``) in a parameter blend
    with the training-based ``pick`` whose cross-validated loss (``_blend_cv``) is lowest; ties
    go to the smaller share."""
    best, best_loss = 0.0, math.inf
    for share in grid:
        loss = float(_blend_cv(pick, alone, y, share, alone_shift).mean())
        if loss < best_loss - 1e-12:
            best, best_loss = float(share), loss
    return best


def _final_share(pick: np.ndarray, alone: np.ndarray, y: np.ndarray, alone_shift: np.ndarray,
                 pick_loss: np.ndarray, *, noisy: bool) -> float:
    """The share of "clean set alone" in the final model. With label noise seen, the blend
    whose CV loss is lowest (``_blend_share``). Without a sign of noise, all or nothing: the
    clean set alone — dropping every training row, the most a cleaning can do — only when it
    beats the pick by ``GUARD_SE`` standard errors, the evidence a cleaning needs. Chosen on the
    mean alone (revision 7) it was taken in 6 of the 80 noise-free runs of breast-cancer and
    diabetes and lost 0.0007 to 0.086 of test loss in each (diabetes, 5% clean set, τ = 0:
    0.0044 above ERM over 20 splits)."""
    if noisy:
        return _blend_share(pick, alone, y, alone_shift)
    return 1.0 if _beats(_blend_cv(pick, alone, y, 1.0, alone_shift), pick_loss, GUARD_SE) else 0.0


def blend_models(a: ModelFile, b: ModelFile, share: float) -> ModelFile:
    """A logistic regression with (1 − share) × ``a``'s parameters + share × ``b``'s; its λ is
    ``a``'s. It minimizes no training loss, so it records no training fingerprint (`rdia
    score` warns that Φ assumes a minimizer)."""
    state = {k: (1 - share) * a.state[k] + share * b.state[k] for k in a.state}
    meta = dict(a.meta, train_fingerprint=None,
                blend={"share": share, "l2": [a.meta["l2"], b.meta["l2"]]})
    return replace(a, state=state, meta=meta)


def _reg_line_search(cv: Callable[[Config], np.ndarray], cfg: Config, *,
                     up_se: float = REG_SE, down_se: float | None = None) -> Config:
    """λ for ``cfg``: up from ``cfg.reg`` in steps of ×``REG_STEP`` while each step lowers the
    cross-validated loss (``cv(config)``: per validation row) by more than ``up_se`` standard
    errors of the paired per-row difference; with ``down_se``, when not even the first step up
    does, down from ``cfg.reg`` in steps of ÷``REG_STEP`` while each gains more than
    ``down_se`` standard errors. At most ``REG_MAX_STEPS`` steps either way.

    ``auto_clean`` passes the CV over the clean rows, upwards only, except for "train + clean
    set" when the noise test does not fire: then every training row is a clean row too, the CV
    runs over all of them (``UNION_FOLDS`` folds) and may go down, on ``GUARD_SE`` standard
    errors. On a few dozen clean rows, less regularization than 1/rows made near-separable data
    look better on small validation folds and far worse on test (measured: breast-cancer,
    λ × 1/1024, test loss 0.21 where λ = 1/rows gave 0.10; steps down on two standard errors
    moved 30 of 90 noisy breast-cancer runs, 29 for the worse), and steps up on a gain within the
    noise cost 3% of test loss (diabetes, 5% clean set); every step up the clean-row CV took
    without noise — where the clean set happened to hold hard rows — cost test loss (7 of 7 in
    400 τ = 0 splits of breast-cancer and diabetes, +0.006 to +0.022 each). Over all rows the
    search took none of those, and larger ones on CIFAR cat-vs-dog (raw pixels: test loss −0.3
    to −8% per cell). Down, 1/rows underfits digits (λ × 1/16: test loss −40% against ERM), but
    a step down on one standard error also went wrong: on two splits of MNIST 1-vs-7, whose test
    file is from other writers than the rows the CV sees, and two of diabetes (+0.001 to +0.009
    each) — and the CV's fits, stopped at ``CV_TOL``, flatter a smaller λ (on one MNIST split 40%
    of the apparent gain of λ × ¼ went away with fits to 1e-8). Two standard errors, the
    evidence a cleaning needs, kept the gain on digits and stepped down wrongly once (MNIST
    1-vs-7, +0.001) in the 430 noise-free splits of ``bench/results/union_lambda.md``."""
    def steps(factor: float, z: float) -> Config:
        cur = cfg
        for _ in range(REG_MAX_STEPS):
            nxt = replace(cur, reg=cur.reg * factor)
            if not _beats(cv(nxt), cv(cur), z):
                break
            cur = nxt
        return cur

    cur = steps(REG_STEP, up_se)
    return steps(1.0 / REG_STEP, down_se) if down_se is not None and cur == cfg else cur


def check_auto(arch: str, val: Dataset) -> None:
    """What the auto strategy needs, checked before any work is done."""
    if arch != "logreg":
        raise InputError("--strategy auto needs --model-type logreg; for networks use "
                         "--strategy rdia --alpha auto.")
    if val.n_samples < 4:
        raise InputError(f"validation data `{val.source}` has {val.n_samples} rows; the auto "
                         "strategy cross-validates over it and needs at least 4.")
    labels = set(val.label_values().tolist()) if val.target is None else None
    if labels is not None and len(labels) < 2:
        raise InputError(f"validation data `{val.source}` has one class (label {labels.pop()}); "
                         "the auto strategy fits models on it and needs at least two.")


def auto_clean(
    train: Dataset,
    val: Dataset,
    erm: ModelFile,
    *,
    folds: int = 5,
    configs: list[Config] | None = None,
    l2: float | None = None,
    seed: int = 0,
    device="cpu",
    progress: Callable[[int, int], None] | None = None,
) -> AutoCleanResult:
    """Choose ω, action, fraction and λ by ``folds``-fold CV on ``val``; fit the final model.

    ``erm`` is the model trained on ``train`` alone (θ̂ for Φ). Fits use λ = reg/rows with reg
    tuned by the CV, unless ``l2`` is given (then every fit uses it).
    """
    from rdia_cli.device import threads_for
    from rdia_cli.influence.logreg import score_logreg
    from rdia_cli.models.common import probabilities
    from rdia_cli.models.logreg.training import train_logreg

    check_auto(erm.arch, val)
    configs = list(configs or candidates())
    if val.n_samples < 100:
        folds = max(folds, 10)  # small clean sets: keep most of them in every fit
    fold_rows = _folds(val.y, folds, seed)
    fit_intercept = erm.arch_args.get("fit_intercept", True)
    oof, val_fold_probs = out_of_fold_scores(train, erm, seed=seed, device=device, val=val)
    noise = noise_evidence(train.y, oof[1], val.y, val_fold_probs)
    noisy = noise["noisy"]
    if not noisy:  # no sign of label noise: nothing to clean, only the anchors
        configs = [c for c in configs if c.weight == 0 or c.fraction == 0] or configs

    def fit(ds: Dataset, init=None, tol: float = 1e-8, reg: float = 1.0) -> ModelFile:
        lam = l2 if l2 is not None else reg / ds.n_samples
        return train_logreg(ds, l2=lam, fit_intercept=fit_intercept, tol=tol, max_iter=100,
                            device=device, init=init, record_fingerprint=tol < CV_TOL)

    parts = [(val.subset(np.setdiff1d(np.arange(val.n_samples), rows)), val.subset(rows))
             for rows in fold_rows]
    rankings: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
    @functools.cache
    def probs() -> np.ndarray:  # θ̂'s probabilities of the training rows: only Φ needs them
        return probabilities(erm, train, device=device)

    def ranking(ranker: str, clean: Dataset):
        """(score, probabilities) of the training rows, ranked against ``clean``."""
        if ranker == "oof":
            return oof
        if ranker == "phi":
            with threads_for(train.n_samples * train.n_features * train.n_classes):
                return score_logreg(erm, train, clean, device=device).phi, probs()
        return clean_model_scores(train, clean, erm, device=device)

    def ranked(k: int, ranker: str):  # against fold k's training part of the clean set
        if (k, ranker) not in rankings:
            rankings[k, ranker] = ranking(ranker, parts[k][0])
        return rankings[k, ranker]

    warm: list[dict[tuple, ModelFile]] = [{} for _ in fold_rows]
    oof_probs: dict[Config, np.ndarray] = {}
    shifts: dict[Config, np.ndarray] = {}  # "clean set alone": its learning-curve correction

    def keep_probs(cfg: Config, k: int, p: np.ndarray) -> np.ndarray:
        if cfg not in oof_probs:
            oof_probs[cfg] = np.full((val.n_samples, p.shape[1]), np.nan)
        oof_probs[cfg][fold_rows[k]] = p
        return p

    def fold_loss(cfg: Config, k: int) -> np.ndarray:
        """Loss of fold k's clean rows under ``cfg`` fitted without them."""
        v_in, v_out = parts[k]
        if cfg.weight == 0:  # clean set alone, extrapolated to the whole clean set
            def fit_predict(fit_on: Dataset, predict_on: Dataset) -> np.ndarray:
                p = probabilities(fit(fit_on, tol=CV_TOL, reg=cfg.reg), predict_on,
                                      device=device)
                return keep_probs(cfg, k, p) if fit_on is v_in else p
            out = _clean_only_at_full_size(fit_predict, v_in, v_out, val.n_samples, seed + k)
            shifts.setdefault(cfg, np.zeros(val.n_samples))[fold_rows[k]] = (
                row_losses(oof_probs[cfg][fold_rows[k]], v_out.y) - out)
            return out
        score, p = ranked(k, cfg.ranker)
        ds = build_training_set(train, score, p, v_in, cfg)
        # warm start from the neighbouring fraction (or λ) of the same family
        family = (cfg.weight, cfg.ranker, cfg.action)
        model = fit(ds, init=warm[k].get(family, warm[k].get((cfg.weight,))), tol=CV_TOL,
                    reg=cfg.reg)
        warm[k][family] = model
        warm[k].setdefault((cfg.weight,), model)
        return row_losses(keep_probs(cfg, k, probabilities(model, v_out, device=device)),
                           v_out.y)

    # racing (successive halving over folds): every candidate runs on the first folds, only the
    # best third (and the two anchors: clean set alone, train + val) on the rest
    race_after = max(1, math.ceil(0.4 * len(fold_rows))) if len(fold_rows) > 2 else len(fold_rows)
    n_keep = min(len(configs), max(RACE_KEEP_MIN, len(configs) // 3))
    anchors = {i for i, c in enumerate(configs) if c.weight == 0 or c.fraction == 0}
    tune = l2 is None
    total = len(fold_rows) * (len(configs) + (4 if tune else 0))  # until the race cuts the field
    done = 0

    def tick(n: int = 1) -> None:
        nonlocal done, total
        done += n
        total = max(total, done)
        if progress is not None:
            progress(done, total)

    row_loss = np.full((len(configs), val.n_samples), np.nan)  # out-of-fold loss per val row
    erm_loss = row_losses(probabilities(erm, val, device=device), val.y)
    active = list(range(len(configs)))
    for k, rows in enumerate(fold_rows):
        if k == race_after and k < len(fold_rows):
            seen = np.concatenate(fold_rows[:k])
            order = np.argsort(row_loss[:, seen].mean(1), kind="stable")
            active = sorted(set(order[:n_keep].tolist()) | anchors)
            total = done + (len(fold_rows) - k) * len(active) + (
                4 * len(fold_rows) if tune else 0)
        for i in active:
            row_loss[i, rows] = fold_loss(configs[i], k)
            tick()
    finished = np.array([not np.isnan(r).any() for r in row_loss])
    kept = np.flatnonzero(finished)
    scored = {configs[i]: row_loss[i] for i in kept}

    def cv(cfg: Config) -> np.ndarray:
        if cfg not in scored:
            out = np.empty(val.n_samples)
            for k, rows in enumerate(fold_rows):
                out[rows] = fold_loss(cfg, k)
                tick()
            scored[cfg] = out
        return scored[cfg]

    # the training-based pick (a cleaning must beat "train + clean set" by GUARD_SE standard
    # errors) and "clean set alone", each at its λ; then how much of each, by the same CV
    based = [i for i in kept if configs[i].weight > 0]
    alone = next((c for c in configs if c.weight == 0 and finished[configs.index(c)]), None)
    pick = (configs[based[_guarded_choice([configs[i] for i in based], row_loss[based])]]
            if based else None)
    union_warm: dict[int, ModelFile] = {}
    union_scored: dict[float, np.ndarray] = {}
    both = functools.cache(lambda: build_training_set(train, np.zeros(train.n_samples), None,
                                                      val, Config("drop", 0.0, 1.0)))

    def union_cv(cfg: Config) -> np.ndarray:
        """Out-of-fold loss of every training and clean row under "train + clean set" at
        ``cfg.reg``: without a sign of label noise the training rows are clean rows too."""
        if cfg.reg not in union_scored:
            probs = out_of_fold_probabilities(both(), erm, folds=UNION_FOLDS, seed=seed,
                                              device=device, tol=CV_TOL, warm=True,
                                              reg=cfg.reg, fold_models=union_warm)
            union_scored[cfg.reg] = row_losses(probs, both().y)
            tick(UNION_FOLDS)
        return union_scored[cfg.reg]

    if tune:
        uncleaned = pick is not None and pick.weight > 0 and pick.fraction == 0
        over_all = uncleaned and not noisy  # every row is a clean row: λ may go down too
        pick = (_reg_line_search(union_cv if over_all else cv, pick,
                                 down_se=GUARD_SE if over_all else None)
                if pick is not None else None)
        alone = _reg_line_search(cv, alone) if alone is not None else None
        if pick is not None:
            cv(pick)  # its out-of-fold probabilities of the clean rows, for the blend
    share, held_back = (1.0 if pick is None else 0.0), False
    if pick is not None and alone is not None:
        share = _final_share(oof_probs[pick], oof_probs[alone], val.y, shifts[alone], cv(pick),
                             noisy=noisy)
        # what revision 7's rule (the mean alone) would have taken
        held_back = not noisy and share == 0.0 and _blend_share(
            oof_probs[pick], oof_probs[alone], val.y, shifts[alone], (0.0, 1.0)) == 1.0
    config = alone if share == 1.0 else pick

    ranked_full = functools.cache(lambda ranker: ranking(ranker, val))

    def refit(cfg: Config) -> tuple[Dataset, ModelFile]:
        ds = build_training_set(train, *ranked_full(cfg.ranker), val, cfg)
        return ds, fit(ds, reg=cfg.reg)

    cleaned, model = refit(config)
    chosen_cv = cv(config)
    label = config.label
    model.meta["strategy"] = {"name": "auto", "action": config.action, "ranker": config.ranker,
                              "fraction": config.fraction, "weight": config.weight,
                              "reg": config.reg}
    if 0.0 < share < 1.0:
        model = blend_models(model, refit(alone)[1], share)  # copies the meta above
        model.meta["strategy"] = dict(model.meta["strategy"], blend={
            "clean_only_share": share, "clean_only_reg": alone.reg})
        chosen_cv = _blend_cv(oof_probs[pick], oof_probs[alone], val.y, share, shifts[alone])
        label = f"{1 - share:.0%} {pick.label} + {share:.0%} {alone.label}"
    all_folds = {c: not np.isnan(r).any() for c, r in scored.items()}
    listed = configs + [c for c in scored if c not in set(configs)]
    losses = {c: float(np.nanmean(row_loss[i])) for i, c in enumerate(configs)}
    losses.update({c: float(r.mean()) for c, r in scored.items()})
    cv_table = [{"action": c.action, "ranker": c.ranker, "fraction": c.fraction,
                 "weight": c.weight, "reg": c.reg, "label": c.label,
                 "cv_loss": losses[c], "all_folds": bool(all_folds.get(c, False))}
                for c in listed]
    # the two anchors as the baselines fit them (λ = 1/rows), so that the chosen model's CV loss
    # is never above the "uncleaned" one it is reported next to when it is that anchor
    clean_only = next((losses[c] for c in configs if c.weight == 0), math.nan)
    plain = [losses[c] for c in configs if c.weight == 1.0 and c.fraction == 0]
    verdict = {
        "chosen": label,
        "clean_only_share": share,
        "clean_only_held_back": held_back,
        "cv_loss_chosen": float(chosen_cv.mean()),
        "cv_loss_erm": float(erm_loss.mean()),
        "cv_loss_clean_only": clean_only,
        "cv_loss_train_plus_val": plain[0] if plain else None,
        "n_folds": len(fold_rows),
        "n_clean": val.n_samples,
        # the rows whose CV chose the final model's λ
        "lambda_rows": (train.n_samples + val.n_samples) if union_scored and share == 0.0
        else val.n_samples,
        "noise": noise,
        "l2": model.meta["l2"],
    }
    return AutoCleanResult(
        config, cleaned, model, cv_table, verdict, clean_only_share=share, clean_only=alone,
        row_losses={c: r for c, r in scored.items() if all_folds[c]}, refit=refit,
        row_probs={c: oof_probs[c] for c in scored if all_folds[c]},
        alone_shift={c: v for c, v in shifts.items() if all_folds.get(c)},
        union_losses=dict(union_scored))


def verdict_lines(v: dict[str, Any]) -> list[str]:
    """Plain-language verdict from the cross-validated losses (validation data only)."""
    lines = [
        f"chosen by {v['n_folds']}-fold cross-validation on the clean set: {v['chosen']} "
        f"(CV loss {v['cv_loss_chosen']:.4f})",
        f"ERM on the training data alone: CV loss {v['cv_loss_erm']:.4f}; clean set alone: "
        f"{v['cv_loss_clean_only']:.4f}"
        + (f"; train + clean set, uncleaned: {v['cv_loss_train_plus_val']:.4f}"
           if v.get("cv_loss_train_plus_val") is not None else ""),
    ]
    noise = v.get("noise")
    if noise:
        seen = (f"out-of-fold loss {noise['train_loss']:.4f} on the training rows, "
                 f"{noise['val_loss']:.4f} on the clean rows under the same models")
        fired = noise.get("fired")
        if fired is None:  # a verdict from before the label test: the loss test alone
            fired = noise_tests_fired({"z": noise["z"]})
        labels_p = noise.get("labels_p")
        props = ("" if labels_p is None or math.isnan(labels_p) else
                 f"; class proportions of the training and clean labels: chi-square p = "
                 f"{labels_p:.2g}, noise needs p < {NOISE_P_LABELS:g}")
        z = noise["z"]
        if not fired:
            rows = v.get("lambda_rows")
            lam = (f"; λ was chosen by {UNION_FOLDS}-fold cross-validation over all {rows} "
                   "training and clean rows" if rows and rows > v.get("n_clean", rows) else "")
            lines.append(f"no sign of label noise ({seen}, {z:+.1f} standard errors apart, noise "
                         f"needs ≥ +{NOISE_Z:g} or ≤ −{NOISE_Z_LOW:g}{props}): nothing was "
                         f"cleaned{lam}.")
        else:
            why = []
            if "loss" in fired:
                why.append(f"the training rows fit worse: {seen} ({z:+.1f} standard errors)")
            if "loss-low" in fired:
                why.append(f"the clean rows fit far worse — most training labels look flipped: "
                           f"{seen} ({z:+.1f} standard errors)")
            if "labels" in fired:
                why.append(f"the class proportions of the training labels differ from the clean "
                           f"labels' (chi-square p = {labels_p:.2g}; a one-directional flip, or "
                           "a shift of the classes' shares)")
            lines.append("the training labels look noisy: " + "; ".join(why) + ".")
    n_clean = v.get("n_clean")
    if n_clean is not None and n_clean < SMALL_CLEAN:
        lines.append(f"warning: the clean set has {n_clean} rows; with fewer than {SMALL_CLEAN} "
                     "the choice is close to a coin toss between candidates a few percent apart "
                     "(measured with 27-31 clean rows: over 20 splits auto was up to 24% worse "
                     "than the best baseline). Label more clean rows if you can.")
    gain = v["cv_loss_erm"] - v["cv_loss_chosen"]
    alone = v["chosen"].startswith("clean set only")
    share = v.get("clean_only_share", 0.0)
    if 0 < share < 1:
        lines.append(f"the model averages the parameters of two fits: {share:.0%} of the one on "
                     f"the clean set alone, {1 - share:.0%} of the one on the training rows + "
                     "clean set (the share chosen by the same cross-validation).")
    if alone:
        lines.append("the noisy training rows do not help: the clean set alone looks best (its "
                     "CV loss beat the model trained on them and every blend of the two tried). "
                     "Consider labeling more clean data instead of cleaning these rows.")
    elif v.get("clean_only_held_back"):
        lines.append(f"the clean set alone had a lower CV loss, but by less than {GUARD_SE:g} "
                     "standard errors; with no sign of label noise the training rows are kept "
                     "(if you know the labels are noisy, `rdia run --compare` also writes the "
                     "model fitted on the clean set alone, clean-only.pt).")
    elif v["cv_loss_clean_only"] <= v["cv_loss_chosen"] + 1e-3:
        lines.append("warning: training on the clean set alone looks about as good; the noisy "
                     "rows add little.")
    if gain > 0:
        uncleaned = "train+val" in v["chosen"] and "top " not in v["chosen"]
        what = ("training on the clean set alone" if alone
                else "adding the clean set to the training data" if uncleaned else "cleaning")
        lam = v["chosen"].rpartition("λ×")[2] if share == 0 and "λ×" in v["chosen"] else ""
        if lam and not alone:  # much of the gain may be the tuned λ's, not the rows'
            what += f", with λ × {lam} (λ = {lam}/rows),"
        lines.append(f"{what} helped: CV loss {gain:.4f} below ERM "
                     f"({gain / max(v['cv_loss_erm'], 1e-12):.0%}).")
    else:
        lines.append("cleaning did not beat ERM on the validation folds.")
    return lines
