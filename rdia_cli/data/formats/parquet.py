"""Parquet: dense tabular, sparse (``indices``/``values`` lists, streamed row group by row group)
or images (``pixels`` plus ``rdia.image_shape``), with optional ``row_id``, ``target``, ``weight``
and extra columns, and the ``rdia.*`` metadata (:mod:`rdia_cli.artifacts.metadata`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from rdia_cli.artifacts import metadata
from rdia_cli.data.formats.common import (
    MAX_FEATURES,
    Parsed,
    ReadOptions,
    Schema,
    Source,
    beyond_float32,
    dense_from_columns,
    encode_labels,
    first_beyond_float32,
    map_classes,
    named_column,
    user_table,
)


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


def read_parquet(
    src: Source, opts: ReadOptions, schema: Schema | None, rows: tuple[int, int] | None = None
) -> Parsed:
    """Sparse files stream their `indices`/`values` row group by row group into one CSR (see
    _parquet_sparse_rows); everything else is read as one table. ``rows``: see read_dataset."""
    f = _ParquetInput(src, rows)
    table, names, meta = f.table, f.names, f.meta
    if len(set(names)) != len(names):
        dups = sorted({c for c in names if names.count(c) > 1})
        raise src.error(f"has duplicate column names {dups}; give each column its own name.")
    rdia_file = "format_version" in meta
    label_col = opts.label_column
    if rdia_file and isinstance(meta.get("label_column"), str) and meta["label_column"] in names:
        label_col = meta["label_column"]  # rdia wrote the label under the user's own name
    elif rdia_file and "label" in names:
        label_col = "label"
    if label_col not in names:
        raise src.error(
            f"has no label column `{label_col}` (columns found: {names[:20]}"
            f"{' ...' if len(names) > 20 else ''}); pass the right one with `label_col`."
        )
    if table.num_rows == 0:
        raise src.error("has no data rows.")
    row_id, target, weight, used = _rdia_columns(
        f, label_col, rdia_file or "indices" in names or "pixels" in names)
    features = _features(f, opts, schema, label_col, used, rdia_file)
    X, column, feature_names, table_part, sparse_file = features
    extra = {name: _extra_column(table.column(name)) for name in names if name not in used}
    labels = (encode_labels(table.column(label_col), src, f.where, label_col)
              if table_part is None else table_part.labels)
    if table_part is not None:
        for key in ("prep", "table_options", "columns"):  # this read's, not a stale copy
            if not (key == "columns" and rdia_file):
                meta.pop(key, None)
        meta = {**table_part.meta, **meta}
    class_order = meta.get("classes") if isinstance(meta.get("classes"), list) else None
    if (rows is not None and schema is None and class_order is None
            and (f.start, f.stop) != (0, f.n_file)):  # a shard: the whole file's classes
        every = encode_labels(f.pf.read(columns=[label_col]).column(label_col), src,
                              _parquet_where, label_col)
        class_order = map_classes(src, every, opts, None, None)[1]
    return Parsed(
        X,
        labels,
        where=f.where,
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
        table=None if table_part is None else table_part.table,
        prep=None if table_part is None else table_part.prep,
        kinds=None if table_part is None else table_part.kinds,
    )


class _ParquetInput:
    """One Parquet file opened: the rows asked for as a table (a sparse file's `indices` and
    `values` are left for ``_parquet_sparse_rows``), its column names and ``rdia.*`` metadata."""

    def __init__(self, src: Source, rows: tuple[int, int] | None) -> None:
        import pyarrow.parquet as pq

        self.src = src
        try:
            pf = pq.ParquetFile(src.path)
            file_names = pf.schema_arrow.names
            sparse = "indices" in file_names and "values" in file_names
            self.sparse = sparse and "pixels" not in file_names
            self.n_file = pf.metadata.num_rows
            start, stop = (0, self.n_file) if rows is None else (
                max(0, rows[0]), min(self.n_file, rows[1]))
            self.groups = _row_groups(pf, start, stop)
            columns = [c for c in file_names
                       if not (self.sparse and c in ("indices", "values"))]
            if rows is None and not self.sparse:
                table = pf.read()
            else:
                table = pf.read_row_groups([g for g, _, _ in self.groups], columns=columns)
                if self.groups:
                    table = table.slice(start - self.groups[0][1], stop - start)
                table = table.replace_schema_metadata(pf.schema_arrow.metadata)
        except (pa.ArrowInvalid, OSError) as e:
            raise src.error(f"is not a valid Parquet file ({e}).") from None
        self.pf, self.table, self.start, self.stop = pf, table, start, stop
        self.names = list(file_names)
        # lenient: a damaged key or value is read as text, not an error
        self.meta = metadata.decode(table.schema.metadata, key_errors="replace",
                                    raw_on=ValueError)

    def where(self, row: int) -> str:
        return _parquet_where(row + self.start)

    def is_list(self, name: str) -> bool:
        t = self.pf.schema_arrow.field(name).type
        return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _rdia_columns(f: _ParquetInput, label_col: str, weights: bool):
    """The columns with a fixed meaning: ``row_id``, soft ``target`` and ``weight`` (each None
    when absent), and the set of columns used so far. ``weight`` is sample weights only where
    ``weights``: rdia's own files (``rdia.format_version``) and sparse or image files; in a
    user's table it is a feature, as in CSV."""
    table, names, src, n = f.table, f.names, f.src, f.table.num_rows
    used = {label_col}
    row_id = None
    if "row_id" in names and label_col != "row_id":
        col = table.column("row_id")
        if not pa.types.is_integer(col.type) or col.null_count:
            raise src.error("has a `row_id` column that is not a complete integer column.")
        row_id = np.array(col.to_numpy(), dtype=np.int64)
        used.add("row_id")
    target = None
    if "target" in names and label_col != "target" and f.is_list("target"):
        offsets, values, nulls = _list_parts(table.column("target"))
        lengths = np.diff(offsets)
        if nulls is not None or (lengths != lengths[0]).any():
            r = (
                int(np.flatnonzero(lengths != lengths[0])[0])
                if nulls is None
                else int(np.flatnonzero(nulls)[0])
            )
            raise src.error(f"has a `target` of the wrong length {f.where(r)}.")
        target = np.array(values, dtype=np.float32).reshape(n, int(lengths[0]))
        _check_target(src, target, f.where)
        used.add("target")
    weight = None
    if weights and "weight" in names and label_col != "weight":
        col = table.column("weight")
        if col.null_count:
            r = int(np.flatnonzero(pc.is_null(col).to_numpy(zero_copy_only=False))[0])
            raise src.error(f"has a missing `weight` {f.where(r)}.")
        weight = np.array(col.to_numpy(), dtype=np.float64)
        used.add("weight")
    return row_id, target, weight, used


