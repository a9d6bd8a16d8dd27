"""The K-fold machinery of the auto strategy: folds, out-of-fold probabilities and scores of the
training rows, and the cross-validation over the clean set that gives every candidate its
out-of-fold loss on each clean row (see ``clean``)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rdia_cli.cleaning.auto.choice import beats
from rdia_cli.cleaning.auto.config import Config, build_training_set, harmful_rows
from rdia_cli.cleaning.auto.policy import DEFAULT_POLICY, AutoPolicy
from rdia_cli.data.dataset import Dataset
from rdia_cli.metrics import row_losses
from rdia_cli.models.io import ModelFile

_TUNE_FITS = 4  # the λ search's fits per fold, guessed for the progress total
# CV fits of up to this N·P·K' run on the numpy backend (``Fit``): there torch's per-operation
# overhead is most of a fit (one thread, fits to 1e-4, rows × columns × classes: 60 × 17 × 10
# 1.7× faster in numpy, 120 × 37 × 6 1.5×, 150 × 65 × 10 1.5×, 600 × 17 × 10 1.1×; a
# threshold of 400,000 gave the same CPU over the benchmark's runs)
TINY_FIT_WORK = 150_000


def clean_model_scores(train: Dataset, val: Dataset, erm: ModelFile, *, device="cpu",
                       policy: AutoPolicy = DEFAULT_POLICY):
    """-log p(label) of every training row under a model fitted on ``val`` alone, shifted so
    that rows the clean model finds likelier than chance are ≤ 0 (never selected), plus that
    model's probabilities (the hard relabel target for this ranking); fitted to
    ``policy.clean_model_tol``."""
    from rdia_cli.models.common import probabilities
    from rdia_cli.models.logreg.training import train_logreg

    clean = train_logreg(val, l2=1.0 / val.n_samples,
                         fit_intercept=erm.arch_args.get("fit_intercept", True),
                         tol=policy.clean_model_tol,
                         device=device)
    probs = probabilities(clean, train, device=device)
    nll = row_losses(probs, train.y)
    return nll - np.log(train.n_classes), probs


def out_of_fold_probabilities(train: Dataset, erm: ModelFile, *, folds: int = 5, seed: int = 0,
                              device="cpu", tol: float = 1e-8, warm: bool = False,
                              also: Dataset | None = None, reg: float = 1.0,
                              fold_models: dict[int, ModelFile] | None = None,
                              curvatures: dict[int, Any] | None = None):
    """(N, K) probabilities of every training row under a model fitted on the other ``folds``
    - 1 parts of the training set (λ = reg / their rows; uniform where those parts hold a
    single class); ``warm`` starts each fit from ``erm``. ``fold_models``, if given, holds the
    fit of each fold by its index: a fold found there starts from it (a λ search along one set
    of folds), and every new fit replaces it. With ``also``, returns as well the (folds, M, K)
    probabilities of ``also``'s rows under each of those models. The fits record no training
    fingerprint (they are never written). ``curvatures``, if given, holds under
    key -1 the ``SharedCurvature`` that preconditions every fold's fit; where it is empty, the
    Hessian at the first fold's warm start (``fold_models``), else of its fit, goes there (the
    folds' training sets share most of their rows)."""
    from rdia_cli.models.common import probabilities
    from rdia_cli.models.logreg.training import train_logreg

    probs = np.zeros((train.n_samples, train.n_classes))
    extra = []
    fit_intercept = erm.arch_args.get("fit_intercept", True)
    for k, held in enumerate(stratified_folds(train.y, folds, seed)):
        part = train.subset(np.setdiff1d(np.arange(train.n_samples), held))
        if len(np.unique(part.y)) < 2:
            probs[held] = 1.0 / train.n_classes
            if also is not None:
                extra.append(np.full((also.n_samples, train.n_classes), 1.0 / train.n_classes))
            continue
        init = (fold_models or {}).get(k, erm if warm else None)
        if curvatures is not None and -1 not in curvatures and init is not None:
            curvatures[-1] = shared_curvature(init, part, device)  # at the first fit's start
        ref = None if curvatures is None else curvatures.get(-1)
        m = train_logreg(part, l2=reg / part.n_samples, fit_intercept=fit_intercept, tol=tol,
                         device=device, init=init,
                         record_fingerprint=False, reference=ref)
        if curvatures is not None and -1 not in curvatures:
            curvatures[-1] = shared_curvature(m, part, device)
        if fold_models is not None:
            fold_models[k] = m
        probs[held] = probabilities(m, train.subset(held), device=device)
        if also is not None:
            extra.append(probabilities(m, also, device=device))
    return probs if also is None else (probs, np.stack(extra))


