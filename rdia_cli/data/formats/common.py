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

from rdia_cli.artifacts.arrow import arrow_of, numpy_of  # noqa: F401 - the readers' too
from rdia_cli.artifacts.inputs import is_stream
from rdia_cli.artifacts.metadata import jsonable
from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError

# --------------------------------------------------------------------------------------------
# Options and schema
# --------------------------------------------------------------------------------------------
FORMATS = ("auto", "libsvm", "csv", "parquet", "idx", "cifar")
DECOMPRESS_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)


# The widest feature space rdia reads (int32 sparse indices), and the widest a sparse file may
# be without declaring it (`n_features`): max(UNDECLARED_WIDTH, 100 x its stored values).
MAX_FEATURES = 2**31 - 1
UNDECLARED_WIDTH = 1_000_000

# Features are stored as float32: a finite value from this on (float32's largest, 3.4028235e38,
# plus half its last step) rounds to infinity.
FLOAT32_OVERFLOW = 2.0**128 * (1 - 2.0**-25)


def first_beyond_float32(values: np.ndarray) -> int | None:
    """Position of the first finite value too large for float32 (casting it would give ±inf and
    numpy's overflow warning), or None."""
    values = np.asarray(values)
    if values.dtype.kind != "f" or values.dtype.itemsize <= 4:
        return None  # float32 and narrower, and integers (int64 stays below 9.3e18), all fit
    big = np.abs(values) >= FLOAT32_OVERFLOW  # ±inf too: a value the file wrote so
    if not big.any():
        return None
    big &= np.isfinite(values)
    return int(np.flatnonzero(big)[0]) if big.any() else None


def beyond_float32(value: Any, at: str, column: str) -> str:
    """The end of the message for a value :func:`first_beyond_float32` found: "has the value
    1e+39 on line 2, column `b`, beyond ..." (``at``: "on line 2", ``column``: "column `b`")."""
    return (f"has the value {value} {at}, {column}, beyond the float32 range (±3.4e38) rdia "
            "stores features in; rescale that feature (e.g. other units) or drop it.")


