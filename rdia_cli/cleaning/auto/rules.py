"""The decision rules of the auto strategy, on cross-validated losses: the candidates, the noise
test that gates cleaning, the guarded choice of a cleaning, the λ line search and how much of
"clean set alone" goes into the final model (see ``clean``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from rdia_cli.cleaning.auto.blend import blend_cv, blend_share
from rdia_cli.cleaning.auto.choice import beats
from rdia_cli.cleaning.auto.config import Config
from rdia_cli.cleaning.auto.policy import DEFAULT_POLICY, AutoPolicy
from rdia_cli.metrics import row_losses


def candidates(policy: AutoPolicy = DEFAULT_POLICY) -> list[Config]:
    """The policy's candidate grid: the clean set alone, then for each ω > 0 "train + clean set"
    and every (ranker, action, fraction) cleaning."""
    out = [Config("drop", 0.0, 0.0)]  # clean set alone
    for w in policy.weights:
        if w == 0:
            continue
        out.append(Config("drop", 0.0, w))
        for r in policy.rankers:
            for a in policy.actions:
                out += [Config(a, f, w, r) for f in policy.fractions if f > 0]
    return out


def anchors_only(configs: list[Config]) -> list[Config]:
    """Without a sign of label noise there is nothing to clean: only the anchors (clean set alone,
    train + clean set) run — or every candidate, where none is an anchor."""
    return [c for c in configs if c.weight == 0 or c.fraction == 0] or configs


def noise_evidence(train_y: np.ndarray, oof_probs: np.ndarray, val_y: np.ndarray,
                   val_fold_probs: np.ndarray,
                   policy: AutoPolicy = DEFAULT_POLICY) -> dict[str, Any]:
    """Do the training labels disagree with the data more (or less) than the clean labels do?

    Two tests; the labels count as noisy (``noisy``) when either fires (``fired`` names which):

    * the **loss test**. Every training row is scored by a model that did not see it
      (out-of-fold), and so is every clean row, by the same models (its loss averaged over them).
      Without label noise both are held-out rows of one distribution, so their mean losses agree
      up to sampling noise. ``z`` is the difference in standard errors with the variance pooled
      over both groups, as it is under that null (losses are heavy-tailed: a small clean set
      that misses the tail makes separate variances far too small). One-sided with a far tail
      the other way: training rows that fit worse count at ``z ≥ policy.noise_z``; training rows
      that fit better only at ``z ≤ -policy.noise_z_low`` (past τ = 0.5 with two classes the
      models learn the flipped labels and the clean rows' loss is the one that rises);
    * the **label test**: the class proportions of the training labels against the clean
      labels' (chi-square test of the 2 × K table, ``labels_p`` below
      ``policy.noise_p_labels``). A one-directional flip moves the proportions even where the
      loss test cannot see it (the flipped rows' high loss and the clean rows' higher loss under
      the shifted models cancel). It also fires on a shift of class proportions without label
      noise; auto's cross-validation still decides whether any cleaning pays."""
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
    out["fired"] = noise_tests_fired(out, policy)
    out["noisy"] = bool(out["fired"])
    return out


def noise_tests_fired(noise: dict[str, Any], policy: AutoPolicy = DEFAULT_POLICY) -> list[str]:
    """Which of ``noise_evidence``'s tests fire: "loss" (training rows fit worse), "loss-low"
    (clean rows fit far worse), "labels" (class proportions differ)."""
    z = float(noise.get("z", 0.0))
    fired = []
    if z >= policy.noise_z:
        fired.append("loss")
    elif z <= -policy.noise_z_low:
        fired.append("loss-low")
    p = noise.get("labels_p")
    if p is not None and not math.isnan(p) and p < policy.noise_p_labels:
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


def finalists(configs: list[Config], row_loss: np.ndarray, finished: np.ndarray,
              policy: AutoPolicy = DEFAULT_POLICY) -> tuple[Config | None, Config | None]:
    """The training-based pick (``policy.choose``) and "clean set alone", among the candidates
    that ran on every fold (``finished``; ``row_loss``: candidates × clean rows)."""
    kept = np.flatnonzero(finished)
    based = [i for i in kept if configs[i].weight > 0]
    alone = next((c for c in configs if c.weight == 0 and finished[configs.index(c)]), None)
    pick = (configs[based[policy.choose([configs[i] for i in based], row_loss[based], policy)]]
            if based else None)
    return pick, alone


