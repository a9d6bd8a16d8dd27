"""Shared test data: scikit-learn data sets as Datasets (session-wide, read-only), small LIBSVM
files, and the helpers that write them. Session-wide fixtures are checked after every test that
uses them: a test that changes one (sets `target`, writes into `X`) fails with a message."""

import copy
import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from rdia_cli.data.dataset import Dataset

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# minutes each: run only when the -m expression names them (`-m golden`, `-m bench`), so that
# `python -m pytest` stays a few minutes
OPT_IN = ("golden", "bench")


def _torch_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        return False


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device")
    skip_data = pytest.mark.skip(reason=f"needs {SHARED_DATA}")
    markexpr = config.getoption("markexpr") or ""
    opt_out = [m for m in OPT_IN if not re.search(rf"\b{m}\b", markexpr)]
    # import torch only when a cuda test is collected: it costs seconds
    has_cuda = any("cuda" in item.keywords for item in items) and _torch_cuda()
    for item in items:
        if "cuda" in item.keywords and not has_cuda:
            item.add_marker(skip_cuda)
        if "shared_data" in item.keywords and not SHARED_DATA.exists():
            item.add_marker(skip_data)
        for m in opt_out:
            if item.get_closest_marker(m):
                item.add_marker(pytest.mark.skip(reason=f"opt-in: run with -m {m}"))


# --- helpers -------------------------------------------------------------------------------------
def make_dataset(X, y, classes=None, **kw) -> Dataset:
    y = np.asarray(y)
    classes = list(range(int(y.max()) + 1)) if classes is None else classes
    return Dataset(X=X, y=y, classes=classes, row_id=np.arange(len(y)), **kw)


def write_svm(path, X, y) -> Path:
    """A LIBSVM file: ``label j:v ...`` per row (1-based columns, zeros left out, 6 digits)."""
    with open(path, "w") as f:
        for row, label in zip(X, y, strict=True):
            feats = " ".join(f"{j + 1}:{v:.6g}" for j, v in enumerate(row) if v != 0)
            f.write(f"{label} {feats}\n")
    return Path(path)


def write_splits(d: Path, X, y, noisy, n_train: int, n_val: int) -> Path:
    """``d/train.svm`` (the first ``n_train`` rows, ``noisy`` labels), ``d/val.svm`` (the next
    ``n_val``, true labels) and ``d/test.svm`` (the rest, true labels, if any)."""
    write_svm(d / "train.svm", X[:n_train], noisy[:n_train])
    end = n_train + n_val
    write_svm(d / "val.svm", X[n_train:end], y[n_train:end])
    if end < len(y):
        write_svm(d / "test.svm", X[end:], y[end:])
    return d


def small_noisy():
    """``(X, y, noisy)``: 300 rows of 4 features from ``noisy_linear`` seed 0, the first 40
    labels of ``noisy`` flipped (``write_small_noisy_splits`` writes them 200/50/50)."""
    X, y, noisy = noisy_linear(300, 4, seed=0)
    noisy[:40] = 1 - noisy[:40]
    return X, y, noisy


def write_small_noisy_splits(d: Path) -> Path:
    """``small_noisy``'s rows as LIBSVM files in ``d``: train (200), val (50), test (50)."""
    return write_splits(d, *small_noisy(), 200, 50)


