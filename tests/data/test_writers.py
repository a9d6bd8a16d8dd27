"""Parquet writer: layout, metadata, round trips (same fingerprint) and atomicity.

The other formats (CSV, TSV, LIBSVM) and a user's table: test_outputs.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rdia_cli.data.writers as writers
from rdia_cli.data import Dataset, ReadOptions, read_dataset, write_dataset
from rdia_cli.data.writers import DENSE_COLUMNS_MAX
from rdia_cli.errors import InputError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def wide_svm() -> Dataset:
    """tiny.svm (1-based, 5 used features) declared wider than DENSE_COLUMNS_MAX: it keeps the
    `indices`/`values` layout."""
    return read_dataset(str(FIXTURES / "tiny.svm"),
                        ReadOptions(n_features=DENSE_COLUMNS_MAX + 1))


def assert_same(a: Dataset, b: Dataset) -> None:
    assert a.fingerprint() == b.fingerprint()
    assert a.classes == b.classes
    assert [type(c) for c in a.classes] == [type(c) for c in b.classes]
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.row_id, b.row_id)
    assert a.feature_names == b.feature_names
    assert a.is_sparse == b.is_sparse
    assert a.X.shape == b.X.shape
    xa = a.X.toarray() if a.is_sparse else a.X
    xb = b.X.toarray() if b.is_sparse else b.X
    np.testing.assert_array_equal(xa, xb)
    for name in ("target", "weight"):
        va, vb = getattr(a, name), getattr(b, name)
        assert (va is None) == (vb is None)
        if va is not None:
            np.testing.assert_allclose(va, vb, rtol=1e-6)
    assert sorted(a.extra) == sorted(b.extra)
    for k in a.extra:
        np.testing.assert_array_equal(a.extra[k], b.extra[k])


def round_trip(ds: Dataset, tmp_path: Path, **kw) -> Dataset:
    path = str(tmp_path / "out.parquet")
    write_dataset(ds, path, **kw)
    return read_dataset(path)


def test_sparse_round_trip_and_layout(tmp_path):
    ds = wide_svm()
    back = round_trip(ds, tmp_path, meta={"stage": "test"}, row_group_size=4)
    assert_same(ds, back)
    assert back.X.indices.dtype == np.int32
    pf = pq.ParquetFile(tmp_path / "out.parquet")
    assert pf.num_row_groups == 2
    schema = pf.schema_arrow
    assert schema.field("row_id").type == pa.int64()
    assert schema.field("indices").type == pa.list_(pa.int32())
    assert schema.field("values").type == pa.list_(pa.float32())
    meta = {k.decode(): json.loads(v) for k, v in schema.metadata.items()}
    assert meta["rdia.format_version"] == "1"
    assert meta["rdia.classes"] == [-1, 1]
    assert meta["rdia.n_features"] == DENSE_COLUMNS_MAX + 1
    assert meta["rdia.fingerprint"] == ds.fingerprint()
    assert meta["rdia.stage"] == "test"
    assert meta["rdia.zero_based"] is False  # carried from ds.meta
    assert meta["rdia.index_base"] == 1  # the indices are 0-based; the input's were 1-based
    assert "rdia.sparse" not in meta
    # the label column holds class values, not indices
    assert pf.read().column("label").to_pylist() == [1, -1, 1, -1, 1, -1]


def test_narrow_sparse_is_one_column_per_feature(tmp_path):
    ds = read_dataset(str(FIXTURES / "tiny.svm"))
    write_dataset(ds, str(tmp_path / "out.parquet"), row_group_size=4)
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names == ["row_id", "label", "x1", "x2", "x3", "x4", "x5"]
    np.testing.assert_array_equal(
        np.column_stack([table.column(f"x{j}").to_numpy() for j in range(1, 6)]),
        ds.X.toarray())
    meta = {k.decode(): json.loads(v) for k, v in table.schema.metadata.items()}
    assert meta["rdia.sparse"] is True and meta["rdia.index_base"] == 1
    assert meta["rdia.n_features"] == 5 and meta["rdia.fingerprint"] == ds.fingerprint()


def test_narrow_sparse_reads_back_as_the_same_data(tmp_path):
    ds = read_dataset(str(FIXTURES / "tiny.svm"))
    assert_same(ds, round_trip(ds, tmp_path, row_group_size=4))


def test_dense_round_trip_keeps_column_names(tmp_path):
    ds = Dataset(X=np.arange(6, dtype=np.float32).reshape(3, 2), y=[0, 1, 0],
                 classes=["cat", "dog"], row_id=[0, 1, 2], feature_names=["f_a", "f_b"])
    back = round_trip(ds, tmp_path)
    assert_same(ds, back)
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names == ["row_id", "label", "f_a", "f_b"]
    assert table.column("label").to_pylist() == ["cat", "dog", "cat"]


def test_csv_input_keeps_its_own_columns(tmp_path):
    ds = read_dataset(str(FIXTURES / "tiny.csv"))
    assert ds.table is not None  # the reader keeps the user's table
    back = round_trip(ds, tmp_path)
    assert back.fingerprint() == ds.fingerprint()
    assert back.label_values().tolist() == ds.label_values().tolist()
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names == ["f_a", "label", "f_b", "f_c", "row_id"]  # the input's order
    assert table.column("label").to_pylist()[:3] == ["cat", "dog", "cat"]


def test_dense_default_feature_names(tmp_path):
    ds = Dataset(X=np.eye(3, dtype=np.float32), y=[0, 1, 1], classes=[0.5, 2.5], row_id=[4, 5, 6])
    back = round_trip(ds, tmp_path)
    assert back.feature_names == ["f0", "f1", "f2"]
    assert back.classes == [0.5, 2.5]
    np.testing.assert_array_equal(back.row_id, [4, 5, 6])
    assert back.fingerprint() == ds.fingerprint()


def test_image_round_trip(tmp_path):
    ds = read_dataset(
        str(FIXTURES / "tiny-images-idx3-ubyte.gz"),
        ReadOptions(labels=str(FIXTURES / "tiny-labels-idx1-ubyte.gz"), classes=("1", "2")),
    )
    back = round_trip(ds, tmp_path, row_group_size=5)
    assert_same(ds, back)
    assert back.image_shape == (1, 6, 6)
    meta = pq.ParquetFile(tmp_path / "out.parquet").schema_arrow.metadata
    assert json.loads(meta[b"rdia.image_shape"]) == [1, 6, 6]


@pytest.mark.parametrize("p", [10, DENSE_COLUMNS_MAX + 1])
def test_target_weight_extra_round_trip(tmp_path, p):
    rng = np.random.default_rng(0)
    n = 7
    target = rng.dirichlet(np.ones(3), size=n).astype(np.float32)
    ds = Dataset(
        X=sp.random(n, p, density=0.3, format="csr", dtype=np.float32, random_state=1),
        y=rng.integers(0, 3, size=n),
        classes=["a", "b", "c"],
        row_id=np.arange(100, 100 + n),
        target=target,
        weight=rng.random(n),
        extra={
            "is_noisy": rng.random(n) < 0.5,
            "clean_label": np.array(list("abcabca"), dtype=object),
            "phi": rng.normal(size=n),
            "relabeled": np.arange(n) % 2 == 0,
            "probs": rng.random((n, 3)),
        },
    )
    back = round_trip(ds, tmp_path, row_group_size=3)
    assert_same(ds, back)
    assert back.target.shape == (n, 3)
    assert back.extra["probs"].shape == (n, 3)
    assert back.extra["is_noisy"].dtype == bool


def test_read_back_arrays_are_writable(tmp_path):
    # torch.from_numpy warns on read-only arrays, and scipy's sort_indices writes in place
    n = 6
    ds = wide_svm()
    ds.target = np.full((n, 2), 0.5, np.float32)
    ds.weight = np.ones(n)
    ds.extra = {"a": np.arange(n), "b": np.ones((n, 2))}
    back = round_trip(ds, tmp_path)
    arrays = [back.X.data, back.X.indices, back.X.indptr, back.y, back.row_id, back.target]
    arrays += [back.weight, *back.extra.values()]
    assert all(a.flags.writeable for a in arrays)
    image = read_dataset(
        str(FIXTURES / "tiny-images-idx3-ubyte.gz"),
        ReadOptions(labels=str(FIXTURES / "tiny-labels-idx1-ubyte.gz")),
    )
    assert round_trip(image, tmp_path).X.flags.writeable


def test_classes_absent_from_rows_survive(tmp_path):
    ds = Dataset(X=np.ones((2, 2), np.float32), y=[2, 2], classes=[0, 1, 2], row_id=[0, 1])
    back = round_trip(ds, tmp_path)
    assert back.classes == [0, 1, 2]
    np.testing.assert_array_equal(back.y, [2, 2])


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    ds = read_dataset(str(FIXTURES / "tiny.svm"))
    path = tmp_path / "out.parquet"
    calls = []
    real = writers._Plan.chunk

    def failing_chunk(self, a, b):
        calls.append(a)
        if len(calls) > 1:
            raise RuntimeError("disk on fire")
        return real(self, a, b)

    monkeypatch.setattr(writers._Plan, "chunk", failing_chunk)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_dataset(ds, str(path), row_group_size=2)
    assert list(tmp_path.iterdir()) == []
    # an existing file is left exactly as it was
    path.write_bytes(b"old contents")
    calls.clear()
    with pytest.raises(RuntimeError):
        write_dataset(ds, str(path), row_group_size=2)
    assert path.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_unwritable_meta_leaves_nothing(tmp_path):
    ds = read_dataset(str(FIXTURES / "tiny.svm"))
    with pytest.raises(InputError, match="not JSON-serialisable"):
        write_dataset(ds, str(tmp_path / "o.parquet"), meta={"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_its_source(tmp_path):
    path = tmp_path / "d.parquet"
    write_dataset(read_dataset(str(FIXTURES / "tiny.svm")), str(path))
    ds = read_dataset(str(path))
    with pytest.raises(InputError, match="also an input"):
        write_dataset(ds, str(path))


def test_column_clash(tmp_path):
    ds = Dataset(
        X=np.ones((2, 2), np.float32),
        y=[0, 1],
        classes=[0, 1],
        row_id=[0, 1],
        feature_names=["a", "label"],
    )
    with pytest.raises(InputError, match="clash"):
        write_dataset(ds, str(tmp_path / "o.parquet"))
    ds = Dataset(
        X=np.ones((2, 2), np.float32),
        y=[0, 1],
        classes=[0, 1],
        row_id=[0, 1],
        extra={"row_id": np.zeros(2)},
    )
    with pytest.raises(InputError, match="clash"):
        write_dataset(ds, str(tmp_path / "o.parquet"))


def test_missing_output_folder(tmp_path):
    ds = read_dataset(str(FIXTURES / "tiny.svm"))
    with pytest.raises(InputError, match="does not exist"):
        write_dataset(ds, str(tmp_path / "no" / "o.parquet"))


# --------------------------------------------------------------------------------------------
# Property: any Dataset rdia can build survives write -> read with the same fingerprint
# --------------------------------------------------------------------------------------------
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 30),
    p=st.integers(1, 6),
    k=st.integers(1, 4),
    kind=st.sampled_from(["dense", "sparse", "image"]),
    class_kind=st.sampled_from(["int", "float", "str"]),
    group=st.integers(1, 8),
    seed=st.integers(0, 2**16),
)
def test_round_trip_property(tmp_path, n, p, k, kind, class_kind, group, seed):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, p)) * (rng.random((n, p)) < 0.5)).astype(np.float32)
    if kind == "sparse":  # wide: kept sparse (narrow sparse data: x1..xP columns)
        X = sp.hstack([sp.csr_matrix(X), sp.csr_matrix((n, DENSE_COLUMNS_MAX))], format="csr")
    elif kind == "image":
        X = X.reshape(n, 1, 1, p)
    classes = {
        "int": [int(v) for v in rng.choice(np.arange(-5, 50), size=k, replace=False)],
        "float": [float(v) + 0.5 for v in range(k)],
        "str": [f"c{i}" for i in range(k)],
    }[class_kind]
    ds = Dataset(
        X=X,
        y=rng.integers(0, k, size=n),
        classes=classes,
        row_id=rng.permutation(n) * 3,
        feature_names=[f"col {j}" for j in range(p)] if kind == "dense" else None,
    )
    path = str(tmp_path / "prop.parquet")
    write_dataset(ds, path, row_group_size=group)
    assert_same(ds, read_dataset(path))
