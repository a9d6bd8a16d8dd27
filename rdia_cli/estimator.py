"""``RDIACleaner``: rdia as a scikit-learn / imbalanced-learn style resampler.

    cleaner = RDIACleaner().fit(X, y, X_val=X_clean, y_val=y_clean)
    cleaner.issues_                      # the label-issues table (``cleaning.issues``)
    X2, y2 = cleaner.fit_resample(X, y, X_val=X_clean, y_val=y_clean)

X may be a pandas DataFrame (read as rdia reads a table: text, categories, blanks; an ``id``
column names the rows) or an array; y the labels. The clean set (``X_val``, ``y_val``) is
required: Φ is an influence on the loss of clean rows.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from rdia_cli.errors import InputError

_LABEL = "__rdia_label__"


class RDIACleaner(BaseEstimator):
    """Find and fix label issues with influence functions (logistic regression).

    Parameters (stored as given; checked in ``fit``)
    ----------
    strategy : "auto" (default: cross-validated on the clean set), "rdia" (relabel) or "drop"
    fraction, alpha, phi_threshold : the rule for "rdia"/"drop" (give one)
    l2 : λ of the logistic regression (None: 1/rows)
    explain : flagged rows that get a ``why`` (0: none)
    id : for DataFrames, a column of row IDs (never a feature)
    random_state : int seed

    Attributes: ``issues_`` (DataFrame), ``classes_``, ``n_features_in_``,
    ``feature_names_in_`` (DataFrames), ``model_`` (the rdia ModelFile), ``scores_``.
    """

    def __init__(self, strategy="auto", fraction=None, alpha=None, phi_threshold=None, l2=None,
                 explain=0, id=None, random_state=0):
        self.strategy = strategy
        self.fraction = fraction
        self.alpha = alpha
        self.phi_threshold = phi_threshold
        self.l2 = l2
        self.explain = explain
        self.id = id
        self.random_state = random_state

    # --- data ------------------------------------------------------------------------------
    def _datasets(self, X, y, X_val, y_val):
        from rdia_cli.data.dataset import Dataset

        if X_val is None or y_val is None:
            raise InputError("RDIACleaner.fit needs the clean set: give `X_val` and `y_val`.")
        y, y_val = np.asarray(y), np.asarray(y_val)
        for name, a, b in (("X, y", X, y), ("X_val, y_val", X_val, y_val)):
            if len(a) != len(b):
                raise InputError(f"Found input variables with inconsistent numbers of samples "
                                 f"({name}): [{len(a)}, {len(b)}]")
        if hasattr(X, "columns"):
            if _LABEL in X.columns:
                raise InputError(f"`X` has a column named `{_LABEL}`; rename it.")
            classes = np.unique(np.concatenate([y, y_val]))
            train = Dataset.from_pandas(X.assign(**{_LABEL: y}), label=_LABEL, id=self.id)
            if len(train.classes) < len(classes):  # a class seen only in the clean set
                raise InputError("`y_val` has classes that `y` lacks: "
                                 f"{sorted(set(classes.tolist()) - set(y.tolist()))}.")
            val = Dataset.from_pandas(X_val.assign(**{_LABEL: y_val}), like=train)
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
            self.classes_ = np.asarray(train.classes)
            return train, val
        X = np.asarray(X, dtype=np.float64)
        X_val = np.asarray(X_val, dtype=np.float64)
        if X.ndim != 2 or X_val.ndim != 2 or X.shape[1] != X_val.shape[1]:
            raise InputError(f"`X` and `X_val` must be 2-D with the same number of columns, "
                             f"not shapes {X.shape} and {X_val.shape}.")
        if not (np.isfinite(X).all() and np.isfinite(X_val).all()):
            raise InputError("`X` and `X_val` must be finite (no NaN or inf); pass a "
                             "DataFrame to have blanks imputed.")
        classes = np.unique(np.concatenate([y, y_val]))
        if len(classes) < 2:
            raise InputError(f"`y` has one class ({classes[0]!r}); RDIACleaner needs at least 2.")
        self.classes_ = classes
        lookup = classes.tolist()
        mk = lambda A, lab: Dataset(  # noqa: E731
            X=A, y=np.searchsorted(classes, lab), classes=lookup, row_id=np.arange(len(lab)))
        return mk(X, y), mk(X_val, y_val)

    # --- sklearn API -----------------------------------------------------------------------
    def fit(self, X, y, X_val=None, y_val=None):
        """Train, score, and build ``issues_`` (one row per row of X, in order). Returns self."""
        from rdia_cli.cleaning.issues import find_issues
        from rdia_cli.stages import score_model, train_model

        train, val = self._datasets(X, y, X_val, y_val)
        self.n_features_in_ = int(np.asarray(X).shape[1]) if not hasattr(X, "columns") else \
            len(X.columns)
        self.model_ = train_model(train, l2=self.l2)
        self.scores_ = score_model(self.model_, train, val)
        rule = any(v is not None for v in (self.fraction, self.alpha, self.phi_threshold))
        strategy = self.strategy if (self.strategy != "auto" or not rule) else "rdia"
        self.issues_ = find_issues(
            train, self.scores_, val=val, model=self.model_, strategy=strategy,
            fraction=self.fraction, alpha=self.alpha, phi_threshold=self.phi_threshold,
            explain=int(self.explain), seed=int(self.random_state or 0))
        self._train = train
        return self

    def fit_resample(self, X, y, X_val=None, y_val=None):
        """``fit``, then X without the dropped rows and y with the relabeled rows' new labels
        (the same types: a DataFrame stays one, its index kept)."""
        self.fit(X, y, X_val=X_val, y_val=y_val)
        return self._resample(X, y)

    def _resample(self, X, y):
        t = self.issues_
        keep = (t.action != "drop").to_numpy()
        new = np.where(t.action == "relabel", t.suggested_label, t.given_label)
        y_arr = np.asarray(y)
        y_new = np.asarray(new, dtype=y_arr.dtype)[keep]
        if hasattr(X, "iloc"):
            return X.iloc[np.flatnonzero(keep)], _like(y, y_new, keep)
        return np.asarray(X)[keep], _like(y, y_new, keep)


def _like(y, values, keep):
    """``values`` in the type of ``y`` (a Series keeps its name and the kept rows' index)."""
    if hasattr(y, "iloc"):
        import pandas as pd

        return pd.Series(values, index=y.index[keep], name=y.name)
    return values
