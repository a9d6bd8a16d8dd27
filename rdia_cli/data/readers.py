"""Reading datasets: LIBSVM/SVMlight, CSV/TSV, Parquet, IDX and CIFAR-10 binary files.

One entry point, :func:`read_dataset`, returns a :class:`~rdia_cli.data.dataset.Dataset`:

* X is float32: ``scipy.sparse.csr_matrix`` (int32 indices where they fit) for LIBSVM and sparse
  Parquet, a dense (N, P) array for CSV and dense Parquet, (N, C, H, W) in [0, 1] for images.
* y holds class *indices*; ``classes`` the class *values* in index order. Numeric labels are
  sorted by value (ints when all integral, else floats), string labels sorted as strings, unless
  the file's ``rdia.classes`` metadata or a model's :class:`Schema` fixes the order.
* ``row_id`` is the 0-based position of the row in the input (kept when ``classes`` drops rows),
  or the file's own ``row_id`` column for Parquet.
* A user's table (CSV/TSV, a Parquet file not written by rdia, a DataFrame) may hold text,
  boolean and categorical columns and missing cells: its features are then made by a
  :class:`~rdia_cli.data.tables.TablePrep` fitted on the training rows (``ds.meta["prep"]``, its
  JSON), or the model's (``schema.prep``) for validation/test data. A table of complete numbers
  is read as it is (no prep). ``ds.table`` keeps the table's own columns (ID, label under its own
  name, ignored columns...), ``ds.meta["columns"]`` their roles: ``{"label", "id", "ignore",
  "format", "delimiter"}``; ``ds.meta["table_options"]`` the options a model remembers.

Every problem with the input is an :class:`~rdia_cli.errors.InputError` whose message names the
file, the line or row and the column, and ends with what to do.

The formats live in :mod:`rdia_cli.data.formats` (one module each, plus what they share in
``formats.common``); this module picks one, and turns what it parsed into the Dataset.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from rdia_cli.artifacts.inputs import STDIN, is_stream, read_once
from rdia_cli.artifacts.metadata import META_PREFIX
from rdia_cli.data.dataset import Dataset
from rdia_cli.data.formats.cifar import read_cifar
from rdia_cli.data.formats.common import (
    FORMATS,
    MAX_FEATURES,
    UNDECLARED_WIDTH,
    Parsed,
    ReadOptions,
    Schema,
    Source,
    base_name,
    map_classes,
    peek,
)
from rdia_cli.data.formats.csv import read_csv
from rdia_cli.data.formats.idx import IDX_IMAGES_MAGIC, read_idx
from rdia_cli.data.formats.libsvm import libsvm_fast as libsvm_fast  # readers.libsvm_fast
from rdia_cli.data.formats.libsvm import read_libsvm
from rdia_cli.data.formats.parquet import read_parquet
from rdia_cli.errors import InputError

__all__ = [
    "FORMATS",
    "MAX_DENSE_ELEMENTS",
    "META_PREFIX",
    "RESERVED_COLUMNS",
    "DataWarning",
    "ReadOptions",
    "Schema",
    "read_dataset",
    "read_table",
]

# Sparse data read against a dense model is densified only below this many elements (N x P).
MAX_DENSE_ELEMENTS = 200_000_000
# Parquet columns with a fixed meaning (everything else in an image/sparse file goes to `extra`).
RESERVED_COLUMNS = ("row_id", "label", "target", "weight", "indices", "values", "pixels")


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------
def read_dataset(
    path: str,
    options: ReadOptions = ReadOptions(),
    *,
    schema: Schema | None = None,
    what: str = "data",
    rows: tuple[int, int] | None = None,
    _shown: str | None = None,
) -> Dataset:
    """Read ``path`` into a Dataset (``-``: standard input, named `<stdin>` in messages; it and
    a pipe, `<(cat a.svm)` or a FIFO, are read once into a temporary file).

    ``schema`` (the model's, for validation/test data) fixes the class order and the feature
    space: narrower sparse data is padded, dense and sparse are converted into each other, a
    table goes through the model's ``schema.prep``, and anything that does not fit is an
    InputError. Table options left unset in ``options`` (``label_col``, ``id_col``,
    ``ignore_cols``, ``categorical``) come from ``schema.read_options``. ``what`` names the
    file in error messages ("training data", "validation data", "test data").

    ``rows=(start, stop)`` keeps only the file's rows start..stop-1 (one process's shard under
    torch.distributed). Parquet files then read only the row groups that hold them; classes are
    still those of the whole file. Other formats are read whole, then cut.
    """
    path = str(path)
    if path == STDIN or is_stream(path):  # read once, into a temporary file
        stdin = path == STDIN
        shown = STDIN_NAME if stdin else path
        src = Source(path, what, shown=shown)
        with contextlib.ExitStack() as stack:
            stream = sys.stdin.buffer if stdin else stack.enter_context(open(path, "rb"))
            tmp = stack.enter_context(read_once(stream, lambda: src.error(
                "is empty (0 bytes); pipe a data file into `-`." if stdin else
                "is empty: nothing was written into the pipe."),
                prefix=".rdia-stdin." if stdin else ".rdia-pipe."))
            return read_dataset(tmp, options, schema=schema, what=what, rows=rows,
                                _shown=shown)
    src = Source(path, what, shown=_shown)
    src.check_file()
    if schema is not None:
        options = options.inherit(schema.read_options)
    fmt = options.format if options.format != "auto" else detect_format(src)
    if options.labels is not None and fmt != "idx":
        raise InputError(
            f"The `labels` option is only for IDX image files, but {src.name} is read as {fmt}; "
            "drop it (the labels are in the file)."
        )
    if fmt == "parquet":
        found = read_parquet(src, options, schema, rows=rows)
        if rows is not None and found.kinds is not None:
            # a shard of a table that needs a prep: fit it on every row, as one process
            # would, so that every shard gets the same features
            whole = _finish(src, read_parquet(src, options, None), options, None)
            schema = Schema.of(whole)
            found = read_parquet(src, options, schema, rows=rows)
        return _finish(src, found, options, schema)
    reader = {
        "libsvm": read_libsvm,
        "csv": read_csv,
        "idx": read_idx,
        "cifar": read_cifar,
    }[fmt]
    ds = _finish(src, reader(src, options, schema), options, schema)
    if rows is not None:
        start, stop = int(rows[0]), int(rows[1])
        ds = ds.subset((ds.row_id >= start) & (ds.row_id < stop))
    return ds


def read_table(
    table: Any,
    options: ReadOptions = ReadOptions(),
    *,
    schema: Schema | None = None,
    prep: Any = None,
    what: str = "data",
    source: str = "<table>",
) -> Dataset:
    """A ``pyarrow.Table`` in memory as a Dataset, through the same code as a CSV/Parquet file
    (``options``: the table options and ``classes``; ``schema`` as in :func:`read_dataset`).
    ``prep`` (a TablePrep or its JSON) is applied instead of fitting one. Rows are named "in
    row N" (1-based) in messages."""
    from rdia_cli.data.formats.common import user_table

    src = Source(source, what)
    if schema is not None:
        options = options.inherit(schema.read_options)
    if table.num_rows == 0:
        raise src.error("has no data rows.")

    def where(r: int) -> str:
        return f"in row {r + 1}"

    found = user_table(src, table, options, schema, where, columns={"format": "table"},
                        prep=prep)
    return _finish(src, found, options, schema)


