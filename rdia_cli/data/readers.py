"""Reading datasets: LIBSVM/SVMlight, CSV/TSV, Parquet, IDX and CIFAR-10 binary files.

One entry point, :func:`read_dataset`, returns a :class:`~rdia_cli.data.dataset.Dataset`:

* X is float32: ``scipy.sparse.csr_matrix`` (int32 indices where they fit) for LIBSVM and sparse
  Parquet, a dense (N, P) array for CSV and dense Parquet, (N, C, H, W) in [0, 1] for images.
* y holds class *indices*; ``classes`` the class *values* in index order. Numeric labels are
  sorted by value (ints when all integral, else floats), string labels sorted as strings, unless
  the file's ``rdia.classes`` metadata or a model's :class:`Schema` fixes the order.
* ``row_id`` is the 0-based position of the row in the input (kept when ``classes`` drops rows),
  or the file's own ``row_id`` column for Parquet.

Every problem with the input is an :class:`~rdia_cli.errors.InputError` whose message names the
file, the line or row and the column, and ends with what to do.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import json
import lzma
import math
import os
import shutil
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError

FORMATS = ("auto", "libsvm", "csv", "parquet", "idx", "cifar")
META_PREFIX = "rdia."
# Sparse data read against a dense model is densified only below this many elements (N x P).
MAX_DENSE_ELEMENTS = 200_000_000
# Parquet columns with a fixed meaning (everything else in an image/sparse file goes to `extra`).
RESERVED_COLUMNS = ("row_id", "label", "target", "weight", "indices", "values", "pixels")

CIFAR_RECORD = 3073  # 1 label byte + 3 x 32 x 32 pixel bytes
IDX_IMAGES_MAGIC = b"\x00\x00\x08\x03"
IDX_LABELS_MAGIC = b"\x00\x00\x08\x01"
_DECOMPRESS_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)


# --------------------------------------------------------------------------------------------
# Options and schema
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReadOptions:
    """How to read one input file.

    format      ``auto`` (by name and magic bytes), ``libsvm``, ``csv``, ``parquet``, ``idx``,
                ``cifar``.
    labels      the IDX label file that goes with an IDX image file.
    label_col   label column of a CSV or Parquet file.
    zero_based  LIBSVM feature indexing: None detects it (one-based unless an index 0 occurs),
                True/False forces it.
    n_features  LIBSVM/sparse width P (the file may use fewer features).
    classes     keep only rows whose label value is one of these, as the user typed them (e.g.
                ``("1", "7")``); compared as numbers when the labels are numeric.
    """

    format: str = "auto"
    labels: str | None = None
    label_col: str = "label"
    zero_based: bool | None = None
    n_features: int | None = None
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InputError(
                f"Unknown input format `{self.format}`; use one of {', '.join(FORMATS)}."
            )
        if self.n_features is not None and int(self.n_features) < 1:
            raise InputError(f"`n_features` must be at least 1, got {self.n_features}.")
        if self.classes is not None:
            classes = tuple(str(c).strip() for c in self.classes)
            if not classes or any(c == "" for c in classes):
                raise InputError(
                    f"`classes` must list at least one label value, got {list(self.classes)}."
                )
            object.__setattr__(self, "classes", classes)


@dataclass(frozen=True)
class Schema:
    """The feature space and label space a model was trained on.

    n_features     flattened input width P.
    classes        class values in index order.
    feature_names  dense tabular column names (None for sparse and image data).
    image_shape    (C, H, W) for image data.
    sparse         the training data was sparse (LIBSVM or sparse Parquet).
    zero_based     LIBSVM indexing of the training file, so that a validation/test file without
                   any feature 0 is not read with a shifted indexing (None: not LIBSVM/unknown).
    """

    n_features: int
    classes: list
    feature_names: list[str] | None = None
    image_shape: tuple[int, ...] | None = None
    sparse: bool = False
    zero_based: bool | None = None

    def to_json(self) -> dict:
        return {
            "n_features": int(self.n_features),
            "classes": [_jsonable(c) for c in self.classes],
            "feature_names": None if self.feature_names is None else list(self.feature_names),
            "image_shape": None if self.image_shape is None else [int(s) for s in self.image_shape],
            "sparse": bool(self.sparse),
            "zero_based": self.zero_based,
        }

    @classmethod
    def from_json(cls, d: dict) -> Schema:
        if not isinstance(d, dict) or "n_features" not in d or "classes" not in d:
            raise InputError(
                "Malformed data schema: expected a JSON object with `n_features` and `classes`, "
                f"got {d!r:.200}."
            )
        shape = d.get("image_shape")
        names = d.get("feature_names")
        zb = d.get("zero_based")
        return cls(
            n_features=int(d["n_features"]),
            classes=list(d["classes"]),
            feature_names=None if names is None else [str(n) for n in names],
            image_shape=None if shape is None else tuple(int(s) for s in shape),
            sparse=bool(d.get("sparse", False)),
            zero_based=None if zb is None else bool(zb),
        )

    @classmethod
    def of(cls, ds: Dataset) -> Schema:
        zb = ds.meta.get("zero_based")
        return cls(
            n_features=ds.n_features,
            classes=[_jsonable(c) for c in ds.classes],
            feature_names=None if ds.feature_names is None else list(ds.feature_names),
            image_shape=ds.image_shape,
            sparse=ds.is_sparse,
            zero_based=None if zb is None else bool(zb),
        )


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


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
    """Read ``path`` into a Dataset (``-``: standard input, named `<stdin>` in messages).

    ``schema`` (the model's, for validation/test data) fixes the class order and the feature
    space: narrower sparse data is padded, dense and sparse are converted into each other, and
    anything that does not fit is an InputError. ``what`` names the file in error messages
    ("training data", "validation data", "test data").

    ``rows=(start, stop)`` keeps only the file's rows start..stop-1 (one process's shard under
    torch.distributed). Parquet files then read only the row groups that hold them; classes are
    still those of the whole file. Other formats are read whole, then cut.
    """
    path = str(path)
    if path == STDIN:
        with _spooled_stdin(_Source(STDIN, what, shown=STDIN_NAME)) as tmp:
            return read_dataset(tmp, options, schema=schema, what=what, rows=rows,
                                _shown=STDIN_NAME)
    src = _Source(path, what, shown=_shown)
    src.check_file()
    fmt = options.format if options.format != "auto" else _detect_format(src)
    if options.labels is not None and fmt != "idx":
        raise InputError(
            f"The `labels` option is only for IDX image files, but {src.name} is read as {fmt}; "
            "drop it (the labels are in the file)."
        )
    if fmt == "parquet":
        return _read_parquet(src, options, schema, rows=rows)
    reader = {
        "libsvm": _read_libsvm,
        "csv": _read_csv,
        "idx": _read_idx,
        "cifar": _read_cifar,
    }[fmt]
    ds = reader(src, options, schema)
    if rows is not None:
        start, stop = int(rows[0]), int(rows[1])
        ds = ds.subset((ds.row_id >= start) & (ds.row_id < stop))
    return ds


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
STDIN = "-"
STDIN_NAME = "<stdin>"


@contextlib.contextmanager
def _spooled_stdin(src: _Source) -> Iterator[str]:
    """Copy standard input into a temporary file (removed afterwards) and yield its path: the
    readers need to seek, and detect the format by content."""
    fd, tmp = tempfile.mkstemp(prefix=".rdia-stdin.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(sys.stdin.buffer, f)
        if os.path.getsize(tmp) == 0:
            raise src.error("is empty (0 bytes); pipe a data file into `-`.")
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class _Source:
    """A path plus the words used for it in messages (``shown``: the name given in them when
    it is not the path, e.g. `<stdin>`)."""

    def __init__(self, path: str, what: str, shown: str | None = None) -> None:
        self.path = path
        self.what = what
        self.shown = shown or path

    @property
    def name(self) -> str:
        """`path` preceded by the `what` words, e.g. "Training data `a.svm`"."""
        w = self.what[:1].upper() + self.what[1:]
        return f"{w} `{self.shown}`"

    @property
    def nameless(self) -> bool:
        """No file name to detect the format by (standard input)."""
        return self.shown != self.path

    def error(self, msg: str) -> InputError:
        return InputError(f"{self.name} {msg}")

    def check_file(self, path: str | None = None, name: str | None = None) -> None:
        path = path or self.path
        name = name or self.name
        p = Path(path)
        if not p.exists():
            raise InputError(f"{name} does not exist; check the path.")
        if p.is_dir():
            raise InputError(f"{name} is a folder, not a file; give the path of a data file.")
        if p.stat().st_size == 0:
            raise InputError(f"{name} is empty (0 bytes).")


def _compression(path: str) -> str | None:
    with open(path, "rb") as f:
        head = f.read(6)
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return None


def _open(path: str) -> BinaryIO:
    """Open for binary reading, decompressing gzip/bz2/xz (detected by magic bytes)."""
    comp = _compression(path)
    if comp == "gzip":
        return gzip.open(path, "rb")
    if comp == "bz2":
        return bz2.open(path, "rb")
    if comp == "xz":
        return lzma.open(path, "rb")
    return open(path, "rb")


def _read_all(src: _Source, path: str | None = None, name: str | None = None) -> bytes:
    path = path or src.path
    try:
        with _open(path) as f:
            return f.read()
    except _DECOMPRESS_ERRORS as e:
        raise InputError(
            f"{name or src.name} could not be decompressed ({e}); the file is truncated or corrupt."
        ) from None


def _peek(path: str, n: int) -> bytes:
    try:
        with _open(path) as f:
            return f.read(n)
    except _DECOMPRESS_ERRORS:
        return b""


def _looks_binary(head: bytes) -> bool:
    """Whether the first bytes of a file are not text: a NUL byte, or more than a tenth of
    them control characters (tabs and line ends aside) or not UTF-8 (a Latin-1 comment is
    still text)."""
    if b"\x00" in head:
        return True
    text = head.decode(errors="replace")
    odd = sum(c == "\ufffd" or (not c.isprintable() and c not in "\t\n\r\f\v") for c in text)
    return odd > 0.1 * max(len(text), 1)


def _base_name(path: str) -> str:
    name = Path(path).name.lower()
    for ext in (".gz", ".bz2", ".xz"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


LIBSVM_EXTENSIONS = (".svm", ".libsvm", ".svmlight", ".txt")


def _detect_format(src: _Source) -> str:
    """By extension first (.parquet/.pq, .csv/.tsv, .bin, .svm/.libsvm/.svmlight/.txt), then
    by content: Parquet and IDX magic bytes, a CSV header line; else LIBSVM. A name holding
    `idx` counts only for a file with none of those extensions that starts like an IDX file."""
    base = "" if src.nameless else _base_name(src.path)
    if base.endswith((".parquet", ".pq")):
        return "parquet"
    if base.endswith((".csv", ".tsv")):
        return "csv"
    if base.endswith(".bin"):
        return "cifar"
    if base.endswith(LIBSVM_EXTENSIONS):
        return "libsvm"
    head = _peek(src.path, 4)
    if head == b"PAR1":
        return "parquet"
    if head == IDX_IMAGES_MAGIC or ("idx" in base and _idx_like(head)):
        return "idx"
    if _looks_like_csv(_peek(src.path, 65536)):
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
# Labels
# --------------------------------------------------------------------------------------------
@dataclass
class _Labels:
    codes: np.ndarray  # int64 (N,): index into `values`
    values: list  # the distinct label values, unsorted: floats if numeric, else str
    numeric: bool


def _encode_labels(arr: Any, src: _Source, where: Callable[[int], str], col: str) -> _Labels:
    """Distinct values and a per-row code, hash-based (no sort over N)."""
    if isinstance(arr, np.ndarray):
        arr = pa.array(arr)
    typ = arr.type
    if pa.types.is_dictionary(typ):
        arr = pc.cast(arr, typ.value_type)
        typ = arr.type
    if arr.null_count:
        row = int(np.flatnonzero(pc.is_null(arr).to_numpy(zero_copy_only=False))[0])
        raise src.error(f"has no label in column `{col}` {where(row)}; every row needs a label.")
    if pa.types.is_boolean(typ):
        arr = pc.cast(arr, pa.int8())
    elif pa.types.is_decimal(typ):
        arr = pc.cast(arr, pa.float64())
    elif not (
        pa.types.is_integer(arr.type)
        or pa.types.is_floating(arr.type)
        or pa.types.is_string(arr.type)
        or pa.types.is_large_string(arr.type)
    ):
        try:
            arr = pc.cast(arr, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise src.error(
                f"has labels of type {typ} in column `{col}` that rdia cannot use as classes; "
                "use numbers or strings."
            ) from e
    numeric = pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)
    uniq = pc.unique(arr)
    codes = pc.index_in(arr, value_set=uniq)
    codes = np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.int64)
    if numeric:
        vals = uniq.to_numpy(zero_copy_only=False).astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(vals))
        if bad.size:
            row = int(np.flatnonzero(np.isin(codes, bad))[0])
            raise src.error(
                f"has a label that is not a finite number (`{vals[bad[0]]}`) {where(row)}."
            )
        values = [float(v) for v in vals]
    else:
        values = [str(v) for v in uniq.to_pylist()]
    return _Labels(codes=codes, values=values, numeric=numeric)


def _typed(values: list[float]) -> list:
    """Class values as ints when all integral, else floats."""
    if all(float(v).is_integer() for v in values):
        return [int(v) for v in values]
    return [float(v) for v in values]


def _as_str(v: Any) -> str:
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _as_float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _lookup(values: list, numeric: bool, classes: list) -> np.ndarray:
    """Index of each label value in ``classes`` (-1 when absent); numbers compare as numbers."""
    out = np.full(len(values), -1, dtype=np.int64)
    if numeric:
        keys = [_as_float(c) for c in classes]
        for i, v in enumerate(values):
            for k, c in enumerate(keys):
                if c == v:
                    out[i] = k
                    break
    else:
        keys = [_as_str(c) for c in classes]
        pos = {k: i for i, k in reversed(list(enumerate(keys)))}
        for i, v in enumerate(values):
            out[i] = pos.get(v, -1)
    return out


def _fmt_values(values: list, numeric: bool) -> str:
    if numeric:
        return str(_typed(sorted(values)))
    return str(sorted(values))


def _map_classes(
    src: _Source,
    labels: _Labels,
    opts: ReadOptions,
    schema: Schema | None,
    class_order: list | None,
) -> tuple[np.ndarray, list, np.ndarray | None]:
    """Return (y indices of the kept rows, classes, boolean row mask or None)."""
    values, numeric = labels.values, labels.numeric
    keep_value = np.ones(len(values), dtype=bool)
    mask = None
    if opts.classes is not None:
        if numeric:
            wanted = []
            for c in opts.classes:
                f = _as_float(c)
                if math.isnan(f):
                    raise src.error(
                        f"has numeric labels, but the `classes` value `{c}` is not a number; "
                        f"labels found: {_fmt_values(values, numeric)}."
                    )
                wanted.append(f)
        else:
            wanted = list(opts.classes)
        found = _lookup(values, numeric, wanted)
        missing = [c for k, c in enumerate(opts.classes) if k not in set(found.tolist())]
        if missing:
            raise src.error(
                f"has no rows with label {', '.join(missing)} (labels found: "
                f"{_fmt_values(values, numeric)}); check the `classes` option."
            )
        keep_value = found >= 0
        mask = keep_value[labels.codes]
        if mask.all():
            mask = None
        if class_order is not None:
            order_pos = _lookup(
                [_as_float(c) if numeric else _as_str(c) for c in class_order], numeric, wanted
            )
            class_order = [c for c, p in zip(class_order, order_pos, strict=True) if p >= 0]

    kept_values = [v for v, k in zip(values, keep_value, strict=True) if k]
    if schema is not None:
        classes = list(schema.classes)
        lut = _lookup(values, numeric, classes)
        unseen = [v for v, i, k in zip(values, lut, keep_value, strict=True) if k and i < 0]
        if unseen:
            raise src.error(
                f"has label values {_fmt_values(unseen, numeric)} the model never saw "
                f"(model classes: {classes}); pass `classes` to keep only the model's classes."
            )
    elif class_order is not None:
        classes = list(class_order)
        lut = _lookup(values, numeric, classes)
        unknown = [v for v, i, k in zip(values, lut, keep_value, strict=True) if k and i < 0]
        if unknown:
            raise src.error(
                f"has label values {_fmt_values(unknown, numeric)} that are not in its class "
                f"list {classes} (metadata `rdia.classes`); fix the file or its metadata."
            )
    else:
        classes = _typed(sorted(kept_values)) if numeric else sorted(kept_values)
        lut = _lookup(values, numeric, classes)
    codes = labels.codes if mask is None else labels.codes[mask]
    return lut[codes], classes, mask


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


def _finish(
    src: _Source,
    X: Any,
    labels: _Labels,
    opts: ReadOptions,
    schema: Schema | None,
    *,
    where: Callable[[int], str],
    column: Callable[[int], str],
    feature_names: list[str] | None = None,
    row_id: np.ndarray | None = None,
    target: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    extra: dict[str, np.ndarray] | None = None,
    meta: dict[str, Any] | None = None,
    class_order: list | None = None,
    check_finite: bool = True,
    declared_width: bool = False,
) -> Dataset:
    n = X.shape[0]
    if n == 0:
        raise src.error("has no data rows.")
    y, classes, mask = _map_classes(src, labels, opts, schema, class_order)
    if target is not None and target.shape[1] != len(classes):
        raise src.error(
            f"has soft targets over {target.shape[1]} classes but {len(classes)} classes "
            f"{classes} after reading; soft-labelled data cannot be filtered with `classes`."
        )
    pos = np.arange(n, dtype=np.int64)
    if row_id is None:
        row_id = pos
    extra = dict(extra or {})
    if mask is not None:
        X = X[mask]
        pos, row_id = pos[mask], row_id[mask]
        target = None if target is None else target[mask]
        weight = None if weight is None else weight[mask]
        extra = {k: v[mask] for k, v in extra.items()}
    bad = _first_nonfinite(X) if check_finite else None
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
        X, feature_names = _align(src, X, feature_names, schema, declared_width=declared_width)
    return Dataset(
        X=X,
        y=y,
        classes=classes,
        row_id=row_id,
        target=target,
        weight=weight,
        feature_names=feature_names,
        extra=extra,
        meta=dict(meta or {}),
        source=src.shown,
    )


class DataWarning(UserWarning):
    """Something in a data file that is legal but probably a mistake (the CLI prints it as one
    yellow line on stderr)."""


STRAY_MIN_CLASSES = 3  # a stray label: a class of 1 row among at least this many classes ...
STRAY_OTHERS_MIN = 20  # ... whose other classes all have at least this many rows


def _warn_stray_label(src: _Source, y: np.ndarray, classes: list, pos: np.ndarray,
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
    src: _Source, X: Any, feature_names: list[str] | None, schema: Schema, *,
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


# --------------------------------------------------------------------------------------------
# LIBSVM / SVMlight
# --------------------------------------------------------------------------------------------
def _libsvm_lines(src: _Source) -> Iterator[tuple[int, list[bytes]]]:
    """(1-based line number, tokens) of every data line, as sklearn's parser splits them."""
    with _open(src.path) as f:
        for lineno, line in enumerate(f, start=1):
            hash_at = line.find(b"#")
            if hash_at >= 0:
                line = line[:hash_at]
            parts = line.split()
            if parts:
                yield lineno, parts


