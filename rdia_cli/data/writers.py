"""Writing a Dataset to Parquet (the format every rdia stage outputs; DESIGN.md section 3).

Columns: ``row_id`` int64, ``label`` (class *values*), then the features -- one float column per
feature (dense tabular), ``indices`` list<int32> + ``values`` list<float32> (sparse) or ``pixels``
list<float32> (images) -- then ``target`` list<float32>, ``weight`` float64 and every ``extra``
column. Key-value metadata, each value JSON: ``rdia.format_version``, ``rdia.classes``,
``rdia.n_features``, ``rdia.fingerprint``, ``rdia.feature_names`` (dense) or
``rdia.image_shape`` (images), then the Dataset's own ``meta`` and the ``meta`` argument.
The file is written in row groups, so large data streams out, and atomically.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from rdia_cli.artifacts import metadata
from rdia_cli.artifacts.atomic import atomic_path, check_output
from rdia_cli.data.dataset import Dataset
from rdia_cli.data.readers import RESERVED_COLUMNS
from rdia_cli.errors import InputError

FORMAT_VERSION = "1"
# Metadata keys the writer computes itself; stale copies in ds.meta are replaced.
_COMPUTED_META = (
    "format_version",
    "classes",
    "n_features",
    "fingerprint",
    "feature_names",
    "image_shape",
)


def write_dataset(
    ds: Dataset,
    path: str,
    *,
    meta: dict | None = None,
    row_group_size: int = 65536,
) -> None:
    """Write ``ds`` to the Parquet file ``path`` atomically (see the module docstring).

    ``meta`` adds JSON-able metadata (stored as ``rdia.<key>``) on top of ``ds.meta``.
    Reading the file back gives an equal Dataset with the same fingerprint.
    """
    import pyarrow.parquet as pq

    if row_group_size < 1:
        raise InputError(f"`row_group_size` must be at least 1, got {row_group_size}.")
    check_output(path, None if ds.source == "<memory>" else ds.source)
    plan = _Plan(ds, meta)
    n = ds.n_samples
    # list<> offsets are int32: keep each row group's pixels below 2**31 values.
    row_group_size = min(row_group_size, max(1, (2**31 - 1) // max(1, plan.row_width)))
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, plan.schema) as writer:
            if n == 0:
                writer.write_table(plan.schema.empty_table())
            for a in range(0, n, row_group_size):
                b = min(n, a + row_group_size)
                writer.write_table(plan.chunk(a, b), row_group_size=b - a)


class _Plan:
    """Column layout and per-row-group table builder for one Dataset."""

    def __init__(self, ds: Dataset, meta: dict | None) -> None:
        self.ds = ds
        X = ds.X
        self.kind = (
            "image" if ds.image_shape is not None else ("sparse" if ds.is_sparse else "dense")
        )
        if self.kind == "sparse":
            X = X.tocsr() if not sp.isspmatrix_csr(X) else X
            self.X = X
            self.large = X.nnz >= 2**31
        else:
            self.X = np.asarray(X)
        self.feature_names = None
        if self.kind == "dense":
            p = self.X.shape[1]
            names = (
                ds.feature_names if ds.feature_names is not None else [f"f{j}" for j in range(p)]
            )
            if len(names) != p:
                raise InputError(
                    f"Dataset has {p} features but {len(names)} feature names ({ds.source})."
                )
            self.feature_names = [str(c) for c in names]
        self._check_names()

        # Whole-column arrays (small per row); features are built per row group.
        self.row_id = pa.array(np.asarray(ds.row_id, dtype=np.int64))
        self.label = _label_array(ds)
        self.extra = {k: _column_array(np.asarray(v), k) for k, v in ds.extra.items()}

        fields = [pa.field("row_id", pa.int64()), pa.field("label", self.label.type)]
        if self.kind == "dense":
            fields += [pa.field(c, pa.from_numpy_dtype(self.X.dtype)) for c in self.feature_names]
        elif self.kind == "sparse":
            lt = pa.large_list if self.large else pa.list_
            fields += [pa.field("indices", lt(pa.int32())), pa.field("values", lt(pa.float32()))]
        else:
            fields.append(pa.field("pixels", pa.list_(pa.float32())))
        if ds.target is not None:
            fields.append(pa.field("target", pa.list_(pa.float32())))
        if ds.weight is not None:
            fields.append(pa.field("weight", pa.float64()))
        fields += [pa.field(k, v.type) for k, v in self.extra.items()]
        self.schema = pa.schema(fields, metadata=self._metadata(meta))
        widths = [ds.n_features if self.kind == "image" else 1]
        if ds.target is not None:
            widths.append(ds.target.shape[1])
        self.row_width = max(widths)

    def _check_names(self) -> None:
        taken = {"row_id", "label"}
        if self.ds.target is not None:
            taken.add("target")
        if self.ds.weight is not None:
            taken.add("weight")
        if self.kind == "sparse":
            taken.update(("indices", "values"))
        elif self.kind == "image":
            taken.add("pixels")
        else:
            clash = [c for c in self.feature_names if c in RESERVED_COLUMNS]
            if clash or len(set(self.feature_names)) != len(self.feature_names):
                raise InputError(
                    f"Feature columns {clash or 'with duplicate names'} clash with the columns "
                    f"rdia writes ({', '.join(RESERVED_COLUMNS)}); rename them in the input "
                    f"`{self.ds.source}`."
                )
            taken.update(self.feature_names)
        clash = [k for k in self.ds.extra if k in taken or k in RESERVED_COLUMNS]
        if clash:
            raise InputError(
                f"Extra columns {clash} clash with the columns rdia writes; rename them."
            )

    def _metadata(self, meta: dict | None) -> dict[bytes, bytes]:
        ds = self.ds
        out: dict[str, Any] = {k: v for k, v in ds.meta.items() if k not in _COMPUTED_META}
        out.update(meta or {})
        out["format_version"] = FORMAT_VERSION
        out["classes"] = [_jsonable(c) for c in ds.classes]
        out["n_features"] = ds.n_features
        out["fingerprint"] = ds.fingerprint()
        if self.feature_names is not None:
            out["feature_names"] = self.feature_names
        if self.kind == "image":
            out["image_shape"] = list(ds.image_shape)
        return metadata.encode(out, default=_jsonable_default)

    def chunk(self, a: int, b: int) -> pa.Table:
        ds = self.ds
        cols: list[Any] = [self.row_id.slice(a, b - a), self.label.slice(a, b - a)]
        if self.kind == "dense":
            block = np.asfortranarray(self.X[a:b])
            cols += [pa.array(block[:, j]) for j in range(block.shape[1])]
        elif self.kind == "sparse":
            X = self.X
            s, e = int(X.indptr[a]), int(X.indptr[b])
            off_type = np.int64 if self.large else np.int32
            offsets = pa.array((X.indptr[a : b + 1] - s).astype(off_type))
            idx = pa.array(np.asarray(X.indices[s:e], dtype=np.int32))
            val = pa.array(np.asarray(X.data[s:e], dtype=np.float32))
            cls = pa.LargeListArray if self.large else pa.ListArray
            cols += [cls.from_arrays(offsets, idx), cls.from_arrays(offsets, val)]
        else:
            cols.append(_fixed_lists(self.X[a:b].reshape(b - a, -1)))
        if ds.target is not None:
            cols.append(_fixed_lists(np.asarray(ds.target[a:b])))
        if ds.weight is not None:
            cols.append(pa.array(np.asarray(ds.weight[a:b], dtype=np.float64)))
        cols += [v.slice(a, b - a) for v in self.extra.values()]
        return pa.Table.from_arrays(cols, schema=self.schema)


def _fixed_lists(block: np.ndarray) -> pa.Array:
    """list<float32> of the rows of a 2-D block, without per-row Python objects."""
    n, k = block.shape
    values = pa.array(np.ascontiguousarray(block, dtype=np.float32).ravel())
    offsets = pa.array(np.arange(n + 1, dtype=np.int64).astype(np.int32) * np.int32(k))
    return pa.ListArray.from_arrays(offsets, values)


def _label_array(ds: Dataset) -> pa.Array:
    classes = [_jsonable(c) for c in ds.classes]
    if all(isinstance(c, bool | int) for c in classes):
        values = pa.array(np.asarray(classes, dtype=np.int64).reshape(-1))
    elif all(isinstance(c, bool | int | float) for c in classes):
        values = pa.array(np.asarray(classes, dtype=np.float64).reshape(-1))
    else:
        values = pa.array([str(c) for c in classes], type=pa.string())
    return values.take(pa.array(np.asarray(ds.y, dtype=np.int64)))


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
        raise InputError(f"Extra column `{name}` cannot be written to Parquet: {e}.") from None
    raise InputError(f"Extra column `{name}` has {v.ndim} dimensions; rdia writes 1-D or 2-D.")


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def _jsonable_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, tuple | set):
        return list(v)
    raise TypeError(f"{type(v).__name__} is not JSON-able")
