"""What the benchmark scripts share: where the data and the results are, the MNIST/CIFAR readers,
label noise, the machine line written under every result, logging, and `--quick` smoke runs.

Imported as a sibling module (``from benchlib import ...``): Python puts a script's folder on
``sys.path``, so ``python bench/X.py`` finds it; ``rdia_cli`` comes from the installed package.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def data_root() -> Path:
    """``$RDIA_SHARED_DATA``, else ``../shared/data`` beside the repository, else
    ``/work/shared/data``."""
    root = Path(os.environ.get("RDIA_SHARED_DATA", ROOT.parent / "shared" / "data"))
    return root if root.exists() else Path("/work/shared/data")


def results_dir(quick: bool = False) -> Path:
    """Where results go: ``$RDIA_BENCH_RESULTS`` if set; else ``bench/results`` for real runs
    and a scratch folder for ``--quick`` ones (a smoke run never overwrites a measured result).
    Created if missing."""
    if os.environ.get("RDIA_BENCH_RESULTS"):
        out = Path(os.environ["RDIA_BENCH_RESULTS"])
    else:
        out = Path(tempfile.gettempdir()) / "rdia-bench-quick" if quick else HERE / "results"
    out.mkdir(parents=True, exist_ok=True)
    return out


def quick_defaults(parser: argparse.ArgumentParser, args: argparse.Namespace, **values) -> None:
    """For ``--quick``: set each option in ``values`` that was left at its default (an option
    given on the command line wins)."""
    for name, value in values.items():
        if getattr(args, name) == parser.get_default(name):
            setattr(args, name, value)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine(device: str = "cpu", threads: str | None = None) -> str:
    """One line for a results file: CPU, GPU, torch and its threads, the load average now."""
    import torch

    gpu = ""
    if device != "cpu" and torch.cuda.is_available():
        gpu = f", GPU {torch.cuda.get_device_name(0)}"
    load = os.getloadavg()
    threads = threads or f"{torch.get_num_threads()} torch threads"
    return (f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}){gpu}, "
            f"torch {torch.__version__}, {threads}, load average at write time "
            f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} (1/5/15 min; the machine is shared with "
            "other jobs)")


# --- data -----------------------------------------------------------------------------------------
def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format), gzipped."""
    with gzip.open(path) as f:
        b = f.read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)