def _libsvm_where(src: _Source) -> Callable[[int], str]:
    def where(row: int) -> str:
        for k, (lineno, _) in enumerate(_libsvm_lines(src)):
            if k == row:
                return f"on line {lineno}"
        return f"in data row {row + 1}"

    return where


def _shown(token: bytes, limit: int = 40) -> str:
    """A token of a bad line as an error message shows it, in backticks: printable text as is,
    anything else escaped, long tokens cut."""
    text = token.decode(errors="replace")
    if not text.isprintable():
        text = ascii(token)[2:-1]
    return f"`{text[:limit]}…`" if len(text) > limit else f"`{text}`"


def _libsvm_find_error(src: _Source) -> str | None:
    """Scan the file in Python (error path only) for the first line sklearn rejects."""
    try:
        for lineno, parts in _libsvm_lines(src):
            label, feats = parts[0], parts[1:]
            try:
                float(label)
            except ValueError:
                return (
                    f"has a malformed line {lineno}: expected a numeric label first, got "
                    f"{_shown(label)}"
                )
            if feats and feats[0].startswith(b"qid:"):
                try:
                    int(feats[0][4:])
                except ValueError:
                    return (
                        f"has a malformed line {lineno}: expected `qid:<integer>`, got "
                        f"{_shown(feats[0])}"
                    )
                feats = feats[1:]
            prev = -1
            for tok in feats:
                idx_s, colon, val_s = tok.partition(b":")
                if not colon:
                    return (
                        f"has a malformed line {lineno}: expected `index:value` pairs after "
                        f"the label, got {_shown(tok)}"
                    )
                try:
                    idx = int(idx_s)
                except ValueError:
                    return (
                        f"has a malformed line {lineno}: expected an integer feature index in "
                        f"{_shown(tok)}"
                    )
                try:
                    float(val_s)
                except ValueError:
                    return (f"has a malformed line {lineno}: expected a numeric value in "
                            f"{_shown(tok)}")
                if idx < 0:
                    return f"has a malformed line {lineno}: negative feature index in {_shown(tok)}"
                if idx <= prev:
                    return (
                        f"has a malformed line {lineno}: feature indices must be increasing "
                        f"and unique, got {idx} after {prev}"
                    )
                prev = idx
    except _DECOMPRESS_ERRORS as e:
        return f"could not be decompressed ({e}); the file is truncated or corrupt"
    return None