def out_of_fold_scores(train: Dataset, erm: ModelFile, *, seed: int = 0, device="cpu",
                       val: Dataset | None = None, policy: AutoPolicy = DEFAULT_POLICY,
                       curvature: Any = None):
    """-log p(label) of every training row under out-of-fold models of the training set
    (confident learning's self-confidence, cross-fitted), shifted like ``clean_model_scores``,
    plus those probabilities. Independent of the clean set: the noisy rows' own majority is the
    reference, which is what works at low noise when the clean set is too small to train a good
    model on. With ``val``, also the (folds, M, K) probabilities of its rows under the same
    models (``noise_evidence``). ``policy.oof_folds`` folds, fits to ``policy.cv_tol``,
    preconditioned by ``curvature`` (by default ``erm``'s Hessian on ``train``)."""
    if curvature is None:
        curvature = shared_curvature(erm, train, device)
    out = out_of_fold_probabilities(train, erm, folds=policy.oof_folds, seed=seed, device=device,
                                    tol=policy.cv_tol, warm=True, also=val,
                                    curvatures={-1: curvature})
    probs = out if val is None else out[0]
    nll = row_losses(probs, train.y)
    scores = (nll - np.log(train.n_classes), probs)
    return scores if val is None else (scores, out[1])


def shared_curvature(model: ModelFile, ds: Dataset, device) -> Any:
    """``model``'s data Hessian on ``ds`` to precondition the CV fits of nearby data sets
    (``SharedCurvature``), or None (on a GPU, or too many parameters for an explicit one)."""
    from rdia_cli.models.logreg.curvature import SharedCurvature

    return SharedCurvature.at(model, ds) if str(device) == "cpu" else None


def stratified_folds(y: np.ndarray, n_folds: int, seed: int) -> list[np.ndarray]:
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(y)
    counts = counts[counts > 0]
    n_folds = max(2, min(n_folds, len(y)))
    if counts.min() >= n_folds:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        return [test for _, test in splitter.split(np.zeros(len(y)), y)]
    splitter = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [test for _, test in splitter.split(np.zeros(len(y)))]


def _clean_only_at_full_size(fit_predict: Callable[[Dataset, Dataset], np.ndarray],
                             v_in: Dataset, v_out: Dataset, n_full: int, seed: int,
                             policy: AutoPolicy = DEFAULT_POLICY) -> np.ndarray:
    """Out-of-fold row losses of "clean set alone", corrected to the size it is trained on at
    the end. K-fold CV fits it on (K-1)/K of the clean set, which hurts it far more than any
    candidate whose training set is mostly training rows. Refit ``policy.curve_repeats`` times
    on ``policy.curve_share`` of the fold's rows (not below ``policy.curve_min_rows``), read the
    slope of the learning curve L(n) = L∞ + c/n between the two sizes, extrapolate to ``n_full``
    rows; the shift is one number per fold, never upwards. ``fit_predict(fit_on, predict_on)``
    returns the probabilities of a model fitted on ``fit_on`` for the rows of ``predict_on``."""
    full = row_losses(fit_predict(v_in, v_out), v_out.y)
    n1 = v_in.n_samples
    n2 = int(round(policy.curve_share * n1))
    if n2 < policy.curve_min_rows or n1 >= n_full:
        return full
    rng = np.random.default_rng(seed)
    smaller = []
    for _ in range(policy.curve_repeats):
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


