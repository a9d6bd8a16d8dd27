"""The `auto` strategy: clean the noisy rows, and let cross-validation on the clean set decide.

What the paper's RDIA does not do, and what measurements on real data showed matters more
(DESIGN.md §2, "What we measured"). Every threshold and the candidate grid are fields of the
``AutoPolicy`` passed as ``policy`` (``DEFAULT_POLICY`` unless given; see ``policy``):

* the clean validation set is first-class training data: the final model is trained on the
  cleaned training rows (weight ω each) **plus** the validation rows (weight 1);
* ω, the cleaning action (drop the harmful rows, or give them the model's most likely other
  class), the ranking and how many rows to clean are chosen by K-fold cross-validation over
  the clean set: for fold k the rows are ranked against the other folds only, the model is
  fitted on cleaned train + the other folds, and its loss is measured on fold k, which neither
  the ranking nor the fit has seen;
* ω = 0 ("clean set alone") and ω = 1 with nothing cleaned ("train + clean set") are among the
  candidates, so the choice cannot lose to them by more than the noise of the CV estimate, and
  the CV losses tell the user whether the noisy rows add anything at all (``verdict``);
* nothing is cleaned unless the training rows show label noise at all (``noise_evidence``);
* the final model averages two fits' parameters: the training-based pick (``policy.choose``;
  by default a cleaning must beat "train + clean set" by ``guard_se`` standard errors) and the
  clean set alone, the share of the latter (``blend_shares``) chosen by the same CV. For a
  linear softmax model that average is one model whose log-probabilities are the blend of the
  two's (up to a per-row constant), so the CV loss of every share is exact and costs no fit.
  Without a sign of noise it is all or nothing, and the clean set alone needs a CV loss
  ``clean_only_se`` standard errors below the pick's;
* the regularization λ of the finalists is tuned by the same CV (``reg_line_search``): with a
  few hundred rows and thousands of features λ = 1/rows overfits badly. Without a sign of
  noise the λ of train + clean set is cross-validated over all of its rows instead, and may
  also go down from 1/rows.

Logistic regression only (a fit takes well under a second); for networks use ``rdia`` with
``--alpha auto``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rdia_cli.cleaning.auto.blend import blend_cv, blend_models
from rdia_cli.cleaning.auto.config import Config, build_training_set
from rdia_cli.cleaning.auto.cv import (
    CleanSetCV,
    Fit,
    Progress,
    Rankings,
    UnionCV,
    cv_table,
    out_of_fold_scores,
    race,
    shared_curvature,
    stratified_folds,
)
from rdia_cli.cleaning.auto.policy import DEFAULT_POLICY, AutoPolicy
from rdia_cli.cleaning.auto.rules import (
    anchors_only,
    candidates,
    clean_only_share,
    decisions,
    finalists,
    noise_evidence,
    tune_lambda,
)
from rdia_cli.cleaning.auto.verdict import Verdict, VerdictRecord, chosen_label
from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError
from rdia_cli.metrics import row_losses
from rdia_cli.models.io import ModelFile


@dataclass
class AutoCleanResult:
    config: Config  # the training-based pick (or "clean set alone" when that is all of it)
    cleaned: Dataset  # ``config``'s training rows + validation rows, with weights and targets
    # fitted on ``cleaned`` — or, when 0 < clean_only_share < 1, the parameters of that fit ×
    # (1 − share) plus those of a fit on the clean set alone (``clean_only``, at its λ) × share
    model: ModelFile
    cv: list[dict[str, Any]] = field(default_factory=list)  # every candidate's CV loss
    # a VerdictRecord: the verdict as the files keep it, and as ``.fields`` the Verdict
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


def fit_from(ds: Dataset, start: ModelFile, *, l2: float, tol: float, max_iter: int,
             device="cpu", from_scratch: bool = False) -> ModelFile:
    """auto's final fit, and `rdia retrain`'s of the file it wrote (the one function in both
    places: the same model bit for bit): Newton's method from ``start`` (the model trained on
    the training rows alone), each step solved by conjugate gradient preconditioned with
    ``start``'s Hessian on ``ds`` where an explicit one fits (``SharedCurvature``). From zero
    with the diagonal preconditioner it took 3-5× the CPU (one thread: letter, 3,000 rows,
    0.38 → 0.09 s; optdigits 0.33 → 0.06 s). ``from_scratch``: from zero, unpreconditioned.
    Small sparse data are fitted dense (``dense_if_small``: letter as LIBSVM, 600 rows, 26
    classes: its Hessian by 351 sparse Gram blocks took 15 ms)."""
    from rdia_cli.models.logreg.training import train_logreg

    fit_on = dense_if_small(ds)
    reference = None if from_scratch else shared_curvature(start, fit_on, device)
    model = train_logreg(fit_on, l2=l2, fit_intercept=start.arch_args.get("fit_intercept", True),
                         tol=tol, max_iter=max_iter, device=device,
                         init=None if from_scratch else start, reference=reference)
    if fit_on is not ds:  # the model records the data as given: sparse, and its fingerprint
        from rdia_cli.models.common import schema_meta

        model.meta.update(schema_meta(ds), train_fingerprint=ds.fingerprint())
    return model


class Refit:
    """Fits a candidate on the whole data the way auto's choice is fitted: ranked against the
    whole clean set, its training set built, λ = reg / rows (or the fixed λ), from ``erm``
    (``fit_from``)."""

    def __init__(self, train: Dataset, val: Dataset, rankings: Rankings, fit: Fit,
                 erm: ModelFile):
        self.train, self.val, self.rankings, self.fit, self.erm = train, val, rankings, fit, erm
        self.ranked: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, cfg: Config) -> tuple[Dataset, ModelFile]:
        if cfg.ranker not in self.ranked:
            self.ranked[cfg.ranker] = self.rankings.against(cfg.ranker, self.val)
        ds = build_training_set(self.train, *self.ranked[cfg.ranker], self.val, cfg)
        if cfg.ranker != "phi":  # the `phi` column holds Φ, whichever score ranked the rows
            if "phi" not in self.ranked:
                self.ranked["phi"] = self.rankings.against("phi", self.val)
            at = {int(r): i for i, r in enumerate(self.train.row_id)}
            part = ds.extra["part"] == 0
            phi = ds.extra["phi"].copy()
            phi[part] = self.ranked["phi"][0][[at[int(r)] for r in ds.row_id[part]]]
            ds.extra["phi"] = phi
        fit = self.fit
        return ds, fit_from(ds, self.erm, l2=fit.l2_for(ds, cfg.reg), tol=fit.policy.fit_tol,
                            max_iter=fit.policy.max_iter, device=fit.device)


def dense_if_small(ds: Dataset) -> Dataset:
    """``ds`` with a dense X where it is sparse but small (N·P ≤ ``GRAM_DENSE_ELEMENTS``):
    hundreds of CV fits on it then skip the sparse kernels' set-up, which dominates there."""
    from dataclasses import replace

    from rdia_cli.models.logreg.design import GRAM_DENSE_ELEMENTS

    if not ds.is_sparse or ds.n_samples * ds.n_features > GRAM_DENSE_ELEMENTS:
        return ds
    return replace(ds, X=np.asarray(ds.X.toarray(), dtype=np.float64))


