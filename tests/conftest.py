from pathlib import Path

import numpy as np
import pytest

from rdia_cli.data.dataset import Dataset

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _torch_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        return False


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device")
    skip_data = pytest.mark.skip(reason=f"needs {SHARED_DATA}")
    # import torch only when a cuda test is collected: it costs seconds
    has_cuda = any("cuda" in item.keywords for item in items) and _torch_cuda()
    for item in items:
        if "cuda" in item.keywords and not has_cuda:
            item.add_marker(skip_cuda)
        if "shared_data" in item.keywords and not SHARED_DATA.exists():
            item.add_marker(skip_data)


def make_dataset(X, y, classes=None, **kw) -> Dataset:
    y = np.asarray(y)
    classes = list(range(int(y.max()) + 1)) if classes is None else classes
    return Dataset(X=X, y=y, classes=classes, row_id=np.arange(len(y)), **kw)


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
    return mk(tr), mk(va), mk(te)


@pytest.fixture(scope="session")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    tr, va = idx[:1200], idx[1200:1500]
    mk = lambda i: Dataset(X=X[i], y=y[i], classes=list(range(10)), row_id=i)  # noqa: E731
    return mk(tr), mk(va)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny networks: one thread. With other jobs on the 2 cores, 2 threads made these tests ~4x
    slower (OpenMP spinning), not faster."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