# --------------------------------------------------------------------------------------------
# Standard input
# --------------------------------------------------------------------------------------------

STDIN_NAME = "<stdin>"


# --------------------------------------------------------------------------------------------
# Format detection
# --------------------------------------------------------------------------------------------
LIBSVM_EXTENSIONS = (".svm", ".libsvm", ".svmlight", ".txt")


def detect_format(src: Source) -> str:
    """By extension first (.parquet/.pq, .csv/.tsv, .bin, .svm/.libsvm/.svmlight/.txt), then
    by content: Parquet and IDX magic bytes, a CSV header line; else LIBSVM. A name holding
    `idx` counts only for a file with none of those extensions that starts like an IDX file."""
    base = "" if src.nameless else base_name(src.path)
    if base.endswith((".parquet", ".pq")):
        return "parquet"
    if base.endswith((".csv", ".tsv")):
        return "csv"
    if base.endswith(".bin"):
        return "cifar"
    if base.endswith(LIBSVM_EXTENSIONS):
        return "libsvm"
    head = peek(src.path, 4)
    if head == b"PAR1":
        return "parquet"
    if head == IDX_IMAGES_MAGIC or ("idx" in base and _idx_like(head)):
        return "idx"
    if _looks_like_csv(peek(src.path, 65536)):
        return "csv"
    return "libsvm"


