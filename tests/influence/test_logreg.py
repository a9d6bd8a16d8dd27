"""Exact influence for logistic regression: CG = direct, = brute force, tracks leave-one-out."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from rdia_cli.influence.logreg import problem_for, score_logreg
from rdia_cli.models.logreg.problem import state_to_theta
from rdia_cli.models.logreg.training import train_logreg
from tests.conftest import make_dataset


def _brute_force_phi(model, train, val):
    """Φ from per-sample gradients built one by one with autograd and a dense pinv solve."""
    prob = problem_for(model, train, device="cpu")
    theta = state_to_theta(model.state, fit_intercept=True).requires_grad_(True)
    vprob = problem_for(model, val, device="cpu")
    gq = torch.autograd.grad(vprob.row_losses(vprob.logits(theta)).mean(), theta)[0].reshape(-1)
    f = prob.value_grad(theta.detach())[2]
    H = prob.hessian(f).numpy()
    u = prob.flat_direction()
    if u is not None:  # remove the uuᵀ added for the flat direction, then use the pseudo-inverse
        H = H - np.outer(u.numpy(), u.numpy())
    s = np.linalg.pinv(H, rcond=1e-12) @ gq.numpy()
    phi = []
    losses = prob.row_losses(prob.logits(theta))
    for i in range(train.n_samples):
        g = torch.autograd.grad(losses[i], theta, retain_graph=True)[0].reshape(-1).numpy()
        phi.append(-g @ s)
    return np.array(phi)


def test_direct_equals_brute_force_binary(cancer):
    train, val, _ = cancer
    model = train_logreg(train)
    res = score_logreg(model, train, val, solver="direct")
    ref = _brute_force_phi(model, train, val)
    np.testing.assert_allclose(res.phi, ref, rtol=1e-6, atol=1e-9 * np.abs(ref).max())


def test_multinomial_flat_direction_is_solved_in_range(digits):
    train, val = digits
    small = train.subset(np.arange(300))
    model = train_logreg(small, l2=0.05)
    res = score_logreg(model, small, val, solver="direct")
    ref = _brute_force_phi(model, small, val)
    assert res.info["flat_direction_projected"]
    assert res.info["damping"] == 0.0
    np.testing.assert_allclose(res.phi, ref, rtol=1e-6, atol=1e-8 * np.abs(ref).max())


@pytest.mark.parametrize("which", ["binary", pytest.param("multinomial", marks=pytest.mark.slow)])
def test_cg_equals_direct(cancer, digits, which):
    train, val = (cancer[0], cancer[1]) if which == "binary" else digits
    model = train_logreg(train)
    d = score_logreg(model, train, val, solver="direct")
    c = score_logreg(model, train, val, solver="cg", tol=1e-12)
    rel = np.linalg.norm(c.phi - d.phi) / np.linalg.norm(d.phi)
    assert rel < 1e-6, rel
    assert c.info["iterations"] > 1 and c.info["residual"] < 1e-10


def test_sparse_cg_equals_dense_direct(cancer):
    train, val, _ = cancer
    X = np.where(np.abs(train.X) < 0.4, 0.0, train.X)
    Xv = np.where(np.abs(val.X) < 0.4, 0.0, val.X)
    dense = make_dataset(X, train.y)
    sparse = make_dataset(sp.csr_matrix(X), train.y)
    vd = make_dataset(Xv, val.y)
    vs = make_dataset(sp.csr_matrix(Xv), val.y)
    m = train_logreg(dense)
    a = score_logreg(m, dense, vd, solver="direct").phi
    b = score_logreg(m, sparse, vs, solver="cg", tol=1e-12).phi
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9 * np.abs(a).max())


def test_phi_tracks_leave_one_out(cancer):
    """-Φ_i/N predicts the validation-loss change of actually retraining without row i."""
    train, val, _ = cancer
    l2 = 0.05
    model = train_logreg(train, l2=l2, tol=1e-12)
    res = score_logreg(model, train, val)
    from rdia_cli.models.common import predict_proba

    def val_loss(m):
        p = predict_proba(m, val.X)[np.arange(val.n_samples), val.y]
        return -np.log(p).mean()

    base = val_loss(model)
    n = train.n_samples
    picks = np.argsort(-np.abs(res.phi))[:40]
    actual, predicted = [], []
    for i in picks:
        # removal as the influence function defines it: L_D keeps its 1/N, row i gets weight 0
        w = np.ones(n)
        w[i] = 0.0
        without = make_dataset(train.X, train.y, weight=w)
        m = train_logreg(without, l2=l2, tol=1e-12, init=model)
        actual.append(val_loss(m) - base)
        predicted.append(-res.phi[i] / n)
    r = np.corrcoef(actual, predicted)[0, 1]
    assert r >= 0.95, r
    assert np.sign(actual[0]) == np.sign(predicted[0])


# --- `solver="auto"`: direct or CG by estimated cost (issue #27 item 7) --------------------------
def test_auto_solves_small_problems_directly_without_an_estimate(cancer):
    train, val, _ = cancer
    model = train_logreg(train)
    res = score_logreg(model, train, val)
    est = res.info["solver_estimate"]
    assert res.info["solver"] == est["choice"] == "direct"
    assert est["cg_iterations"] is None  # 31 parameters: cheaper to solve than to estimate


def _dense_problem(l2):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 300)) / np.sqrt(300)
    y = (X @ rng.normal(size=300) + 0.5 * rng.normal(size=3000) > 0).astype(int)
    train, val = make_dataset(X[:2500], y[:2500]), make_dataset(X[2500:], y[2500:])
    return train_logreg(train, l2=l2), train, val


@pytest.mark.parametrize("l2, picked", [(1.0, "cg"), (1e-7, "direct")])
def test_auto_picks_by_estimated_cost_and_agrees_with_direct(l2, picked):
    """Strong regularization: few CG iterations, cheaper than forming XᵀDX; almost none: CG
    would need about as many iterations as there are parameters. Same Φ either way."""
    model, train, val = _dense_problem(l2)
    auto = score_logreg(model, train, val, solver="auto")
    est = auto.info["solver_estimate"]
    assert auto.info["solver"] == est["choice"] == picked, est
    assert est["cg_iterations"] is not None and 1 <= est["cg_iterations"] <= 301
    cheaper = est["direct_cost"] <= est["cg_cost_per_iteration"] * est["cg_iterations"]
    assert cheaper == (picked == "direct")
    direct = score_logreg(model, train, val, solver="direct")
    rel = np.linalg.norm(auto.phi - direct.phi) / np.linalg.norm(direct.phi)
    assert rel < 1e-6, rel


def test_cg_iteration_estimate_tracks_measured_iterations():
    """The estimate (power iterations on the Jacobi-preconditioned Hessian) is never far below
    what CG then needs (so CG is not picked where it is slow); on this well-conditioned data
    (independent features) the √κ bound errs high, towards the direct solve."""
    from rdia_cli.models.logreg.solver_choice import estimate_cg_iterations

    for l2 in (1e-3, 1e-1):
        model, train, val = _dense_problem(l2)
        prob = problem_for(model, train, device="cpu")
        Z = prob.logits(state_to_theta(model.state, fit_intercept=True))
        k_hat = estimate_cg_iterations(prob, Z, tol=1e-10)
        k = score_logreg(model, train, val, solver="cg").info["iterations"]
        assert k / 2 <= k_hat <= 6 * k, (l2, k_hat, k)


def test_unknown_solver_is_an_input_error(cancer):
    from rdia_cli.errors import InputError

    train, val, _ = cancer
    with pytest.raises(InputError, match="`solver` must be auto, direct or cg"):
        score_logreg(train_logreg(train), train, val, solver="lu")
