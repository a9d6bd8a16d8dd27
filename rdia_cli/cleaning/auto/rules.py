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

    Three tests; the labels count as noisy (``noisy``) when any fires (``fired`` names which):

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
      noise; auto's cross-validation still decides whether any cleaning pays;
    * the **pair test**: for every ordered pair of classes (label k, class j ≠ k), the mean
      probability of j given to the training rows labelled k (out-of-fold) against the clean
      rows labelled k (same models), in standard errors pooled over both groups, one-sided (the
      training rows higher: some of them are j's labelled k). The smallest p-value times the
      number of pairs tested (Bonferroni; ``pairs_p``) must fall below
      ``policy.noise_p_pairs``; ``pair`` names the two classes. A flip between one pair of
      classes (a few percent of all labels) moves neither the class proportions much nor the
      pooled loss, and is what this test sees. Probabilities, not losses: they are bounded, and
      their mean over the fold models is unbiased for one model's (the log of a mean is not).

    Clean rows of a class no training row is labelled with stay out of the loss test: no model
    of the training rows can give them a finite loss at its optimum (the class's unpenalized
    intercept runs to -∞), so their loss says how far the fit went, not how noisy the labels
    are (#30: one such row moved z by 0.2 between two solvers of the same tolerance)."""
    t = row_losses(oof_probs, train_y)
    seen = np.bincount(train_y, minlength=oof_probs.shape[1])[val_y] > 0
    v = np.mean([row_losses(p, val_y) for p in val_fold_probs], axis=0)[seen]
    labels_p = _label_shift_p(train_y, val_y, oof_probs.shape[1])
    val_probs = np.mean(val_fold_probs, axis=0)
    pairs_p, pair = _pair_flip_p(train_y, oof_probs, val_y, val_probs)
    out: dict[str, Any] = {"train_loss": math.nan, "val_loss": math.nan, "z": 0.0,
                           "labels_p": labels_p, "pairs_p": pairs_p, "pair": pair}
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
    (clean rows fit far worse), "labels" (class proportions differ), "pairs" (the training rows
    of one label look like another class more than the clean rows of that label do)."""
    z = float(noise.get("z", 0.0))
    fired = []
    if z >= policy.noise_z:
        fired.append("loss")
    elif z <= -policy.noise_z_low:
        fired.append("loss-low")
    p = noise.get("labels_p")
    if p is not None and not math.isnan(p) and p < policy.noise_p_labels:
        fired.append("labels")
    p = noise.get("pairs_p")  # absent from noise records made before the pair test
    if p is not None and not math.isnan(p) and p < policy.noise_p_pairs:
        fired.append("pairs")
    return fired


def _pair_flip_p(train_y: np.ndarray, train_probs: np.ndarray, val_y: np.ndarray,
                 val_probs: np.ndarray) -> tuple[float, list[int] | None]:
    """The pair test of ``noise_evidence``: its Bonferroni-adjusted p-value and the class
    indices [labelled k, looks like j] of the label that gave it and the class its training
    rows lean to most (NaN, None: nothing to test; a label is tested where both groups hold at
    least two rows of it)."""
    from statistics import NormalDist

    best_p, best_pair, tested = math.nan, None, 0
    for k in range(train_probs.shape[1]):
        t_rows, v_rows = train_y == k, val_y == k
        n_t, n_v = int(t_rows.sum()), int(v_rows.sum())
        if n_t < 2 or n_v < 2:
            continue
        tested += 1
        t, v = 1.0 - train_probs[t_rows, k], 1.0 - val_probs[v_rows, k]
        se = float(np.concatenate([t, v]).std(ddof=1)) * math.sqrt(1 / n_t + 1 / n_v)
        if se <= 0:
            continue
        p = 1.0 - NormalDist().cdf(float(t.mean() - v.mean()) / se)
        if math.isnan(best_p) or p < best_p:
            lean = train_probs[t_rows].mean(0) - val_probs[v_rows].mean(0)
            lean[k] = -np.inf
            best_p, best_pair = p, [k, int(np.argmax(lean))]
    if tested == 0 or best_pair is None:
        return math.nan, None
    return min(1.0, best_p * tested), best_pair


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
                    policy: AutoPolicy = DEFAULT_POLICY, *, down: bool = False,
                    clean_rows: slice | None = None) -> Config:
    """λ for ``cfg``: up from ``cfg.reg`` in steps of ×``policy.reg_step`` while each step
    lowers the cross-validated loss (``cv(config)``: per row) by more than ``policy.reg_se``
    standard errors of the paired per-row difference; with ``down`` (and ``policy.reg_down_se``
    set), when not even the first step up does, down in steps of ÷``reg_step`` while each gains
    more than ``reg_down_se`` standard errors. At most ``policy.reg_max_steps`` steps either way.
    With ``clean_rows`` (the rows of ``cv``'s losses whose labels are known clean), a step up
    must also not raise their mean loss: noisy labels the noise test missed favour a flatter
    model (measured: λ ×16–256 on such rows, worse than 1/rows on the test data).

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
            if factor > 1 and clean_rows is not None and (
                    cv(nxt)[clean_rows].mean() > cv(cur)[clean_rows].mean()):
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
    too, and up only where the clean rows among them agree."""
    uncleaned = pick is not None and pick.weight > 0 and pick.fraction == 0
    over_all = uncleaned and not noisy  # every row is a clean row: λ may go down too
    # …as far as the noise test can tell: a step up must not raise the clean rows' loss (they
    # come last among the rows of ``union_cv``)
    n_clean = len(cv(pick)) if over_all else 0
    pick = (reg_line_search(union_cv if over_all else cv, pick, policy, down=over_all,
                            clean_rows=slice(-n_clean, None) if over_all else None)
            if pick is not None else None)
    alone = reg_line_search(cv, alone, policy) if alone is not None else None
    return pick, alone


def final_share(pick: np.ndarray, alone: np.ndarray, y: np.ndarray, alone_shift: np.ndarray,
                pick_loss: np.ndarray, *, noisy: bool,
                policy: AutoPolicy = DEFAULT_POLICY) -> float:
    """The share of "clean set alone" in the final model. With label noise seen,
    ``honest_share``: the share of ``policy.blend_shares`` of lowest CV loss, and all of the
    model only by ``policy.guard_se`` standard errors over the pick.
    Without a sign of noise, all or nothing: the clean set alone (every training row dropped,
    the most a cleaning can do) only when it beats the pick by ``policy.clean_only_se`` standard
    errors; on the mean alone it was taken in noise-free runs where it lost test loss."""
    if noisy:
        return honest_share(pick, alone, y, alone_shift, policy)
    alone_loss = blend_cv(pick, alone, y, 1.0, alone_shift)
    return 1.0 if beats(alone_loss, pick_loss, policy.clean_only_se) else 0.0


def honest_share(pick: np.ndarray, alone: np.ndarray, y: np.ndarray,
                 alone_shift: np.ndarray | None,
                 policy: AutoPolicy = DEFAULT_POLICY) -> float:
    """The share of "clean set alone" in a blend with the training-based pick, by the CV
    losses of every share in ``policy.blend_shares`` (``blend_cv``), with the clean set's
    size in mind: the whole model (share 1) only when the clean set alone beats the pick by
    ``policy.guard_se`` standard errors (paired, per clean row), the margin a cleaning needs
    against train + clean set; else the best share below 1. Of the shares left, the smallest
    within ``policy.blend_se`` standard errors of the lowest loss (the one-standard-error rule,
    toward the model the training rows support; 0: the lowest). The clean set alone is fitted
    on few rows, and its CV loss is corrected to the whole clean set by an extrapolation
    (``cv._clean_only_at_full_size``): on a 150-row clean set that correction alone made it
    take the whole model, 25% worse on test than the best cleaning."""
    shares = sorted(policy.blend_shares)
    loss = {s: blend_cv(pick, alone, y, s, alone_shift) for s in shares}
    if 1.0 in loss and shares[0] < 1.0 and not beats(loss[1.0], loss[shares[0]],
                                                       policy.guard_se):
        shares = shares[:-1]
    best = min(shares, key=lambda s: (float(loss[s].mean()), s))
    return float(next(s for s in shares if s == best
                      or not beats(loss[best], loss[s], policy.blend_se)))


def clean_only_share(pick: np.ndarray, alone: np.ndarray, y: np.ndarray, alone_shift: np.ndarray,
                     pick_loss: np.ndarray, *, noisy: bool,
                     policy: AutoPolicy = DEFAULT_POLICY) -> tuple[float, bool]:
    """``final_share`` (out-of-fold probabilities ``pick`` and ``alone`` of the clean rows
    ``y``), and whether it held back a clean set alone whose mean CV loss was the lowest: without
    a sign of noise against the pick, with noise against every blend (the margin rule)."""
    share = final_share(pick, alone, y, alone_shift, pick_loss, noisy=noisy, policy=policy)
    if noisy:
        held_back = share < 1.0 and blend_share(pick, alone, y, alone_shift,
                                                policy.blend_shares) == 1.0
    else:
        held_back = share == 0.0 and blend_share(pick, alone, y, alone_shift, (0.0, 1.0)) == 1.0
    return share, held_back


def standard_errors(n: float) -> str:
    """``n`` standard error(s), in words."""
    return f"{n:g} standard error" + ("" if n == 1 else "s")


def decisions(configs: list[Config], row_loss: np.ndarray, finished: np.ndarray,
              pick: Config | None, share: float, held_back: bool, *, noise: dict[str, Any],
              lambda_over_all: bool, policy: AutoPolicy = DEFAULT_POLICY) -> list[str]:
    """Which rule decided each part of auto's choice, in words, for the verdict: the noise
    test, the pick among the training-based candidates (``row_loss`` from the race), its λ and
    the share of the clean set alone."""
    fired = noise.get("fired") or []
    out = [f"noise test: {', '.join(fired)} fired" if fired else
           "noise test: silent, so only train + clean set and the clean set alone ran"]
    losses = np.where(np.isnan(row_loss), np.inf, row_loss).mean(1)
    cleaning = [i for i, c in enumerate(configs) if finished[i] and c.weight > 0 and c.fraction]
    if pick is not None and fired and cleaning:
        best = configs[min(cleaning, key=lambda i: losses[i])]
        if pick.fraction == 0:
            out.append(f"pick: the guard — no cleaning beat train + clean set by "
                       f"{standard_errors(policy.guard_se)}")
        elif (pick.action, pick.fraction, pick.weight, pick.ranker) != (
                best.action, best.fraction, best.weight, best.ranker):
            out.append(f"pick: a near-tie — within {standard_errors(policy.tie_se)} of the "
                       f"lowest CV loss ({best.label}), the one that cleans the fewest rows, "
                       f"{standard_errors(policy.guard_se)} below train + clean set")
        else:
            out.append(f"pick: the lowest CV loss, {standard_errors(policy.guard_se)} below "
                       "train + clean set")
    if pick is not None and pick.reg != 1:
        out.append(f"λ: × {pick.reg:g} by cross-validation over "
                   + ("every training and clean row (a step up only where the clean rows agree)"
                      if lambda_over_all else "the clean rows"))
    if held_back:
        margin = policy.guard_se if fired else policy.clean_only_se
        out.append("share: the clean set alone had the lowest CV loss, not by "
                   f"{standard_errors(margin)}; held to {share:.0%}")
    elif 0 < share < 1:
        out.append(f"share: {share:.0%} of the clean set alone, the blend of lowest CV loss")
    elif share == 1:
        out.append("share: the clean set alone, by the margin it needs")
    return out
