"""The paper's experimental protocol: stratified train/validation/test splits and symmetric
label noise (appendix C), plus the other kinds of label noise the benchmarks use (pair flip,
a transition matrix, one-directional class-conditional, instance-dependent). All are seeded and
never touch the global random state.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from rdia_cli.artifacts.metadata import jsonable
from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError
from rdia_cli.metrics import row_losses


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
    if len(np.unique(ds.y)) > 1 and len(np.unique(ds.y[train_idx])) < 2:
        import warnings

        from rdia_cli.data.readers import DataWarning

        warnings.warn(
            f"Splitting {n} rows into val={val} and test={test} leaves {len(train_idx)} "
            f"training row(s), all of class {ds.classes[int(ds.y[train_idx[0]])]!r}; a model "
            "needs at least two classes to train: use more rows or smaller fractions.",
            DataWarning, stacklevel=2,
        )
    return ds.subset(train_idx), ds.subset(val_idx), ds.subset(test_idx)


NOISE_KINDS = ("symmetric", "pair", "matrix", "class", "instance")


def inject_noise(
    ds: Dataset,
    *,
    rate: float | None = None,
    seed: int = 0,
    kind: str = "symmetric",
    matrix: np.ndarray | None = None,
    from_class: Any = None,
    to_class: Any = None,
    probs: np.ndarray | None = None,
) -> Dataset:
    """Label noise of one of ``NOISE_KINDS`` in ``ds``'s labels, seeded by ``seed``.

    * ``symmetric``: each label is replaced, with probability ``rate``, by a class drawn
      uniformly from the *other* K - 1 classes (the paper's protocol);
    * ``pair``: class k becomes class k + 1 (mod K, in the order of ``ds.classes``) with
      probability ``rate`` (pair flip);
    * ``matrix``: a row of clean class k gets noisy class j with probability ``matrix[k, j]``
      (K × K, row-stochastic; ``rate`` does not apply — see ``read_transition_matrix``);
    * ``class``: class-conditional, one direction only — rows of clean class ``from_class``
      (a class value; default the first class) become ``to_class`` (default the next class)
      with probability ``rate``; no other row changes;
    * ``instance``: instance-dependent — a row's flip probability is ``min(1, c · ℓ_i)`` where
      ℓ_i = -log p_i(label) under a multinomial logistic regression fitted on the labels as
      given (out-of-fold, 5 folds, C = 1, so hard rows are those the model cannot fit), and c
      is set (bisection) so that the mean flip probability is ``rate``; a flipped row gets the
      model's most likely *other* class. ``probs`` (N × K) replaces that model's
      probabilities.

    Adds ``extra["is_noisy"]`` (bool: label differs from the clean one) and
    ``extra["clean_label"]`` (the original label value). If ``ds`` already carries
    ``clean_label`` (noise injected twice), that original is kept. ``meta["noise"]`` records
    the kind and its parameters. ``symmetric`` draws exactly what it drew before the other
    kinds existed (same seed, same labels).
    """
    matrix = _check_noise(ds, rate=rate, kind=kind, matrix=matrix, from_class=from_class,
                          to_class=to_class, probs=probs)
    rng = np.random.default_rng(seed)
    info: dict[str, Any] = {"kind": kind, "rate": None if rate is None else float(rate),
                            "seed": int(seed)}
    if kind == "matrix":
        del info["rate"]
    y = _noisy_labels(ds, rng, info, kind=kind, rate=rate, matrix=matrix,
                      from_class=from_class, to_class=to_class, probs=probs, seed=seed)

    class_values = _class_array(ds.classes)
    extra = dict(ds.extra)
    if "clean_label" in extra:
        clean = np.asarray(extra["clean_label"])
    else:
        clean = class_values[ds.y]
        extra["clean_label"] = clean
    extra["is_noisy"] = np.asarray(class_values[y] != clean, dtype=bool)
    meta = dict(ds.meta)
    meta["noise"] = info
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
        table=ds.table,
    )


def _check_noise(ds: Dataset, *, rate, kind, matrix, from_class, to_class, probs):
    """The arguments of ``inject_noise`` checked; the transition matrix checked (kind
    ``matrix``) or None."""
    if kind not in NOISE_KINDS:
        raise InputError(f"Unknown noise `kind` {kind!r}; choose one of {', '.join(NOISE_KINDS)}.")
    k = ds.n_classes
    if k < 2:
        raise InputError(
            f"Cannot inject label noise into data with {k} class; it needs at least 2 classes."
        )
    if ds.target is not None:
        raise InputError(
            "Cannot inject label noise into data with soft targets; use hard-labelled data."
        )
    if kind == "matrix":
        if rate is not None:
            raise InputError("Noise `rate` does not apply to kind `matrix`: the transition "
                             "matrix sets every flip rate; leave `rate` out.")
        if matrix is None:
            raise InputError("Noise kind `matrix` needs a K × K transition `matrix`.")
        matrix = check_transition_matrix(np.asarray(matrix, dtype=np.float64), k)
    else:
        if rate is None:
            raise InputError(f"Noise kind `{kind}` needs a `rate` in [0, 1].")
        if not 0.0 <= rate <= 1.0:
            raise InputError(f"Noise `rate` must be in [0, 1], got {rate}.")
        if matrix is not None:
            raise InputError(f"A transition `matrix` applies to kind `matrix` only, not `{kind}`.")
    if kind != "class" and (from_class is not None or to_class is not None):
        raise InputError(f"`from_class`/`to_class` apply to kind `class` only, not `{kind}`.")
    if kind != "instance" and probs is not None:
        raise InputError(f"`probs` applies to kind `instance` only, not `{kind}`.")
    return matrix


def _noisy_labels(ds: Dataset, rng, info: dict[str, Any], *, kind, rate, matrix, from_class,
                  to_class, probs, seed) -> np.ndarray:
    """The noisy class indices of every row (``inject_noise``); what the kind adds to the
    record goes into ``info``."""
    n, k = ds.n_samples, ds.n_classes
    if kind == "symmetric":  # the draws of the original implementation, in the same order
        flip = rng.random(n) < rate
        shift = rng.integers(1, k, size=n)
        y = np.where(flip, (ds.y + shift) % k, ds.y)
    elif kind == "pair":
        flip = rng.random(n) < rate
        y = np.where(flip, (ds.y + 1) % k, ds.y)
    elif kind == "matrix":
        cum = np.cumsum(matrix, axis=1)
        cum[:, -1] = 1.0  # rows sum to 1 within 1e-6; never draw past the last class
        u = rng.random(n)
        y = np.minimum((u[:, None] >= cum[ds.y]).sum(1), k - 1)
        info["matrix"] = matrix.tolist()
    elif kind == "class":
        src = _class_index(ds.classes, from_class, "from_class", default=0)
        dst = _class_index(ds.classes, to_class, "to_class", default=(src + 1) % k)
        if dst == src:
            raise InputError(f"`to_class` must differ from `from_class` (both "
                             f"{ds.classes[src]!r}).")
        flip = (ds.y == src) & (rng.random(n) < rate)
        y = np.where(flip, dst, ds.y)
        info.update(from_class=jsonable(ds.classes[src]), to_class=jsonable(ds.classes[dst]))
    else:  # instance
        given = probs is not None
        if probs is None:
            probs = _out_of_fold_probs(ds, seed)
        probs = np.asarray(probs, dtype=np.float64)
        if probs.shape != (n, k):
            raise InputError(f"`probs` must have shape ({n}, {k}) (rows × classes), got "
                             f"{probs.shape}.")
        loss = row_losses(probs, ds.y)
        p_flip = _scale_to_mean(loss, float(rate))
        flip = rng.random(n) < p_flip
        other = probs.copy()
        other[np.arange(n), ds.y] = -np.inf
        y = np.where(flip, other.argmax(1), ds.y)
        info.update(rule="flip probability min(1, c * loss), mean = rate, to the most likely "
                         "other class",
                    loss_model="given probs" if given else
                    "out-of-fold (5 folds) logistic regression, C = 1",
                    max_flip_prob=float(p_flip.max()) if n else 0.0)
    return y


def check_transition_matrix(matrix: np.ndarray, n_classes: int, *, where: str = "") -> np.ndarray:
    """``matrix`` as a float64 K × K row-stochastic array, or an ``InputError`` naming the rule
    broken (``where``, e.g. a file name, starts the message)."""
    at = f"{where}: " if where else ""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise InputError(f"{at}the transition matrix must be square (K × K), got shape "
                         f"{matrix.shape}.")
    if matrix.shape[0] != n_classes:
        raise InputError(f"{at}the transition matrix is {matrix.shape[0]} × {matrix.shape[0]} "
                         f"but the data have {n_classes} classes.")
    for i, row in enumerate(matrix):
        if not np.all(np.isfinite(row)) or row.min() < 0 or row.max() > 1:
            raise InputError(f"{at}row {i + 1} of the transition matrix has an entry outside "
                             f"[0, 1]: {row.tolist()}.")
        if abs(row.sum() - 1.0) > 1e-6:
            raise InputError(f"{at}row {i + 1} of the transition matrix sums to {row.sum():.6g}, "
                             "not 1 (within 1e-6).")
    return matrix.astype(np.float64)


def read_transition_matrix(path: str | Path, n_classes: int) -> np.ndarray:
    """A K × K transition matrix from a text file: K non-empty lines of K numbers separated by
    whitespace and/or commas; line k is P(noisy = j | clean = k), classes in the data's class
    order (as `rdia convert` lists them); ``#`` starts a comment, blank lines are skipped.
    Errors (``InputError``) name the file and the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the transition matrix `{path}`: {e}") from None
    rows: list[list[float]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0].replace(",", " ").split()
        if not body:
            continue
        try:
            values = [float(tok) for tok in body]
        except ValueError:
            bad = next(t for t in body if not _is_float(t))
            raise InputError(f"`{path}` line {lineno}: `{bad[:40]}` is not a number.") from None
        if len(values) != n_classes:
            raise InputError(f"`{path}` line {lineno}: {len(values)} numbers, but the data have "
                             f"{n_classes} classes (the matrix must be {n_classes} × "
                             f"{n_classes}).")
        if any(not 0.0 <= v <= 1.0 for v in values):
            raise InputError(f"`{path}` line {lineno}: every entry must be in [0, 1], got "
                             f"{values}.")
        if abs(sum(values) - 1.0) > 1e-6:
            raise InputError(f"`{path}` line {lineno}: the row sums to {sum(values):.6g}, not 1 "
                             "(within 1e-6).")
        rows.append(values)
    if len(rows) != n_classes:
        raise InputError(f"`{path}`: {len(rows)} rows, but the data have {n_classes} classes "
                         f"(the matrix must be {n_classes} × {n_classes}).")
    return check_transition_matrix(np.asarray(rows), n_classes, where=f"`{path}`")


def _is_float(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _class_index(classes: list, value: Any, name: str, *, default: int) -> int:
    """Index of class ``value`` (the class itself or its text form, as typed on a command
    line), or ``default`` when it is None."""
    if value is None:
        return default
    for i, c in enumerate(classes):
        if c == value or str(c) == str(value):
            return i
    for i, c in enumerate(classes):  # "1" for 1.0, "-1" for -1
        try:
            if float(c) == float(value):
                return i
        except (TypeError, ValueError):
            pass
    raise InputError(f"`{name}` {value!r} is not one of the data's classes "
                     f"{[jsonable(c) for c in classes]}.")


def _scale(loss: np.ndarray, rate: float) -> float:
    """c such that mean(min(1, c · loss)) = rate (bisection; loss ≥ 0)."""
    if rate <= 0 or len(loss) == 0:
        return 0.0
    if rate >= 1:
        return math.inf
    lo, hi = 0.0, 1.0
    while np.minimum(1.0, hi * loss).mean() < rate and hi < 1e30:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.minimum(1.0, mid * loss).mean() < rate:
            lo = mid
        else:
            hi = mid
    return hi


def _scale_to_mean(loss: np.ndarray, rate: float) -> np.ndarray:
    c = _scale(loss, rate)
    if math.isinf(c):
        return np.ones_like(loss)
    return np.minimum(1.0, c * loss)


def _out_of_fold_probs(ds: Dataset, seed: int, folds: int = 5) -> np.ndarray:
    """(N, K) probabilities of every row under a multinomial logistic regression (C = 1) fitted
    on the other ``folds`` - 1 parts; the hardness behind ``instance`` noise."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, StratifiedKFold

    X, y, k = ds.flat_X(), ds.y, ds.n_classes
    counts = np.bincount(y, minlength=k)
    present = counts[counts > 0]
    n_folds = max(2, min(folds, ds.n_samples))
    splitter = (StratifiedKFold(n_folds, shuffle=True, random_state=seed)
                if present.min() >= n_folds else KFold(n_folds, shuffle=True, random_state=seed))
    probs = np.full((ds.n_samples, k), 1.0 / k)
    for fit_rows, held in splitter.split(np.zeros(len(y)), y if present.min() >= n_folds else None):
        seen = np.unique(y[fit_rows])
        if len(seen) < 2:
            continue
        model = LogisticRegression(C=1.0, max_iter=500).fit(X[fit_rows], y[fit_rows])
        probs[held] = 0.0
        probs[np.ix_(held, model.classes_)] = model.predict_proba(X[held])
        probs[held] = np.clip(probs[held], 1e-12, None)
        probs[held] /= probs[held].sum(1, keepdims=True)
    return probs


def _class_array(classes: list) -> np.ndarray:
    """Class values as a numpy array with the classes' own type (int64, float64 or str)."""
    if all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in classes):
        return np.asarray(classes, dtype=np.int64)
    if all(isinstance(c, int | float | np.number) for c in classes):
        return np.asarray(classes, dtype=np.float64)
    return np.asarray([str(c) for c in classes], dtype=object)