class _NotSimple(Exception):
    """The fast LIBSVM parser met something it leaves to scikit-learn's parser."""


def _libsvm_fast(src: _Source) -> tuple[sp.csr_matrix, np.ndarray] | None:
    """What ``load_svmlight_file(f, dtype=float32, zero_based=True)`` returns, parsed by Arrow's
    C++ kernels one text block at a time into growing flat arrays: no Python object per line or
    token (about 4× less CPU than scikit-learn's parser). Returns None for anything it does not
    handle (comments, qid, unsorted indices, malformed lines, binary data...): the caller then
    parses with scikit-learn, whose errors the reader turns into messages."""
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(block_size=1 << 24, column_names=["line"])
    parse = pacsv.ParseOptions(delimiter="\x1f", quote_char=False, escape_char=False,
                               newlines_in_values=False)
    convert = pacsv.ConvertOptions(column_types={"line": pa.string()})
    cap = 1 << 20
    indices = np.empty(cap, dtype=np.int32)
    data = np.empty(cap, dtype=np.float32)
    labels: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    nnz = 0
    top = -1
    try:
        with _csv_input(src) as stream, pacsv.open_csv(
            stream, read_options=read, parse_options=parse, convert_options=convert
        ) as reader:
            for batch in reader:
                lines = batch.column(0)
                if pc.any(pc.match_substring(lines, "#")).as_py() or pc.any(
                    pc.match_substring(lines, "qid:")
                ).as_py():
                    raise _NotSimple
                toks = pc.utf8_split_whitespace(lines)
                off = toks.offsets.to_numpy()
                count = np.diff(off)
                if len(count) and count.min() < 1:  # a whitespace-only line
                    raise _NotSimple
                flat = toks.values
                first = off[:-1] - off[0]
                labels.append(pc.cast(flat.take(pa.array(first)), pa.float64()).to_numpy())
                keep = np.ones(len(flat), dtype=bool)
                keep[first] = False
                kv = pc.split_pattern(flat.filter(pa.array(keep)), ":", max_splits=1)
                if len(kv) and pc.min(pc.list_value_length(kv)).as_py() != 2:
                    raise _NotSimple
                kvf = kv.values
                idx = pc.cast(kvf.take(pa.array(np.arange(0, len(kvf), 2))), pa.int64())
                val = pc.cast(kvf.take(pa.array(np.arange(1, len(kvf), 2))), pa.float32())
                idx, val = idx.to_numpy(), val.to_numpy(zero_copy_only=False)
                k = count - 1
                if idx.size:
                    if idx.min() < 0:
                        raise _NotSimple
                    step = np.diff(idx)
                    row_start = np.cumsum(k)[:-1]  # positions where a new row starts
                    inside = np.ones(step.size, dtype=bool)
                    inside[row_start[(row_start > 0) & (row_start <= step.size)] - 1] = False
                    if (step[inside] <= 0).any():  # not increasing within a row
                        raise _NotSimple
                    top = max(top, int(idx.max()))
                    if top >= 2**31 - 1:
                        raise _NotSimple
                if nnz + idx.size > indices.size:
                    size = max(2 * indices.size, nnz + idx.size)
                    indices = np.concatenate([indices[:nnz], np.empty(size - nnz, np.int32)])
                    data = np.concatenate([data[:nnz], np.empty(size - nnz, np.float32)])
                indices[nnz : nnz + idx.size] = idx
                data[nnz : nnz + idx.size] = val
                nnz += idx.size
                lengths.append(k)
    except (_NotSimple, pa.ArrowInvalid, pa.ArrowNotImplementedError, *_DECOMPRESS_ERRORS):
        return None
    if not labels:
        return None
    k = np.concatenate(lengths)
    indptr = np.zeros(len(k) + 1, dtype=np.int64)
    np.cumsum(k, out=indptr[1:])
    idx_dtype = np.int32 if max(top + 1, nnz) < 2**31 else np.int64
    X = sp.csr_matrix(
        (data[:nnz].copy(), indices[:nnz].astype(idx_dtype), indptr.astype(idx_dtype)),
        shape=(len(k), top + 1),
    )
    return X, np.concatenate(labels)


