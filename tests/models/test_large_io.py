"""Large-data reading: the vectorized LIBSVM parser agrees with scikit-learn's, Parquet row
ranges (one process's shard) equal slices of the whole, the fingerprint is streamed."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_svmlight_file

from rdia_cli.data import readers
from rdia_cli.data.dataset import Dataset
from rdia_cli.data.readers import ReadOptions, read_dataset
from rdia_cli.data.writers import write_dataset

SIMPLE = (
    b"1 1:0.5 3:2 10:-1e-3\n"
    b"-1\t2:1.5  4:7\r\n"
    b"\n"
    b"+1 5:1\n"
    b"0 1:inf 2:1E+2 3:.25\n"
    b"2.5 7:3\n"
)


@pytest.mark.parametrize("compress", [False, True])
def test_fast_libsvm_matches_sklearn(tmp_path, compress):
    path = tmp_path / ("a.svm.gz" if compress else "a.svm")
    path.write_bytes(gzip.compress(SIMPLE) if compress else SIMPLE)
    fast = readers.libsvm_fast(readers.Source(str(path), "data"))
    assert fast is not None
    X, y = fast
    X2, y2 = load_svmlight_file(str(path), dtype=np.float32, zero_based=True)
    assert X.shape == X2.shape and X.indices.dtype == np.int32
    np.testing.assert_array_equal(X.toarray(), X2.toarray())
    np.testing.assert_array_equal(y, y2)


@pytest.mark.parametrize("text", [
    b"1 1:1 # a comment\n0 2:1\n",      # comments
    b"1 qid:3 1:1\n0 qid:3 2:1\n",      # query ids
    b"1 3:1 2:1\n",                      # indices not increasing
    b"1 1:1 1:2\n",                      # repeated index
    b"1 1:x\n",                          # bad value
    b"1 1\n",                            # no colon
    b"   \n1 1:1\n",                     # whitespace-only line
])
def test_fast_libsvm_leaves_the_rest_to_sklearn(tmp_path, text):
    path = tmp_path / "b.svm"
    path.write_bytes(text)
    assert readers.libsvm_fast(readers.Source(str(path), "data")) is None


def test_read_dataset_libsvm_same_as_before(tmp_path):
    """read_dataset takes the fast path and gives what scikit-learn's parser gives."""
    rng = np.random.default_rng(0)
    X = sp.random(500, 40, density=0.2, format="csr", random_state=1, dtype=np.float32)
    y = rng.integers(0, 3, 500)
    lines = []
    for i in range(500):
        s, e = X.indptr[i], X.indptr[i + 1]
        lines.append(" ".join([str(y[i])] + [f"{j + 1}:{v:.6g}" for j, v in
                                             zip(X.indices[s:e], X.data[s:e], strict=True)]))
    path = tmp_path / "c.svm"
    path.write_text("\n".join(lines) + "\n")
    ds = read_dataset(str(path))
    X2, y2 = load_svmlight_file(str(path), dtype=np.float32)  # one-based
    assert ds.X.shape[0] == 500 and ds.X.indices.dtype == np.int32
    np.testing.assert_array_equal(ds.X.toarray(), X2.toarray()[:, : ds.X.shape[1]])
    np.testing.assert_array_equal(np.asarray(ds.classes)[ds.y], y2.astype(int))


def _sparse_ds(n=1000, p=60, seed=0):
    X = sp.random(n, p, density=0.1, format="csr", random_state=seed, dtype=np.float32)
    y = np.random.default_rng(seed).integers(0, 2, n)
    return Dataset(X=X, y=y, classes=[0, 1], row_id=np.arange(n) + 5,
                   extra={"w2": np.arange(n, dtype=np.float64)})


