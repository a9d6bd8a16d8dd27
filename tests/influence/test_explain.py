"""Φ_i split over the validation rows (``influence.explain``): the shares sum to the Φ that
scoring computed — exactly for logistic regression, to the solver's tolerance for a network on
the damped Gauss-Newton operator — and each share is validation row j's own term."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError
from rdia_cli.influence.explain import phi_by_val_row, settings_from_scores, top_pushers
from rdia_cli.influence.nets import score_net
from rdia_cli.models.nets.training import train_net
from rdia_cli.stages import score_model, train_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(lo, hi, weight=False):
    d = load_digits()
    X = (d.data[lo:hi] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    n = hi - lo
    rng = np.random.default_rng(lo)
    return Dataset(X=X, y=d.target[lo:hi], classes=list(range(10)), row_id=np.arange(n),
                   weight=rng.uniform(0.5, 1.5, n) if weight else None)


@pytest.fixture(scope="module")
def mlp():
    """An MLP with 460 parameters on 200 weighted digits, weight decay, 60 validation rows."""
    train, val = _images(0, 200, weight=True), _images(1000, 1060)
    model = train_net(train, arch="mlp", arch_args={"hidden": [6]}, epochs=30, batch_size=32,
                      lr=1e-2, weight_decay=1e-3, seed=0)
    return train, val, model


def test_logreg_shares_sum_to_phi_exactly(digits):
    """Weighted rows and damping: the split uses the Hessian the scores were computed with."""
    train, val = digits
    train = train.subset(np.arange(300))
    rng = np.random.default_rng(0)
    train = dataclasses.replace(train, weight=rng.uniform(0.5, 2.0, train.n_samples))
    val = val.subset(np.arange(90))
    model = train_model(train)
    result = score_model(model, train, val, solver="direct", damping=0.05)
    rows = np.argsort(-np.abs(result.phi))[:5]
    C = phi_by_val_row(model, train, val, rows, **settings_from_scores(model, result.info))
    assert C.shape == (90, 5)
    np.testing.assert_allclose(C.sum(0), result.phi[rows], rtol=1e-8)


@pytest.mark.parametrize("hessian_samples", [None, 80])
def test_network_shares_sum_to_phi_to_solver_tolerance(mlp, hessian_samples):
    train, val, model = mlp
    r = score_net(model, train, val, hessian="ggn", damping=0.05, tol=1e-12, max_iter=2000,
                  hessian_samples=hessian_samples, seed=3, dtype="float64")
    rows = np.argsort(-r.phi)[:4]
    settings = settings_from_scores(model, r.info)
    assert settings["hessian_samples"] == hessian_samples and settings["dtype"] == "float64"
    C = phi_by_val_row(model, train, val, rows, **settings)
    assert C.shape == (val.n_samples, 4)
    np.testing.assert_allclose(C.sum(0), r.phi[rows], rtol=1e-7)


def test_network_share_is_the_rows_own_term(mlp):
    """c_ij = -∇ℓ_j · (G + (λ+δ)I)⁻¹ ∇ℓ_i / M against an explicit dense solve."""
    from torch.func import grad, vmap

    from rdia_cli.influence.nets import net_problem
    from rdia_cli.models.nets.batches import ce_per_sample

    train, val, model = mlp
    setup = net_problem(model, train, val, damping=0.05, dtype="float64")
    prob = setup.problem
    A = torch.stack([prob.matvec(e, "ggn") for e in torch.eye(prob.n_params,
                                                                dtype=torch.float64)])

    def per_sample(ds):
        x = torch.as_tensor(ds.X, dtype=torch.float64)
        g = vmap(grad(lambda p, xi, yi: ce_per_sample(prob.logits(p, xi[None]), yi[None])[0]),
                 in_dims=(None, 0, 0))(prob.params, x, torch.as_tensor(ds.y))
        return torch.cat([g[k].reshape(len(x), -1) for k in prob.names], 1)

    rows = np.array([5, 17])
    want = -(per_sample(val) @ torch.linalg.solve(A, per_sample(train)[rows].T)) / val.n_samples
    C = phi_by_val_row(model, train, val, rows, damping=0.05, tol=1e-12, max_iter=2000,
                       dtype="float64")
    np.testing.assert_allclose(C, want.numpy(), rtol=1e-6, atol=1e-9 * float(want.abs().max()))
    order, shares = top_pushers(C, C.sum(0), 3)
    assert order.shape == (2, 3) and np.isfinite(shares).all()


def test_rows_out_of_range(mlp):
    train, val, model = mlp
    with pytest.raises(InputError, match="positions in the training data"):
        phi_by_val_row(model, train, val, [train.n_samples])
    assert phi_by_val_row(model, train, val, []).shape == (val.n_samples, 0)


def test_issues_table_explains_network_rows(mlp):
    """`find_issues` on a network: the flagged rows with the largest Φ get a why whose shares
    come from the same operator as Φ."""
    from rdia_cli.cleaning.issues import find_issues
    from rdia_cli.stages import score_model

    train, val, model = mlp
    result = score_model(model, train, val, hessian_samples=0)
    table = find_issues(train, result, val=val, model=model, fraction=0.05, explain=2)
    explained = table[table.why != ""]
    assert len(explained) == 2 and explained.why.str.match(r"val \d+ -?\d+%").all()
    assert table.attrs["rdia"]["n_explained"] == 2
    assert "in-sample" in table.attrs["rdia"]["label_quality"]
