"""Rows sharded over 2 processes (gloo) give the same model and Φ as one process.

The library test spawns 2 workers with torch.multiprocessing; the CLI test runs `torchrun -m
rdia_cli train/score` and checks that a single-process `rdia relabel` accepts the scores file.
Both skip when torch.distributed or gloo is unavailable.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from rdia_cli.data.dataset import Dataset


def _gloo() -> bool:
    try:
        import torch.distributed as dist

        return dist.is_available() and dist.is_gloo_available()
    except Exception:  # noqa: BLE001
        return False


pytestmark = pytest.mark.skipif(not _gloo(), reason="needs torch.distributed with gloo")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(n=3000, p=2600, k=8, seed=0):
    """Sparse binary-label data with a planted model and 20% flipped labels; P > BLOCK_COLUMNS,
    so the CG solves iterate (the frequent block does not cover every column)."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(p, size=(n, k), replace=True), axis=1)
    idx = np.unique(idx + np.arange(n)[:, None] * p)  # drop duplicates within a row
    rows, cols = np.divmod(idx, p)
    X = sp.csr_matrix((rng.uniform(0.5, 1.5, len(cols)).astype(np.float32), (rows, cols)),
                      shape=(n, p))
    theta = rng.normal(0, 1, p)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ theta) + 0.5))).astype(np.int64)
    flip = rng.random(n) < 0.2
    y[flip] = 1 - y[flip]
    return Dataset(X=X, y=y, classes=[0, 1], row_id=np.arange(n) * 3 + 1)


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    import torch
    import torch.distributed as dist
    from typer.testing import CliRunner

    torch.set_num_threads(1)
    from rdia_cli.cli import app
    from rdia_cli.distributed import Sharding, shard_dataset
    from rdia_cli.influence.logreg import score_logreg
    from rdia_cli.models.io import load_model
    from rdia_cli.models.logreg.training import train_logreg

    dist.init_process_group("gloo")
    sh = Sharding.from_env("cpu")
    try:
        full, val = _data(), _data(n=500, seed=1)
        part = shard_dataset(full, sh)
        n = full.n_samples
        model = train_logreg(part, tol=1e-10, solver="cg", reduce=sh.reduce, n_total=n)
        ref = load_model(os.path.join(out, "ref.pt"))
        res = score_logreg(ref, part, val, solver="cg", reduce=sh.reduce, n_total=n)
        phi = sh.gather_rows(res.phi)
        row_id = sh.gather_rows(part.row_id)
        fp = sh.fingerprint(part, n)
        if sh.is_root:
            np.savez(os.path.join(out, "dist.npz"), phi=phi, row_id=row_id,
                     weight=model.state["weight"].numpy(), bias=model.state["bias"].numpy(),
                     fp=np.array(fp), fp_meta=np.array(model.meta["train_fingerprint"]))
        # the CLI commands, as `torchrun -m rdia_cli ...` runs them on each rank
        cli = CliRunner()
        for args in (["train", "train.parquet", "-o", "cli.pt", "--tol", "1e-10"],
                     ["score", "train.parquet", "--val", "val.parquet", "--model", "ref.pt",
                      "-o", "scores.parquet"]):
            r = cli.invoke(app, [*args, "--device", "cpu"], catch_exceptions=False)
            assert r.exit_code == 0, r.output
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, monkeypatch):
    """Library and CLI: 2 gloo processes give the 1-process model and Φ; one scores file that
    a single-process `rdia relabel` accepts."""
    import torch.multiprocessing as mp
    from typer.testing import CliRunner

    from rdia_cli.artifacts.scores import read_scores
    from rdia_cli.cli import app
    from rdia_cli.data.writers import write_dataset
    from rdia_cli.influence.logreg import score_logreg
    from rdia_cli.models.io import load_model, save_model
    from rdia_cli.models.logreg.training import train_logreg

    full, val = _data(), _data(n=500, seed=1)
    write_dataset(full, str(tmp_path / "train.parquet"), row_group_size=700)
    write_dataset(val, str(tmp_path / "val.parquet"))
    ref = train_logreg(full, tol=1e-10, solver="cg")
    save_model(ref, tmp_path / "ref.pt")
    want = score_logreg(ref, full, val, solver="cg").phi
    monkeypatch.chdir(tmp_path)
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)

    got = np.load(tmp_path / "dist.npz")
    np.testing.assert_array_equal(got["row_id"], full.row_id)
    rel = np.linalg.norm(got["phi"] - want) / np.linalg.norm(want)
    assert rel <= 1e-8, rel
    assert str(got["fp"]) == full.fingerprint() == str(got["fp_meta"])
    w_ref = ref.state["weight"].numpy()
    assert np.linalg.norm(got["weight"] - w_ref) <= 1e-6 * np.linalg.norm(w_ref)

    # CLI: one model file, one scores file (no temporaries left), same Φ, accepted by relabel
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cli.pt", "dist.npz", "ref.pt", "scores.parquet", "train.parquet", "val.parquet"]
    cli_model = load_model(tmp_path / "cli.pt")
    assert cli_model.meta["train_fingerprint"] == full.fingerprint()
    assert cli_model.meta["n_train"] == full.n_samples
    sc = read_scores(tmp_path / "scores.parquet")
    np.testing.assert_array_equal(sc.row_id, full.row_id)
    assert sc.meta["train_fingerprint"] == full.fingerprint()
    assert sc.meta["n_train"] == full.n_samples and sc.meta["world_size"] == 2
    assert np.linalg.norm(sc.phi - want) <= 1e-8 * np.linalg.norm(want)
    r = CliRunner().invoke(app, ["relabel", "train.parquet", "--scores", "scores.parquet",
                                 "--fraction", "0.05", "-o", "cleaned.parquet"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "cleaned.parquet").exists()


def test_fingerprint_sections_match_dataset():
    """The streamed sections hash to Dataset.fingerprint() (sparse and dense)."""
    import hashlib

    from rdia_cli.distributed import _fingerprint_sections

    ds = _data(n=257)
    ds.X = ds.X[:, ::-1].tocsr()  # unsorted indices within rows
    dense = Dataset(X=np.random.default_rng(0).random((50, 7)), y=np.arange(50) % 3,
                    classes=["a", "b", "c"], row_id=np.arange(50))
    for d in (ds, dense):
        cut = d.n_samples // 3
        parts = [d.subset(np.arange(0, cut)), d.subset(np.arange(cut, d.n_samples))]
        before = [0, int(parts[0].X.nnz) if sp.issparse(d.X) else 0]
        secs = [
            _fingerprint_sections(p, n_total=d.n_samples, nnz_before=before[i], first=i == 0)
            for i, p in enumerate(parts)
        ]
        h = hashlib.blake2b(digest_size=8)  # section by section across the parts, as rank 0
        for j in range(len(secs[0])):
            for c in secs[0][j][0]:
                h.update(c)
            for i in range(2):
                for c in secs[i][j][1]():
                    h.update(c)
        assert h.hexdigest() == d.fingerprint()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None, reason="needs torchrun")