def load_images(data: str, rows: int | None = None, root: Path | None = None):
    """``(Xtr, ytr, Xte, yte)`` of ``mnist`` (the IDX files) or ``cifar`` (the 4,000/1,000-image
    subset): images (N, C, H, W) float32 in [0, 1], labels int64; the first ``rows`` training
    images."""
    root = root or data_root()
    if data == "mnist":
        m = root / "mnist"
        Xtr = read_idx(m / "train-images-idx3-ubyte.gz")[:rows].astype(np.float32) / 255
        Xte = read_idx(m / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255
        return (Xtr.reshape(-1, 1, 28, 28),
                read_idx(m / "train-labels-idx1-ubyte.gz")[:rows].astype(np.int64),
                Xte.reshape(-1, 1, 28, 28),
                read_idx(m / "t10k-labels-idx1-ubyte.gz").astype(np.int64))
    out = []
    for name in ("cifar10_subset_train4000.bin.gz", "cifar10_subset_test1000.bin.gz"):
        rec = np.frombuffer(gzip.open(root / "cifar10" / name).read(), np.uint8).reshape(-1, 3073)
        out += [rec[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255,
                rec[:, 0].astype(np.int64)]
    return out[0][:rows], out[1][:rows], out[2], out[3]


def flip_labels(y: np.ndarray, tau: float, k: int, *, seed: int, kind: str = "symmetric"):
    """``(noisy, flipped)``: each label flipped w.p. τ — ``symmetric``: to a uniformly chosen
    *other* class (the paper's appendix C); ``pair``: to the next class (y + 1) mod K (Han et
    al. 2018's pair flip)."""
    rng = np.random.default_rng(seed)
    flip = rng.random(len(y)) < tau
    out = y.copy()
    step = rng.integers(1, k, flip.sum()) if kind == "symmetric" else 1
    out[flip] = (y[flip] + step) % k
    return out, flip


# The LIBSVM / MNIST / CIFAR files of ../shared/data the logistic-regression benchmarks read
DATASETS = {
    "breast-cancer": {"title": "Breast-cancer (LIBSVM breast-cancer_scale, 683 rows)",
                      "train": "libsvm/breast-cancer_scale.labels_pm1", "test": None,
                      "n_features": 10},
    "diabetes": {"title": "Diabetes (LIBSVM diabetes_scale, 768 rows)",
                 "train": "libsvm/diabetes_scale", "test": None, "n_features": 8},
    "a9a": {"title": "Adult (LIBSVM a9a / a9a.t, 32,561 + 16,281 rows, 123 features)",
            "train": "libsvm/a9a", "test": "libsvm/a9a.t", "n_features": 123},
    "mnist17": {"title": "MNIST 1-vs-7 (train 13,007 / t10k 2,163 images, 784 pixels in [0,1])",
                "train": "mnist/train-images-idx3-ubyte.gz",
                "train_labels": "mnist/train-labels-idx1-ubyte.gz",
                "test": "mnist/t10k-images-idx3-ubyte.gz",
                "test_labels": "mnist/t10k-labels-idx1-ubyte.gz", "classes": ("1", "7"),
                "p": 784},
    "cifar-catdog": {"title": "CIFAR-10 cat-vs-dog (subset: 777 train / 189 test images, "
                             "3,072 pixels in [0,1])",
                     "train": "cifar10/cifar10_subset_train4000.bin.gz",
                     "test": "cifar10/cifar10_subset_test1000.bin.gz", "classes": ("3", "5"),
                     "p": 3072},
    # issue #30's grid (bench/noise_types.py): data sets no benchmark or test tuned anything on;
    # "scale": each feature mapped to [-1, 1] by the training file's min / max (as LIBSVM's
    # .scale files are), the test file with the same map
    "pendigits": {"title": "Pen digits (LIBSVM pendigits / pendigits.t, 7,494 + 3,498 rows, 16 "
                           "features 0–100, 10 classes)",
                  "train": "libsvm/pendigits", "test": "libsvm/pendigits.t", "n_features": 16,
                  "scale": True},
    "letter": {"title": "Letter (LIBSVM letter.scale / .t, 15,000 + 5,000 rows, 16 features, "
                        "26 classes)",
               "train": "libsvm/letter.scale", "test": "libsvm/letter.scale.t", "n_features": 16},
    "satimage": {"title": "Statlog satimage (PMLB, 6,435 rows, 36 features 27–157, 6 classes; "
                          "no test file)",
                 "train": "pmlb/satimage.tsv.gz", "test": None, "label_col": "target",
                 "scale": True},
    "optdigits": {"title": "Optical digits 8×8 (PMLB, 5,620 rows, 64 features 0–16, 10 classes; "
                           "no test file)",
                  "train": "pmlb/optdigits.tsv.gz", "test": None, "label_col": "target",
                  "scale": True},
    "phishing": {"title": "Phishing (LIBSVM, 11,055 rows, 68 binary features, 2 classes; no "
                          "test file)",
                 "train": "libsvm/phishing", "test": None, "n_features": 68},
}


def read(name: str, root: Path):
    """(full training Dataset, test Dataset or None) of one of ``DATASETS``."""
    from rdia_cli.data import ReadOptions, read_dataset

    spec = DATASETS[name]

    def one(path, labels):
        opts = ReadOptions(labels=None if labels is None else str(root / labels),
                           classes=spec.get("classes"), n_features=spec.get("n_features"),
                           label_col=spec.get("label_col"))
        return read_dataset(str(root / path), opts)

    train = one(spec["train"], spec.get("train_labels"))
    test = one(spec["test"], spec.get("test_labels")) if spec["test"] else None
    if test is not None and [str(c) for c in test.classes] != [str(c) for c in train.classes]:
        raise SystemExit(f"{name}: test classes {test.classes} != train classes {train.classes}")
    if spec.get("scale"):
        lo, hi = _feature_range(train.X)
        train, test = _scaled(train, lo, hi), test if test is None else _scaled(test, lo, hi)
    return train, test


def _feature_range(X) -> tuple[np.ndarray, np.ndarray]:
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    return X.min(axis=0), X.max(axis=0)


def _scaled(ds, lo: np.ndarray, hi: np.ndarray):
    """``ds`` with every feature mapped to [-1, 1] by the range [lo, hi] (a constant feature: 0),
    dense float64; the other fields kept."""
    from dataclasses import replace

    X = ds.X.toarray() if hasattr(ds.X, "toarray") else np.asarray(ds.X, dtype=np.float64)
    span = np.where(hi > lo, hi - lo, 1.0)
    return replace(ds, X=np.clip(2 * (X - lo) / span - 1, -1, 1) * (hi > lo), table=None)