def _features(f: _ParquetInput, opts: ReadOptions, schema: Schema | None, label_col: str,
              used: set, rdia_file: bool):
    """(X, column namer, feature names, the user's table or None, sparse-width flag): images,
    sparse rows, rdia's own dense columns, or a user's table through its prep. Adds the
    columns it took to ``used``."""
    src, table, names, meta = f.src, f.table, f.names, f.meta
    if "pixels" in names:
        used.add("pixels")
        return (*_parquet_images(src, table, meta, table.num_rows), None, None, False)
    if f.sparse:
        used.update(("indices", "values"))
        X, column = _parquet_sparse_rows(src, f.pf, f.groups, f.start, f.stop, meta, opts)
        return X, column, None, None, True
    if isinstance(meta.get("feature_names"), list) and not (
        isinstance(meta.get("prep"), dict)
        and any(str(c) not in names for c in meta["feature_names"])
    ):  # rdia's own dense file (not the user's table that a `rdia.prep` encodes)
        feature_names = [str(c) for c in meta["feature_names"]]
        absent = [c for c in feature_names if c not in names]
        if absent:
            raise src.error(
                f"lacks the feature columns {absent[:10]} listed in its metadata "
                "`rdia.feature_names`."
            )
        used.update(feature_names)
        X = dense_from_columns(src, table, feature_names, f.where)
        column = named_column(feature_names)
        if meta.get("sparse") is True:  # sparse data rdia wrote one column per feature
            return sp.csr_matrix(X), column, None, None, True  # its width is declared
        return X, column, feature_names, None, False
    # a user's table (or rdia's file of one, with its `rdia.prep`)
    added = ()
    if rdia_file:
        opts = opts.inherit(meta.get("table_options")
                            if isinstance(meta.get("table_options"), dict) else None)
        added = tuple(str(c) for c in meta.get("added_columns") or () if str(c) in names)
    prep = meta.get("prep") if rdia_file and schema is None else None
    if label_col != opts.label_column:
        opts = replace(opts, label_col=label_col)
    part = user_table(
        src, table, opts, schema, f.where, columns={"format": "parquet"},
        used=tuple(dict.fromkeys((*(c for c in ("row_id", "target", "weight") if c in used),
                                  *added))),
        prep=prep if isinstance(prep, dict) else None,
    )
    used.update(c for c in names if c not in added)  # rdia's added columns stay extras
    return part.X, part.column, part.feature_names, part, False