def test_torchrun_cli_train_score_then_relabel(tmp_path):
    """`torchrun -m rdia_cli train/score` on 2 processes; one scores file, accepted by relabel."""
    from rdia_cli.artifacts.scores import read_scores
    from rdia_cli.data.writers import write_dataset

    full, val = _data(), _data(n=500, seed=1)
    write_dataset(full, str(tmp_path / "train.parquet"), row_group_size=700)
    write_dataset(val, str(tmp_path / "val.parquet"))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")

    def torchrun(*args):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-port", str(_free_port()), "-m", "rdia_cli", *args]
        r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return r

    def rdia(*args):
        r = subprocess.run([sys.executable, "-m", "rdia_cli", *args], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return r

    torchrun("train", "train.parquet", "-o", "lr.pt", "--device", "cpu", "--tol", "1e-10")
    torchrun("score", "train.parquet", "--val", "val.parquet", "--model", "lr.pt", "-o",
             "scores.parquet", "--device", "cpu")
    leftovers = [p.name for p in Path(tmp_path).iterdir() if p.name.startswith(".")]
    assert not leftovers
    sc = read_scores(tmp_path / "scores.parquet")
    assert sc.n_samples == full.n_samples
    np.testing.assert_array_equal(sc.row_id, full.row_id)
    assert sc.meta["train_fingerprint"] == full.fingerprint()
    assert sc.meta["n_train"] == full.n_samples
    rdia("relabel", "train.parquet", "--scores", "scores.parquet", "--fraction", "0.05",
         "-o", "cleaned.parquet")
    assert (tmp_path / "cleaned.parquet").exists()
