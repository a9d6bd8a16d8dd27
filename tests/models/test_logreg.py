"""Logistic regression equals scikit-learn's; sparse = dense; weights and soft targets."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from rdia_cli.models.common import predict_proba
from rdia_cli.models.logreg.training import train_logreg
from tests.conftest import make_dataset


def _sk(ds, l2):
    return LogisticRegression(C=1.0 / (l2 * ds.n_samples), tol=1e-12, max_iter=20000).fit(
        ds.X, ds.y
    )


def test_binary_matches_sklearn(cancer):
    train, _, test = cancer
    l2 = 1.0 / train.n_samples
    model = train_logreg(train, l2=l2)
    sk = _sk(train, l2)
    np.testing.assert_allclose(model.state["weight"][:, 0].numpy(), sk.coef_[0], atol=1e-4)
    np.testing.assert_allclose(model.state["bias"].numpy(), sk.intercept_, atol=1e-4)
    ours = predict_proba(model, test.X)
    np.testing.assert_allclose(ours, sk.predict_proba(test.X), atol=1e-5)
    assert model.meta["metrics"]["converged"]
    assert model.meta["metrics"]["rel_grad_norm"] <= 1e-8


@pytest.mark.slow  # scikit-learn's lbfgs to tol 1e-12: 2-17 s on a busy machine
def test_multinomial_matches_sklearn(digits):
    train, val = digits
    l2 = 10.0 / train.n_samples
    model = train_logreg(train, l2=l2)
    sk = _sk(train, l2)
    W = model.state["weight"].numpy()
    b = model.state["bias"].numpy()
    # softmax is invariant to a common shift of the intercepts: compare centred
    np.testing.assert_allclose(W - W.mean(1, keepdims=True), sk.coef_.T, atol=1e-4)
    np.testing.assert_allclose(b - b.mean(), sk.intercept_ - sk.intercept_.mean(), atol=1e-4)
    p_ours = predict_proba(model, val.X)
    p_sk = sk.predict_proba(val.X)
    assert abs(-np.log(p_ours[np.arange(len(val.y)), val.y]).mean()
               + np.log(p_sk[np.arange(len(val.y)), val.y]).mean()) < 1e-6


def test_sparse_equals_dense(cancer):
    train, _, _ = cancer
    X = train.X.copy()
    X[np.abs(X) < 0.5] = 0.0
    dense = make_dataset(X, train.y)
    sparse = make_dataset(sp.csr_matrix(X), train.y)
    a = train_logreg(dense, l2=0.01)
    b = train_logreg(sparse, l2=0.01, solver="cg")
    np.testing.assert_allclose(a.state["weight"].numpy(), b.state["weight"].numpy(), atol=1e-7)


def test_weights_equal_duplication():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 4))
    y = (X[:, 0] + 0.5 * rng.standard_normal(60) > 0).astype(int)
    w = np.ones(60)
    w[:10] = 2.0
    weighted = train_logreg(make_dataset(X, y, weight=w), l2=0.05)
    dup = make_dataset(np.vstack([X, X[:10]]), np.concatenate([y, y[:10]]))
    # (1/N) Σ w ℓ with N = 60 equals (1/70) Σ over the duplicated set scaled by 70/60
    duplicated = train_logreg(dup, l2=0.05 * 60 / 70)
    np.testing.assert_allclose(weighted.state["weight"].numpy(),
                               duplicated.state["weight"].numpy(), atol=1e-6)


def test_soft_targets_honoured():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((80, 3))
    y = (X[:, 0] > 0).astype(int)
    hard = train_logreg(make_dataset(X, y), l2=0.1)
    t = np.eye(2)[y]
    t[:20] = t[:20, ::-1]  # flip 20 targets, keep the labels
    soft = train_logreg(make_dataset(X, y, target=t), l2=0.1)
    flipped_y = y.copy()
    flipped_y[:20] = 1 - y[:20]
    flipped = train_logreg(make_dataset(X, flipped_y), l2=0.1)
    np.testing.assert_allclose(soft.state["weight"].numpy(), flipped.state["weight"].numpy(),
                               atol=1e-8)
    assert not np.allclose(soft.state["weight"].numpy(), hard.state["weight"].numpy())


@pytest.mark.parametrize("solver", ["direct", "cg"])
def test_no_intercept_and_solvers(digits, solver):
    train, _ = digits
    model = train_logreg(train, l2=0.01, fit_intercept=False, solver=solver)
    assert model.meta["metrics"]["converged"]
    assert float(model.state["bias"].abs().max()) == 0.0


def test_warm_start_converges_fast(cancer):
    train, _, _ = cancer
    m = train_logreg(train)
    again = train_logreg(train, init=m)
    assert again.meta["metrics"]["iterations"] <= 1