@dataclass(frozen=True)
class Fit:
    """How auto fits a training set: a logistic regression at λ = reg / rows, or at ``l2`` where
    given, to ``tol`` (``policy.fit_tol`` unless given) in ``policy.max_iter`` iterations; fits
    to ``policy.cv_tol`` and looser record no training fingerprint."""
    l2: float | None
    fit_intercept: bool
    device: Any = "cpu"
    policy: AutoPolicy = DEFAULT_POLICY

    def __call__(self, ds: Dataset, init=None, tol: float | None = None,
                 reg: float = 1.0, reference=None) -> ModelFile:
        from rdia_cli.models.logreg.training import train_logreg

        tol = self.policy.fit_tol if tol is None else tol
        return train_logreg(ds, l2=self.l2_for(ds, reg), fit_intercept=self.fit_intercept, tol=tol,
                            max_iter=self.policy.max_iter, device=self._device_for(ds),
                            init=init, record_fingerprint=tol < self.policy.cv_tol,
                            reference=reference)

    def _device_for(self, ds: Dataset):
        """``device``, or on the CPU for a tiny data set (N·P·K' ≤ ``TINY_FIT_WORK``: the clean
        set alone, tens of rows) the numpy backend."""
        from rdia_cli.models.logreg.arrays import NUMPY_DEVICE

        outputs = 1 if ds.n_classes == 2 else ds.n_classes
        work = ds.n_samples * (ds.n_features + 1) * outputs
        tiny = not ds.is_sparse and work <= TINY_FIT_WORK
        return NUMPY_DEVICE if tiny and str(self.device) == "cpu" else self.device

    def l2_for(self, ds: Dataset, reg: float = 1.0) -> float:
        """λ of a fit on ``ds``: ``l2`` where given, else reg / rows."""
        return self.l2 if self.l2 is not None else reg / ds.n_samples


@dataclass
class Progress:
    """Fits done and the number expected (an estimate until the race has cut the field), passed
    to ``report(done, total)`` after every fit."""
    report: Callable[[int, int], None] | None = None
    done: int = 0
    total: int = 0

    def tick(self, n: int = 1) -> None:
        self.done += n
        self.total = max(self.total, self.done)
        if self.report is not None:
            self.report(self.done, self.total)


class Rankings:
    """The ranking of the training rows by each ranker against a clean set: (score,
    probabilities for the hard relabel). ``oof`` is ``out_of_fold_scores``' result (it does not
    depend on the clean set)."""

    def __init__(self, train: Dataset, erm: ModelFile, oof: tuple[np.ndarray, np.ndarray], *,
                 device="cpu", policy: AutoPolicy = DEFAULT_POLICY):
        self.train, self.erm, self.oof, self.device = train, erm, oof, device
        self.policy = policy

    @functools.cached_property
    def erm_probs(self) -> np.ndarray:  # θ̂'s probabilities of the training rows: only Φ needs them
        from rdia_cli.models.common import probabilities

        return probabilities(self.erm, self.train, device=self.device)

    @functools.cached_property
    def _phi_solve(self):  # θ̂'s Hessian on the training rows is the same against every fold
        from rdia_cli.influence.logreg import hessian_solver

        return hessian_solver(self.erm, self.train, device=self.device)

    def against(self, ranker: str, clean: Dataset) -> tuple[np.ndarray, np.ndarray]:
        from rdia_cli.device import threads_for
        from rdia_cli.influence.logreg import score_logreg

        train = self.train
        if ranker == "oof":
            return self.oof
        if ranker == "phi":
            with threads_for(train.n_samples * train.n_features * train.n_classes):
                return score_logreg(self.erm, train, clean, device=self.device,
                                    solve=self._phi_solve).phi, self.erm_probs
        return clean_model_scores(train, clean, self.erm, device=self.device, policy=self.policy)