def _read_libsvm(src: _Source, opts: ReadOptions, schema: Schema | None) -> Dataset:
    from sklearn.datasets import load_svmlight_file

    fast = _libsvm_fast(src)
    try:
        if fast is not None:
            X, y = fast
        else:
            with _open(src.path) as f:
                X, y = load_svmlight_file(f, dtype=np.float32, zero_based=True)
    except _DECOMPRESS_ERRORS as e:
        raise src.error(
            f"could not be decompressed ({e}); the file is truncated or corrupt."
        ) from None
    except (ValueError, UnicodeDecodeError) as e:
        if _looks_binary(_peek(src.path, 4096)):
            raise src.error(
                "holds binary data, not LIBSVM/SVMlight text; pass `format` (`--format`) if it "
                "is another format."
            ) from None
        found = _libsvm_find_error(src)
        if found is None:
            raise src.error(f"is not a valid LIBSVM/SVMlight file: {e}.") from None
        raise src.error(f"{found}; LIBSVM lines look like `<label> <index>:<value> ...`.") from None
    n = X.shape[0]
    if n == 0:
        raise src.error("has no data rows (only blank or comment lines).")
    indptr, indices, data = X.indptr, X.indices, X.data
    del X
    where = _libsvm_where(src)

    zero_based = opts.zero_based
    if zero_based is None and schema is not None and schema.zero_based is not None:
        zero_based = schema.zero_based
    has_zero = indices.size > 0 and int(indices.min()) == 0
    if zero_based is None:
        zero_based = bool(has_zero)
    if not zero_based and has_zero:
        k = int(np.flatnonzero(indices == 0)[0])
        row = int(np.searchsorted(indptr, k, side="right") - 1)
        raise src.error(
            f"has feature index 0 {where(row)}, but is read as one-based; pass "
            "`zero_based=True` (`--zero-based`) if its indices start at 0."
        )
    offset = 0 if zero_based else 1
    width = int(indices.max()) + 1 - offset if indices.size else 0
    if opts.n_features is not None:
        if width > opts.n_features:
            k = int(np.argmax(indices))
            row = int(np.searchsorted(indptr, k, side="right") - 1)
            raise src.error(
                f"has feature index {int(indices[k])} {where(row)}, beyond `n_features` = "
                f"{opts.n_features}."
            )
        width = int(opts.n_features)
    idx_dtype = np.int32 if max(width, data.size) < 2**31 else np.int64
    new_indices = indices.astype(idx_dtype)
    del indices
    if offset:
        new_indices -= offset
    X = sp.csr_matrix((data, new_indices, indptr.astype(idx_dtype, copy=False)), shape=(n, width))
    labels = _encode_labels(y, src, where, "label")
    return _finish(
        src,
        X,
        labels,
        opts,
        schema,
        where=where,
        column=lambda j: f"feature index {j + offset}",
        meta={"zero_based": bool(zero_based)},
        declared_width=opts.n_features is not None,
    )


