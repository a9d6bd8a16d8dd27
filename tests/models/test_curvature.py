"""The cost work of #30: the shared Hessian that preconditions auto's CV fits, the batched
softmax Hessian, one Cholesky factor for Φ against many clean sets, and the dense copy of small
sparse data. Each must change how fast, not what comes out (to the fit's tolerance)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from rdia_cli.cleaning.auto import auto_clean
from rdia_cli.cleaning.auto.clean import dense_if_small
from rdia_cli.data import Dataset, inject_noise
from rdia_cli.influence.logreg import hessian_solver, score_logreg
from rdia_cli.models.logreg.curvature import SharedCurvature
from rdia_cli.models.logreg.problem import LogRegProblem
from rdia_cli.models.logreg.training import train_logreg


def blobs(n: int, seed: int, k: int = 4, d: int = 6) -> Dataset:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 2.0
    y = rng.integers(0, k, n)
    return Dataset(X=centres[y] + rng.normal(size=(n, d)), y=y, classes=list(range(k)),
                   row_id=np.arange(n))


@pytest.mark.parametrize("k,fit_intercept", [(3, True), (5, False), (10, True)])
def test_batched_softmax_hessian_equals_the_gram_blocks(k, fit_intercept):
    rng = np.random.default_rng(k)
    X = rng.normal(size=(120, 7))
    T = np.eye(k)[rng.integers(0, k, 120)]
    prob = LogRegProblem.from_arrays(X, T, rng.random(120), n_classes=k, l2=0.01,
                                     fit_intercept=fit_intercept)
    Z = prob.logits(torch.tensor(rng.normal(size=prob.shape)))
    d, P = prob._curvature(Z)
    assert prob._batched_hessian(P)
    blocks, batched = prob._hessian_blocks(d, P), prob._hessian_batched(d, P)
    assert torch.allclose(batched, blocks, rtol=0, atol=1e-14)


def test_a_fit_preconditioned_by_a_shared_hessian_reaches_the_same_optimum():
    data = blobs(600, 0)
    erm = train_logreg(data.subset(np.arange(500)), tol=1e-10)
    ref = SharedCurvature.at(erm, data.subset(np.arange(500)))
    other = data.subset(np.arange(100, 600))  # a neighbouring training set
    plain = train_logreg(other, tol=1e-10, init=erm)
    shared = train_logreg(other, tol=1e-10, init=erm, reference=ref)
    assert shared.meta["training"]["solver"] == "pcg"
    assert plain.meta["training"]["solver"] == "direct"
    for key in ("weight", "bias"):
        assert torch.allclose(shared.state[key], plain.state[key], rtol=0, atol=1e-7)


def test_one_factor_serves_every_row_count_at_the_same_reg():
    data = blobs(300, 1)
    ref = SharedCurvature.at(train_logreg(data), data)
    for n in (150, 300):  # λ = 1/n: n·λ is the same, so is the factor
        part = data.subset(np.arange(n))
        prob = LogRegProblem.from_arrays(part.flat_X(), part.targets(), None, n_classes=4,
                                         l2=1.0 / n)
        assert ref.preconditioner(prob) is not None
    assert len(ref._factors) == 1
    wrong = LogRegProblem.from_arrays(np.ones((5, 3)), np.eye(4)[[0, 1, 2, 3, 0]], None,
                                      n_classes=4, l2=0.1)
    assert ref.preconditioner(wrong) is None  # another shape: the fit solves on its own


def test_phi_with_a_shared_factor_equals_phi_solved_alone():
    data = blobs(400, 2)
    train, val = data.subset(np.arange(300)), data.subset(np.arange(300, 400))
    erm = train_logreg(train)
    solve = hessian_solver(erm, train)
    assert solve is not None
    for rows in (np.arange(0, 50), np.arange(50, 100)):
        alone = score_logreg(erm, train, val.subset(rows)).phi
        shared = score_logreg(erm, train, val.subset(rows), solve=solve).phi
        np.testing.assert_allclose(shared, alone, rtol=1e-9, atol=1e-12)


def _noisy_split(seed: int):
    data = blobs(700, seed)
    train = inject_noise(data.subset(np.arange(600)), rate=0.25, seed=seed)
    return train, data.subset(np.arange(600, 700))


def test_small_sparse_data_is_cross_validated_dense_and_cleaned_sparse():
    train, val = _noisy_split(4)
    as_sparse = [Dataset(X=sp.csr_matrix(d.X), y=d.y, classes=d.classes, row_id=d.row_id)
                 for d in (train, val)]
    assert not dense_if_small(as_sparse[0]).is_sparse
    # one θ̂ for both: its Hessian preconditions every CV fit, and fits to the CV's tolerance
    # (1e-4) that start 1e-8 apart end up to 1e-5 apart on these near-separable data
    erm = train_logreg(train)
    dense = auto_clean(train, val, erm, seed=0)
    sparse = auto_clean(*as_sparse, erm, seed=0)
    assert sparse.config == dense.config and sparse.clean_only_share == dense.clean_only_share
    assert sparse.cleaned.is_sparse  # what is written out keeps the user's layout
    np.testing.assert_allclose([r["cv_loss"] for r in sparse.cv],
                               [r["cv_loss"] for r in dense.cv], rtol=1e-6)


def test_fractions_that_clean_the_same_rows_share_one_fit(monkeypatch):
    # only rows whose score is positive are cleaned: with a quarter of the labels flipped, the
    # top 50%, 60% and 80% by out-of-fold loss are the same rows, so one fit serves all three
    from dataclasses import replace

    from rdia_cli.cleaning.auto import DEFAULT_POLICY
    from rdia_cli.cleaning.auto.cv import Fit

    train, val = _noisy_split(5)
    policy = replace(DEFAULT_POLICY, fractions=(0.5, 0.6, 0.8), rankers=("oof",),
                     actions=("drop",), race_drop_se=None)
    cleaning_fits = []
    plain = Fit.__call__

    def counting(self, ds, *args, **kw):
        if "part" in ds.extra and 0 < (ds.extra["part"] == 0).sum() < train.n_samples:
            cleaning_fits.append(kw.get("reg", 1.0))
        return plain(self, ds, *args, **kw)

    monkeypatch.setattr(Fit, "__call__", counting)
    ac = auto_clean(train, val, train_logreg(train), seed=0, policy=policy)
    losses = {r["fraction"]: r["cv_loss"] for r in ac.cv if r["fraction"] > 0 and r["reg"] == 1}
    assert losses[0.5] == losses[0.6] == losses[0.8]
    folds = ac.verdict["n_folds"]
    # at λ = 1/rows, one fit per fold for the three (and the final refit), not three per fold
    assert cleaning_fits.count(1.0) <= folds + 1


@pytest.mark.parametrize("k,fit_intercept", [(2, True), (3, False), (10, True)])
def test_the_gradient_at_zero_is_value_grads_bit_for_bit(k, fit_intercept):
    rng = np.random.default_rng(k)
    prob = LogRegProblem.from_arrays(rng.normal(size=(50, 4)),
                                     np.eye(k)[rng.integers(0, k, 50)], rng.random(50),
                                     n_classes=k, l2=0.1, fit_intercept=fit_intercept)
    assert torch.equal(prob.gradient_at_zero(), prob.value_grad(prob.zeros())[1])


def test_the_all_row_cv_lands_where_it_would_from_any_start():
    # the λ search starts each fold's fit from the nearest λ, or on along the line through the
    # last two: only the start changes, not where the fits land (to union_tol)
    from rdia_cli.cleaning.auto import Config
    from rdia_cli.cleaning.auto.cv import Progress, UnionCV

    train, val = _noisy_split(6)
    erm = train_logreg(train)

    def union():
        return UnionCV(train, val, erm, seed=0, device="cpu", progress=Progress())

    path = union()
    for reg in (1.0, 0.25, 0.0625):
        path(Config("drop", 0.0, 1.0, reg=reg))
    assert set(path.fold_models) == {1.0, 0.25, 0.0625}
    alone = union()(Config("drop", 0.0, 1.0, reg=0.0625))
    np.testing.assert_allclose(path.scored[0.0625], alone, rtol=0, atol=1e-4)


def test_autos_final_fit_starts_from_the_erm_preconditioned_by_its_hessian():
    """The final model (and `rdia retrain`'s refit of auto's file: the same function) starts
    from the ERM with the ERM's Hessian on the cleaned rows as preconditioner: the optimum a
    fit from zero reaches (how much faster: bench/noise_types.py's CPU figures)."""
    from rdia_cli.cleaning.auto import fit_from

    data = blobs(700, 4, k=5, d=8)
    train, val = data.subset(np.arange(600)), data.subset(np.arange(600, 700))
    train = inject_noise(train, rate=0.3, seed=0)
    erm = train_logreg(train)
    ac = auto_clean(train, val, erm, seed=0)
    cleaned, model = ac.refit(ac.config)  # the pick's part of the final model
    training = model.meta["training"]
    assert training["warm_start"] and training["solver"] == "pcg"
    again = fit_from(cleaned, erm, l2=model.meta["l2"], tol=1e-8, max_iter=100)
    scratch = fit_from(cleaned, erm, l2=model.meta["l2"], tol=1e-8, max_iter=100,
                       from_scratch=True)
    assert scratch.meta["training"]["solver"] != "pcg"
    for key in ("weight", "bias"):
        assert torch.equal(again.state[key], model.state[key])
        assert torch.allclose(scratch.state[key], model.state[key], rtol=0, atol=1e-6)


def test_conjugate_gradient_on_numpy_arrays_solves_what_it_solves_on_tensors():
    from rdia_cli.linalg import conjugate_gradient

    rng = np.random.default_rng(3)
    A = rng.normal(size=(40, 40))
    A = A @ A.T + 40 * np.eye(40)
    b = rng.normal(size=40)
    L = np.linalg.cholesky(A + rng.random(40) * np.eye(40))  # a preconditioner near A
    for precond in (np.diag(A).copy(), lambda r: np.linalg.solve(L.T, np.linalg.solve(L, r))):
        tprecond = (torch.tensor(precond) if not callable(precond)
                    else (lambda r, f=precond: torch.tensor(f(r.numpy()))))
        on_numpy = conjugate_gradient(lambda v: A @ v, b, tol=1e-12, max_iter=100,
                                      precond=precond)
        on_torch = conjugate_gradient(lambda v: torch.tensor(A) @ v, torch.tensor(b),
                                      tol=1e-12, max_iter=100, precond=tprecond)
        assert isinstance(on_numpy.x, np.ndarray) and on_numpy.converged
        assert on_numpy.iterations == on_torch.iterations
        np.testing.assert_allclose(on_numpy.x, np.linalg.solve(A, b), rtol=1e-10)
        np.testing.assert_allclose(on_numpy.x, on_torch.x.numpy(), rtol=1e-10)


@pytest.mark.parametrize("k,fit_intercept", [(4, True), (2, True), (3, False)])
@pytest.mark.parametrize("shared", [False, True])
def test_a_fit_on_the_numpy_backend_reaches_the_torch_fits_optimum(shared, k, fit_intercept):
    """auto's tiny CV fits run in numpy (``Fit``): warm-started, preconditioned by a shared
    Hessian or by the diagonal, they land where the torch fit does."""
    data = blobs(90, 5, k=k, d=5)
    data.weight = np.random.default_rng(0).uniform(0.5, 1.5, data.n_samples)
    start = train_logreg(data.subset(np.arange(60)), fit_intercept=fit_intercept)
    ref = SharedCurvature.at(start, data) if shared else None
    fits = {device: train_logreg(data, tol=1e-10, init=start, reference=ref, device=device,
                                 solver="auto" if shared else "cg",
                                 fit_intercept=fit_intercept)
            for device in ("cpu", "numpy")}
    assert fits["numpy"].meta["training"]["solver"] == ("pcg" if shared else "cg")
    # the same up to the flat direction (one constant added to every class's intercept),
    # along which the diagonal preconditioner lets both drift by a different 1e-7
    on = {d: {"weight": m.state["weight"], "bias": m.state["bias"] - m.state["bias"].mean()}
          for d, m in fits.items()}
    for key in ("weight", "bias"):
        assert isinstance(fits["numpy"].state[key], torch.Tensor)
        assert torch.allclose(on["numpy"][key], on["cpu"][key], rtol=0, atol=1e-7)


def test_auto_fits_only_tiny_dense_data_on_the_numpy_backend():
    from rdia_cli.cleaning.auto.cv import TINY_FIT_WORK, Fit

    tiny, large = blobs(40, 6), blobs(TINY_FIT_WORK // 7, 6)  # 6 features + 1, 4 classes
    fit = Fit(None, True, "cpu")
    assert fit._device_for(tiny) == "numpy" and fit._device_for(large) == "cpu"
    sparse = Dataset(X=sp.csr_matrix(tiny.X), y=tiny.y, classes=tiny.classes,
                     row_id=tiny.row_id)
    assert fit._device_for(sparse) == "cpu"
    assert Fit(None, True, "cuda")._device_for(tiny) == "cuda"


def test_autos_final_fit_of_small_sparse_data_runs_dense_and_records_the_sparse_data():
    from rdia_cli.cleaning.auto import fit_from
    from rdia_cli.models.common import schema_meta

    data = blobs(300, 7)
    sparse = Dataset(X=sp.csr_matrix(data.X), y=data.y, classes=data.classes,
                     row_id=data.row_id)
    erm = train_logreg(sparse)
    model = fit_from(sparse, erm, l2=0.01, tol=1e-8, max_iter=100)
    dense = fit_from(data, erm, l2=0.01, tol=1e-8, max_iter=100)
    for key in ("weight", "bias"):  # fitted on the dense copy: the dense data's model
        assert torch.equal(model.state[key], dense.state[key])
    assert model.meta["train_fingerprint"] == sparse.fingerprint() != data.fingerprint()
    assert model.meta["sparse"] is True
    assert {k: model.meta[k] for k in schema_meta(sparse)} == schema_meta(sparse)
