"""``RDIACleaner``: scikit-learn conventions, arrays and DataFrames in, fit_resample out.

scikit-learn's ``check_estimator`` suite fits with ``fit(X, y)`` alone, which a cleaner that
needs a clean set refuses; the checks below are those that apply without fitting (parameters,
cloning, repr) plus the fitted-attribute conventions tested by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from rdia_cli import RDIACleaner
from rdia_cli.errors import InputError


@pytest.mark.parametrize("check", [check_get_params_invariance, check_set_params,
                                   check_no_attributes_set_in_init,
                                   check_parameters_default_constructible])
def test_sklearn_checks(check):
    check("RDIACleaner", RDIACleaner())


def _data(seed=0):
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    tr, va = order[:400], order[400:480]
    noisy = y[tr].copy()
    flip = rng.random(400) < 0.2
    noisy[flip] = 1 - noisy[flip]
    return X[tr], noisy, X[va], y[va], flip


def test_arrays_fit_resample():
    X, y, Xv, yv, flip = _data()
    c = RDIACleaner(fraction=0.15, strategy="rdia")
    assert c.fit(X, y, X_val=Xv, y_val=yv) is c
    assert len(c.issues_) == 400 and c.n_features_in_ == 30
    assert list(c.classes_) == [0, 1]
    X2, y2 = clone(c).fit_resample(X, y, X_val=Xv, y_val=yv)
    assert X2.shape == X.shape and y2.dtype == y.dtype
    changed = y2 != y
    assert changed.sum() == 60 and flip[changed].mean() > 0.7
    d = RDIACleaner(strategy="drop", fraction=0.1)
    X3, y3 = d.fit_resample(X, y, X_val=Xv, y_val=yv)
    assert len(X3) == len(y3) == 360 and (y3 == y[d.issues_.action != "drop"]).all()


def test_dataframes_with_text_labels_and_ids():
    X, y, Xv, yv, _ = _data(1)
    names = [f"f{j}" for j in range(X.shape[1])]
    df = pd.DataFrame(X, columns=names, index=np.arange(1000, 1400))
    df.insert(0, "cid", [f"C{i}" for i in range(400)])
    dv = pd.DataFrame(Xv, columns=names)
    dv.insert(0, "cid", [f"V{i}" for i in range(80)])
    lab = pd.Series(np.where(y == 1, "yes", "no"), index=df.index, name="good")
    c = RDIACleaner(id="cid", explain=3)
    X2, y2 = c.fit_resample(df, lab, X_val=dv, y_val=np.where(yv == 1, "yes", "no"))
    assert list(c.issues_.columns[:2]) == ["row_id", "cid"]
    assert isinstance(X2, pd.DataFrame) and isinstance(y2, pd.Series)
    assert set(y2.unique()) <= {"yes", "no"} and (X2.index == y2.index).all()
    assert c.issues_.why.str.startswith("val V").sum() == min(3, c.issues_.is_label_issue.sum())


def test_needs_the_clean_set():
    X, y, *_ = _data()
    with pytest.raises(InputError, match="X_val"):
        RDIACleaner().fit(X, y)
    with pytest.raises(InputError, match="inconsistent numbers of samples"):
        RDIACleaner().fit(X, y[:-1], X_val=X[:10], y_val=y[:10])