# --------------------------------------------------------------------------------------------
# CSV / TSV
# --------------------------------------------------------------------------------------------
def _csv_input(src: _Source) -> Any:
    comp = _compression(src.path)
    if comp == "xz":
        return lzma.open(src.path, "rb")
    return pa.input_stream(src.path, compression=comp)


def _csv_where(src: _Source) -> Callable[[int], str]:
    def where(row: int) -> str:
        # pyarrow skips empty lines; count them to give the true line number (header = line 1).
        k = -1
        with _open(src.path) as f:
            for lineno, line in enumerate(f, start=1):
                if lineno == 1 or not line.rstrip(b"\r\n"):
                    continue
                k += 1
                if k == row:
                    return f"on line {lineno}"
        return f"on line {row + 2}"

    return where


def _csv_line_of_text(src: _Source, text: str) -> int | None:
    target = text.encode().rstrip(b"\r\n")
    with _open(src.path) as f:
        for lineno, line in enumerate(f, start=1):
            if line.rstrip(b"\r\n") == target:
                return lineno
    return None


def _read_csv(src: _Source, opts: ReadOptions, schema: Schema | None) -> Dataset:
    import pyarrow.csv as pacsv

    first = _peek(src.path, 65536).split(b"\n", 1)[0]
    if _base_name(src.path).endswith(".tsv") or (b"\t" in first and b"," not in first):
        delimiter = "\t"
    else:
        delimiter = ","
    invalid: list[Any] = []

    def on_invalid(row: Any) -> str:
        invalid.append(row)
        return "skip"

    try:
        with _csv_input(src) as stream:
            table = pacsv.read_csv(
                stream,
                parse_options=pacsv.ParseOptions(
                    delimiter=delimiter, invalid_row_handler=on_invalid
                ),
                convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
            )
    except _DECOMPRESS_ERRORS as e:
        raise src.error(f"could not be read ({e}); the file is truncated or corrupt.") from None
    except pa.ArrowInvalid as e:
        if "Empty CSV" in str(e):
            raise src.error("is empty.") from None
        raise src.error(f"is not a valid CSV file: {e}.") from None
    if invalid:
        row = invalid[0]
        lineno = row.number or _csv_line_of_text(src, row.text)
        at = f"line {lineno}" if lineno else f"the line `{row.text[:80]}`"
        raise src.error(
            f"has {row.actual_columns} fields on {at}, but its header has "
            f"{row.expected_columns}; every line needs one value per column."
        )
    names = [str(c).strip() for c in table.column_names]  # `label, f1, f2` works too
    if names != list(table.column_names):
        table = table.rename_columns(names)
    if len(set(names)) != len(names):
        dups = sorted({c for c in names if names.count(c) > 1})
        raise src.error(f"has duplicate column names {dups}; give each column its own name.")
    if opts.label_col not in names:
        raise src.error(
            f"has no label column `{opts.label_col}` (columns found: {names[:20]}"
            f"{' ...' if len(names) > 20 else ''}); pass the right one with `label_col` "
            "(`--label-col`)."
        )
    where = _csv_where(src)
    feature_names = [c for c in names if c != opts.label_col]
    X = _dense_from_columns(src, table, feature_names, where)
    labels = _encode_labels(table.column(opts.label_col), src, where, opts.label_col)
    return _finish(
        src,
        X,
        labels,
        opts,
        schema,
        where=where,
        column=_named_column(feature_names),
        feature_names=feature_names,
    )