@dataclass(frozen=True)
class ReadOptions:
    """How to read one input file.

    format       ``auto`` (by name and magic bytes), ``libsvm``, ``csv``, ``parquet``, ``idx``,
                 ``cifar``.
    labels       the IDX label file that goes with an IDX image file.
    label_col    label column of a CSV or Parquet file; None: the one the model remembers
                 (``Schema.read_options``) when reading with a model, else ``label``. Read it
                 through :attr:`label_column`.
    zero_based   LIBSVM feature indexing: None detects it (one-based unless an index 0 occurs),
                 True/False forces it.
    n_features   LIBSVM/sparse width P (the file may use fewer features).
    classes      keep only rows whose label value is one of these, as the user typed them (e.g.
                 ``("1", "7")``); compared as numbers when the labels are numeric.
    id_col       a CSV/Parquet column of row IDs (e.g. `C00546`): never a feature, kept in the
                 Dataset's ``table``; must be complete and unique.
    ignore_cols  CSV/Parquet columns that are kept in the Dataset's ``table`` but are never
                 features.
    categorical  CSV/Parquet columns to treat as categories even if they look numeric.

    With a model (``read_dataset(..., schema=...)``), ``label_col``, ``id_col``,
    ``ignore_cols`` and ``categorical`` left unset are taken from ``Schema.read_options`` (see
    :meth:`inherit`): what was given at `train` need not be repeated.
    """

    format: str = "auto"
    labels: str | None = None
    label_col: str | None = None
    zero_based: bool | None = None
    n_features: int | None = None
    classes: tuple[str, ...] | None = None
    id_col: str | None = None
    ignore_cols: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InputError(
                f"Unknown input format `{self.format}`; use one of {', '.join(FORMATS)}."
            )
        if self.n_features is not None and not 1 <= int(self.n_features) <= MAX_FEATURES:
            raise InputError(f"`n_features` must be 1 to {MAX_FEATURES:,}, got "
                             f"{self.n_features}.")
        if self.classes is not None:
            classes = tuple(str(c).strip() for c in self.classes)
            if not classes or any(c == "" for c in classes):
                raise InputError(
                    f"`classes` must list at least one label value, got {list(self.classes)}."
                )
            object.__setattr__(self, "classes", classes)
        for name in ("label_col", "id_col"):
            v = getattr(self, name)
            if v is not None:
                if not isinstance(v, str) or not v.strip():
                    raise InputError(f"`{name}` must be a column name, got {v!r}.")
                object.__setattr__(self, name, v.strip())
        for name in ("ignore_cols", "categorical"):
            v = getattr(self, name)
            if isinstance(v, str):
                v = (v,)
            cols = tuple(str(c).strip() for c in (v or ()))
            if any(c == "" for c in cols):
                raise InputError(f"`{name}` must list column names, got {list(v)}.")
            dups = sorted({c for c in cols if cols.count(c) > 1})
            if dups:
                raise InputError(f"`{name}` names the column `{dups[0]}` twice; give it once.")
            object.__setattr__(self, name, cols)
        label, ident = self.label_column, self.id_col
        if ident is not None and ident == label:
            raise InputError(f"`id_col` and `label_col` are the same column `{ident}`; the "
                             "label cannot be the row ID.")
        for name in ("ignore_cols", "categorical"):
            cols = getattr(self, name)
            for role, col in (("label_col", label), ("id_col", ident)):
                if col is not None and col in cols:
                    raise InputError(f"`{name}` and `{role}` both name the column `{col}`; "
                                     f"drop it from `{name}`.")
        both = [c for c in self.categorical if c in self.ignore_cols]
        if both:
            raise InputError(f"`categorical` and `ignore_cols` both name the column `{both[0]}`; "
                             "an ignored column is not a feature.")

    @property
    def label_column(self) -> str:
        """The effective label column: ``label_col``, else ``label``."""
        return self.label_col or "label"

    @property
    def table_options(self) -> dict:
        """The options that say what a table's columns are, as JSON (what a model remembers in
        ``Schema.read_options``)."""
        return {"label_col": self.label_column, "id_col": self.id_col,
                "ignore_cols": list(self.ignore_cols), "categorical": list(self.categorical)}

    @property
    def uses_table_roles(self) -> bool:
        """An ID column, ignored columns or forced categorical columns were given."""
        return bool(self.id_col or self.ignore_cols or self.categorical)

    def inherit(self, remembered: dict | None) -> ReadOptions:
        """These options with every unset table option (``label_col``/``id_col`` None, empty
        ``ignore_cols``/``categorical``) taken from ``remembered`` (``Schema.read_options``)."""
        if not remembered:
            return self
        from dataclasses import replace

        change: dict[str, Any] = {}
        if self.label_col is None and remembered.get("label_col"):
            change["label_col"] = str(remembered["label_col"])
        if self.id_col is None and remembered.get("id_col"):
            change["id_col"] = str(remembered["id_col"])
        for name in ("ignore_cols", "categorical"):
            if not getattr(self, name) and remembered.get(name):
                change[name] = tuple(str(c) for c in remembered[name])
        return replace(self, **change) if change else self


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
    prep           the fitted table preprocessing (``TablePrep.to_json()``) that made the
                   features from a table with strings or missing cells; validation/test tables
                   are read through it. None: the features were the table's columns as read.
    read_options   the table options of the training file (``ReadOptions.table_options``:
                   label_col, id_col, ignore_cols, categorical) when it used an ID, ignored or
                   categorical columns or a prep; unset options of a later read default to
                   them. None otherwise.

    ``to_json`` leaves ``prep`` and ``read_options`` out when None, so the schema of data
    rdia read before tables with strings were accepted is byte-for-byte what it was.
    """

    n_features: int
    classes: list
    feature_names: list[str] | None = None
    image_shape: tuple[int, ...] | None = None
    sparse: bool = False
    zero_based: bool | None = None
    prep: dict | None = None
    read_options: dict | None = None

    def to_json(self) -> dict:
        out = {
            "n_features": int(self.n_features),
            "classes": [jsonable(c) for c in self.classes],
            "feature_names": None if self.feature_names is None else list(self.feature_names),
            "image_shape": None if self.image_shape is None else [int(s) for s in self.image_shape],
            "sparse": bool(self.sparse),
            "zero_based": self.zero_based,
        }
        if self.prep is not None:
            out["prep"] = self.prep
        if self.read_options is not None:
            out["read_options"] = self.read_options
        return out

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
            prep=_dict_or_none(d, "prep"),
            read_options=_dict_or_none(d, "read_options"),
        )

    @classmethod
    def of(cls, ds: Dataset) -> Schema:
        """The schema of training data: ``prep`` from ``ds.meta["prep"]`` and ``read_options``
        from ``ds.meta["table_options"]`` (both set by the readers, or kept from an rdia file's
        metadata)."""
        zb = ds.meta.get("zero_based")
        return cls(
            n_features=ds.n_features,
            classes=[jsonable(c) for c in ds.classes],
            feature_names=None if ds.feature_names is None else list(ds.feature_names),
            image_shape=ds.image_shape,
            sparse=ds.is_sparse,
            zero_based=None if zb is None else bool(zb),
            prep=_dict_or_none(ds.meta, "prep"),
            read_options=_dict_or_none(ds.meta, "table_options"),
        )


def _dict_or_none(d: dict, key: str) -> dict | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise InputError(f"Malformed data schema: `{key}` must be a JSON object, got {v!r:.200}.")
    return v


# --------------------------------------------------------------------------------------------
# Files and compression
# --------------------------------------------------------------------------------------------
class Source:
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
        if p.stat().st_size == 0 and not is_stream(p):  # a pipe's size is 0 until read
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


def open_input(path: str) -> BinaryIO:
    """Open for binary reading, decompressing gzip/bz2/xz (detected by magic bytes)."""
    comp = _compression(path)
    if comp == "gzip":
        return gzip.open(path, "rb")
    if comp == "bz2":
        return bz2.open(path, "rb")
    if comp == "xz":
        return lzma.open(path, "rb")
    return open(path, "rb")


def read_all(src: Source, path: str | None = None, name: str | None = None) -> bytes:
    path = path or src.path
    try:
        if is_stream(path):  # a pipe (an IDX label file `<(zcat ...)`) is read once
            with open(path, "rb") as f:
                raw = f.read()
            unpack = {b"\x1f\x8b": gzip.decompress, b"BZ": bz2.decompress,
                      b"\xfd7": lzma.decompress}.get(raw[:2])
            return unpack(raw) if unpack else raw
        with open_input(path) as f:
            return f.read()
    except DECOMPRESS_ERRORS as e:
        raise InputError(
            f"{name or src.name} could not be decompressed ({e}); the file is truncated or corrupt."
        ) from None


def peek(path: str, n: int) -> bytes:
    try:
        with open_input(path) as f:
            return f.read(n)
    except DECOMPRESS_ERRORS:
        return b""


def looks_binary(head: bytes) -> bool:
    """Whether the first bytes of a file are not text: a NUL byte, or more than a tenth of
    them control characters (tabs and line ends aside) or not UTF-8 (a Latin-1 comment is
    still text)."""
    if b"\x00" in head:
        return True
    text = head.decode(errors="replace")
    odd = sum(c == "\ufffd" or (not c.isprintable() and c not in "\t\n\r\f\v") for c in text)
    return odd > 0.1 * max(len(text), 1)


def refuse_compressed_binary(src: Source, kind: str) -> None:
    """A gzip/bz2/xz file whose first decompressed bytes are binary (4 MB of gzipped zeros
    grew to 6 GB in the text parser before failing) is refused before the rest is read."""
    if _compression(src.path) is not None and looks_binary(peek(src.path, 4096)):
        raise src.error(
            f"holds binary data once decompressed, not {kind} text; pass `format` (`--format`) "
            "if it is another format."
        )


def base_name(path: str) -> str:
    name = Path(path).name.lower()
    for ext in (".gz", ".bz2", ".xz"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def csv_input(src: Source) -> Any:
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


def encode_labels(arr: Any, src: Source, where: Callable[[int], str], col: str) -> _Labels:
    """Distinct values and a per-row code, hash-based (no sort over N)."""
    if isinstance(arr, np.ndarray):
        arr = arrow_of(arr)  # not pa.array: it imports pandas
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
    codes = np.asarray(numpy_of(codes), dtype=np.int64)
    if numeric:
        vals = numpy_of(uniq).astype(np.float64)
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


def map_classes(
    src: Source,
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
        seen: dict = {}
        for c, w in zip(opts.classes, wanted, strict=True):
            if w in seen:
                raise InputError(f"`classes` names label {seen[w]}"
                                 + (f" twice (as {c})" if c != seen[w] else " twice")
                                 + "; give each class once, e.g. `1,7`.")
            seen[w] = c
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
def named_column(names: list[str]) -> Callable[[int], str]:
    return lambda j: f"column `{names[j]}`"


def dense_from_columns(
    src: Source, table: Any, names: list[str], where: Callable[[int], str]
) -> np.ndarray:
    """Stack numeric columns into a float32 (N, P) array; name the first bad value."""
    X = np.empty((table.num_rows, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        col = table.column(name)
        typ = col.type
        if pa.types.is_dictionary(typ):
            col = pc.cast(col, typ.value_type)
            typ = col.type
        if pa.types.is_decimal(typ):  # decimal128/256 are numbers: read them as float64
            col = pc.cast(col, pa.float64())
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
        values = col.to_numpy()
        r = first_beyond_float32(values)
        if r is not None:
            raise src.error(beyond_float32(f"{values[r]:g}", where(r), f"column `{name}`"))
        X[:, j] = values
    return X


def scale_pixels(pixels: np.ndarray) -> np.ndarray:
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
    table           the input's own columns (``pyarrow.Table``, all of them, in file order,
                    types as read), row-aligned with X; None for LIBSVM, images, sparse files.
    prep, kinds     X is None: make it in ``_finish`` from ``table``'s rows that are kept, with
                    ``prep`` (a TablePrep to apply) or else a TablePrep fitted on them with the
                    feature columns' ``kinds`` (see :func:`user_table`).
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
    table: Any = None
    prep: Any = None
    kinds: dict[str, str] | None = None


# Cells read as missing in CSV/TSV files: pandas' default set.
NULL_VALUES = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
               "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")


def user_table(
    src: Source,
    table: Any,
    opts: ReadOptions,
    schema: Schema | None,
    where: Callable[[int], str],
    *,
    columns: dict,
    used: tuple[str, ...] = (),
    prep: Any = None,
) -> Parsed:
    """A table the user wrote (CSV, TSV, a Parquet file not written by rdia, a DataFrame): its
    label, ID, ignored and feature columns, and how X is made.

    X is read directly (the fast path: float32 columns as read, exactly as before tables with
    strings were accepted) when every feature column is numeric and complete and there is no
    prep to apply. Otherwise X is left to ``_finish``: with the ``prep`` given (a TablePrep or
    its JSON), else the model's (``schema.prep``), else a TablePrep fitted on the kept rows.
    ``used``: columns a reader already gave a role (Parquet ``row_id``, ``target``, ``weight``);
    they become the Dataset's own fields and are left out of the carried ``table``.
    ``columns``: the format's part of ``meta["columns"]`` (``format``, ``delimiter``).
    """
    from rdia_cli.data import tables

    table = table.replace_schema_metadata(None)  # the columns, not the writer's notes
    names = list(table.column_names)
    label = opts.label_column
    if label not in names:
        raise src.error(
            f"has no label column `{label}` (columns found: {names[:20]}"
            f"{' ...' if len(names) > 20 else ''}); pass the right one with `label_col`."
        )
    training = schema is None
    if training:  # a model's remembered ID/ignored columns may be absent from a later file
        for field, given in (("id_col", [opts.id_col] if opts.id_col else []),
                             ("ignore_cols", opts.ignore_cols), ("categorical", opts.categorical)):
            absent = [c for c in given if c not in names]
            if absent:
                raise src.error(
                    f"has no column `{absent[0]}` (given in `{field}`; columns found: "
                    f"{names[:20]}{' ...' if len(names) > 20 else ''}); check the name."
                )
    id_col = opts.id_col if opts.id_col in names else None
    ignore = [c for c in opts.ignore_cols if c in names]
    clash = [c for c in (id_col, *ignore) if c in used]
    if clash:
        raise src.error(f"uses its column `{clash[0]}` for rdia's own `{clash[0]}`; it cannot "
                        "also be the ID or an ignored column.")
    if id_col is not None:
        tables.check_ids(table.column(id_col), id_col, name=src.name, where=where)
    roles = {label, *used, *ignore} | ({id_col} if id_col else set())
    features = [c for c in names if c not in roles]
    labels = encode_labels(table.column(label), src, where, label)
    meta: dict[str, Any] = {
        "columns": {"label": label, "id": id_col, "ignore": ignore, **columns},
    }
    if opts.uses_table_roles:
        meta["table_options"] = opts.table_options
    prep = prep if prep is not None else (None if schema is None else schema.prep)
    if isinstance(prep, dict):
        prep = tables.TablePrep.from_json(prep)
    kinds = None
    X = None
    if prep is not None:
        prep.check_columns(names, name=src.name)
        feature_names = prep.feature_names
        meta["table_options"] = opts.table_options
    elif schema is not None:  # a model trained on numbers as read: read them so
        X = dense_from_columns(src, table, features, where)
        feature_names = features
    else:
        kinds = tables.column_kinds(table, features, categorical=opts.categorical,
                                    name=src.name, where=where)
        if tables.needs_prep(table, kinds):
            feature_names = None
            meta["table_options"] = opts.table_options
        else:
            kinds = None
            X = dense_from_columns(src, table, features, where)
            feature_names = features
    parsed = Parsed(
        X,
        labels,
        where=where,
        column=named_column(features),
        feature_names=feature_names,
        meta=meta,
        table=table.drop_columns(list(used)) if used else table,
        prep=prep,
        kinds=kinds,
    )
    return parsed


def image_rows(X: np.ndarray, y, src, unit: str, *, class_order: list | None = None) -> Parsed:
    """``Parsed`` for an image format (IDX, CIFAR-10): pixels already scaled, one integer label
    per image; errors name the ``unit`` ("image", "record") by its 1-based number."""

    def where(r: int) -> str:
        return f"in {unit} {r + 1}"

    labels = encode_labels(np.asarray(y, dtype=np.int64), src, where, "label")
    return Parsed(X, labels, where=where, column=lambda j: f"pixel {j}",
                  class_order=class_order, check_finite=False)
