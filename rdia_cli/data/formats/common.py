"""What the format readers share: options and schema, the input file (its name in messages,
gzip/bz2/xz decompression), label encoding and class mapping, numeric columns, and
:class:`Parsed`, what a format reader hands to :func:`rdia_cli.data.readers.read_dataset`.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError

# --------------------------------------------------------------------------------------------
# Options and schema
# --------------------------------------------------------------------------------------------
FORMATS = ("auto", "libsvm", "csv", "parquet", "idx", "cifar")
_DECOMPRESS_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)


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
# Files and compression
# --------------------------------------------------------------------------------------------
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


def _csv_input(src: _Source) -> Any:
    comp = _compression(src.path)
    if comp == "xz":
        return lzma.open(src.path, "rb")
    return pa.input_stream(src.path, compression=comp)


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
# Columns and pixels
# --------------------------------------------------------------------------------------------
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


def _scaled(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1], in one pass."""
    out = np.empty(pixels.shape, dtype=np.float32)
    np.divide(pixels, np.float32(255), out=out, dtype=np.float32)
    return out


# --------------------------------------------------------------------------------------------
# What a format reader returns
# --------------------------------------------------------------------------------------------
@dataclass
class Parsed:
    """One file as a format reader found it, before the common finishing (class mapping,
    filtering, finiteness, schema alignment) in :func:`rdia_cli.data.readers.read_dataset`.

    where           the row's place in messages (e.g. "on line 3"), by 0-based row.
    column          the feature's name in messages, by 0-based flat column.
    class_order     the class values in index order the file fixes (CIFAR-10, ``rdia.classes``).
    check_finite    look for NaN/infinity in X (not for uint8 images).
    declared_width  a sparse width the user or the file stated (see readers._align).
    """

    X: Any
    labels: _Labels
    where: Callable[[int], str]
    column: Callable[[int], str]
    feature_names: list[str] | None = None
    row_id: np.ndarray | None = None
    target: np.ndarray | None = None
    weight: np.ndarray | None = None
    extra: dict[str, np.ndarray] | None = None
    meta: dict[str, Any] | None = None
    class_order: list | None = None
    check_finite: bool = True
    declared_width: bool = False


def image_rows(X: np.ndarray, y, src, unit: str, *, class_order: list | None = None) -> Parsed:
    """``Parsed`` for an image format (IDX, CIFAR-10): pixels already scaled, one integer label
    per image; errors name the ``unit`` ("image", "record") by its 1-based number."""

    def where(r: int) -> str:
        return f"in {unit} {r + 1}"

    labels = _encode_labels(np.asarray(y, dtype=np.int64), src, where, "label")
    return Parsed(X, labels, where=where, column=lambda j: f"pixel {j}",
                  class_order=class_order, check_finite=False)