def _idx_like(head: bytes) -> bool:
    """The IDX magic: two zero bytes, a type code (0x08..0x0E) and a dimension count."""
    return len(head) == 4 and head[:2] == b"\x00\x00" and 0x08 <= head[2] <= 0x0E


def _looks_like_csv(head: bytes) -> bool:
    """A first line with commas or tabs between fields and no LIBSVM `index:value` pairs."""
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    if first.lstrip().startswith(b"#") or (b"," not in first and b"\t" not in first):
        return False
    return not any(b":" in tok for tok in first.split()[1:])


# --------------------------------------------------------------------------------------------
# Common finishing: class mapping, filtering, finiteness, schema alignment
# --------------------------------------------------------------------------------------------
def _first_nonfinite_dense(X: np.ndarray) -> tuple[int, int] | None:
    flat = X.reshape(X.shape[0], -1)
    step = max(1, 4_000_000 // max(1, flat.shape[1]))
    for a in range(0, flat.shape[0], step):
        ok = np.isfinite(flat[a : a + step])
        if not ok.all():
            r, c = np.argwhere(~ok)[0]
            return a + int(r), int(c)
    return None


def _first_nonfinite(X: Any) -> tuple[int, int] | None:
    if sp.issparse(X):
        bad = np.flatnonzero(~np.isfinite(X.data))
        if not bad.size:
            return None
        k = int(bad[0])
        row = int(np.searchsorted(X.indptr, k, side="right") - 1)
        return row, int(X.indices[k])
    return _first_nonfinite_dense(X)


def _check_width(src: Source, X: Any, found: Parsed, pos: np.ndarray) -> None:
    """No features at all, or a sparse width far beyond what the file's values justify (one
    stray index 100000000 in a 2 KB file made models of 10^8 × K weights): refused before any
    model is built, unless the width was declared (``n_features``)."""
    width = int(np.prod(X.shape[1:])) if X.ndim > 1 else 0
    if width == 0:
        raise src.error("has no features (only labels); each row needs at least one feature.")
    if width > MAX_FEATURES:
        raise src.error(f"is {width:,} features wide; rdia handles at most {MAX_FEATURES:,}.")
    if not sp.issparse(X) or found.declared_width:
        return
    limit = max(UNDECLARED_WIDTH, 100 * X.nnz)
    if width > limit and X.nnz:
        k = int(np.argmax(X.indices))
        row = int(np.searchsorted(X.indptr, k, side="right") - 1)
        raise src.error(
            f"has {found.column(int(X.indices[k]))} {found.where(int(pos[row]))}, which makes it "
            f"{width:,} features wide for {X.nnz:,} stored values (more than {limit:,}); "
            "check that index, or declare the width with `n_features`."
        )


def _check_weight(src: Source, weight: np.ndarray, where: Callable[[int], str],
                  pos: np.ndarray) -> None:
    neg = np.flatnonzero(weight < 0)
    if neg.size:
        r = int(neg[0])
        raise src.error(f"has a negative `weight` {weight[r]:g} {where(int(pos[r]))}; sample "
                        "weights must be 0 or more.")
    if weight.size and not (weight > 0).any():
        raise src.error("has `weight` 0 on every row; at least one row needs a positive weight.")


def _finish(src: Source, found: Parsed, opts: ReadOptions, schema: Schema | None) -> Dataset:
    """What every format reader's result goes through: classes (``classes`` filter, the file's
    or the model's class order), dropped rows, finiteness, a stray label's warning, and the
    model's feature space (``schema``)."""
    X, where, column = found.X, found.where, found.column
    feature_names, row_id, target, weight = (
        found.feature_names, found.row_id, found.target, found.weight
    )
    n = X.shape[0] if X is not None else found.table.num_rows
    if n == 0:
        raise src.error("has no data rows.")
    y, classes, mask = map_classes(src, found.labels, opts, schema, found.class_order)
    if target is not None and target.shape[1] != len(classes):
        raise src.error(
            f"has soft targets over {target.shape[1]} classes but {len(classes)} classes "
            f"{classes} after reading; "
            + ("soft-labelled data cannot be filtered with `classes`: leave it out."
               if opts.classes is not None else
               "its `target` column and its labels (or the model's classes) disagree; "
               "make the file again with `rdia relabel`.")
        )
    pos = np.arange(n, dtype=np.int64)
    if row_id is None:
        row_id = pos
    extra = dict(found.extra or {})
    meta = dict(found.meta or {})
    table = found.table
    if mask is not None:
        X = None if X is None else X[mask]
        pos, row_id = pos[mask], row_id[mask]
        target = None if target is None else target[mask]
        weight = None if weight is None else weight[mask]
        extra = {k: v[mask] for k, v in extra.items()}
        table = None if table is None else table.filter(pa.array(mask))
    if X is None:  # a table with text or missing cells: the prep makes X from the kept rows
        X, feature_names, column = _encode_table(src, found, table, pos, meta)
    _check_width(src, X, found, pos)
    if weight is not None:
        _check_weight(src, weight, where, pos)
    bad = _first_nonfinite(X) if found.check_finite else None
    if bad is not None:
        r, c = bad
        raise src.error(
            f"has a missing or non-finite value (NaN or infinity) {where(int(pos[r]))}, "
            f"{column(c)}; remove or impute it."
        )
    for name, arr in (("target", target), ("weight", weight)):
        if arr is not None and not np.isfinite(arr).all():
            r = int(np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))[0])
            raise src.error(f"has a non-finite `{name}` {where(int(pos[r]))}.")
    if schema is None and target is None:
        _warn_stray_label(src, y, classes, pos, where)
    if schema is not None:
        X, feature_names = _align(src, X, feature_names, schema,
                                  declared_width=found.declared_width)
    return Dataset(
        X=X,
        y=y,
        classes=classes,
        row_id=row_id,
        target=target,
        weight=weight,
        feature_names=feature_names,
        extra=extra,
        meta=meta,
        source=src.shown,
        table=table,
    )


