"""The one in-memory dataset type every stage passes around."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp


@dataclass
class Dataset:
    """A classification dataset.

    Attributes
    ----------
    X : dense ``np.ndarray`` of shape (N, P) or (N, C, H, W) for images, or
        ``scipy.sparse.csr_matrix`` (N, P). Float32 or float64; never modified in place by rdia.
    y : int64 array (N,) of class *indices* 0..K-1.
    classes : list of class *values* in index order (JSON-able: int, float or str).
    row_id : int64 array (N,): the row's 0-based position in the original input file.
    target : optional float array (N, K) of soft targets; used instead of ``y`` for training.
    weight : optional float array (N,) of sample weights.
    feature_names : names of the P columns for dense tabular data, else None.
    extra : other per-row columns carried through stages (``is_noisy``, ``label_orig``, ``phi``...).
    meta : free-form JSON-able metadata read from the file (``rdia.*`` keys, without the prefix).
    source : where it came from (a path), for error messages.
    table : optional ``pyarrow.Table``, row-aligned with X: the input table's own columns as
        they came (ID, label under its original name, strings, blanks), for a user's table; the
        writers put it back out around rdia's columns (``meta["columns"]`` names the roles).
    """

    X: Any
    y: np.ndarray
    classes: list
    row_id: np.ndarray
    target: np.ndarray | None = None
    weight: np.ndarray | None = None
    feature_names: list[str] | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = "<memory>"
    table: Any = None

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=np.int64)
        self.row_id = np.asarray(self.row_id, dtype=np.int64)
        n = self.X.shape[0]
        for name in ("y", "row_id", "target", "weight", "table"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(
                    f"Dataset `{name}` has {len(value)} rows but X has {n} rows ({self.source})."
                )

    @classmethod
    def from_pandas(
        cls,
        df: Any,
        label: str | None = None,
        id: str | None = None,
        ignore: tuple[str, ...] = (),
        categorical: tuple[str, ...] = (),
        prep: Any = None,
        like: Any = None,
    ) -> Dataset:
        """A DataFrame as a Dataset, read like a CSV/Parquet table (``pa.Table.from_pandas``,
        the index dropped): ``label`` is the label column, ``id`` a column of unique row IDs,
        ``ignore`` columns kept in ``table`` but not features, ``categorical`` columns one-hot
        encoded even if numeric. Text, ``category``, boolean columns and missing cells go through
        a :class:`~rdia_cli.data.tables.TablePrep` fitted here, or ``prep`` (a TablePrep or its
        JSON, e.g. ``TablePrep.from_json(train.meta["prep"])``) applied instead.

        ``like``: the training Dataset or a model — validation and test data then get its
        classes, feature space, prep and column options (``label`` defaults to its label
        column, else ``label``)."""
        import pyarrow as pa

        from rdia_cli.data.readers import ReadOptions, read_table

        opts = ReadOptions(label_col=label, id_col=id, ignore_cols=tuple(ignore),
                           categorical=tuple(categorical))
        schema = None
        if like is not None:
            from rdia_cli.data.readers import Schema

            schema = Schema.of(like) if isinstance(like, Dataset) else Schema.from_json(like.meta)
        return read_table(pa.Table.from_pandas(df, preserve_index=False), opts, prep=prep,
                          schema=schema, source="<DataFrame>")

    # --- shape ---------------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Flattened input width P."""
        return int(np.prod(self.X.shape[1:]))

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def is_sparse(self) -> bool:
        return sp.issparse(self.X)

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        """(C, H, W) for image data, else None."""
        return tuple(int(s) for s in self.X.shape[1:]) if self.X.ndim == 4 else None

    def flat_X(self):
        """X as a 2-D (N, P) matrix (images flattened, sparse kept sparse)."""
        if self.is_sparse or self.X.ndim == 2:
            return self.X
        return self.X.reshape(self.X.shape[0], -1)

    def targets(self) -> np.ndarray:
        """Soft targets (N, K) if present, else the one-hot of ``y`` (float64)."""
        if self.target is not None:
            return np.asarray(self.target, dtype=np.float64)
        t = np.zeros((self.n_samples, self.n_classes), dtype=np.float64)
        t[np.arange(self.n_samples), self.y] = 1.0
        return t

    def label_values(self) -> np.ndarray:
        """The original label values (not indices) of every row."""
        return np.asarray(self.classes, dtype=object)[self.y]

    def ids(self) -> tuple[str, Any] | None:
        """(name, values) of the table's ID column (``--id-col``), or None without one."""
        name = (self.meta.get("columns") or {}).get("id")
        if not name or self.table is None or name not in self.table.column_names:
            return None
        return str(name), self.table.column(name).combine_chunks()

    def to_pandas(self):
        """A ``pandas.DataFrame`` with the columns a CSV output of this Dataset has
        (:mod:`rdia_cli.data.writers`): a user's ``table`` with the new labels and rdia's columns
        after it, or ``label``, the features and rdia's columns; ``row_id`` last unless the table
        has an ID column. InputError for data too wide for one column per feature."""
        from rdia_cli.data.writers import output_table

        return output_table(self).to_pandas()

    # --- derived datasets ----------------------------------------------------------------------
    def subset(self, idx: np.ndarray) -> Dataset:
        """Rows ``idx`` (an index or boolean array); row_id kept, so results join back."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)

        def take(a):
            return None if a is None else a[idx]

        return Dataset(
            X=self.X[idx],
            y=self.y[idx],
            classes=list(self.classes),
            row_id=self.row_id[idx],
            target=take(self.target),
            weight=take(self.weight),
            feature_names=self.feature_names,
            extra={k: v[idx] for k, v in self.extra.items()},
            meta=dict(self.meta),
            source=self.source,
            table=None if self.table is None else self.table.take(idx),
        )

    def fingerprint(self) -> str:
        """Content hash of features, labels (as values) and row ids: 16 hex chars.

        Independent of the file format, so the same data read from LIBSVM or from the Parquet
        that rdia wrote gives the same fingerprint. Soft targets and weights are not included:
        a relabeled file keeps the fingerprint of the data it came from.
        """
        if "_fingerprint" in self.__dict__:
            return self.__dict__["_fingerprint"]
        h = hashlib.blake2b(digest_size=8)
        X = self.X
        if sp.issparse(X):
            X = X.tocsr()
            X.sort_indices()
            h.update(b"csr")
            h.update(np.asarray(X.shape, np.int64).tobytes())
            _hash_chunks(h, X.indptr, np.int64)
            _hash_chunks(h, X.indices, np.int64)
            _hash_chunks(h, X.data, np.float32)
        else:
            h.update(b"dense")
            h.update(np.asarray(self.flat_X().shape, np.int64).tobytes())
            _hash_chunks(h, self.flat_X(), np.float32)
        h.update(repr([str(c) for c in self.classes]).encode())
        _hash_chunks(h, self.y, np.int64)
        _hash_chunks(h, self.row_id, np.int64)
        self.__dict__["_fingerprint"] = h.hexdigest()
        return self.__dict__["_fingerprint"]


def _hash_chunks(h, a: np.ndarray, dtype, chunk_bytes: int = 1 << 24) -> None:
    """``h.update`` with ``a`` as ``dtype``, C order, a few MB at a time: the same digest as
    hashing the whole converted array, without an array-sized temporary."""
    a = np.asarray(a)
    rows = max(1, chunk_bytes // max(1, np.dtype(dtype).itemsize * int(np.prod(a.shape[1:]))))
    for s in range(0, a.shape[0], rows):
        h.update(np.ascontiguousarray(a[s : s + rows], dtype=dtype))
