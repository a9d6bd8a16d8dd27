"""Protocol helpers: stratified splits and symmetric label noise."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from rdia_cli.data import Dataset, inject_noise, split_dataset
from rdia_cli.errors import InputError


def make(n: int, k: int, *, classes=None, seed: int = 0, sparse: bool = False) -> Dataset:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    return Dataset(
        X=sp.csr_matrix(X) if sparse else X,
        y=rng.integers(0, k, size=n),
        classes=classes if classes is not None else list(range(k)),
        row_id=np.arange(n) + 1000,
        extra={"tag": np.arange(n)},
    )


# --------------------------------------------------------------------------------------------
# split_dataset
# --------------------------------------------------------------------------------------------
def test_split_sizes_disjoint_and_row_ids():
    ds = make(1000, 3)
    train, val, test = split_dataset(ds, val=0.2, test=0.1, seed=1)
    assert (train.n_samples, val.n_samples, test.n_samples) == (700, 200, 100)
    ids = np.concatenate([train.row_id, val.row_id, test.row_id])
    assert np.array_equal(np.sort(ids), ds.row_id)
    for part in (train, val, test):
        assert np.all(np.diff(part.row_id) > 0)  # original order kept
        np.testing.assert_array_equal(part.extra["tag"] + 1000, part.row_id)
        np.testing.assert_array_equal(part.y, ds.y[part.row_id - 1000])


def test_split_is_stratified():
    ds = make(2000, 4, seed=3)
    overall = np.bincount(ds.y) / ds.n_samples
    for part in split_dataset(ds, val=0.25, test=0.25, seed=0):
        frac = np.bincount(part.y, minlength=4) / part.n_samples
        np.testing.assert_allclose(frac, overall, atol=0.003)


def test_split_seeded():
    ds = make(300, 2)
    a = split_dataset(ds, seed=5)
    b = split_dataset(ds, seed=5)
    c = split_dataset(ds, seed=6)
    assert all(np.array_equal(x.row_id, y.row_id) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1].row_id, c[1].row_id)


def test_split_does_not_touch_global_rng():
    ds = make(100, 2)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    split_dataset(ds, seed=0)
    assert np.array_equal(np.random.get_state()[1], before)


def test_split_falls_back_with_a_singleton_class():
    ds = make(50, 2)
    ds.y[:] = 0
    ds.y[7] = 1
    train, val, test = split_dataset(ds, val=0.2, test=0.2, seed=0)
    assert (train.n_samples, val.n_samples, test.n_samples) == (30, 10, 10)


def test_split_sparse_and_zero_fraction():
    ds = make(40, 2, sparse=True)
    train, val, test = split_dataset(ds, val=0.0, test=0.25, seed=0)
    assert (train.n_samples, val.n_samples, test.n_samples) == (30, 0, 10)
    assert sp.issparse(train.X)


@pytest.mark.parametrize(("val", "test"), [(-0.1, 0.2), (0.2, 1.0), (0.6, 0.5)])
def test_split_bad_fractions(val, test):
    with pytest.raises(InputError):
        split_dataset(make(10, 2), val=val, test=test)


# --------------------------------------------------------------------------------------------
# inject_noise
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [0.1, 0.4])
def test_noise_rate_and_flips_to_other_class(rate):
    ds = make(10_000, 4, classes=[-3, 1, 7, 9])
    noisy = inject_noise(ds, rate=rate, seed=2)
    flipped = noisy.y != ds.y
    # binomial sd at n=10k is <= 0.005; allow 4 sd
    assert abs(flipped.mean() - rate) < 0.02
    np.testing.assert_array_equal(noisy.extra["is_noisy"], flipped)
    clean = noisy.extra["clean_label"]
    assert clean.dtype == np.int64
    np.testing.assert_array_equal(clean, np.asarray(ds.classes)[ds.y])
    new_values = np.asarray(noisy.classes)[noisy.y]
    assert np.all(new_values[flipped] != clean[flipped])
    # the replacement is uniform over the K - 1 other classes
    for c in range(4):
        targets = noisy.y[flipped & (ds.y == c)]
        counts = np.bincount(targets, minlength=4)
        assert counts[c] == 0
        others = counts[np.arange(4) != c] / counts.sum()
        np.testing.assert_allclose(others, 1 / 3, atol=0.07)
    # nothing else changes, and the input is left alone
    assert noisy.X is ds.X
    np.testing.assert_array_equal(noisy.row_id, ds.row_id)
    assert "is_noisy" not in ds.extra
    assert noisy.meta["noise"] == {"kind": "symmetric", "rate": rate, "seed": 2}


def test_noise_binary_is_a_flip_and_string_classes():
    ds = make(1000, 2, classes=["neg", "pos"])
    noisy = inject_noise(ds, rate=1.0, seed=0)
    np.testing.assert_array_equal(noisy.y, 1 - ds.y)
    assert noisy.extra["is_noisy"].all()
    assert list(noisy.extra["clean_label"][:3]) == list(np.asarray(ds.classes)[ds.y[:3]])


def test_noise_rate_zero_and_seed():
    ds = make(500, 3)
    assert np.array_equal(inject_noise(ds, rate=0.0).y, ds.y)
    a = inject_noise(ds, rate=0.3, seed=1)
    b = inject_noise(ds, rate=0.3, seed=1)
    assert np.array_equal(a.y, b.y)


def test_noise_twice_keeps_original_clean_label():
    ds = make(2000, 3, classes=[0.5, 1.5, 2.5])
    once = inject_noise(ds, rate=0.3, seed=1)
    twice = inject_noise(once, rate=0.3, seed=2)
    assert twice.extra["clean_label"].dtype == np.float64
    np.testing.assert_array_equal(twice.extra["clean_label"], np.asarray(ds.classes)[ds.y])
    np.testing.assert_array_equal(twice.extra["is_noisy"], twice.y != ds.y)


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_noise_bad_rate(rate):
    with pytest.raises(InputError, match="rate"):
        inject_noise(make(10, 2), rate=rate)


def test_noise_needs_two_classes():
    ds = make(10, 1)
    with pytest.raises(InputError, match="at least 2 classes"):
        inject_noise(ds, rate=0.1)
