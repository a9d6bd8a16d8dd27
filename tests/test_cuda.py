"""Every logistic-regression stage on a CUDA device gives what the CPU gives (skipped without
CUDA: conftest skips the `cuda` marker). X stays a CSR tensor on the GPU: no dense copy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from rdia_cli.data.dataset import Dataset

pytestmark = pytest.mark.cuda


def _sparse(n=4000, p=3000, k=12, seed=0, classes=2):
    rng = np.random.default_rng(seed)
    cols = np.sort(rng.choice(p, size=(n, k)), axis=1)
    flat = np.unique(cols + np.arange(n)[:, None] * p)
    rows, cols = np.divmod(flat, p)
    X = sp.csr_matrix((rng.uniform(0.5, 1.5, len(cols)).astype(np.float32), (rows, cols)),
                      shape=(n, p))
    W = rng.normal(0, 1, (p, classes))
    Z = np.asarray(X @ W)
    y = np.array([rng.choice(classes, p=np.exp(z - z.max()) / np.exp(z - z.max()).sum())
                  for z in Z])
    flip = rng.random(n) < 0.15
    y[flip] = (y[flip] + 1) % classes
    return Dataset(X=X, y=y, classes=list(range(classes)), row_id=np.arange(n))


@pytest.mark.parametrize("classes", [2, 3])
def test_phi_cuda_matches_cpu(classes):
    import torch

    from rdia_cli.influence.logreg import score_logreg
    from rdia_cli.models.logreg.training import train_logreg

    train, val = _sparse(classes=classes), _sparse(n=600, seed=1, classes=classes)
    model = train_logreg(train, tol=1e-10, solver="cg", device="cpu")
    model_gpu = train_logreg(train, tol=1e-10, solver="cg", device="cuda")
    w, wg = model.state["weight"].numpy(), model_gpu.state["weight"].numpy()
    assert np.linalg.norm(wg - w) <= 1e-6 * np.linalg.norm(w)
    cpu = score_logreg(model, train, val, solver="cg", device="cpu")
    gpu = score_logreg(model, train, val, solver="cg", device=torch.device("cuda"))
    rel = np.linalg.norm(gpu.phi - cpu.phi) / np.linalg.norm(cpu.phi)
    assert rel <= 1e-8, rel
    np.testing.assert_allclose(gpu.p_label, cpu.p_label, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gpu.loss, cpu.loss, rtol=1e-10, atol=1e-12)


def test_design_stays_sparse_on_cuda():
    import torch

    from rdia_cli.models.logreg.design import Design

    X = _sparse().X
    D = Design(X, device=torch.device("cuda"), dtype=torch.float64)
    assert D._X.layout == torch.sparse_csr and D._X.is_cuda
    assert D._XT.layout == torch.sparse_csr and D._XT.is_cuda
    assert getattr(D, "_dense", None) is None
    v = torch.randn(X.shape[1], 1, dtype=torch.float64, device="cuda")
    u = torch.randn(X.shape[0], 1, dtype=torch.float64, device="cuda")
    Xd = X.toarray().astype(np.float64)
    np.testing.assert_allclose(D.mm(v).cpu().numpy(), Xd @ v.cpu().numpy(), rtol=1e-10)
    np.testing.assert_allclose(D.rmm(u).cpu().numpy(), Xd.T @ u.cpu().numpy(), rtol=1e-10)


def test_cli_stages_on_cuda(tmp_path, monkeypatch):
    """synth → train → score → relabel → retrain with --device cuda; Φ as on the CPU."""
    from typer.testing import CliRunner

    from rdia_cli.artifacts.scores import read_scores
    from rdia_cli.cli import app

    monkeypatch.chdir(tmp_path)
    cli = CliRunner()

    def ok(*args):
        r = cli.invoke(app, list(args))
        assert r.exit_code == 0, r.output
        return r

    ok("synth", "-o", "train.parquet", "--rows", "20000", "--features", "5000", "--noise", "0.2")
    ok("synth", "-o", "val.parquet", "--rows", "3000", "--features", "5000", "--stream", "1")
    ok("train", "train.parquet", "-o", "lr.pt", "--device", "cuda")
    ok("score", "train.parquet", "--val", "val.parquet", "--model", "lr.pt", "-o", "gpu.parquet",
       "--device", "cuda")
    ok("score", "train.parquet", "--val", "val.parquet", "--model", "lr.pt", "-o", "cpu.parquet",
       "--device", "cpu")
    g, c = read_scores(tmp_path / "gpu.parquet"), read_scores(tmp_path / "cpu.parquet")
    assert np.linalg.norm(g.phi - c.phi) <= 1e-8 * np.linalg.norm(c.phi)
    ok("relabel", "train.parquet", "--scores", "gpu.parquet", "--fraction", "0.1", "-o",
       "cleaned.parquet")
    ok("retrain", "cleaned.parquet", "--model", "lr.pt", "-o", "lr_r.pt", "--device", "cuda")
    ok("evaluate", "lr.pt", "lr_r.pt", "--data", "val.parquet", "--device", "cuda")
