"""Label noise kinds of `inject_noise` and `rdia noise --kind`: pair flip, transition matrix,
one-directional class-conditional and instance-dependent noise, next to the symmetric noise of
the paper's protocol (whose draws must not change)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from rdia_cli.data import Dataset, inject_noise
from rdia_cli.data.protocol import read_transition_matrix
from rdia_cli.errors import InputError
from tests.cli_helpers import rdia


def make(n: int, k: int, *, seed: int = 0, classes=None) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset(X=rng.normal(size=(n, 2)), y=rng.integers(0, k, n),
                   classes=classes or list(range(k)), row_id=np.arange(n))


def blobs(n: int, k: int, *, seed: int = 0) -> Dataset:
    """K Gaussian blobs that overlap: some rows are easy, some are hard."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centres = 2.0 * rng.normal(size=(k, 4))
    return Dataset(X=centres[y] + rng.normal(size=(n, 4)), y=y, classes=list(range(k)),
                   row_id=np.arange(n))


# sha256[:16] of the noisy labels (int64 bytes) that the symmetric-only inject_noise drew
# before the other kinds were added, for make-like data built in `test_symmetric_unchanged`
OLD_SYMMETRIC = [
    (2, 0, 0.2, "1e6e5fb260fad529"), (2, 3, 0.4, "b207a0e419f515bc"),
    (2, 11, 0.7, "6448bd11bf9baa91"), (3, 0, 0.2, "3dda41298bb270e0"),
    (3, 3, 0.4, "7ac259a73dc9076e"), (3, 11, 0.7, "eff11f83a618edaa"),
    (10, 0, 0.2, "e0e8bf184dc6ef45"), (10, 3, 0.4, "c53bb596e0f04426"),
    (10, 11, 0.7, "275968a02f665c94"),
]


@pytest.mark.parametrize("k,seed,rate,digest", OLD_SYMMETRIC)
def test_symmetric_unchanged(k, seed, rate, digest):
    rng = np.random.default_rng(2024 + k)
    ds = Dataset(X=rng.normal(size=(2000, 2)), y=rng.integers(0, k, 2000),
                 classes=list(range(k)), row_id=np.arange(2000))
    for noisy in (inject_noise(ds, rate=rate, seed=seed),
                  inject_noise(ds, rate=rate, seed=seed, kind="symmetric")):
        assert hashlib.sha256(noisy.y.astype(np.int64).tobytes()).hexdigest()[:16] == digest
        assert noisy.meta["noise"] == {"kind": "symmetric", "rate": rate, "seed": seed}


def test_pair_flips_only_to_the_next_class_at_rate():
    ds = make(6000, 4, seed=1)
    noisy = inject_noise(ds, rate=0.3, seed=2, kind="pair")
    changed = noisy.y != ds.y
    assert np.array_equal(noisy.y[changed], (ds.y[changed] + 1) % 4)
    assert abs(changed.mean() - 0.3) < 0.02  # sd of the rate is 0.006 here
    for c in range(4):  # every class at the rate, the last one into class 0
        assert abs(changed[ds.y == c].mean() - 0.3) < 0.04
    np.testing.assert_array_equal(noisy.extra["is_noisy"], changed)
    np.testing.assert_array_equal(noisy.extra["clean_label"], ds.y)
    assert noisy.meta["noise"] == {"kind": "pair", "rate": 0.3, "seed": 2}
    assert np.array_equal(inject_noise(ds, rate=0.3, seed=2, kind="pair").y, noisy.y)


def test_matrix_noise_follows_the_matrix():
    T = np.array([[0.7, 0.2, 0.1], [0.0, 1.0, 0.0], [0.25, 0.25, 0.5]])
    ds = make(9000, 3, seed=3)
    noisy = inject_noise(ds, seed=4, kind="matrix", matrix=T)
    for c in range(3):
        rows = ds.y == c
        empirical = np.bincount(noisy.y[rows], minlength=3) / rows.sum()
        np.testing.assert_allclose(empirical, T[c], atol=0.03)  # sd ≤ 0.009 per entry
    assert (noisy.y[ds.y == 1] == 1).all()  # a zero stays a zero
    assert noisy.meta["noise"] == {"kind": "matrix", "seed": 4, "matrix": T.tolist()}


def test_class_conditional_flips_only_the_source_class():
    ds = make(4000, 3, seed=5, classes=["a", "b", "c"])
    noisy = inject_noise(ds, rate=0.4, seed=6, kind="class")  # defaults: first → next
    changed = noisy.y != ds.y
    assert (ds.y[changed] == 0).all() and (noisy.y[changed] == 1).all()
    assert abs(changed[ds.y == 0].mean() - 0.4) < 0.04
    assert noisy.meta["noise"]["from_class"] == "a" and noisy.meta["noise"]["to_class"] == "b"
    back = inject_noise(ds, rate=0.4, seed=6, kind="class", from_class="c", to_class="a")
    moved = back.y != ds.y
    assert (ds.y[moved] == 2).all() and (back.y[moved] == 0).all() and moved.any()
    with pytest.raises(InputError, match="not one of the data's classes"):
        inject_noise(ds, rate=0.4, kind="class", from_class="z")


