"""A user's table as model features: which columns are what, and one fitted preprocessing.

A CSV/TSV, a Parquet file written by someone else or a pandas DataFrame may hold numeric,
boolean, string and categorical (Parquet dictionary, pandas ``category``) columns and missing
cells. :class:`TablePrep` turns its feature columns into a float32 matrix:

* numeric: missing cells get the column's median at fit, plus a ``<name>__missing`` 0/1 column
  when the column had missing cells at fit; then standardized (see below);
* boolean: 0/1; missing cells get the most frequent value, plus ``<name>__missing`` as above;
  never standardized;
* categorical (strings, dictionary columns, and the columns named in ``categorical``): one-hot,
  one ``<name>=<value>`` column per kept category. Categories seen in fewer than
  ``min_frequency`` training rows are pooled into one ``<name>=<infrequent>`` column, and at
  most ``max_categories`` columns are made per input column (the pooled one included, as in
  scikit-learn's ``OneHotEncoder``). A missing cell is the category ``<missing>`` (pooled like
  any other when rare). A category never seen at fit goes to the pooled column if there is one,
  else to no column (all zero): never an error.

**Standardization rule.** The prep is *engaged* (``scaled``: numeric columns become
``(x - mean) / std`` of the training rows) when the table has a categorical column or a missing
cell at fit. A table whose feature columns are all numeric and complete gets no prep at all:
the readers keep their fast path and X is the table as read, exactly as before tables with
strings were accepted. A table with boolean columns but no categorical column and no missing
cell gets a prep that is not scaled (numbers as read, booleans 0/1).

The prep is fitted on the training rows only, with scikit-learn (``SimpleImputer``,
``StandardScaler``, ``OneHotEncoder(handle_unknown="infrequent_if_exist")``), and exported to
plain JSON (:meth:`TablePrep.to_json`, stored in the model file by
:class:`~rdia_cli.data.readers.Schema`). Applying it (:meth:`TablePrep.transform`) needs only
numpy and pyarrow, from that JSON: scikit-learn is not imported at transform time. Columns are
found by name, so a validation/test table may order its columns differently and hold extra ones;
a feature column it lacks is an :class:`~rdia_cli.errors.InputError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rdia_cli.errors import InputError

MIN_FREQUENCY = 5  # a category seen in fewer training rows is pooled into `<name>=<infrequent>`
MAX_CATEGORIES = 100  # output columns per categorical column at most (the pooled one included)
ID_LIKE_FRACTION = 0.5  # a string column with more distinct values than this fraction of rows ...
ID_LIKE_MIN = 1000  # ... and than this many is an identifier, not a category
INFREQUENT = "<infrequent>"
MISSING = "<missing>"
PREP_FORMAT = "rdia.table_prep"
PREP_VERSION = 1
KINDS = ("numeric", "boolean", "categorical")

Where = Callable[[int], str]


def _row(r: int) -> str:
    return f"in row {r + 1}"


def _err(name: str, msg: str) -> InputError:
    return InputError(f"{name} {msg}")


# --------------------------------------------------------------------------------------------
# Column kinds
# --------------------------------------------------------------------------------------------
def _plain(col: Any) -> Any:
    """One Arrow array, dictionary columns decoded."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, col.type.value_type)
    return col