def _named_column(names: list[str]) -> Callable[[int], str]:
    return lambda j: f"column `{names[j]}`"


def _dense_from_columns(
    src: _Source, table: Any, names: list[str], where: Callable[[int], str]
) -> np.ndarray:
    """Stack numeric columns into a float32 (N, P) array; name the first bad value."""
    X = np.empty((table.num_rows, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        col = table.column(name)
        typ = col.type
        if pa.types.is_dictionary(typ):
            col = pc.cast(col, typ.value_type)
            typ = col.type
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            try:
                col = pc.cast(col, pa.float64())
            except pa.ArrowInvalid:
                values = col.to_pylist()
                converted = []
                for r, v in enumerate(values):
                    if v is None:
                        converted.append(math.nan)
                        continue
                    try:
                        converted.append(float(v))
                    except ValueError:
                        raise src.error(
                            f"has a non-numeric value `{v[:40]}` in column `{name}` {where(r)}; "
                            "every column except the label must be numeric."
                        ) from None
                col = pa.array(converted, type=pa.float64())
            typ = col.type
        if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_null(typ)):
            first = next((v for v in col.to_pylist() if v is not None), None)
            raise src.error(
                f"has a non-numeric value `{str(first)[:40]}` in column `{name}` {where(0)} "
                f"(column type {typ}); every column except the label must be numeric."
            )
        if col.null_count:
            r = int(np.flatnonzero(pc.is_null(col).to_numpy(zero_copy_only=False))[0])
            raise src.error(
                f"has a missing value in column `{name}` {where(r)} (empty, NA or NaN); remove "
                "or impute it."
            )
        X[:, j] = col.to_numpy()
    return X


# --------------------------------------------------------------------------------------------
# Parquet
# --------------------------------------------------------------------------------------------
def _list_parts(col: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    """(offsets starting at 0, flat values as numpy, null mask or None) of a list column."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_fixed_size_list(arr.type):
        size = arr.type.list_size
        values = arr.flatten().to_numpy(zero_copy_only=False)
        offsets = np.arange(len(arr) + 1, dtype=np.int64) * size
        if arr.null_count:  # flatten() drops null rows; rebuild the offsets over them
            lengths = np.where(arr.is_null().to_numpy(zero_copy_only=False), 0, size)
            offsets = np.concatenate([[0], np.cumsum(lengths)])
    else:
        offsets = arr.offsets.to_numpy()
        values = arr.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
        offsets = offsets - offsets[0]
    nulls = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else None
    return offsets, values, nulls


def _read_parquet(
    src: _Source, opts: ReadOptions, schema: Schema | None, rows: tuple[int, int] | None = None
) -> Dataset:
    """Sparse files stream their `indices`/`values` row group by row group into one CSR (see
    _parquet_sparse_rows); everything else is read as one table. ``rows``: see read_dataset."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(src.path)
        file_names = pf.schema_arrow.names
        sparse_file = "indices" in file_names and "values" in file_names
        sparse_file = sparse_file and "pixels" not in file_names
        n_file = pf.metadata.num_rows
        start, stop = (0, n_file) if rows is None else (max(0, rows[0]), min(n_file, rows[1]))
        groups = _row_groups(pf, start, stop)
        columns = [c for c in file_names if not (sparse_file and c in ("indices", "values"))]
        if rows is None and not sparse_file:
            table = pf.read()
        else:
            table = pf.read_row_groups([g for g, _, _ in groups], columns=columns)
            if groups:
                table = table.slice(start - groups[0][1], stop - start)
            table = table.replace_schema_metadata(pf.schema_arrow.metadata)
    except (pa.ArrowInvalid, OSError) as e:
        raise src.error(f"is not a valid Parquet file ({e}).") from None
    meta: dict[str, Any] = {}
    for k, v in (table.schema.metadata or {}).items():
        key = k.decode(errors="replace")
        if key.startswith(META_PREFIX):
            try:
                meta[key[len(META_PREFIX) :]] = json.loads(v)
            except ValueError:
                meta[key[len(META_PREFIX) :]] = v.decode(errors="replace")
    names = list(file_names)
    rdia_file = "format_version" in meta
    label_col = "label" if rdia_file and "label" in names else opts.label_col

    def where(row: int) -> str:
        return _parquet_where(row + start)

    if label_col not in names:
        raise src.error(
            f"has no label column `{label_col}` (columns found: {names[:20]}"
            f"{' ...' if len(names) > 20 else ''}); pass the right one with `label_col` "
            "(`--label-col`)."
        )
    n = table.num_rows
    if n == 0:
        raise src.error("has no data rows.")

    def is_list(name: str) -> bool:
        t = pf.schema_arrow.field(name).type
        return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)

    used = {label_col}
    row_id = None
    if "row_id" in names and label_col != "row_id":
        col = table.column("row_id")
        if not pa.types.is_integer(col.type) or col.null_count:
            raise src.error("has a `row_id` column that is not a complete integer column.")
        row_id = np.array(col.to_numpy(), dtype=np.int64)
        used.add("row_id")
    target = None
    if "target" in names and label_col != "target" and is_list("target"):
        offsets, values, nulls = _list_parts(table.column("target"))
        lengths = np.diff(offsets)
        if nulls is not None or (lengths != lengths[0]).any():
            r = (
                int(np.flatnonzero(lengths != lengths[0])[0])
                if nulls is None
                else int(np.flatnonzero(nulls)[0])
            )
            raise src.error(f"has a `target` of the wrong length {where(r)}.")
        target = np.array(values, dtype=np.float32).reshape(n, int(lengths[0]))
        _check_target(src, target, where)
        used.add("target")
    weight = None
    if "weight" in names and label_col != "weight":
        col = table.column("weight")
        if col.null_count:
            r = int(np.flatnonzero(pc.is_null(col).to_numpy(zero_copy_only=False))[0])
            raise src.error(f"has a missing `weight` {where(r)}.")
        weight = np.array(col.to_numpy(), dtype=np.float64)
        used.add("weight")

    feature_names = None
    if "pixels" in names:
        X, column = _parquet_images(src, table, meta, n)
        used.add("pixels")
    elif sparse_file:
        X, column = _parquet_sparse_rows(src, pf, groups, start, stop, meta, opts)
        used.update(("indices", "values"))
    else:
        X, column = None, None
    if X is None:  # dense tabular
        if isinstance(meta.get("feature_names"), list):
            feature_names = [str(c) for c in meta["feature_names"]]
            absent = [c for c in feature_names if c not in names]
            if absent:
                raise src.error(
                    f"lacks the feature columns {absent[:10]} listed in its metadata "
                    "`rdia.feature_names`."
                )
        else:
            feature_names = [c for c in names if c not in used]
        used.update(feature_names)
        X = _dense_from_columns(src, table, feature_names, where)
        column = _named_column(feature_names)

    extra = {}
    for name in names:
        if name in used:
            continue
        extra[name] = _extra_column(table.column(name))
    labels = _encode_labels(table.column(label_col), src, where, label_col)
    class_order = meta.get("classes") if isinstance(meta.get("classes"), list) else None
    if rows is not None and schema is None and class_order is None and (start, stop) != (0, n_file):
        # a shard: the classes are those of the whole file
        every = _encode_labels(pf.read(columns=[label_col]).column(label_col), src,
                               _parquet_where, label_col)
        class_order = _map_classes(src, every, opts, None, None)[1]
    return _finish(
        src,
        X,
        labels,
        opts,
        schema,
        where=where,
        column=column,
        feature_names=feature_names,
        row_id=row_id,
        target=target,
        weight=weight,
        extra=extra,
        meta=meta,
        class_order=class_order,
        declared_width=sparse_file and (opts.n_features is not None
                                        or meta.get("n_features") is not None),
    )


TARGET_SUM_SLACK = 1e-3


def _check_target(src: _Source, target: np.ndarray, where: Callable[[int], str]) -> None:
    """Soft targets are (sub-)probabilities: finite, each in [0, 1], each row summing to more
    than 0 and at most 1 + 1e-3 (the paper's Eq. 12 targets sum to less than 1)."""
    if target.size == 0:
        return
    t = target.astype(np.float64)
    finite = np.isfinite(t).all(axis=1)
    in_range = finite & ((t >= 0) & (t <= 1)).all(axis=1)
    sums = np.where(np.isfinite(t), t, 0.0).sum(axis=1)
    good = in_range & (sums > 0) & (sums <= 1 + TARGET_SUM_SLACK)
    if good.all():
        return
    r = int(np.flatnonzero(~good)[0])
    shown = "[" + ", ".join(f"{v:.4g}" for v in t[r, :8]) + (", ...]" if t.shape[1] > 8 else "]")
    if not finite[r]:
        why = "a non-finite value (NaN or infinity)"
    elif not in_range[r]:
        why = "a value outside [0, 1]"
    else:
        why = f"values summing to {sums[r]:.6g}, not to a number in (0, 1]"
    raise src.error(f"has {why} in column `target` {where(r)}: {shown}; soft targets are "
                    "probabilities over the classes.")


def _parquet_where(row: int) -> str:
    return f"in row {row + 1}"


def _extra_column(col: Any) -> np.ndarray:
    t = col.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        offsets, values, nulls = _list_parts(col)
        lengths = np.diff(offsets)
        if nulls is None and len(lengths) and (lengths == lengths[0]).all():
            return np.array(values).reshape(len(lengths), int(lengths[0]))
        out = np.empty(len(lengths), dtype=object)
        for i in range(len(lengths)):
            out[i] = values[offsets[i] : offsets[i + 1]]
        return out
    if pa.types.is_dictionary(t):
        col = pc.cast(col, t.value_type)
    return np.array(col.to_numpy(zero_copy_only=False))


def _parquet_images(src: _Source, table: Any, meta: dict, n: int) -> tuple[np.ndarray, Callable]:
    shape = meta.get("image_shape")
    if not isinstance(shape, list) or not shape:
        raise src.error(
            "has a `pixels` column but no `rdia.image_shape` metadata (e.g. [1, 28, 28]); add "
            "it so the images can be rebuilt."
        )
    shape = tuple(int(s) for s in shape)
    size = int(np.prod(shape))
    offsets, values, nulls = _list_parts(table.column("pixels"))
    lengths = np.diff(offsets)
    bad = np.flatnonzero(lengths != size)
    if nulls is not None or bad.size:
        r = int(bad[0]) if bad.size else int(np.flatnonzero(nulls)[0])
        raise src.error(
            f"has {int(lengths[r])} pixels in row {r + 1}, but `rdia.image_shape` {list(shape)} "
            f"needs {size}."
        )
    X = np.array(values, dtype=np.float32).reshape((n, *shape))

    def column(j: int) -> str:
        return f"pixel {tuple(int(i) for i in np.unravel_index(j, shape))}"

    return X, column


def _row_groups(pf: Any, start: int, stop: int) -> list[tuple[int, int, int]]:
    """(row group, its first row, its row count) of the groups that hold rows start..stop-1."""
    out, at = [], 0
    for g in range(pf.metadata.num_row_groups):
        k = pf.metadata.row_group(g).num_rows
        if at < stop and at + k > start:
            out.append((g, at, k))
        at += k
    return out


def _parquet_sparse_rows(
    src: _Source,
    pf: Any,
    groups: list[tuple[int, int, int]],
    start: int,
    stop: int,
    meta: dict,
    opts: ReadOptions,
) -> tuple[sp.csr_matrix, Callable]:
    """CSR (int32 indices where they fit, float32 values) of rows start..stop-1, filled one row
    group at a time into arrays sized from the file's metadata: no whole-file Arrow table, no
    concatenation copy, no Python object per row."""
    n = stop - start
    stated = opts.n_features if opts.n_features is not None else meta.get("n_features")
    stated = None if stated is None else int(stated)
    schema = pf.metadata.schema
    leaf = next((j for j in range(len(schema)) if schema.column(j).path.split(".")[0]
                 == "indices"), None)
    cap = 0 if leaf is None else sum(
        pf.metadata.row_group(g).column(leaf).num_values for g, _, _ in groups
    )
    indices = np.empty(cap, dtype=np.int32)
    data = np.empty(cap, dtype=np.float32)
    indptr = np.zeros(n + 1, dtype=np.int64)
    at_row = at_nz = 0
    top = -1
    for g, g0, k in groups:
        t = pf.read_row_group(g, columns=["indices", "values"])
        a, b = max(start, g0) - g0, min(stop, g0 + k) - g0
        if (a, b) != (0, k):
            t = t.slice(a, b - a)
        i_off, idx, _ = _list_parts(t.column("indices"))
        v_off, val, _ = _list_parts(t.column("values"))
        del t
        first = g0 + a  # file row of this chunk's first row
        if i_off.shape != v_off.shape or (i_off != v_off).any():
            r = int(np.flatnonzero(np.diff(i_off) != np.diff(v_off))[0])
            raise src.error(
                f"has {int(np.diff(i_off)[r])} indices but {int(np.diff(v_off)[r])} values in "
                f"row {first + r + 1}; the `indices` and `values` lists must have equal lengths."
            )
        m = int(idx.size)
        if m:
            lo, hi = int(idx.min()), int(idx.max())
            if lo < 0:
                kk = int(np.flatnonzero(idx < 0)[0])
                r = int(np.searchsorted(i_off, kk, side="right") - 1)
                raise src.error(f"has a negative feature index in row {first + r + 1}.")
            if stated is not None and hi >= stated:
                kk = int(np.argmax(idx))
                r = int(np.searchsorted(i_off, kk, side="right") - 1)
                raise src.error(
                    f"has feature index {hi} in row {first + r + 1}, beyond n_features = "
                    f"{stated}."
                )
            top = max(top, hi)
            if hi >= 2**31 - 1 and indices.dtype != np.int64:
                indices = indices.astype(np.int64)
        if at_nz + m > indices.size:  # metadata missing or short: grow
            size = max(2 * indices.size, at_nz + m)
            indices = np.concatenate([indices[:at_nz], np.empty(size - at_nz, indices.dtype)])
            data = np.concatenate([data[:at_nz], np.empty(size - at_nz, data.dtype)])
        indices[at_nz : at_nz + m] = idx
        data[at_nz : at_nz + m] = val
        rows_here = len(i_off) - 1
        indptr[at_row + 1 : at_row + 1 + rows_here] = i_off[1:] + at_nz
        at_row += rows_here
        at_nz += m
    if indices.size > at_nz + (at_nz >> 6):  # much slack (e.g. many empty rows): trim
        indices, data = indices[:at_nz].copy(), data[:at_nz].copy()
    else:
        indices, data = indices[:at_nz], data[:at_nz]
    width = stated if stated is not None else top + 1
    idx_dtype = np.int32 if max(width, at_nz) < 2**31 else np.int64
    X = sp.csr_matrix(
        (data, indices.astype(idx_dtype, copy=False), indptr.astype(idx_dtype, copy=False)),
        shape=(n, width),
    )
    return X, lambda j: f"feature index {j}"


# --------------------------------------------------------------------------------------------
# IDX (MNIST) and CIFAR-10 binary
# --------------------------------------------------------------------------------------------
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _parse_idx(data: bytes, name: str) -> np.ndarray:
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in _IDX_DTYPES:
        raise InputError(f"{name} is not an IDX file (bad magic number {data[:4].hex()}).")
    ndim = data[3]
    head = 4 + 4 * ndim
    if ndim == 0 or len(data) < head:
        raise InputError(f"{name} has a truncated IDX header.")
    dims = struct.unpack(f">{ndim}I", data[4:head])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    count = int(np.prod(dims, dtype=np.int64))
    if len(data) - head != count * dtype.itemsize:
        raise InputError(
            f"{name} holds {len(data) - head} data bytes, but its header {list(dims)} needs "
            f"{count * dtype.itemsize}; the file is truncated or corrupt."
        )
    return np.frombuffer(data, dtype=dtype, count=count, offset=head).reshape(dims)


def _scaled(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1], in one pass."""
    out = np.empty(pixels.shape, dtype=np.float32)
    np.divide(pixels, np.float32(255), out=out, dtype=np.float32)
    return out


def _read_idx(src: _Source, opts: ReadOptions, schema: Schema | None) -> Dataset:
    data = _read_all(src)
    if not data:
        raise src.error("is empty (after decompression).")
    if data[:4] == IDX_LABELS_MAGIC:
        raise src.error(
            "is an IDX label file; give the IDX image file as the data and this one as "
            "`labels` (`--labels`)."
        )
    if data[:4] != IDX_IMAGES_MAGIC:
        raise src.error(
            f"is not an IDX image file (magic number {data[:4].hex()}, expected 00000803 for "
            "uint8 images); pass `format` (`--format`) if it is another format."
        )
    images = _parse_idx(data, src.name)
    del data
    if opts.labels is None:
        raise src.error(
            "is an IDX image file, which holds no labels; pass the matching IDX label file "
            "with `labels` (`--labels`), e.g. train-labels-idx1-ubyte.gz."
        )
    lname = f"Label file `{opts.labels}` (for {src.what} `{src.shown}`)"
    src.check_file(opts.labels, lname)
    ldata = _read_all(src, opts.labels, lname)
    if ldata[:4] != IDX_LABELS_MAGIC:
        raise InputError(
            f"{lname} is not an IDX label file (magic number {ldata[:4].hex()}, expected 00000801)."
        )
    y = _parse_idx(ldata, lname)
    if len(y) != len(images):
        raise InputError(
            f"{lname} has {len(y)} labels, but the image file has {len(images)} images; give "
            "the label file that belongs to the images."
        )
    X = _scaled(images[:, None, :, :])

    def where(r: int) -> str:
        return f"in image {r + 1}"

    labels = _encode_labels(np.asarray(y, dtype=np.int64), src, where, "label")
    return _finish(
        src,
        X,
        labels,
        opts,
        schema,
        where=where,
        column=lambda j: f"pixel {j}",
        check_finite=False,
    )


def _read_cifar(src: _Source, opts: ReadOptions, schema: Schema | None) -> Dataset:
    data = _read_all(src)
    if len(data) == 0:
        raise src.error("is empty.")
    if len(data) % CIFAR_RECORD:
        raise src.error(
            f"holds {len(data)} bytes, not a whole number of {CIFAR_RECORD}-byte CIFAR-10 "
            "records (1 label byte + 3072 pixel bytes); CIFAR-100 files are not supported."
        )
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    y = rec[:, 0]
    if (y > 9).any():
        r = int(np.flatnonzero(y > 9)[0])
        raise src.error(
            f"has label byte {int(y[r])} in record {r + 1}, not a CIFAR-10 class 0-9; "
            "CIFAR-100 files are not supported."
        )
    X = _scaled(rec[:, 1:].reshape(-1, 3, 32, 32))
    del rec, data

    def where(r: int) -> str:
        return f"in record {r + 1}"

    labels = _encode_labels(np.asarray(y, dtype=np.int64), src, where, "label")
    return _finish(
        src,
        X,
        labels,
        opts,
        schema,
        where=where,
        column=lambda j: f"pixel {j}",
        class_order=list(range(10)),
        check_finite=False,
    )