def check_auto(arch: str, val: Dataset) -> None:
    """What the auto strategy needs, checked before any work is done."""
    from rdia_cli.models.kinds import kind_of

    if not kind_of(arch).supports_auto:
        raise InputError("`strategy` auto needs `model_type` logreg; for networks use "
                         "`strategy` rdia `alpha` auto.")
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
    configs: list[Config] | None = None,
    l2: float | None = None,
    seed: int = 0,
    device="cpu",
    progress: Callable[[int, int], None] | None = None,
    policy: AutoPolicy = DEFAULT_POLICY,
) -> AutoCleanResult:
    """Choose ω, action, fraction and λ by K-fold CV on ``val``; fit the final model.

    ``erm`` is the model trained on ``train`` alone (θ̂ for Φ). ``policy`` holds the thresholds,
    the candidate grid (``configs``, if given, replaces it) and the final pick (``choose``); the
    verdict records it. Fits use λ = reg/rows with reg tuned by the CV, unless ``l2`` is given
    (then every fit uses it). A small problem runs on one CPU thread throughout (``threads_for``:
    its fits already did; the Hessians, rankings and predictions between them spun a second
    thread for the same wall time, twice the CPU).
    """
    from rdia_cli.device import threads_for

    check_auto(erm.arch, val)
    with threads_for(train.n_samples * train.n_features * train.n_classes):
        return _auto_clean(train, val, erm, configs=configs, l2=l2, seed=seed, device=device,
                           progress=progress, policy=policy)