def _is_string(t: Any) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _parses(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def column_kinds(
    table: Any,
    columns: Sequence[str],
    *,
    categorical: Sequence[str] = (),
    name: str = "The table",
    where: Where = _row,
) -> dict[str, str]:
    """``numeric``, ``boolean`` or ``categorical`` for each of ``columns``.

    Numbers (also text columns whose every value is a number) are numeric, booleans boolean,
    and text, dictionary and other columns categorical; ``categorical`` forces a column to be
    categorical. A text column that holds numbers *and* other text is an error naming the first
    value that is not a number (a typo in a numeric column is not silently one-hot encoded).
    """
    forced = set(categorical)
    kinds = {}
    for c in columns:
        t = table.schema.field(c).type
        if c in forced or pa.types.is_dictionary(t):
            kinds[c] = "categorical"
        elif pa.types.is_boolean(t):
            kinds[c] = "boolean"
        elif (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
              or pa.types.is_null(t)):
            kinds[c] = "numeric"
        elif _is_string(t):
            kinds[c] = _text_kind(table.column(c), c, name, where)
        else:
            kinds[c] = "categorical"
    return kinds


def _text_kind(col: Any, c: str, name: str, where: Where) -> str:
    values = [v for v in pc.unique(_plain(col)).to_pylist() if v is not None]
    numbers = [_parses(v) for v in values]
    if not values or all(numbers):
        return "numeric"
    if not any(numbers):
        return "categorical"
    bad = values[numbers.index(False)]
    r = int(pc.index(_plain(col), bad).as_py())
    raise _err(
        name,
        f"has a non-numeric value `{bad[:40]}` in column `{c}` {where(r)}, among numbers; fix "
        "it, leave the cell empty for a missing value, or pass `categorical` "
        f"(`--categorical {c}`) to treat the column as categories.",
    )


def needs_prep(table: Any, kinds: dict[str, str]) -> bool:
    """Whether the feature columns are anything but numeric (not decimal) and complete: only
    then is a :class:`TablePrep` fitted."""
    for c, kind in kinds.items():
        t = table.schema.field(c).type
        if kind != "numeric" or pa.types.is_decimal(t) or pa.types.is_null(t):
            return True
        if table.column(c).null_count:
            return True
    return False


def check_ids(col: Any, id_col: str, *, name: str = "The table", where: Where = _row) -> None:
    """An ID column must be complete and unique; the error names the first repeated ID and
    both of its rows."""
    col = _plain(col)
    if col.null_count:
        r = int(np.flatnonzero(pc.is_null(col).to_numpy(zero_copy_only=False))[0])
        raise _err(name, f"has no ID in column `{id_col}` {where(r)}; every row needs one.")
    n = len(col)
    uniq = pc.unique(col)
    if len(uniq) == n:
        return
    codes = np.asarray(pc.index_in(col, value_set=uniq).to_numpy(zero_copy_only=False),
                       dtype=np.int64)
    first = np.full(len(uniq), n, dtype=np.int64)
    np.minimum.at(first, codes, np.arange(n, dtype=np.int64))
    r2 = int(np.flatnonzero(first[codes] != np.arange(n))[0])
    r1 = int(first[codes[r2]])
    raise _err(
        name,
        f"has the ID `{str(col[r2].as_py())[:40]}` twice in column `{id_col}`, {where(r1)} and "
        f"{where(r2)}; IDs must be unique (give another `id_col`, `--id-col`, or none).",
    )


# --------------------------------------------------------------------------------------------
# Column values
# --------------------------------------------------------------------------------------------
def _numbers(col: Any, c: str, name: str, where: Where) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values with NaN for missing cells, missing mask) of a numeric/boolean column;
    a NaN or infinity that is not a missing cell is an error."""
    col = _plain(col)
    t = col.type
    if _is_string(t):
        try:
            col = pc.cast(col, pa.float64())
        except pa.ArrowInvalid:
            out = []
            for r, v in enumerate(col.to_pylist()):
                try:
                    out.append(None if v is None else float(v))
                except ValueError:
                    raise _err(name, f"has a non-numeric value `{v[:40]}` in column `{c}` "
                               f"{where(r)}; the model reads it as numbers.") from None
            col = pa.array(out, type=pa.float64())
    elif pa.types.is_null(t):
        col = pa.nulls(len(col), pa.float64())
    elif not (pa.types.is_floating(t) and t.bit_width == 64):
        try:
            col = pc.cast(col, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise _err(name, f"has a column `{c}` of type {t} where the model expects "
                       "numbers.") from None
    missing = pc.is_null(col).to_numpy(zero_copy_only=False)
    x = np.array(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    x[missing] = np.nan
    bad = ~np.isfinite(x) & ~missing
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise _err(name, f"has a non-finite value (NaN or infinity) {where(r)}, column `{c}`; "
                   "remove it, or leave the cell empty to have it imputed.")
    from rdia_cli.data.formats.common import beyond_float32, first_beyond_float32

    r = first_beyond_float32(x)
    if r is not None:
        raise _err(name, beyond_float32(f"{x[r]:g}", where(r), f"column `{c}`"))
    return x, missing


def _texts(col: Any) -> Any:
    """A categorical column as an Arrow string array, missing cells as ``<missing>``."""
    col = _plain(col)
    if not pa.types.is_string(col.type):
        col = pc.cast(col, pa.string())
    return pc.fill_null(col, MISSING)


# --------------------------------------------------------------------------------------------
# The fitted preprocessing
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnPrep:
    """What was learned about one input column (see the module docstring).

    fill        numeric/boolean: the value a missing cell gets (median / most frequent).
    missing     numeric/boolean: the column had missing cells at fit (adds `<name>__missing`).
    mean, scale numeric: standardization, ``(x - mean) / scale`` (0 and 1 when not scaled).
    categories  categorical: the kept categories, in output column order.
    pooled      categorical: there is a `<name>=<infrequent>` column (last of the column's).
    """

    name: str
    kind: str
    fill: float = 0.0
    missing: bool = False
    mean: float = 0.0
    scale: float = 1.0
    categories: tuple[str, ...] = ()
    pooled: bool = False

    @property
    def feature_names(self) -> list[str]:
        if self.kind == "categorical":
            out = [f"{self.name}={v}" for v in self.categories]
            return out + [f"{self.name}={INFREQUENT}"] if self.pooled else out
        return [self.name] + ([f"{self.name}__missing"] if self.missing else [])

    def to_json(self) -> dict:
        if self.kind == "categorical":
            return {"name": self.name, "kind": self.kind, "categories": list(self.categories),
                    "pooled": self.pooled}
        out = {"name": self.name, "kind": self.kind, "fill": self.fill, "missing": self.missing}
        if self.kind == "numeric":
            out.update(mean=self.mean, scale=self.scale)
        return out

    @classmethod
    def from_json(cls, d: dict) -> ColumnPrep:
        kind = d["kind"]
        if kind not in KINDS:
            raise ValueError(f"unknown column kind {kind!r}")
        if kind == "categorical":
            return cls(name=str(d["name"]), kind=kind,
                       categories=tuple(str(v) for v in d["categories"]),
                       pooled=bool(d["pooled"]))
        return cls(name=str(d["name"]), kind=kind, fill=float(d["fill"]),
                   missing=bool(d["missing"]), mean=float(d.get("mean", 0.0)),
                   scale=float(d.get("scale", 1.0)))


@dataclass(frozen=True)
class PrepSummary:
    """What a fitted prep did, for the CLI to print (:meth:`describe` words it)."""

    numeric: tuple[str, ...]
    boolean: tuple[str, ...]
    categorical: tuple[str, ...]
    n_features: int
    cells_imputed: int
    categories_pooled: int
    scaled: bool

    def describe(self) -> str:
        parts = [f"{len(v)} {k}" for k, v in (("numeric", self.numeric),
                                              ("boolean", self.boolean),
                                              ("categorical", self.categorical)) if v]
        cols = ", ".join(parts) + (" column" if len(self.numeric + self.boolean
                                                     + self.categorical) == 1 else " columns")
        out = f"{cols} → {self.n_features} features"
        out += " (numbers standardized)" if self.scaled else ""
        cells = "cell" if self.cells_imputed == 1 else "cells"
        cats = "category" if self.categories_pooled == 1 else "categories"
        return (f"{out}; {self.cells_imputed:,} missing {cells} imputed, "
                f"{self.categories_pooled:,} rare {cats} pooled")


@dataclass(frozen=True)
class TablePrep:
    """The preprocessing fitted on a training table (see the module docstring): the columns
    it reads, in output order, and what it learned about each."""

    columns: tuple[ColumnPrep, ...]
    scaled: bool
    min_frequency: int = MIN_FREQUENCY
    max_categories: int = MAX_CATEGORIES
    cells_imputed: int = 0
    categories_pooled: int = 0

    def __post_init__(self) -> None:
        if int(self.min_frequency) < 1:
            raise InputError(f"`min_frequency` must be at least 1, got {self.min_frequency}.")
        if int(self.max_categories) < 2:
            raise InputError(f"`max_categories` must be at least 2, got {self.max_categories}.")

    # --- what it makes ------------------------------------------------------------------------
    @property
    def input_columns(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def feature_names(self) -> list[str]:
        return [f for c in self.columns for f in c.feature_names]

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def summary(self) -> PrepSummary:
        def of(kind: str) -> tuple[str, ...]:
            return tuple(c.name for c in self.columns if c.kind == kind)

        return PrepSummary(numeric=of("numeric"), boolean=of("boolean"),
                           categorical=of("categorical"), n_features=self.n_features,
                           cells_imputed=self.cells_imputed,
                           categories_pooled=self.categories_pooled, scaled=self.scaled)

    # --- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": PREP_FORMAT,
            "version": PREP_VERSION,
            "scaled": self.scaled,
            "min_frequency": int(self.min_frequency),
            "max_categories": int(self.max_categories),
            "cells_imputed": int(self.cells_imputed),
            "categories_pooled": int(self.categories_pooled),
            "columns": [c.to_json() for c in self.columns],
            "feature_names": self.feature_names,
        }

    @classmethod
    def from_json(cls, d: dict) -> TablePrep:
        try:
            if d.get("format") != PREP_FORMAT or int(d["version"]) > PREP_VERSION:
                raise ValueError("not a table preprocessing of a version this rdia reads")
            prep = cls(
                columns=tuple(ColumnPrep.from_json(c) for c in d["columns"]),
                scaled=bool(d["scaled"]),
                min_frequency=int(d["min_frequency"]),
                max_categories=int(d["max_categories"]),
                cells_imputed=int(d.get("cells_imputed", 0)),
                categories_pooled=int(d.get("categories_pooled", 0)),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise InputError(f"Malformed table preprocessing ({e}): expected the JSON of "
                             f"`TablePrep.to_json()`, got {d!r:.200}.") from None
        if "feature_names" in d and list(d["feature_names"]) != prep.feature_names:
            raise InputError("Malformed table preprocessing: its `feature_names` do not match "
                             "its columns.")
        return prep

    # --- fit ----------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        table: Any,
        columns: Sequence[str] | None = None,
        *,
        kinds: dict[str, str] | None = None,
        categorical: Sequence[str] = (),
        min_frequency: int = MIN_FREQUENCY,
        max_categories: int = MAX_CATEGORIES,
        name: str = "The table",
        where: Where = _row,
    ) -> TablePrep:
        """Fit on the rows of ``table`` (a ``pyarrow.Table``; the training rows only).

        ``columns``: the feature columns (default: all); ``kinds``: their kinds when already
        known (else :func:`column_kinds` with ``categorical``). ``name`` and ``where`` word the
        errors (e.g. "Training data `a.csv`", "on line 3").
        """
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        columns = list(table.column_names if columns is None else columns)
        if kinds is None:
            kinds = column_kinds(table, columns, categorical=categorical, name=name,
                                 where=where)
        n = table.num_rows
        forced = set(categorical)
        cells_imputed = 0
        for c in columns:
            nulls = table.column(c).null_count
            if n and nulls == n:
                raise _err(name, f"has no value at all in column `{c}`; drop it or give "
                           f"`ignore_cols` (`--ignore-cols {c}`).")
            cells_imputed += nulls
        scaled = any(kinds[c] == "categorical" for c in columns) or cells_imputed > 0
        learned: dict[str, ColumnPrep] = {}

        nums = [c for c in columns if kinds[c] in ("numeric", "boolean")]
        for c in nums:
            x, missing = _numbers(table.column(c), c, name, where)
            strategy = "median" if kinds[c] == "numeric" else "most_frequent"
            imputer = SimpleImputer(strategy=strategy).fit(x[:, None])
            filled, fill = imputer.transform(x[:, None]), float(imputer.statistics_[0])
            mean, scale = 0.0, 1.0
            if kinds[c] == "numeric" and scaled:
                sc = StandardScaler().fit(filled)
                mean, scale = float(sc.mean_[0]), float(sc.scale_[0])
            learned[c] = ColumnPrep(name=c, kind=kinds[c], fill=fill, missing=bool(missing.any()),
                                    mean=mean, scale=scale)

        cats = [c for c in columns if kinds[c] == "categorical"]
        pooled_total = 0
        for c in cats:
            texts = _texts(table.column(c))
            distinct = len(pc.unique(texts))
            if c not in forced and distinct > max(ID_LIKE_FRACTION * n, ID_LIKE_MIN):
                raise _err(name, f"has {distinct:,} distinct values in column `{c}` ({n:,} rows): "
                           "an identifier, not a category; give it as `id_col` (`--id-col "
                           f"{c}`) or `ignore_cols` (`--ignore-cols {c}`).")
            enc = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=min_frequency,
                                max_categories=max_categories, sparse_output=False)
            enc.fit(np.asarray(texts.to_numpy(zero_copy_only=False), dtype=object)[:, None])
            rare = enc.infrequent_categories_[0]
            rare = [] if rare is None else [str(v) for v in rare]
            kept = tuple(str(v) for v in enc.categories_[0] if str(v) not in set(rare))
            pooled_total += len(rare)
            learned[c] = ColumnPrep(name=c, kind="categorical", categories=kept,
                                    pooled=bool(rare))
        return cls(columns=tuple(learned[c] for c in columns), scaled=scaled,
                   min_frequency=int(min_frequency), max_categories=int(max_categories),
                   cells_imputed=int(cells_imputed), categories_pooled=pooled_total)

    # --- apply --------------------------------------------------------------------------------
    def check_columns(self, names: Sequence[str], *, name: str = "The table") -> None:
        """A table to transform must hold every input column (any order, extra ones fine)."""
        have = set(names)
        absent = [c for c in self.input_columns if c not in have]
        if absent:
            cols = ", ".join(f"`{c}`" for c in absent[:10]) + (" ..." if len(absent) > 10 else "")
            raise _err(name, f"lacks the column{'s' if len(absent) > 1 else ''} {cols} the "
                       "model was trained on; give it the training data's feature columns.")

    def transform(self, table: Any, *, name: str = "The table", where: Where = _row
                  ) -> np.ndarray:
        """The float32 (N, n_features) matrix of ``table``, with numpy and pyarrow only."""
        self.check_columns(table.column_names, name=name)
        n = table.num_rows
        X = np.zeros((n, self.n_features), dtype=np.float32)
        j = 0
        for c in self.columns:
            col = table.column(c.name)
            if c.kind == "categorical":
                texts = _texts(col)
                k = len(c.categories)
                idx = pc.index_in(texts, value_set=pa.array(list(c.categories), pa.string()))
                found = pc.is_valid(idx).to_numpy(zero_copy_only=False)
                pos = np.asarray(pc.fill_null(idx, 0).to_numpy(zero_copy_only=False),
                                 dtype=np.int64)
                rows = np.flatnonzero(found)
                X[rows, j + pos[rows]] = 1.0
                if c.pooled:
                    X[~found, j + k] = 1.0
                j += k + int(c.pooled)
                continue
            x, missing = _numbers(col, c.name, name, where)
            x[missing] = c.fill
            if c.kind == "numeric" and self.scaled:
                x -= c.mean
                x /= c.scale
            X[:, j] = x
            j += 1
            if c.missing:
                X[:, j] = missing
                j += 1
        return X


def prep_of(ds: Any) -> TablePrep | None:
    """The prep a Dataset's features were made with (``ds.meta["prep"]``), or None."""
    d = getattr(ds, "meta", {}).get("prep")
    return None if d is None else TablePrep.from_json(d)
