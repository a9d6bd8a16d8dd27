"""`rdia synth`: Avazu-shaped sparse Parquet, streamed; readable by read_dataset; planted noise."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rdia_cli.data.readers import read_dataset
from rdia_cli.data.synth import SynthSpec, write_synth
from rdia_cli.errors import InputError
from tests.cli_helpers import rdia


@pytest.fixture(scope="module")
def synth_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "train.parquet"
    spec = SynthSpec(n_samples=70_000, n_features=20_000, nnz=15, positive=0.17, noise=0.2,
                     seed=3, row_group_size=20_000)
    return path, spec, write_synth(str(path), spec)


def test_layout_and_metadata(synth_file):
    path, spec, summary = synth_file
    pf = pq.ParquetFile(path)
    assert pf.num_row_groups == 4  # streamed row group by row group
    schema = pf.schema_arrow
    assert schema.field("indices").type == pa.list_(pa.int32())
    assert schema.field("values").type == pa.list_(pa.float32())
    assert schema.field("row_id").type == pa.int64()
    meta = {k.decode(): json.loads(v) for k, v in schema.metadata.items()}
    assert meta["rdia.n_features"] == spec.n_features
    assert meta["rdia.classes"] == [0, 1]
    assert meta["rdia.synth"]["seed"] == 3
    ds = read_dataset(str(path))
    footer = json.loads(pf.metadata.metadata[b"rdia.fingerprint"])  # known only at the end
    assert footer == summary.fingerprint == ds.fingerprint()
    assert ds.X.shape == (spec.n_samples, spec.n_features)
    assert ds.X.indices.dtype == np.int32 and ds.X.data.dtype == np.float32
    np.testing.assert_array_equal(np.diff(ds.X.indptr), spec.nnz)  # one value per field
    idx = ds.X.indices.reshape(-1, spec.nnz)
    assert (np.diff(idx, axis=1) > 0).all()  # sorted, unique within a row
    assert idx.min() >= 0 and idx.max() < spec.n_features
    assert (ds.X.data == 1).all()
    np.testing.assert_array_equal(ds.row_id, np.arange(spec.n_samples))


def test_labels_noise_and_signal(synth_file):
    path, spec, summary = synth_file
    ds = read_dataset(str(path))
    clean, noisy = ds.extra["clean_label"], ds.extra["is_noisy"].astype(bool)
    assert abs(clean.mean() - spec.positive) < 0.02
    assert abs(noisy.mean() - spec.noise) < 0.01
    np.testing.assert_array_equal(ds.y != clean, noisy)
    assert summary.n_noisy == int(noisy.sum()) and summary.n_positive == int(ds.y.sum())
    # the planted model is learnable: a frequent feature's click rate differs from the base rate
    X = ds.X.tocsc()
    counts = np.diff(X.indptr)
    rates = np.asarray(X.T @ clean) / np.maximum(counts, 1)
    frequent = counts > 500
    assert rates[frequent].std() > 0.03


def test_same_data_for_any_row_group_size_and_streams_differ(tmp_path):
    base = dict(n_samples=5000, n_features=3000, nnz=7, noise=0.1, seed=11)
    a = write_synth(str(tmp_path / "a.parquet"), SynthSpec(**base, row_group_size=999))
    b = write_synth(str(tmp_path / "b.parquet"), SynthSpec(**base, row_group_size=1 << 20))
    c = write_synth(str(tmp_path / "c.parquet"), SynthSpec(**base, stream=1))
    assert a.fingerprint == b.fingerprint != c.fingerprint
    par = write_synth(str(tmp_path / "p.parquet"), SynthSpec(**dict(base, n_samples=140_000)),
                      jobs=2)  # blocks made in 2 processes: the same data as in one
    one = write_synth(str(tmp_path / "o.parquet"), SynthSpec(**dict(base, n_samples=140_000)))
    assert par.fingerprint == one.fingerprint
    assert a.intercept == c.intercept  # same planted model, other rows
    d = write_synth(str(tmp_path / "d.parquet"), SynthSpec(**dict(base, seed=12)))
    assert d.fingerprint != a.fingerprint


def test_cli_synth_and_errors(tmp_path):
    out = tmp_path / "s.parquet"
    r = rdia("synth", "-o", out, "--rows", "3000", "--features", "500", "--nnz", "5",
             "--noise", "0.1", "--seed", "2")
    assert r.exit_code == 0, r.output
    ds = read_dataset(str(out))
    assert ds.X.shape == (3000, 500) and ds.X.nnz == 15000
    r = rdia("synth", "-o", tmp_path / "bad.parquet", "--features", "10", "--nnz", "15")
    assert r.exit_code == 2 and "--features" in r.output
    assert not (tmp_path / "bad.parquet").exists()
    with pytest.raises(InputError, match="--noise"):
        SynthSpec(n_samples=10, noise=1.5)
    with pytest.raises(InputError, match="--positive"):
        SynthSpec(n_samples=10, positive=0.0)
