"""Honest baselines next to the cleaning strategies: the clean set alone, train + clean set, and
cleanlab (``find_label_issues`` on out-of-sample probabilities, then drop). Logistic regression."""

from __future__ import annotations

import numpy as np

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError
from rdia_cli.models.io import ModelFile


def _fit(ds: Dataset, erm: ModelFile, device) -> ModelFile:
    from rdia_cli.models.logreg.training import train_logreg

    return train_logreg(ds, l2=1.0 / ds.n_samples,
                        fit_intercept=erm.arch_args.get("fit_intercept", True), device=device)


def clean_only(val: Dataset, erm: ModelFile, *, device="cpu") -> ModelFile:
    """Logistic regression on the clean validation set alone."""
    return _fit(val, erm, device)


def train_plus_val(train: Dataset, val: Dataset, erm: ModelFile, *, device="cpu") -> ModelFile:
    """Logistic regression on the raw training rows plus the validation rows."""
    from rdia_cli.cleaning.auto import Config, build_training_set

    ds = build_training_set(train, np.zeros(train.n_samples), np.zeros((train.n_samples, 1)),
                            val, Config("drop", 0.0, 1.0))
    return _fit(ds, erm, device)


def cleanlab_available() -> bool:
    try:
        import cleanlab  # noqa: F401
    except ImportError:
        return False
    return True


def cleanlab_drop(train: Dataset, erm: ModelFile, *, folds: int = 5, seed: int = 0,
                  device="cpu") -> tuple[ModelFile, np.ndarray]:
    """cleanlab's ``find_label_issues`` with K-fold out-of-sample probabilities, issues dropped.

    Returns the model and the boolean mask of rows cleanlab flagged."""
    if not cleanlab_available():
        raise InputError("the cleanlab baseline needs cleanlab: pip install 'rdia-cli[bench]'.")
    from cleanlab.filter import find_label_issues

    from rdia_cli.cleaning.auto import out_of_fold_probabilities

    y = train.y
    probs = out_of_fold_probabilities(train, erm, folds=folds, seed=seed, device=device)
    # n_jobs=1: no worker processes; a fork of a process holding torch's threads can deadlock
    issues = find_label_issues(y, probs, n_jobs=1)
    keep = ~issues
    return _fit(train.subset(keep), erm, device), issues