TARGET_SUM_SLACK = 1e-3


def _check_target(src: Source, target: np.ndarray, where: Callable[[int], str]) -> None:
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


def _parquet_images(src: Source, table: Any, meta: dict, n: int) -> tuple[np.ndarray, Callable]:
    shape = meta.get("image_shape")
    if not isinstance(shape, list) or not shape:
        raise src.error(
            "has a `pixels` column but no `rdia.image_shape` metadata (e.g. [1, 28, 28]); add "
            "it so the images can be rebuilt."
        )
    if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise src.error(f"has `rdia.image_shape` {shape!r}; it must be a list of positive "
                        "integers (e.g. [1, 28, 28]).")
    shape = tuple(shape)
    size = math.prod(shape)
    offsets, values, nulls = _list_parts(table.column("pixels"))
    lengths = np.diff(offsets)
    bad = np.flatnonzero(lengths != size)
    if nulls is not None or bad.size:
        r = int(bad[0]) if bad.size else int(np.flatnonzero(nulls)[0])
        raise src.error(
            f"has {int(lengths[r])} pixels in row {r + 1}, but `rdia.image_shape` {list(shape)} "
            f"needs {size}."
        )

    def column(j: int) -> str:
        return f"pixel {tuple(int(i) for i in np.unravel_index(j, shape))}"

    k = first_beyond_float32(values)
    if k is not None:
        raise src.error(beyond_float32(f"{values[k]:g}", f"in row {k // size + 1}",
                                       column(k % size)))
    X = np.array(values, dtype=np.float32).reshape((n, *shape))

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
    src: Source,
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
    if stated is not None and (isinstance(stated, bool) or not isinstance(stated, int)
                               or not 1 <= stated <= MAX_FEATURES):
        raise src.error(f"has `rdia.n_features` {stated!r} in its metadata; it must be an "
                        f"integer from 1 to {MAX_FEATURES:,} (or give --n-features).")
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
        if idx.dtype.kind not in "iu":
            raise src.error(f"has `indices` of type {idx.dtype}; feature indices must be "
                            "integers (a list of int32 or int64).")
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
        k = first_beyond_float32(val)
        if k is not None:
            r = int(np.searchsorted(v_off, k, side="right") - 1)
            raise src.error(beyond_float32(f"{val[k]:g}", f"in row {first + r + 1}",
                                           f"feature index {int(idx[k])}"))
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