def reg_line_search(cv: Callable[[Config], np.ndarray], cfg: Config,
                    policy: AutoPolicy = DEFAULT_POLICY, *, down: bool = False) -> Config:
    """λ for ``cfg``: up from ``cfg.reg`` in steps of ×``policy.reg_step`` while each step
    lowers the cross-validated loss (``cv(config)``: per row) by more than ``policy.reg_se``
    standard errors of the paired per-row difference; with ``down`` (and ``policy.reg_down_se``
    set), when not even the first step up does, down in steps of ÷``reg_step`` while each gains
    more than ``reg_down_se`` standard errors. At most ``policy.reg_max_steps`` steps either way.

    ``tune_lambda`` searches upwards only on the clean rows' CV: less regularization than
    1/rows looked better on small clean folds and was far worse on test. Only "train + clean
    set" without a sign of noise, whose CV runs over every row, may go down (1/rows underfits
    e.g. digits); bench/results/union_lambda.md compares these rules."""
    def steps(factor: float, z: float) -> Config:
        cur = cfg
        for _ in range(policy.reg_max_steps):
            nxt = replace(cur, reg=cur.reg * factor)
            if not beats(cv(nxt), cv(cur), z):
                break
            cur = nxt
        return cur

    cur = steps(policy.reg_step, policy.reg_se)
    if down and policy.reg_down_se is not None and cur == cfg:
        return steps(1.0 / policy.reg_step, policy.reg_down_se)
    return cur


def tune_lambda(cv: Callable[[Config], np.ndarray], union_cv: Callable[[Config], np.ndarray],
                pick: Config | None, alone: Config | None, *, noisy: bool,
                policy: AutoPolicy = DEFAULT_POLICY) -> tuple[Config | None, Config | None]:
    """λ of the two finalists by ``reg_line_search`` on the clean rows' CV (``cv``), upwards;
    for an uncleaned pick without a sign of noise on the CV over all rows (``union_cv``), down
    too."""
    uncleaned = pick is not None and pick.weight > 0 and pick.fraction == 0
    over_all = uncleaned and not noisy  # every row is a clean row: λ may go down too
    pick = (reg_line_search(union_cv if over_all else cv, pick, policy, down=over_all)
            if pick is not None else None)
    alone = reg_line_search(cv, alone, policy) if alone is not None else None
    return pick, alone


def final_share(pick: np.ndarray, alone: np.ndarray, y: np.ndarray, alone_shift: np.ndarray,
                pick_loss: np.ndarray, *, noisy: bool,
                policy: AutoPolicy = DEFAULT_POLICY) -> float:
    """The share of "clean set alone" in the final model. With label noise seen, the share of
    ``policy.blend_shares`` whose CV loss is lowest (``blend_share``). Without a sign of noise,
    all or nothing: the clean set alone (every training row dropped, the most a cleaning can
    do) only when it beats the pick by ``policy.clean_only_se`` standard errors; on the mean
    alone it was taken in noise-free runs where it lost test loss."""
    if noisy:
        return blend_share(pick, alone, y, alone_shift, policy.blend_shares)
    alone_loss = blend_cv(pick, alone, y, 1.0, alone_shift)
    return 1.0 if beats(alone_loss, pick_loss, policy.clean_only_se) else 0.0


def clean_only_share(pick: np.ndarray, alone: np.ndarray, y: np.ndarray, alone_shift: np.ndarray,
                     pick_loss: np.ndarray, *, noisy: bool,
                     policy: AutoPolicy = DEFAULT_POLICY) -> tuple[float, bool]:
    """``final_share`` (out-of-fold probabilities ``pick`` and ``alone`` of the clean rows
    ``y``), and whether, without a sign of noise, it held back a clean set alone whose mean CV
    loss is lower than the pick's."""
    share = final_share(pick, alone, y, alone_shift, pick_loss, noisy=noisy, policy=policy)
    held_back = not noisy and share == 0.0 and blend_share(
        pick, alone, y, alone_shift, (0.0, 1.0)) == 1.0
    return share, held_back