class CleanSetCV:
    """K-fold cross-validation over the clean set: for fold k a candidate ranks the training rows
    against the other folds, is fitted on its training set built with them, and its loss is
    measured on fold k's rows, which neither the ranking nor the fit has seen. Fits of a family
    (ω, ranker, action) start from the last one of the same fold.

    Holds, per candidate, the out-of-fold probabilities of the clean rows (``probs``; NaN on
    folds it did not run), the learning-curve correction of "clean set alone" (``shifts``) and
    the row losses of those measured on every fold (``scored``, in the order they were). CV fits
    stop at ``fit.policy.cv_tol``."""

    def __init__(self, train: Dataset, val: Dataset, fold_rows: list[np.ndarray],
                 rankings: Rankings, fit: Fit, *, seed: int, progress: Progress,
                 curvature: Any = None):
        self.train, self.val, self.fold_rows = train, val, fold_rows
        self.policy = fit.policy
        self.rankings, self.fit, self.seed, self.progress = rankings, fit, seed, progress
        self.parts = [(val.subset(np.setdiff1d(np.arange(val.n_samples), rows)), val.subset(rows))
                      for rows in fold_rows]
        self.warm: list[dict[tuple, ModelFile]] = [{} for _ in fold_rows]
        self.last: dict[Config, ModelFile] = {}  # each candidate's latest fit, on any fold
        self.fold_rankings: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
        self.probs: dict[Config, np.ndarray] = {}
        self.shifts: dict[Config, np.ndarray] = {}  # "clean set alone": its learning-curve shift
        self.scored: dict[Config, np.ndarray] = {}
        # "train": ``curvature`` (auto passes θ̂'s Hessian on the training rows), else the
        # Hessian of the first fit with training rows, which preconditions the others on every
        # fold (their training sets share all training rows); "alone": that of the first fit of
        # the clean set alone, for all of its fits
        self.curvature: dict[Any, Any] = {} if curvature is None else {"train": curvature}
        # (fold, ω, ranker, action, λ, rows cleaned) → the candidate first fitted on that set
        # in that fold, and the fit
        self.same_set: dict[tuple, tuple[Config, ModelFile]] = {}

    def __call__(self, cfg: Config) -> np.ndarray:
        """Out-of-fold loss of every clean row under ``cfg`` (fitted on the folds it ran in the
        race, or now on every fold)."""
        if cfg not in self.scored:
            out = np.empty(self.val.n_samples)
            for k, rows in enumerate(self.fold_rows):
                out[rows] = self.fold_loss(cfg, k)
                self.progress.tick()
            self.scored[cfg] = out
        return self.scored[cfg]

    def fold_loss(self, cfg: Config, k: int) -> np.ndarray:
        """Loss of fold k's clean rows under ``cfg`` fitted without them."""
        from rdia_cli.models.common import probabilities

        (v_in, v_out), rows, device = self.parts[k], self.fold_rows[k], self.fit.device
        if cfg.weight == 0:  # clean set alone, extrapolated to the whole clean set
            # each fit starts from this candidate's fit on the fold before (the smaller ones of
            # the learning curve from this fold's), preconditioned by the Hessian of the first
            def fit_predict(fit_on: Dataset, predict_on: Dataset) -> np.ndarray:
                key = "alone"
                model = self.fit(fit_on, init=self.last.get(cfg), tol=self.policy.cv_tol,
                                 reg=cfg.reg, reference=self.curvature.get(key))
                if key not in self.curvature:
                    self.curvature[key] = shared_curvature(model, fit_on, device)
                if fit_on is v_in:
                    self.last[cfg] = model
                p = probabilities(model, predict_on, device=device)
                return self._keep_probs(cfg, k, p) if fit_on is v_in else p
            out = _clean_only_at_full_size(fit_predict, v_in, v_out, self.val.n_samples,
                                           self.seed + k, self.policy)
            self.shifts.setdefault(cfg, np.zeros(self.val.n_samples))[rows] = (
                row_losses(self.probs[cfg][rows], v_out.y) - out)
            return out
        if cfg.fraction == 0:  # nothing cleaned: no ranking needed
            score, p = np.zeros(self.train.n_samples), None
        else:
            if (k, cfg.ranker) not in self.fold_rankings:  # against fold k's part of the clean set
                self.fold_rankings[k, cfg.ranker] = self.rankings.against(cfg.ranker, v_in)
            score, p = self.fold_rankings[k, cfg.ranker]
        # a larger fraction that selects no more rows (only rows of score > 0 are cleaned)
        # builds the same training set as a smaller one of its family: the same fit
        harmful = harmful_rows(score, cfg)
        same = (k, cfg.weight, cfg.ranker, cfg.action, cfg.reg, harmful.tobytes())
        if same in self.same_set:
            twin, model = self.same_set[same]
            self.last[cfg] = self.warm[k][(cfg.weight, cfg.ranker, cfg.action)] = model
            return row_losses(self._keep_probs(cfg, k, self.probs[twin][rows]), v_out.y)
        ds = build_training_set(self.train, score, p, v_in, cfg, harmful)
        # warm start: "train + clean set" from its fit on the fold before (the training sets
        # differ by two folds' clean rows: measured 28% less CPU where only the anchors run),
        # a cleaning from the neighbouring fraction (or λ) of its family in this fold (from the
        # fold before it was slower)
        warm, family = self.warm[k], (cfg.weight, cfg.ranker, cfg.action)
        init = (self.last.get(cfg) if cfg.fraction == 0 else None) or warm.get(
            family, warm.get((cfg.weight,)))
        ref = self.curvature.get("train")
        model = self.fit(ds, init=init, tol=self.policy.cv_tol, reg=cfg.reg, reference=ref)
        if "train" not in self.curvature:
            self.curvature["train"] = shared_curvature(model, ds, device)
        self.same_set[same] = cfg, model
        self.last[cfg] = model
        warm[family] = model
        warm.setdefault((cfg.weight,), model)
        return row_losses(self._keep_probs(cfg, k, probabilities(model, v_out, device=device)),
                          v_out.y)

    def _keep_probs(self, cfg: Config, k: int, p: np.ndarray) -> np.ndarray:
        if cfg not in self.probs:
            self.probs[cfg] = np.full((self.val.n_samples, p.shape[1]), np.nan)
        self.probs[cfg][self.fold_rows[k]] = p
        return p

    def all_folds(self) -> dict[Config, bool]:
        """Of each scored candidate, whether it has a loss on every clean row."""
        return {c: not np.isnan(r).any() for c, r in self.scored.items()}