def _auto_clean(train, val, erm, *, configs, l2, seed, device, progress,
                policy) -> AutoCleanResult:
    from rdia_cli.models.common import probabilities

    final_train, final_val = train, val
    train, val = dense_if_small(train), dense_if_small(val)  # for the many CV fits
    configs = list(configs or candidates(policy))
    fold_rows = stratified_folds(val.y, policy.folds_for(val.n_samples), seed)
    fit = Fit(l2, erm.arch_args.get("fit_intercept", True), device, policy)
    # θ̂'s Hessian on the training rows preconditions every CV fit: the out-of-fold ranking's,
    # the clean-set CV's and the all-row CV's (each of their training sets is mostly these rows)
    curvature = shared_curvature(erm, train, device)
    oof, val_fold_probs = out_of_fold_scores(train, erm, seed=seed, device=device, val=val,
                                             policy=policy, curvature=curvature)
    noise = noise_evidence(train.y, oof[1], val.y, val_fold_probs, policy)
    if noise.get("pair") is not None:  # [labelled k, looks like j] as the user's class values
        noise["pair_classes"] = [str(train.classes[i]) for i in noise["pair"]]
    noisy = noise["noisy"]
    if not noisy:  # no sign of label noise: nothing to clean, only the anchors
        configs = anchors_only(configs)
    rankings = Rankings(train, erm, oof, device=device, policy=policy)
    ticks = Progress(progress)
    cv = CleanSetCV(train, val, fold_rows, rankings, fit, seed=seed, progress=ticks,
                    curvature=curvature)
    union = UnionCV(train, val, erm, seed=seed, device=device, progress=ticks, policy=policy,
                    curvature=curvature)
    tune = l2 is None
    erm_loss = row_losses(probabilities(erm, val, device=device), val.y)

    # every candidate's out-of-fold loss, then the training-based pick (``policy.choose``) and
    # "clean set alone", each at its λ
    row_loss, finished = race(cv, configs, tune=tune)
    pick, alone = finalists(configs, row_loss, finished, policy)
    if tune:
        pick, alone = tune_lambda(cv, union, pick, alone, noisy=noisy, policy=policy)
        if pick is not None:
            cv(pick)  # its out-of-fold probabilities of the clean rows, for the blend
    # how much of each goes into the final model, by the same CV
    share, held_back = (1.0 if pick is None else 0.0), False
    if pick is not None and alone is not None:
        share, held_back = clean_only_share(cv.probs[pick], cv.probs[alone], val.y,
                                            cv.shifts[alone], cv(pick), noisy=noisy,
                                            policy=policy)
    config = alone if share == 1.0 else pick

    refit = Refit(final_train, final_val, rankings, fit, erm)
    cleaned, model = _final_model(refit, config, alone, share)
    chosen_cv = (blend_cv(cv.probs[pick], cv.probs[alone], val.y, share, cv.shifts[alone])
                 if 0.0 < share < 1.0 else cv(config))
    table, losses = cv_table(configs, row_loss, cv)
    # the two anchors as the baselines fit them (λ = 1/rows), so that the chosen model's CV loss
    # is never above the "uncleaned" one it is reported next to when it is that anchor
    plain = [losses[c] for c in configs if c.weight == 1.0 and c.fraction == 0]
    verdict = Verdict(
        chosen=chosen_label(config, alone, share), kind=config.kind, reg=config.reg,
        clean_only_share=share, clean_only_held_back=held_back,
        cv_loss_chosen=float(chosen_cv.mean()),
        cv_loss_erm=float(erm_loss.mean()),
        cv_loss_clean_only=next((losses[c] for c in configs if c.weight == 0), math.nan),
        cv_loss_train_plus_val=plain[0] if plain else None,
        n_folds=len(fold_rows), n_clean=val.n_samples,
        # the rows whose CV chose the final model's λ
        lambda_rows=(train.n_samples + val.n_samples) if union.scored and share == 0.0
        else val.n_samples,
        noise=noise, l2=model.meta["l2"], policy=policy,
        decided_by=tuple(decisions(configs, row_loss, finished, pick, share, held_back,
                                   noise=noise, lambda_over_all=bool(union.scored),
                                   policy=policy)))
    all_folds = cv.all_folds()
    return AutoCleanResult(
        config, cleaned, model, table, VerdictRecord(verdict), clean_only_share=share,
        clean_only=alone, refit=refit,
        row_losses={c: r for c, r in cv.scored.items() if all_folds[c]},
        row_probs={c: cv.probs[c] for c in cv.scored if all_folds[c]},
        alone_shift={c: v for c, v in cv.shifts.items() if all_folds.get(c)},
        union_losses=dict(union.scored))


def _final_model(refit: Refit, config: Config, alone: Config | None,
                 share: float) -> tuple[Dataset, ModelFile]:
    """``config``'s training set and model on the whole data; with 0 < ``share`` < 1 the model
    blends its parameters with those of "clean set alone" (``alone``, at its λ)."""
    cleaned, model = refit(config)
    model.meta["strategy"] = {"name": "auto", "action": config.action, "ranker": config.ranker,
                              "fraction": config.fraction, "weight": config.weight,
                              "reg": config.reg}
    if 0.0 < share < 1.0:
        model = blend_models(model, refit(alone)[1], share)  # copies the meta above
        model.meta["strategy"] = dict(model.meta["strategy"], blend={
            "clean_only_share": share, "clean_only_reg": alone.reg})
    return cleaned, model