def _encode_table(
    src: Source, found: Parsed, table: Any, pos: np.ndarray, meta: dict
) -> tuple[np.ndarray, list[str], Callable[[int], str]]:
    """X of a table's kept rows through ``found.prep``, or a TablePrep fitted on them (then
    recorded in ``meta["prep"]``, as the applied one is)."""
    from rdia_cli.data.tables import TablePrep

    def where(r: int) -> str:
        return found.where(int(pos[r]))

    prep = found.prep
    if prep is None:
        prep = TablePrep.fit(table, list(found.kinds), kinds=found.kinds, name=src.name,
                             where=where)
    X = prep.transform(table, name=src.name, where=where)
    meta["prep"] = prep.to_json()
    names = prep.feature_names
    return X, names, lambda j: f"column `{names[j]}`"


class DataWarning(UserWarning):
    """Something in a data file that is legal but probably a mistake (the CLI prints it as one
    yellow line on stderr)."""


STRAY_MIN_CLASSES = 3  # a stray label: a class of 1 row among at least this many classes ...
STRAY_OTHERS_MIN = 20  # ... whose other classes all have at least this many rows


def _warn_stray_label(src: Source, y: np.ndarray, classes: list, pos: np.ndarray,
                      where: Callable[[int], str]) -> None:
    """Warn about a label value that looks like a typo (`2.5` among integers, `cat` among
    numbers): a class with a single row, among >= 3 classes whose others have >= 20 rows."""
    import warnings

    k = len(classes)
    if k < STRAY_MIN_CLASSES or y.size == 0:
        return
    counts = np.bincount(y, minlength=k)
    single = np.flatnonzero(counts == 1)
    if single.size != 1 or np.delete(counts, single).min() < STRAY_OTHERS_MIN:
        return
    c = int(single[0])
    r = int(np.flatnonzero(y == c)[0])
    warnings.warn(
        f"{src.name} has label {classes[c]!r} only once, {where(int(pos[r]))}, beside "
        f"{k - 1} classes of {int(np.delete(counts, single).min())}+ rows: a typo? It is kept "
        "as a class of its own; drop it with `--classes` if it is a mistake.",
        DataWarning, stacklevel=2,
    )


