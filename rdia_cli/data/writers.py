"""Writing a Dataset: the format the output's name ends in (DESIGN.md section 3).

``.parquet``/``.pq``   Parquet, with rdia's ``rdia.*`` key-value metadata (rdia reads it back).
``.csv``/``.tsv``      text with a header line; ``.gz``, ``.bz2`` or ``.xz`` after it compresses.
``.svm``/``.libsvm``   LIBSVM text (``rdia_cli.data.formats.libsvm_out``); compressed likewise.

Any other name is an InputError: rdia never writes one format under another's name. Standard
output (``-``) and names without an extension that are no regular file (``/dev/stdout``, a FIFO)
get Parquet, unless ``format`` says otherwise.

**A user's table** (``ds.table``: the input's own columns, ``ds.meta["columns"]`` naming their
roles) comes back out as it came: every column, same names, order and types, the ID, strings and
blanks untouched, the label column under its own name holding the new label (``ds.y``'s class
values). rdia's columns follow it: ``original_label``, ``target`` (Parquet: list<float32>;
CSV/TSV: one column ``target_<class value>`` per class), ``target_raw`` likewise, ``weight``,
``relabeled``, ``phi``, ``part``, then the other ``extra`` columns; an extra named like a table
column that is not one of rdia's own columns (:data:`RDIA_COLUMNS`) came from the table and is
not written twice. ``row_id`` comes last: always in Parquet (rdia joins on it), in CSV/TSV only
when the table has no ID column (``meta["columns"]["id"]``). A code that read the input with
pandas reads the output unchanged (rdia's columns trail). One of rdia's columns whose name the
table already uses gets the suffix ``_rdia`` (``phi_rdia``); Parquet records that in
``rdia.renamed`` (``{"phi": "phi_rdia"}``), the label's column in ``rdia.label_column`` and the
names of the columns rdia added after the table in ``rdia.added_columns``.

**rdia's own layout** (no table: LIBSVM, sparse Parquet, images, data built in memory). Parquet:
``row_id`` int64, ``label`` (class values), the features, ``target`` list<float32>, ``weight``
float64, the ``extra`` columns. Features are one float column per feature for dense data (its
``feature_names``, else ``f0..``); for sparse data of at most :data:`DENSE_COLUMNS_MAX` features
(and at most ``readers.MAX_DENSE_ELEMENTS`` values), also one column per feature, named by the
input's index base (1-based LIBSVM: ``x1..xP``; 0-based: ``x0..x{P-1}``), with
``rdia.sparse: true`` and ``rdia.index_base`` in the metadata so that rdia reads it back as sparse;
wider sparse data keeps ``indices`` list<int32> + ``values`` list<float32> (0-based indices,
``rdia.index_base`` says what the input used) and images ``pixels`` list<float32>. CSV/TSV:
``label``, the feature columns (images: ``pixel0..``, C order), the rest as for a table,
``row_id`` last; wide sparse data or wide images are an InputError (write Parquet or LIBSVM).

Parquet metadata, each value JSON: ``rdia.format_version``, ``rdia.classes``, ``rdia.n_features``,
``rdia.fingerprint``, ``rdia.feature_names``, ``rdia.image_shape``, ``rdia.sparse``,
``rdia.index_base``, ``rdia.label_column``, ``rdia.renamed``, ``rdia.added_columns`` where they
apply, then the Dataset's
own ``meta`` (``rdia.columns``, ``rdia.zero_based``...) and the ``meta`` argument. **CSV/TSV hold
no metadata**: rdia reads a CSV it wrote like any user's CSV, so the reader options must come
from the user or the model that remembered them (label column, ID column, the columns to ignore:
rdia's trailing columns above), and its classes are sorted as read.

Every output is written in row groups (large data streams out) and atomically.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import os
import stat
from collections.abc import Callable, Iterator
from typing import IO, Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from rdia_cli.artifacts import metadata
from rdia_cli.artifacts.atomic import atomic_path, check_output, is_stdio
from rdia_cli.data.dataset import Dataset
from rdia_cli.data.readers import MAX_DENSE_ELEMENTS, RESERVED_COLUMNS
from rdia_cli.errors import InputError

FORMAT_VERSION = "1"
# Sparse data at most this wide is written as one column per feature (Parquet, CSV, TSV).
DENSE_COLUMNS_MAX = 1000
# Suffix of one of rdia's columns whose name a user's table already uses.
CLASH_SUFFIX = "_rdia"
# Output formats by extension; text formats may end in one of COMPRESSIONS too.
EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv",
              ".svm": "libsvm", ".libsvm": "libsvm"}
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}
OUTPUT_FORMATS = ("parquet", "csv", "tsv", "libsvm")
# rdia's own per-row columns, in the order they follow a user's table.
RDIA_COLUMNS = ("original_label", "target", "target_raw", "weight", "relabeled", "phi", "part",
                "is_noisy", "clean_label", "label", "row_id")
# Metadata keys the writer computes itself; stale copies in ds.meta are replaced.
_COMPUTED_META = (
    "format_version",
    "classes",
    "n_features",
    "fingerprint",
    "feature_names",
    "image_shape",
    "sparse",
    "index_base",
    "label_column",
    "renamed",
    "added_columns",
)
_ORDER = ("original_label", "target_raw", "relabeled", "phi", "part")


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------
def write_dataset(
    ds: Dataset,
    path: str,
    *,
    meta: dict | None = None,
    format: str | None = None,
    row_group_size: int = 65536,
) -> None:
    """Write ``ds`` to ``path`` atomically, in the format its name ends in (module docstring).

    ``meta`` adds JSON-able metadata (Parquet: ``rdia.<key>``) on top of ``ds.meta``; CSV, TSV
    and LIBSVM cannot hold it. ``format`` ("parquet", "csv", "tsv", "libsvm") is for standard
    output and devices; a named file's extension must agree with it.
    Reading a Parquet file back gives an equal Dataset with the same fingerprint.
    """
    path = str(path)
    fmt, compression = output_format(path, format)
    if row_group_size < 1:
        raise InputError(f"`row_group_size` must be at least 1, got {row_group_size}.")
    check_output(path, None if ds.source == "<memory>" else ds.source)
    if fmt == "libsvm":
        from rdia_cli.data.formats.libsvm_out import write_libsvm

        with atomic_path(path) as tmp, _text_sink(tmp, compression) as sink:
            write_libsvm(ds, sink, shown=path, chunk_rows=row_group_size)
        return
    plan = _Plan(ds, meta, flat=fmt != "parquet")
    # list<> offsets are int32: keep each row group's pixels below 2**31 values.
    row_group_size = min(row_group_size, max(1, (2**31 - 1) // max(1, plan.row_width)))
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            _write_parquet(plan, tmp, row_group_size)
        else:
            delimiter = "\t" if fmt == "tsv" else _csv_delimiter(ds)
            with _text_sink(tmp, compression) as sink:
                _write_csv(plan, sink, delimiter, row_group_size)


def output_table(ds: Dataset) -> pa.Table:
    """The whole table a CSV output of ``ds`` holds (what ``Dataset.to_pandas`` converts)."""
    plan = _Plan(ds, None, flat=True)
    return plan.chunk(0, ds.n_samples)


def output_format(path: str, format: str | None = None) -> tuple[str, str | None]:
    """(format, compression) of the output ``path``: by its extension, or ``format`` for standard
    output and devices (default Parquet). An InputError for any other name."""
    if format is not None and format not in OUTPUT_FORMATS:
        raise InputError(f"Output format `{format}` is not one of {', '.join(OUTPUT_FORMATS)}.")
    name = os.path.basename(str(path)).lower()
    compression = None
    for ext, comp in COMPRESSIONS.items():
        if name.endswith(ext):
            name, compression = name[: -len(ext)], comp
            break
    fmt = next((f for ext, f in EXTENSIONS.items() if name.endswith(ext)), None)
    if fmt is None and compression is None and _stream(path):
        return format or "parquet", None
    if fmt is None:
        raise InputError(
            f"Cannot write `{path}`: give -o a name ending in .parquet, .csv, .tsv, .svm or "
            ".libsvm."
        )
    if fmt == "parquet" and compression is not None:
        raise InputError(f"Cannot write `{path}`: Parquet compresses inside the file; give -o "
                         "a name ending in .parquet.")
    if format is not None and format != fmt:
        raise InputError(f"Cannot write {format} to `{path}`, a {fmt} name; give -o a name "
                         f"ending in the format's extension.")
    return fmt, compression


def index_base(ds: Dataset) -> int:
    """The first feature index of the input's sparse format: 0 for 0-based LIBSVM, else 1
    (LIBSVM's convention); ``meta["index_base"]`` from a file rdia wrote wins."""
    base = ds.meta.get("index_base")
    if base in (0, 1):
        return int(base)
    return 0 if ds.meta.get("zero_based") is True else 1


def _stream(path: str) -> bool:
    """Standard output, or an existing path that is no regular file (a device, a FIFO)."""
    if is_stdio(path):
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


@contextlib.contextmanager
def _text_sink(tmp: str, compression: str | None) -> Iterator[IO[bytes]]:
    """A binary file on ``tmp``, compressed as asked (gzip without a name or a time stamp, so the
    same data gives the same bytes)."""
    with open(tmp, "wb") as raw:
        if compression == "gzip":
            sink: Any = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
        elif compression == "bz2":
            sink = bz2.BZ2File(raw, "wb")
        elif compression == "xz":
            sink = lzma.LZMAFile(raw, "wb")
        else:
            yield raw
            return
        with sink:
            yield sink


def _csv_delimiter(ds: Dataset) -> str:
    """The input's own delimiter for a CSV input written back as CSV, else a comma."""
    cols = ds.meta.get("columns")
    if isinstance(cols, dict) and cols.get("format") == "csv":
        d = cols.get("delimiter")
        if isinstance(d, str) and len(d) == 1 and d not in "\r\n\"":
            return d
    return ","


def _write_parquet(plan: _Plan, tmp: str, row_group_size: int) -> None:
    import pyarrow.parquet as pq

    n = plan.ds.n_samples
    with pq.ParquetWriter(tmp, plan.schema) as writer:
        if n == 0:
            writer.write_table(plan.schema.empty_table())
        for a in range(0, n, row_group_size):
            b = min(n, a + row_group_size)
            writer.write_table(plan.chunk(a, b), row_group_size=b - a)


def _write_csv(plan: _Plan, sink: IO[bytes], delimiter: str, row_group_size: int) -> None:
    import pyarrow.csv as pacsv

    opts = pacsv.WriteOptions(delimiter=delimiter, quoting_style="needed")
    n = plan.ds.n_samples
    with pacsv.CSVWriter(sink, plan.schema.remove_metadata(), write_options=opts) as writer:
        for a in range(0, n, row_group_size):
            b = min(n, a + row_group_size)
            writer.write_table(plan.chunk(a, b).replace_schema_metadata(None))
        if n == 0:
            writer.write_table(plan.schema.remove_metadata().empty_table())


# --------------------------------------------------------------------------------------------
# The columns
# --------------------------------------------------------------------------------------------
Builder = Callable[[int, int], pa.Array]


class _Plan:
    """Column layout and per-row-group table builder for one Dataset.

    ``flat``: CSV/TSV/pandas (no list columns: one column per class or feature, no metadata).
    """

    def __init__(self, ds: Dataset, meta: dict | None, *, flat: bool = False) -> None:
        self.ds = ds
        self.flat = flat
        self.kind = (
            "image" if ds.image_shape is not None else ("sparse" if ds.is_sparse else "dense")
        )
        X = ds.X
        if self.kind == "sparse":
            X = X.tocsr() if not sp.isspmatrix_csr(X) else X
            self.large = X.nnz >= 2**31
        else:
            X = np.asarray(X)
        self.X = X
        self.base = index_base(ds)
        self.labels = metadata.classes_array(ds.classes)
        self.names: list[str] = []
        self.types: list[pa.DataType] = []
        self.builders: list[Builder] = []
        self.renamed: dict[str, str] = {}
        self.computed: dict[str, Any] = {}
        self.row_width = 1
        self.table = ds.table
        if self.table is not None:
            self._table_layout()
        else:
            self._rdia_layout()
        if len(set(self.names)) != len(self.names):
            dup = sorted({c for c in self.names if self.names.count(c) > 1})
            raise InputError(f"Columns {dup} would be written twice; rename them in the input "
                             f"`{ds.source}`.")
        self.schema = pa.schema(
            [pa.field(n, t) for n, t in zip(self.names, self.types, strict=True)],
            metadata=None if flat else self._metadata(meta),
        )

    def add(self, name: str, typ: pa.DataType, build: Builder) -> None:
        self.names.append(name)
        self.types.append(typ)
        self.builders.append(build)

    def chunk(self, a: int, b: int) -> pa.Table:
        return pa.Table.from_arrays([f(a, b) for f in self.builders], schema=self.schema)

    # --- rdia's own layout ---------------------------------------------------------------------
    def _rdia_layout(self) -> None:
        ds = self.ds
        names = self._feature_layout()
        self._check_names(names)
        if not self.flat:
            self._add_row_id("row_id")
        self.add("label", self.labels.type, self._label_builder(None))
        self._add_features(names)
        self._add_target("target", ds.target)
        if ds.weight is not None:
            self._add_weight("weight")
        for k, v in ds.extra.items():
            self._add_extra(k, k, np.asarray(v))
        if self.flat:
            self._add_row_id("row_id")

    def _feature_layout(self) -> list[str] | None:
        """The names of the feature columns, or None for list columns (sparse, images)."""
        ds, p = self.ds, self.ds.n_features
        if self.kind == "dense":
            names = (ds.feature_names if ds.feature_names is not None
                     else [f"f{j}" for j in range(p)])
            if len(names) != p:
                raise InputError(
                    f"Dataset has {p} features but {len(names)} feature names ({ds.source})."
                )
            names = [str(c) for c in names]
            self.computed["feature_names"] = names
            return names
        narrow = p <= DENSE_COLUMNS_MAX and ds.n_samples * p <= MAX_DENSE_ELEMENTS
        if self.kind == "sparse":
            self.computed["index_base"] = self.base
            if narrow:
                names = [f"x{j + self.base}" for j in range(p)]
                self.computed.update(sparse=True, feature_names=names)
                return names
            if self.flat:
                raise InputError(
                    f"`{ds.source}` is sparse with {p:,} features, too many for one column each "
                    f"(at most {DENSE_COLUMNS_MAX:,}); write .parquet or .svm instead."
                )
            return None
        self.computed["image_shape"] = list(ds.image_shape)
        if self.flat:
            if not narrow:
                raise InputError(
                    f"`{ds.source}` holds images of {p:,} pixels, too many for one column each "
                    f"(at most {DENSE_COLUMNS_MAX:,}); write .parquet instead."
                )
            return [f"pixel{j}" for j in range(p)]
        return None

    def _check_names(self, features: list[str] | None) -> None:
        taken = {"row_id", "label"}
        if self.ds.target is not None:
            taken.add("target")
        if self.ds.weight is not None:
            taken.add("weight")
        if features is None:
            taken.update(("indices", "values") if self.kind == "sparse" else ("pixels",))
        else:
            clash = [c for c in features if c in RESERVED_COLUMNS]
            if clash or len(set(features)) != len(features):
                raise InputError(
                    f"Feature columns {clash or 'with duplicate names'} clash with the columns "
                    f"rdia writes ({', '.join(RESERVED_COLUMNS)}); rename them in the input "
                    f"`{self.ds.source}`."
                )
            taken.update(features)
        clash = [k for k in self.ds.extra if k in taken or k in RESERVED_COLUMNS]
        if clash:
            raise InputError(
                f"Extra columns {clash} clash with the columns rdia writes; rename them."
            )

    def _add_features(self, names: list[str] | None) -> None:
        X = self.X
        if names is not None:
            dtype = np.float32 if self.kind != "dense" else X.dtype
            typ = pa.from_numpy_dtype(dtype)
            cache: dict[tuple[int, int], np.ndarray] = {}

            def block(a: int, b: int) -> np.ndarray:
                if (a, b) not in cache:  # one dense block per row group, reused by its columns
                    cache.clear()
                    if self.kind == "sparse":
                        part = X[a:b].toarray()
                    else:
                        part = X[a:b].reshape(b - a, -1)
                    cache[(a, b)] = np.asfortranarray(part, dtype=dtype)
                return cache[(a, b)]

            for j, name in enumerate(names):
                self.add(name, typ, lambda a, b, j=j: pa.array(block(a, b)[:, j]))
            return
        if self.kind == "sparse":
            lt = pa.large_list if self.large else pa.list_
            self.add("indices", lt(pa.int32()), lambda a, b: self._sparse_lists(a, b)[0])
            self.add("values", lt(pa.float32()), lambda a, b: self._sparse_lists(a, b)[1])
        else:
            self.row_width = max(self.row_width, self.ds.n_features)
            self.add("pixels", pa.list_(pa.float32()),
                     lambda a, b: _fixed_lists(X[a:b].reshape(b - a, -1)))

    def _sparse_lists(self, a: int, b: int) -> tuple[pa.Array, pa.Array]:
        X = self.X
        s, e = int(X.indptr[a]), int(X.indptr[b])
        off_type = np.int64 if self.large else np.int32
        offsets = pa.array((X.indptr[a : b + 1] - s).astype(off_type))
        idx = pa.array(np.asarray(X.indices[s:e], dtype=np.int32))
        val = pa.array(np.asarray(X.data[s:e], dtype=np.float32))
        cls = pa.LargeListArray if self.large else pa.ListArray
        return cls.from_arrays(offsets, idx), cls.from_arrays(offsets, val)

    # --- a user's table ------------------------------------------------------------------------
    def _table_layout(self) -> None:
        ds, table = self.ds, self.table
        cols = ds.meta.get("columns") if isinstance(ds.meta.get("columns"), dict) else {}
        label = str(cols.get("label") or "label")
        id_col = cols.get("id")
        given = list(table.column_names)
        self.given = set(given)
        for name in given:
            col = table.column(name)
            if name == label:
                self.add(name, col.type, self._label_builder(col.type))
            else:
                self.add(name, col.type, lambda a, b, col=col: _chunk(col, a, b))
        label_name = label if label in self.given else self._free("label")
        if label not in self.given:
            self.add(label_name, self.labels.type, self._label_builder(None))
        # no `rdia.feature_names`: the features are found in the table again as the reader
        # found them (names made by a table prep, `age__missing`, are no columns of it)
        self.computed["label_column"] = label_name
        label_type = table.column(label).type if label in self.given else None
        extra = dict(ds.extra)
        if "original_label" in extra:
            self._add_extra("original_label", self._free("original_label"),
                            np.asarray(extra["original_label"]), cast_to=label_type)
        self._add_target(self._free("target"), ds.target)
        if "target_raw" in extra:
            self._add_extra("target_raw", self._free("target_raw"), np.asarray(extra["target_raw"]))
        if ds.weight is not None:
            self._add_weight(self._free("weight"))
        rest = [k for k in _ORDER if k in extra] + [k for k in extra if k not in _ORDER]
        for k in rest:
            if k in ("original_label", "target_raw"):
                continue
            if k in self.given and k not in RDIA_COLUMNS:
                continue  # the table's own column, carried as an extra
            self._add_extra(k, self._free(k), np.asarray(extra[k]))
        if not self.flat or not (id_col and id_col in self.given):
            self._add_row_id(self._free("row_id"))
        self.computed["added_columns"] = self.names[len(given):]

    def _free(self, name: str) -> str:
        """``name``, or ``name_rdia`` where the user's table already has a column ``name``."""
        out = name
        while out in self.given:
            out += CLASH_SUFFIX
        if out != name:
            self.renamed[name] = out
        return out

    # --- shared columns ------------------------------------------------------------------------
    def _label_builder(self, cast_to: pa.DataType | None) -> Builder:
        values = _cast_or_keep(self.labels, cast_to)
        y = self.ds.y
        return lambda a, b: values.take(pa.array(y[a:b]))

    def _add_row_id(self, name: str) -> None:
        row_id = pa.array(np.asarray(self.ds.row_id, dtype=np.int64))
        self.add(name, pa.int64(), lambda a, b: row_id.slice(a, b - a))

    def _add_weight(self, name: str) -> None:
        w = np.asarray(self.ds.weight, dtype=np.float64)
        self.add(name, pa.float64(), lambda a, b: pa.array(w[a:b]))

    def _add_target(self, name: str, target: np.ndarray | None) -> None:
        """A (N, K) matrix of class probabilities: list<float32>, or flat ``<name>_<class>``."""
        if target is None:
            return
        t = np.asarray(target)
        if not self.flat:
            self.row_width = max(self.row_width, t.shape[1])
            self.add(name, pa.list_(pa.float32()), lambda a, b: _fixed_lists(t[a:b]))
            return
        if t.shape[1] != self.ds.n_classes:
            raise InputError(f"`{name}` has {t.shape[1]} columns but the data has "
                             f"{self.ds.n_classes} classes ({self.ds.source}).")
        for j, c in enumerate(self.ds.classes):
            col = self._free(f"{name}_{metadata.jsonable(c)}") if self.table is not None \
                else f"{name}_{metadata.jsonable(c)}"
            self.add(col, pa.float32(),
                     lambda a, b, j=j: pa.array(np.asarray(t[a:b, j], dtype=np.float32)))

    def _add_extra(self, key: str, name: str, v: np.ndarray,
                   cast_to: pa.DataType | None = None) -> None:
        if key == "target_raw" and v.ndim == 2:
            self._add_target(name, v)
            return
        if v.ndim == 2 and self.flat:
            for j in range(v.shape[1]):
                self._add_extra(f"{key}_{j}", f"{name}_{j}", v[:, j])
            return
        arr = _cast_or_keep(_column_array(v, key), cast_to)
        if self.flat and (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
            raise InputError(f"Extra column `{key}` holds lists, which CSV cannot; write "
                             ".parquet instead.")
        if v.ndim == 2:
            self.row_width = max(self.row_width, v.shape[1])
        self.add(name, arr.type, lambda a, b: arr.slice(a, b - a))

    def _metadata(self, meta: dict | None) -> dict[bytes, bytes]:
        ds = self.ds
        out: dict[str, Any] = {k: v for k, v in ds.meta.items() if k not in _COMPUTED_META}
        out.update(meta or {})
        out["format_version"] = FORMAT_VERSION
        out["classes"] = [metadata.jsonable(c) for c in ds.classes]
        out["n_features"] = ds.n_features
        out["fingerprint"] = ds.fingerprint()
        out.update(self.computed)
        if self.renamed:
            out["renamed"] = dict(self.renamed)
        return metadata.encode(out, default=metadata.json_default)


def _chunk(col: pa.ChunkedArray, a: int, b: int) -> pa.Array:
    part = col.slice(a, b - a)
    return part.combine_chunks() if isinstance(part, pa.ChunkedArray) else part


def _cast_or_keep(arr: pa.Array, typ: pa.DataType | None) -> pa.Array:
    """``arr`` as ``typ`` (the user's label column type) where that cast is safe, else as it is."""
    if typ is None or arr.type == typ:
        return arr
    try:
        return arr.cast(typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return arr


def _fixed_lists(block: np.ndarray) -> pa.Array:
    """list<float32> of the rows of a 2-D block, without per-row Python objects."""
    n, k = block.shape
    values = pa.array(np.ascontiguousarray(block, dtype=np.float32).ravel())
    offsets = pa.array(np.arange(n + 1, dtype=np.int64).astype(np.int32) * np.int32(k))
    return pa.ListArray.from_arrays(offsets, values)


def _column_array(v: np.ndarray, name: str) -> pa.Array:
    try:
        if v.ndim == 1:
            return pa.array(v)
        if v.ndim == 2:
            n, k = v.shape
            values = pa.array(np.ascontiguousarray(v).ravel())
            offsets = pa.array(np.arange(n + 1, dtype=np.int64) * k)
            return pa.LargeListArray.from_arrays(offsets, values)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise InputError(f"Extra column `{name}` cannot be written: {e}.") from None
    raise InputError(f"Extra column `{name}` has {v.ndim} dimensions; rdia writes 1-D or 2-D.")