def test_class_conditional_binary_with_pm1_labels():
    ds = make(3000, 2, seed=7, classes=[-1, 1])
    noisy = inject_noise(ds, rate=0.3, seed=8, kind="class", from_class="1")  # as typed
    changed = noisy.y != ds.y
    assert (ds.y[changed] == 1).all() and abs(changed[ds.y == 1].mean() - 0.3) < 0.04


def test_instance_noise_mean_rate_and_hard_rows_flip_more():
    ds = blobs(3000, 3, seed=9)
    noisy = inject_noise(ds, rate=0.25, seed=10, kind="instance")
    changed = noisy.y != ds.y
    assert abs(changed.mean() - 0.25) < 0.03
    # hardness: distance to the own centre relative to the nearest other centre, as the
    # out-of-fold model sees it; rows in the hardest third flip far more than the easiest third
    from sklearn.linear_model import LogisticRegression

    p = LogisticRegression().fit(ds.X, ds.y).predict_proba(ds.X)
    loss = -np.log(p[np.arange(ds.n_samples), ds.y])
    lo, hi = np.quantile(loss, [1 / 3, 2 / 3])
    assert changed[loss >= hi].mean() > 2 * changed[loss <= lo].mean()
    # flips go to the model's most likely other class, never to the own class
    assert (noisy.y[changed] != ds.y[changed]).all()
    info = noisy.meta["noise"]
    assert info["kind"] == "instance" and info["rate"] == 0.25 and info["max_flip_prob"] <= 1


def test_instance_noise_with_given_probs():
    ds = make(2000, 3, seed=11)
    probs = np.full((2000, 3), 0.05)
    probs[np.arange(2000), ds.y] = 0.9
    hard = np.arange(2000) < 500
    probs[hard] = [0.2, 0.5, 0.3]
    probs[hard, ds.y[hard]] = 0.01
    probs /= probs.sum(1, keepdims=True)
    noisy = inject_noise(ds, rate=0.1, seed=12, kind="instance", probs=probs)
    changed = noisy.y != ds.y
    assert abs(changed.mean() - 0.1) < 0.02
    assert changed[hard].mean() > 5 * changed[~hard].mean()
    expect = np.where(probs * (np.arange(3) != ds.y[:, None]) == 0, -1, probs).argmax(1)
    np.testing.assert_array_equal(noisy.y[changed], expect[changed])