@pytest.mark.parametrize("rows", [(0, 1000), (0, 1), (99, 101), (150, 777), (999, 1000)])
def test_parquet_row_range_is_a_slice(tmp_path, rows):
    ds = _sparse_ds()
    path = str(tmp_path / "d.parquet")
    write_dataset(ds, path, row_group_size=100)
    whole = read_dataset(path)
    part = read_dataset(path, rows=rows)
    want = whole.subset(np.arange(*rows))
    assert part.X.shape == want.X.shape and (part.X != want.X).nnz == 0
    np.testing.assert_array_equal(part.y, want.y)
    np.testing.assert_array_equal(part.row_id, want.row_id)
    np.testing.assert_array_equal(part.extra["w2"], want.extra["w2"])
    assert part.classes == whole.classes


def test_parquet_row_range_keeps_the_whole_files_classes(tmp_path):
    """A shard without some label still gets every class of the file (no rdia metadata)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    offsets = pa.array(np.arange(7, dtype=np.int32))
    table = pa.table({
        "label": pa.array(["b", "b", "b", "a", "c", "c"]),
        "indices": pa.ListArray.from_arrays(offsets, pa.array(np.arange(6, dtype=np.int32))),
        "values": pa.ListArray.from_arrays(offsets, pa.array(np.ones(6, np.float32))),
    })
    path = tmp_path / "e.parquet"
    pq.write_table(table, path, row_group_size=2)
    part = read_dataset(str(path), ReadOptions(n_features=6), rows=(0, 2))
    assert part.classes == ["a", "b", "c"]
    np.testing.assert_array_equal(part.y, [1, 1])


def test_fingerprint_streams_without_changing_the_digest():
    """Chunked hashing (no array-sized temporaries) gives the same digest as one update."""
    import hashlib

    ds = _sparse_ds(n=3000)
    X = ds.X.tocsr()
    h = hashlib.blake2b(digest_size=8)
    h.update(b"csr")
    h.update(np.asarray(X.shape, np.int64).tobytes())
    for a, dt in ((X.indptr, np.int64), (X.indices, np.int64), (X.data, np.float32)):
        h.update(np.ascontiguousarray(a, dtype=dt).tobytes())
    h.update(repr([str(c) for c in ds.classes]).encode())
    h.update(np.ascontiguousarray(ds.y).tobytes())
    h.update(np.ascontiguousarray(ds.row_id).tobytes())
    assert ds.fingerprint() == h.hexdigest()


@pytest.mark.parametrize("classes", [2, 3])
def test_torch_csr_path_matches_cpu_kernels(monkeypatch, classes):
    """The torch-CSR code path that CUDA devices take (X and Xᵀ as CSR tensors) gives the Φ
    of the CPU kernels, here on the CPU: what tests/test_cuda.py checks on a GPU."""
    import torch

    import rdia_cli.models.logreg.design as lr
    from rdia_cli.influence.logreg import score_logreg
    from rdia_cli.models.logreg.training import train_logreg

    rng = np.random.default_rng(4)
    n, p = 3000, 2500
    X = sp.random(n, p, density=0.004, format="csr", random_state=4, dtype=np.float32)
    y = rng.integers(0, classes, n)
    train = Dataset(X=X, y=y, classes=list(range(classes)), row_id=np.arange(n))
    val = train.subset(np.arange(500))
    model = train_logreg(train, tol=1e-10, solver="cg")
    want = score_logreg(model, train, val, solver="cg").phi
    monkeypatch.setattr(lr, "_CPU_KERNELS", False)
    D = lr.Design(X, device="cpu", dtype=torch.float64)
    assert D._cpu is None and D._X.layout == torch.sparse_csr and D._XT is not None
    model2 = train_logreg(train, tol=1e-10, solver="cg")
    got = score_logreg(model, train, val, solver="cg").phi
    assert np.linalg.norm(got - want) <= 1e-8 * np.linalg.norm(want)
    w, w2 = model.state["weight"].numpy(), model2.state["weight"].numpy()
    assert np.linalg.norm(w2 - w) <= 1e-6 * np.linalg.norm(w)