def _align(
    src: Source, X: Any, feature_names: list[str] | None, schema: Schema, *,
    declared_width: bool = False,
) -> tuple[Any, list[str] | None]:
    """Fit X to the model's feature space (see read_dataset). Sparse data that uses fewer
    features than the model is padded, unless its width was declared (``declared_width``:
    `n_features`/`--n-features`, or a sparse Parquet's `rdia.n_features`): then it is another
    feature space and an error."""
    P = int(schema.n_features)
    if schema.image_shape is not None:
        want = tuple(int(s) for s in schema.image_shape)
        if getattr(X, "ndim", 2) != 4:
            raise src.error(
                f"is tabular data with {_width(X)} features, but the model was trained on images "
                f"of shape {want}; give image data (IDX, CIFAR or Parquet with `pixels`)."
            )
        if tuple(X.shape[1:]) != want:
            raise src.error(
                f"has images of shape {tuple(X.shape[1:])}, but the model was trained on images "
                f"of shape {want}."
            )
        return X, None
    if getattr(X, "ndim", 2) == 4:
        raise src.error(
            f"has images of shape {tuple(X.shape[1:])}, but the model was trained on tabular "
            f"data with {P} features."
        )
    width = _width(X)
    if width > P:
        raise src.error(
            f"has {width} features but the model was trained on {P}; check that both files "
            "use the same features (and the same `zero_based` indexing for LIBSVM)."
        )
    if declared_width and width < P:
        raise src.error(
            f"declares {width} features (n_features) but the model was trained on {P}; give "
            f"data of the model's width (`--n-features {P}` for LIBSVM)."
        )
    if schema.sparse:
        if sp.issparse(X):
            if width < P:
                X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], P))
            return X, None
        if width != P:
            raise src.error(f"has {width} features but the model was trained on {P}.")
        return sp.csr_matrix(X), None
    # dense model
    if sp.issparse(X):
        if X.shape[0] * P >= MAX_DENSE_ELEMENTS:
            raise src.error(
                f"is sparse with {X.shape[0]} rows, and the model was trained on dense data with "
                f"{P} features: {X.shape[0] * P:,} values are too many to convert; write the "
                "data in the format the model was trained on."
            )
        dense = np.zeros((X.shape[0], P), dtype=np.float32)
        X.sum_duplicates()
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        dense[rows, X.indices] = X.data
        names = None if schema.feature_names is None else list(schema.feature_names)
        return dense, names
    if schema.feature_names is not None and feature_names is not None:
        want = list(schema.feature_names)
        if feature_names != want:
            have = set(feature_names)
            missing = [c for c in want if c not in have]
            extra = [c for c in feature_names if c not in set(want)]
            if missing or extra:
                parts = []
                if missing:
                    parts.append(f"lacks the model's columns {missing}")
                if extra:
                    parts.append(f"has columns the model never saw {extra}")
                counts = (f"has {len(feature_names)} feature columns but the model was trained "
                          f"on {len(want)}: it " if len(feature_names) != len(want) else "")
                raise src.error(
                    counts + " and ".join(parts)
                    + "; give it the same feature columns as the training data."
                )
            order = {c: j for j, c in enumerate(feature_names)}
            X = np.ascontiguousarray(X[:, [order[c] for c in want]])
            feature_names = want
        return X, feature_names
    if width != P:
        raise src.error(f"has {width} features but the model was trained on {P}.")
    if feature_names is None and schema.feature_names is not None:
        feature_names = list(schema.feature_names)
    return X, feature_names


def _width(X: Any) -> int:
    return int(np.prod(X.shape[1:]))