@pytest.mark.parametrize("kwargs,match", [
    ({"kind": "nope", "rate": 0.1}, "Unknown noise `kind`"),
    ({"kind": "pair"}, "needs a `rate`"),
    ({"kind": "pair", "rate": 1.5}, r"\[0, 1\]"),
    ({"kind": "matrix", "rate": 0.1, "matrix": np.eye(3)}, "does not apply"),
    ({"kind": "matrix"}, "needs a K × K"),
    ({"kind": "matrix", "matrix": np.eye(2)}, "data have 3 classes"),
    ({"kind": "matrix", "matrix": [[0.5, 0.6, 0], [0, 1, 0], [0, 0, 1]]}, "sums to"),
    ({"kind": "matrix", "matrix": [[1.5, -0.5, 0], [0, 1, 0], [0, 0, 1]]}, "outside"),
    ({"kind": "symmetric", "rate": 0.1, "from_class": 0}, "apply to kind `class` only"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        inject_noise(make(30, 3), **kwargs)


def test_read_transition_matrix(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("# clean class per line\n0.9, 0.1\n\n0.2 0.8  # second\n")
    np.testing.assert_allclose(read_transition_matrix(f, 2), [[0.9, 0.1], [0.2, 0.8]])
    for text, line, msg in [("0.9 0.1\n0.2 0.7\n", 2, "sums to 0.9"),
                            ("0.9 0.1\n0.2 x\n", 2, "`x` is not a number"),
                            ("0.9 0.1 0\n0.2 0.8\n", 1, "3 numbers"),
                            ("1.2 -0.2\n0.2 0.8\n", 1, "in [0, 1]")]:
        f.write_text(text)
        with pytest.raises(InputError) as e:
            read_transition_matrix(f, 2)
        assert f"line {line}" in str(e.value) and msg in str(e.value) and str(f) in str(e.value)
    f.write_text("1 0\n")
    with pytest.raises(InputError, match="1 rows, but the data have 2 classes"):
        read_transition_matrix(f, 2)


# --- CLI ---------------------------------------------------------------------------------------
@pytest.fixture()
def csv(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(3000, 2)), rng.integers(0, 3, 3000)
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n" + "".join(f"{r[0]:.5f},{r[1]:.5f},{c}\n"
                                             for r, c in zip(X, y, strict=True)))
    return path


def _noise_meta(path):
    return json.loads(pq.read_metadata(path).metadata[b"rdia.noise"])


def _run(*args):
    return rdia("noise", *args)


def test_cli_kinds_summary_and_metadata(csv, tmp_path):
    for kind, word in [("symmetric", "symmetric noise τ=0.2"), ("pair", "pair-flip"),
                       ("class", "class-conditional noise 0 → 1"),
                       ("instance", "instance-dependent")]:
        out = tmp_path / f"{kind}.parquet"
        r = _run(csv, "--kind", kind, "--rate", "0.2", "-o", out)
        assert r.exit_code == 0, r.stderr
        assert word in " ".join(r.stderr.split())
        meta = _noise_meta(out)
        assert meta["kind"] == kind and meta["rate"] == 0.2 and meta["seed"] == 0
        t = pq.read_table(out)
        assert {"is_noisy", "clean_label"} <= set(t.column_names)
        flipped = np.asarray(t["is_noisy"])
        assert flipped.any()
        if kind == "class":
            assert (np.asarray(t["clean_label"])[flipped] == 0).all()
    m = tmp_path / "m.txt"
    m.write_text("0.8 0.2 0\n0 1 0\n0 0 1\n")
    out = tmp_path / "m.parquet"
    r = _run(csv, "--kind", "matrix", "--matrix", m, "-o", out)
    assert r.exit_code == 0, r.stderr
    meta = _noise_meta(out)
    assert meta["matrix"] == [[0.8, 0.2, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    t = pq.read_table(out)
    clean, label = np.asarray(t["clean_label"]), np.asarray(t["label"])
    assert (label[clean != 0] == clean[clean != 0]).all()


def test_cli_symmetric_labels_as_before(csv, tmp_path):
    """The default kind writes what `inject_noise(rate, seed)` always drew."""
    from rdia_cli.data.readers import ReadOptions, read_dataset

    r = _run(csv, "--rate", "0.3", "--seed", "5", "-o", tmp_path / "n.parquet")
    assert r.exit_code == 0, r.stderr
    noisy = read_dataset(str(tmp_path / "n.parquet"), ReadOptions())
    clean = read_dataset(str(csv), ReadOptions())
    expect = inject_noise(clean, rate=0.3, seed=5)
    np.testing.assert_array_equal(noisy.label_values(), expect.label_values())


@pytest.mark.parametrize("content,fragment", [
    ("0.8 0.2 0\n0 0.9 0.2\n0 0 1\n", "line 2: the row sums to 1.1"),
    ("0.8 0.2\n0 1\n", "line 1: 2 numbers, but the data have 3 classes"),
    ("0.8 0.2 0\n0 1 0\n", "2 rows, but the data have 3 classes"),
    ("0.8 0.2 0\n0 1 0\n0 0 one\n", "line 3: `one` is not a number"),
    ("1.5 -0.5 0\n0 1 0\n0 0 1\n", "line 1: every entry must be in [0, 1]"),
])
def test_cli_bad_matrix_file_exits_2_with_one_line(csv, tmp_path, content, fragment):
    m = tmp_path / "bad.txt"
    m.write_text(content)
    out = tmp_path / "o.parquet"
    r = _run(csv, "--kind", "matrix", "--matrix", m, "-o", out)
    assert r.exit_code == 2, r.stderr
    msg = " ".join(r.stderr.split())
    assert fragment in msg and "bad.txt" in msg
    assert len(r.stderr.strip().splitlines()) <= 2  # one message (Rich may wrap it)
    assert not out.exists()


@pytest.mark.parametrize("args,fragment", [
    (["--kind", "bogus", "--rate", "0.1"], "is not one of"),
    (["--kind", "pair"], "needs `--rate`"),
    (["--kind", "matrix", "--rate", "0.1"], "needs `--matrix FILE`"),
    (["--kind", "pair", "--rate", "2"], "[0, 1]"),
    (["--kind", "class", "--rate", "0.1", "--from-class", "9"], "not one of the data's classes"),
    (["--kind", "pair", "--rate", "0.1", "--to-class", "1"], "apply to `--kind class` only"),
])
def test_cli_bad_options_exit_2(csv, tmp_path, args, fragment):
    r = _run(csv, *args, "-o", tmp_path / "o.parquet")
    assert r.exit_code == 2, r.stderr
    assert fragment in " ".join(r.stderr.split())
    assert not (tmp_path / "o.parquet").exists()
