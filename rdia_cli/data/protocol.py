"""The paper's experimental protocol: stratified train/validation/test splits and symmetric
label noise (appendix C). Both are seeded and never touch the global random state.
"""

from __future__ import annotations

import numpy as np

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError


def split_dataset(
    ds: Dataset, *, val: float = 0.2, test: float = 0.2, seed: int = 0
) -> tuple[Dataset, Dataset, Dataset]:
    """Split ``ds`` into (train, val, test), stratified by label.

    ``val`` and ``test`` are fractions of the whole data set (rounded to whole rows). The split
    is stratified (scikit-learn ``train_test_split``); when a class has fewer than 2 rows, or a
    part is too small to hold every class, that split falls back to an unstratified one. Each
    part keeps ``row_id`` and lists its rows in their original order.
    """
    from sklearn.model_selection import train_test_split

    for name, frac in (("val", val), ("test", test)):
        if not 0.0 <= frac < 1.0:
            raise InputError(f"`{name}` must be a fraction in [0, 1), got {frac}.")
    n = ds.n_samples
    n_test = int(round(test * n))
    n_val = int(round(val * n))
    if n - n_test - n_val < 1:
        raise InputError(
            f"Splitting {n} rows into val={val} and test={test} leaves no training rows; "
            "use smaller fractions."
        )
    rng = np.random.default_rng(seed)
    idx = np.arange(n)

    def cut(rows: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        if size == 0:
            return rows, rows[:0]
        state = int(rng.integers(2**31 - 1))
        y = ds.y[rows]
        counts = np.bincount(y)
        counts = counts[counts > 0]
        k = len(counts)
        if counts.min() >= 2 and size >= k and len(rows) - size >= k:
            keep, out = train_test_split(rows, test_size=size, random_state=state, stratify=y)
        else:
            keep, out = train_test_split(rows, test_size=size, random_state=state)
        return np.sort(keep), np.sort(out)

    rest, test_idx = cut(idx, n_test)
    train_idx, val_idx = cut(rest, n_val)
    return ds.subset(train_idx), ds.subset(val_idx), ds.subset(test_idx)


def inject_noise(ds: Dataset, *, rate: float, seed: int = 0) -> Dataset:
    """Symmetric label noise: each label is replaced, with probability ``rate``, by a class
    drawn uniformly from the *other* K - 1 classes.

    Adds ``extra["is_noisy"]`` (bool: label differs from the clean one) and
    ``extra["clean_label"]`` (the original label value). If ``ds`` already carries
    ``clean_label`` (noise injected twice), that original is kept.
    """
    if not 0.0 <= rate <= 1.0:
        raise InputError(f"Noise `rate` must be in [0, 1], got {rate}.")
    k = ds.n_classes
    if k < 2:
        raise InputError(
            f"Cannot inject label noise into data with {k} class; it needs at least 2 classes."
        )
    if ds.target is not None:
        raise InputError(
            "Cannot inject label noise into data with soft targets; use hard-labelled data."
        )
    rng = np.random.default_rng(seed)
    n = ds.n_samples
    flip = rng.random(n) < rate
    shift = rng.integers(1, k, size=n)
    y = np.where(flip, (ds.y + shift) % k, ds.y)

    class_values = _class_array(ds.classes)
    extra = dict(ds.extra)
    if "clean_label" in extra:
        clean = np.asarray(extra["clean_label"])
    else:
        clean = class_values[ds.y]
        extra["clean_label"] = clean
    extra["is_noisy"] = np.asarray(class_values[y] != clean, dtype=bool)
    meta = dict(ds.meta)
    meta["noise"] = {"kind": "symmetric", "rate": float(rate), "seed": int(seed)}
    return Dataset(
        X=ds.X,
        y=y,
        classes=list(ds.classes),
        row_id=ds.row_id,
        target=None,
        weight=ds.weight,
        feature_names=ds.feature_names,
        extra=extra,
        meta=meta,
        source=ds.source,
    )


def _class_array(classes: list) -> np.ndarray:
    """Class values as a numpy array with the classes' own type (int64, float64 or str)."""
    if all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in classes):
        return np.asarray(classes, dtype=np.int64)
    if all(isinstance(c, int | float | np.number) for c in classes):
        return np.asarray(classes, dtype=np.float64)
    return np.asarray([str(c) for c in classes], dtype=object)