def noisy_linear(n_samples: int, n_features: int, *, seed: int, n_noisy: int = 0,
                 rate: float = 0.3, labels=(0, 1)):
    """``(X, y, noisy)``: standard-normal X, labels from a random linear model plus noise, and
    a copy of ``y`` with each of the first ``n_noisy`` labels flipped with probability ``rate``."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(n_features)
    X = rng.standard_normal((n_samples, n_features))
    y = np.where(X @ w + 0.3 * rng.standard_normal(n_samples) > 0, labels[1], labels[0])
    noisy = y.copy()
    if n_noisy:
        flip = rng.random(n_noisy) < rate
        noisy[:n_noisy][flip] = np.where(y[:n_noisy][flip] == labels[1], labels[0], labels[1])
    return X, y, noisy


# --- session-wide data sets (never change them in a test: copy with dataclasses.replace) -------
_SHARED: dict[str, tuple] = {}  # fixture name -> (datasets, their fields' copies, fingerprints)


def _fingerprint(value):
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value).tobytes() if value.dtype != object else repr(value)
        return ("array", id(value), value.shape, value.dtype.str,
                hashlib.sha1(data if isinstance(data, bytes) else data.encode()).hexdigest())
    if isinstance(value, dict):
        return ("dict", id(value), tuple((k, _fingerprint(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", id(value), repr(value))
    if hasattr(value, "tocsr"):  # scipy sparse
        return ("sparse", id(value), _fingerprint(value.data), _fingerprint(value.indices))
    return ("value", repr(value))


def _fingerprints(datasets) -> list:
    return [{f.name: _fingerprint(getattr(ds, f.name)) for f in dataclasses.fields(ds)}
            for ds in datasets]


def _fields(ds) -> dict:
    return {f.name: getattr(ds, f.name) for f in dataclasses.fields(ds)}


def _shared(name: str, datasets: tuple) -> tuple:
    _SHARED[name] = (datasets, copy.deepcopy([_fields(ds) for ds in datasets]),
                     _fingerprints(datasets))
    return datasets


@pytest.fixture(autouse=True)
def _shared_data_unchanged(request):
    """Fail a test that changed a session-wide data set (it would leak into every later test)."""
    yield
    for name, (datasets, originals, before) in _SHARED.items():
        if name not in request.fixturenames:
            continue
        after = _fingerprints(datasets)
        changed = [f"{name}[{i}].{field}" for i, (b, a) in enumerate(zip(before, after,
                                                                          strict=True))
                   for field in b if b[field] != a[field]]
        if changed:  # put the originals back, so that only this test fails
            for ds, fields in zip(datasets, originals, strict=True):
                for field, value in fields.items():
                    object.__setattr__(ds, field, copy.deepcopy(value))
            _SHARED[name] = (datasets, originals, _fingerprints(datasets))
        assert not changed, (f"the session-wide fixture `{name}` was changed ({', '.join(changed)})"
                             "; copy it first: dataclasses.replace(ds, target=...)")


@pytest.fixture(scope="session")
def cancer():
    """Standardized breast-cancer (scikit-learn), a 60/20/20 split, as Datasets."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    idx = np.arange(len(y))
    tr, rest = train_test_split(idx, test_size=0.4, stratify=y, random_state=0)
    va, te = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=0)
    mk = lambda i: Dataset(X=X[i], y=y[i], classes=[0, 1], row_id=i)  # noqa: E731
    return _shared("cancer", (mk(tr), mk(va), mk(te)))


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits (pixels / 16), 1,200 training and 300 validation rows."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    tr, va = idx[:1200], idx[1200:1500]
    mk = lambda i: Dataset(X=X[i], y=y[i], classes=list(range(10)), row_id=i)  # noqa: E731
    return _shared("digits", (mk(tr), mk(va)))


@pytest.fixture(scope="session")
def cancer_svm(tmp_path_factory) -> Path:
    """A folder of breast-cancer LIBSVM files (labels -1/+1, features / column max): train.svm
    (400 rows, 30% of labels flipped, seed 0), val.svm (85 rows) and test.svm (84 rows). Copy
    them into the test's own folder before running anything that writes next to them."""
    from sklearn.datasets import load_breast_cancer

    d = tmp_path_factory.mktemp("cancer_svm")
    X, y = load_breast_cancer(return_X_y=True)
    X = X / X.max(axis=0)
    y = np.where(y == 1, 1, -1)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    train, val, test = order[:400], order[400:485], order[485:]
    noisy = y[train].copy()
    flip = rng.random(len(noisy)) < 0.3
    noisy[flip] = -noisy[flip]
    write_svm(d / "train.svm", X[train], noisy)
    write_svm(d / "val.svm", X[val], y[val])
    write_svm(d / "test.svm", X[test], y[test])
    return d


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny networks: one thread. With other jobs on the 2 cores, 2 threads made these tests ~4x
    slower (OpenMP spinning), not faster."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