def race(cv: CleanSetCV, configs: list[Config], *, tune: bool) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold loss of every clean row under each candidate (candidates × rows), by racing
    (successive halving over folds): every candidate runs on the first
    ``policy.race_first_folds`` of the folds (all of them with two folds), only the best
    ``policy.race_kept`` (and the two anchors: clean set alone, train + val) on the rest; after
    each fold, a candidate the best beats by ``policy.race_drop_se`` standard errors on the rows
    seen stops running; NaN where one did not run. Also whether each ran on every fold (those
    go into ``cv.scored``).
    ``tune``: a λ search follows (its fits are counted in the progress total)."""
    fold_rows, progress, policy = cv.fold_rows, cv.progress, cv.policy
    n_folds = len(fold_rows)
    race_after = max(1, math.ceil(policy.race_first_folds * n_folds)) if n_folds > 2 else n_folds
    n_keep = policy.race_kept(len(configs))
    anchors = {i for i, c in enumerate(configs) if c.weight == 0 or c.fraction == 0}
    progress.total = n_folds * (len(configs) + (_TUNE_FITS if tune else 0))  # until the cut
    row_loss = np.full((len(configs), cv.val.n_samples), np.nan)
    active = list(range(len(configs)))
    for k, rows in enumerate(fold_rows):
        if k == race_after and k < len(fold_rows):
            seen = np.concatenate(fold_rows[:k])
            running = set(active)  # of those still running (none dropped: every candidate)
            order = [i for i in np.argsort(row_loss[:, seen].mean(1), kind="stable").tolist()
                     if i in running]
            active = sorted(set(order[:n_keep]) | anchors)
            progress.total = progress.done + (n_folds - k) * len(active) + (
                _TUNE_FITS * n_folds if tune else 0)
        elif k > 0 and policy.race_drop_se is not None:
            before = len(active)
            active = _far_behind_dropped(row_loss, active, anchors,
                                         np.concatenate(fold_rows[:k]), policy.race_drop_se)
            progress.total -= (before - len(active)) * (n_folds - k)
        for i in active:
            row_loss[i, rows] = cv.fold_loss(configs[i], k)
            progress.tick()
    finished = np.array([not np.isnan(r).any() for r in row_loss])
    cv.scored.update({configs[i]: row_loss[i] for i in np.flatnonzero(finished)})
    return row_loss, finished


def _far_behind_dropped(row_loss: np.ndarray, active: list[int], anchors: set[int],
                        seen: np.ndarray, z: float) -> list[int]:
    """``active`` without the candidates that the best of them (on the clean rows ``seen`` so
    far) beats by more than ``z`` standard errors of the paired difference; anchors stay."""
    racing = [i for i in active if i not in anchors]
    if len(racing) < 2:
        return active
    best = min(racing, key=lambda i: row_loss[i, seen].mean())
    return [i for i in active if i in anchors or i == best
            or not beats(row_loss[best, seen], row_loss[i, seen], z)]


class UnionCV:
    """Out-of-fold loss of every training and clean row under "train + clean set" at a
    candidate's λ, by ``policy.union_folds``-fold CV over all of them: without a sign of label
    noise the training rows are clean rows too. ``scored``: λ multiplier → row losses."""

    def __init__(self, train: Dataset, val: Dataset, erm: ModelFile, *, seed: int, device,
                 progress: Progress, policy: AutoPolicy = DEFAULT_POLICY,
                 curvature: Any = None):
        self.train, self.val, self.erm, self.policy = train, val, erm, policy
        self.seed, self.device, self.progress = seed, device, progress
        self.fold_models: dict[float, dict[int, ModelFile]] = {}  # λ multiplier → fold → fit
        # one Hessian for every fold and λ (a factor per λ): ``curvature``, else the first fit's
        self.curvatures: dict[int, Any] = {} if curvature is None else {-1: curvature}
        self.scored: dict[float, np.ndarray] = {}

    @functools.cached_property
    def rows(self) -> Dataset:
        train = self.train
        return build_training_set(train, np.zeros(train.n_samples), None, self.val,
                                  Config("drop", 0.0, 1.0))

    def __call__(self, cfg: Config) -> np.ndarray:
        if cfg.reg not in self.scored:
            folds = self.policy.union_folds
            # each fold's fit starts from its fit at the nearest λ searched; where the search
            # goes on in the same direction, from the straight line through the last two
            # (the path is smooth in log λ: 15-20% fewer Newton steps here)
            near = min(self.fold_models, default=None,
                       key=lambda r: (abs(math.log(r / cfg.reg)), r))
            models = dict(self.fold_models[near]) if near is not None else {}
            far = None if near is None else near * (near / cfg.reg)
            if far in self.fold_models:
                a, b = self.fold_models[near], self.fold_models[far]
                models = {k: _extrapolated(a[k], b[k]) for k in a if k in b}
            probs = out_of_fold_probabilities(self.rows, self.erm, folds=folds, seed=self.seed,
                                              device=self.device, tol=self.policy.union_tol,
                                              warm=True, reg=cfg.reg, fold_models=models,
                                              curvatures=self.curvatures)
            self.fold_models[cfg.reg] = models
            self.scored[cfg.reg] = row_losses(probs, self.rows.y)
            self.progress.tick(folds)
        return self.scored[cfg.reg]


def _extrapolated(near: ModelFile, far: ModelFile) -> ModelFile:
    """The parameters 2·near − far: one more step along the line from ``far`` to ``near``."""
    return ModelFile(arch=near.arch, arch_args=near.arch_args, meta={},
                     state={n: 2 * near.state[n] - far.state[n] for n in near.state})


def _standard_error(row_loss: np.ndarray) -> float | None:
    """Standard error of the mean out-of-fold row loss over the clean rows it was measured on
    (for the report's error bars; the choice itself compares candidates row by row)."""
    r = row_loss[np.isfinite(row_loss)]
    return float(r.std(ddof=1) / np.sqrt(r.size)) if r.size > 1 else None


def cv_table(configs: list[Config], row_loss: np.ndarray,
             cv: CleanSetCV) -> tuple[list[dict[str, Any]], dict[Config, float]]:
    """Every candidate's CV loss (the mean over the folds it ran; ``row_loss`` from ``race``),
    the λ search's extra fits after them: as table rows, and by candidate."""
    all_folds = cv.all_folds()
    given = set(configs)
    listed = configs + [c for c in cv.scored if c not in given]
    losses = {c: float(np.nanmean(row_loss[i])) for i, c in enumerate(configs)}
    losses.update({c: float(r.mean()) for c, r in cv.scored.items()})
    rows = {c: row_loss[i] for i, c in enumerate(configs)} | dict(cv.scored)
    table = [{"action": c.action, "ranker": c.ranker, "fraction": c.fraction,
              "weight": c.weight, "reg": c.reg, "label": c.label,
              "cv_loss": losses[c], "cv_se": _standard_error(rows[c]),
              "all_folds": bool(all_folds.get(c, False))}
             for c in listed]
    return table, losses
