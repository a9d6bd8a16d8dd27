"""The decision rules of the auto strategy, on cross-validated losses: the candidates, the noise
test that gates cleaning, the guarded choice of a cleaning, the λ line search and how much of
"clean set alone" goes into the final model (see ``clean``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from rdia_cli.cleaning.auto.blend import _blend_cv, _blend_share
from rdia_cli.cleaning.auto.config import Config
from rdia_cli.metrics import row_losses

FRACTIONS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8)
WEIGHTS = (0.0, 1.0)
ACTIONS = ("drop", "hard")
RANKERS = ("phi", "clean", "oof")
NOISE_Z = 1.645  # loss test: training rows fit worse by this many standard errors (one-sided 5%)
NOISE_Z_LOW = 3.0  # … or better by this many (clean rows fit worse: labels mostly flipped)
NOISE_P_LABELS = 0.01  # label test: class proportions of train vs clean labels, chi-square p
GUARD_SE = 2.0  # standard errors by which a cleaning must beat "train + clean set"
REG_STEP = 4.0  # the λ line search multiplies λ by this
REG_MAX_STEPS = 6  # … at most this many times (λ × 4096 at most)
REG_SE = 1.0  # … each time it lowers the CV loss by this many standard errors


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


def anchors_only(configs: list[Config]) -> list[Config]:
    """Without a sign of label noise there is nothing to clean: only the anchors (clean set alone,
    train + clean set) run — or every candidate, where none is an anchor."""
    return [c for c in configs if c.weight == 0 or c.fraction == 0] or configs


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


def finalists(configs: list[Config], row_loss: np.ndarray,
              finished: np.ndarray) -> tuple[Config | None, Config | None]:
    """The training-based pick (``_guarded_choice``) and "clean set alone", among the candidates
    that ran on every fold (``finished``; ``row_loss``: candidates × clean rows)."""
    kept = np.flatnonzero(finished)
    based = [i for i in kept if configs[i].weight > 0]
    alone = next((c for c in configs if c.weight == 0 and finished[configs.index(c)]), None)
    pick = (configs[based[_guarded_choice([configs[i] for i in based], row_loss[based])]]
            if based else None)
    return pick, alone


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


def tune_lambda(cv: Callable[[Config], np.ndarray], union_cv: Callable[[Config], np.ndarray],
                pick: Config | None, alone: Config | None, *,
                noisy: bool) -> tuple[Config | None, Config | None]:
    """λ of the two finalists by ``_reg_line_search`` on the clean rows' CV (``cv``), upwards;
    for an uncleaned pick without a sign of noise on the CV over all rows (``union_cv``), down
    too."""
    uncleaned = pick is not None and pick.weight > 0 and pick.fraction == 0
    over_all = uncleaned and not noisy  # every row is a clean row: λ may go down too
    pick = (_reg_line_search(union_cv if over_all else cv, pick,
                             down_se=GUARD_SE if over_all else None)
            if pick is not None else None)
    alone = _reg_line_search(cv, alone) if alone is not None else None
    return pick, alone


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


def clean_only_share(pick: np.ndarray, alone: np.ndarray, y: np.ndarray, alone_shift: np.ndarray,
                     pick_loss: np.ndarray, *, noisy: bool) -> tuple[float, bool]:
    """``_final_share`` (out-of-fold probabilities ``pick`` and ``alone`` of the clean rows
    ``y``), and whether, without a sign of noise, it held back a clean set alone that the mean
    loss alone (revision 7's rule) would have taken."""
    share = _final_share(pick, alone, y, alone_shift, pick_loss, noisy=noisy)
    held_back = not noisy and share == 0.0 and _blend_share(
        pick, alone, y, alone_shift, (0.0, 1.0)) == 1.0
    return share, held_back
