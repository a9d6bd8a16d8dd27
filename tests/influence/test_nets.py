"""Network influence: solvers against an explicit damped solve, jvp scores against per-sample
gradients, product implementations against each other, failure on negative curvature."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.datasets import load_digits
from torch.func import functional_call, hessian, jacrev

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import RuntimeFailure
from rdia_cli.influence.nets import NetProblem, cg, lissa, score_net
from rdia_cli.models.nets.batches import Rows, ce_per_sample
from rdia_cli.models.nets.training import net_from_model, train_net

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _ds(lo, hi, weight=False, soft=False):
    d = load_digits()
    X = (d.data[lo:hi] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    n = hi - lo
    rng = np.random.default_rng(lo)
    return Dataset(X=X, y=d.target[lo:hi], classes=list(range(10)), row_id=np.arange(n),
                   weight=rng.uniform(0.5, 1.5, n) if weight else None,
                   target=rng.dirichlet(np.ones(10), n) if soft else None)


@pytest.fixture(scope="module")
def setup():
    """A 2-layer MLP with 460 parameters on 200 digits (weighted rows, weight decay)."""
    train, val = _ds(0, 200, weight=True), _ds(1000, 1100)
    model = train_net(train, arch="mlp", arch_args={"hidden": [6]}, epochs=30, batch_size=32,
                      lr=1e-2, weight_decay=1e-3, seed=0)
    net = net_from_model(model, torch.float64, torch.device("cpu"))
    names = [k for k, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    theta = torch.cat([p.detach().reshape(-1) for _, p in net.named_parameters()])

    def unflat(v):
        out, a = {}, 0
        for k, s in zip(names, shapes, strict=True):
            out[k] = v[a:a + s.numel()].view(s)
            a += s.numel()
        return out

    def logits(v, X):
        return functional_call(net, unflat(v), (torch.as_tensor(X, dtype=torch.float64),))

    Xt, yt = train.X, torch.as_tensor(train.y)
    w = torch.as_tensor(train.weight)
    n = len(yt)

    def train_loss(v):
        return (w * ce_per_sample(logits(v, Xt), yt)).sum() / n

    H = hessian(train_loss)(theta)
    # Gauss-Newton: (1/n) Σ w_i J_iᵀ (diag p - p pᵀ) J_i
    J = jacrev(lambda v: logits(v, Xt))(theta)  # (n, K, P)
    p = torch.softmax(logits(theta, Xt), 1)
    Hout = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    G = torch.einsum("nkp,nkl,nlq->pq", J, Hout * w[:, None, None], J) / n
    per_sample = jacrev(lambda v: ce_per_sample(logits(v, Xt), yt))(theta)  # (n, P)
    g_val = torch.func.grad(lambda v: ce_per_sample(logits(v, val.X),
                                                    torch.as_tensor(val.y)).mean())(theta)
    return dict(train=train, val=val, model=model, H=H, G=G, per_sample=per_sample,
                g_val=g_val, l2=1e-3, P=theta.numel())


def _explicit_phi(s, mat, shift, g_val, per_sample):
    A = mat + shift * torch.eye(mat.shape[0], dtype=mat.dtype)
    sol = torch.linalg.solve(A, g_val)
    return -(per_sample @ sol).numpy()


def test_fixture_is_small(setup):
    assert 300 <= setup["P"] <= 600


@pytest.mark.parametrize("hess", ["exact", "ggn"])
def test_cg_matches_explicit_solve(setup, hess):
    mat = setup["H"] if hess == "exact" else setup["G"]
    lam_min = float(torch.linalg.eigvalsh(mat)[0])
    damping = max(0.01, -lam_min - setup["l2"] + 0.05)  # make H + (λ+δ)I positive definite
    want = _explicit_phi(None, mat, setup["l2"] + damping, setup["g_val"], setup["per_sample"])
    r = score_net(setup["model"], setup["train"], setup["val"], hessian=hess, solver="cg",
                  damping=damping, tol=1e-12, max_iter=2000, dtype="float64")
    assert r.info["converged"] and r.info["residual"] <= 1e-12
    assert r.info["n_params"] == setup["P"] and r.info["hessian"] == hess
    err = np.linalg.norm(r.phi - want) / np.linalg.norm(want)
    assert err < 1e-4
    assert spearmanr(r.phi, want)[0] >= 0.99
    for key in ("solver", "hessian", "damping", "iterations", "residual", "converged",
                "solve_seconds", "score_seconds", "val_loss", "n_params"):
        assert key in r.info


@pytest.mark.parametrize("hess", ["exact", "ggn"])
def test_lissa_matches_explicit_solve(setup, hess):
    mat = setup["H"] if hess == "exact" else setup["G"]
    lam_min = float(torch.linalg.eigvalsh(mat)[0])
    damping = max(0.05, -lam_min - setup["l2"] + 0.05)
    want = _explicit_phi(None, mat, setup["l2"] + damping, setup["g_val"], setup["per_sample"])
    r = score_net(setup["model"], setup["train"], setup["val"], hessian=hess, solver="lissa",
                  damping=damping, tol=1e-8, max_iter=5000, batch_size=4096, dtype="float64")
    assert r.info["lissa_stochastic"] is False
    assert spearmanr(r.phi, want)[0] >= 0.99
    assert np.linalg.norm(r.phi - want) / np.linalg.norm(want) < 1e-3


def test_stochastic_lissa_roughly_right(setup):
    want = _explicit_phi(None, setup["G"], setup["l2"] + 0.5, setup["g_val"], setup["per_sample"])
    r = score_net(setup["model"], setup["train"], setup["val"], hessian="ggn", solver="lissa",
                  damping=0.5, tol=1e-12, max_iter=300, batch_size=100, dtype="float64")
    assert r.info["lissa_stochastic"] is True
    assert spearmanr(r.phi, want)[0] >= 0.9


def test_hessian_subsample_matches_explicit(setup):
    """Curvature on a seeded subset of rows: same normalization (mean over the subset)."""
    train = setup["train"]
    r = score_net(setup["model"], train, setup["val"], hessian="ggn", damping=0.1, tol=1e-12,
                  max_iter=2000, hessian_samples=80, seed=5, dtype="float64")
    idx = np.sort(np.random.default_rng(5).choice(200, size=80, replace=False))
    net = net_from_model(setup["model"], torch.float64, torch.device("cpu"))
    prob = NetProblem(net, dtype=torch.float64, l2=setup["l2"], damping=0.1)
    sub = train.subset(idx)
    prob.set_curvature_data(Rows(sub.X, [1, 8, 8], device="cpu", dtype=torch.float64),
                            torch.as_tensor(sub.y), torch.as_tensor(sub.weight))
    Gs = torch.stack([prob.matvec(e, "ggn") for e in torch.eye(setup["P"], dtype=torch.float64)])
    want = -(setup["per_sample"] @ torch.linalg.solve(Gs, setup["g_val"])).numpy()
    np.testing.assert_allclose(r.phi, want, rtol=1e-6, atol=1e-9 * np.abs(want).max())
    assert r.info["hessian_samples"] == 80


def test_jvp_equals_per_sample_gradient_dots():
    """Φ from one batched jvp = per-sample autograd gradients dotted with s (float64)."""
    train = _ds(0, 50, soft=True)
    train.target[:25] = np.eye(10)[train.y[:25]]  # half hard, half soft
    model = train_net(train, arch="lenet", arch_args={"kernel_size": 2, "channels": [3, 4]},
                      epochs=1, batch_size=16)
    net = net_from_model(model, torch.float64, torch.device("cpu"))
    prob = NetProblem(net, dtype=torch.float64, batch_size=16)
    s = torch.randn(prob.n_params, generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64)
    rows = Rows(train.X, [1, 8, 8], device="cpu", dtype=torch.float64)
    t = torch.as_tensor(train.target)
    dots, loss, plab = prob.directional(rows, t, torch.as_tensor(train.y), s)
    slow = []
    for i in range(50):
        net.zero_grad()
        li = ce_per_sample(net(rows.get([i])), t[i:i + 1]).sum()
        grads = torch.autograd.grad(li, list(net.parameters()))
        slow.append(float(torch.cat([g.reshape(-1) for g in grads]) @ s))
        assert float(loss[i]) == pytest.approx(float(li.detach()), rel=1e-12)
    np.testing.assert_allclose(dots.numpy(), slow, rtol=1e-8, atol=1e-12)
    p = torch.softmax(net(rows.get(slice(0, 50))), 1)
    np.testing.assert_allclose(plab.numpy(), p[torch.arange(50), train.y].detach().numpy(),
                               rtol=1e-12)


@pytest.mark.parametrize("hess", ["exact", "ggn"])
def test_product_implementations_agree(hess):
    train = _ds(0, 60, weight=True)
    model = train_net(train, arch="lenet", arch_args={"kernel_size": 2, "channels": [3, 4]},
                      epochs=1, batch_size=16)
    out = []
    for impl in ("autograd", "func") if hess == "exact" else ("dual", "func", "cache"):
        net = net_from_model(model, torch.float64, torch.device("cpu"))
        kw = {"hvp_impl": impl} if hess == "exact" else {"ggn_impl": impl.replace("cache", "dual")}
        prob = NetProblem(net, dtype=torch.float64, batch_size=25, damping=0.1, **kw)
        prob.set_curvature_data(Rows(train.X, [1, 8, 8], device="cpu", dtype=torch.float64),
                                torch.as_tensor(train.y), torch.as_tensor(train.weight))
        if impl == "cache":  # cached per-row Jacobians: two mat-vecs per product
            prob.cache_jacobian(chunk=7)
        v = torch.randn(prob.n_params, generator=torch.Generator().manual_seed(1),
                        dtype=torch.float64)
        out.append(prob.matvec(v, hess))
    for other in out[1:]:
        torch.testing.assert_close(out[0], other, rtol=1e-10, atol=1e-12)


def test_cg_raises_on_negative_curvature():
    A = torch.diag(torch.tensor([2.0, 1.0, -0.5], dtype=torch.float64))
    with pytest.raises(RuntimeFailure, match="`hessian` ggn"):
        cg(lambda v: A @ v, torch.ones(3, dtype=torch.float64), tol=1e-12, max_iter=10)
    with pytest.raises(RuntimeFailure, match="`damping`"):
        lissa(lambda v: A @ v, torch.ones(3, dtype=torch.float64), scale=1.0, max_iter=200)


def test_cg_and_lissa_on_spd_matrix():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(20, 20))
    A = torch.as_tensor(M @ M.T / 20 + 0.5 * np.eye(20))
    b = torch.as_tensor(rng.normal(size=20))
    want = torch.linalg.solve(A, b)
    sol = cg(lambda v: A @ v, b, tol=1e-12, max_iter=100)
    assert sol.converged and sol.iterations <= 25
    torch.testing.assert_close(sol.x, want)
    lam = float(torch.linalg.eigvalsh(A)[-1])
    sol2 = lissa(lambda v: A @ v, b, scale=1.1 * lam, tol=1e-12, max_iter=5000)
    assert sol2.converged
    torch.testing.assert_close(sol2.x, want)


def test_exact_hessian_failure_is_reported(setup):
    """Undamped exact Hessian of a trained net is indefinite here: CG must stop with advice."""
    lam_min = float(torch.linalg.eigvalsh(setup["H"] + setup["l2"] * torch.eye(setup["P"],
                                                                               dtype=torch.float64))[0])
    if lam_min >= 0:
        pytest.skip("the fixture's Hessian happens to be positive definite")
    with pytest.raises(RuntimeFailure, match="`hessian` ggn"):
        score_net(setup["model"], setup["train"], setup["val"], hessian="exact", damping=0.0,
                  tol=1e-12, max_iter=5000, dtype="float64")


def test_score_outputs(setup):
    r = score_net(setup["model"], setup["train"], setup["val"], damping=0.1)
    assert r.phi.dtype == np.float64 and r.phi.shape == (200,)
    assert np.all((r.p_label > 0) & (r.p_label <= 1))
    np.testing.assert_allclose(r.loss, -np.log(r.p_label), rtol=1e-4)
    assert r.info["solver"] == "cg" and r.info["hessian"] == "ggn"
    # mean validation loss reported
    from rdia_cli.models.nets.training import predict_proba_net

    pv = predict_proba_net(setup["model"], setup["val"].X)
    assert r.info["val_loss"] == pytest.approx(
        -np.log(pv[np.arange(100), setup["val"].y]).mean(), rel=1e-4)
