"""Writing LIBSVM/SVMlight text: ``label index:value ...``, one line per row.

The indices use the input's base (``writers.index_base``: 1-based unless the input was 0-based
LIBSVM), zeros are left out, and each value is printed with ``%.9g``, which gives the float32
back exactly. Labels are the class *values* (numbers only), hard labels only: on a row with
``extra["relabeled"]`` the new label is the top class of its ``target``. Soft targets, weights and
every other column cannot be carried by the format and are not written; soft targets get a
one-line :class:`~rdia_cli.data.readers.DataWarning` (write Parquet or CSV to keep them).
"""

from __future__ import annotations

import warnings
from typing import IO

import numpy as np
import scipy.sparse as sp

from rdia_cli.artifacts.metadata import jsonable
from rdia_cli.data.dataset import Dataset
from rdia_cli.data.readers import DataWarning
from rdia_cli.errors import InputError


def hard_labels(ds: Dataset) -> np.ndarray:
    """``ds.y``, with the top class of ``target`` on the rows ``extra["relabeled"]`` marks."""
    y = np.asarray(ds.y, dtype=np.int64).copy()
    relabeled = ds.extra.get("relabeled")
    if ds.target is not None and relabeled is not None:
        rows = np.flatnonzero(np.asarray(relabeled, dtype=bool))
        if rows.size:
            y[rows] = np.asarray(ds.target)[rows].argmax(1)
    return y


def write_libsvm(ds: Dataset, sink: IO[bytes], *, shown: str, chunk_rows: int = 65536) -> None:
    """Write ``ds`` as LIBSVM text into the binary file ``sink`` (module docstring)."""
    from rdia_cli.data.writers import index_base

    classes = [jsonable(c) for c in ds.classes]
    if not all(isinstance(c, bool | int | float) for c in classes):
        raise InputError(
            f"Cannot write `{shown}`: LIBSVM labels are numbers, but the classes are "
            f"{classes[:10]}; write .csv or .parquet instead."
        )
    text = [str(int(c)) if isinstance(c, bool | int) or float(c).is_integer() else repr(float(c))
            for c in classes]
    y = hard_labels(ds)
    _warn_dropped(ds, y, shown)
    base = index_base(ds)
    X = ds.flat_X()
    n = ds.n_samples
    for a in range(0, n, max(1, chunk_rows)):
        b = min(n, a + chunk_rows)
        block = X[a:b]
        block = block.tocsr() if sp.issparse(block) else sp.csr_matrix(np.asarray(block))
        block.sort_indices()
        pairs = [f"{i}:{v:.9g}" for i, v in zip((block.indices.astype(np.int64) + base).tolist(),
                                                 block.data.astype(np.float32).tolist(),
                                                 strict=True)]
        ptr = block.indptr
        lines = []
        for r in range(b - a):
            s, e = int(ptr[r]), int(ptr[r + 1])
            label = text[int(y[a + r])]
            lines.append(" ".join([label, *pairs[s:e]]) if e > s else label)
        sink.write(("\n".join(lines) + "\n").encode())


def _warn_dropped(ds: Dataset, y: np.ndarray, shown: str) -> None:
    """One DataWarning when rows carry soft targets that LIBSVM cannot hold."""
    if ds.target is None and "target_raw" not in ds.extra:
        return
    soft = "target_raw" in ds.extra
    if ds.target is not None and not soft:
        t = np.asarray(ds.target, dtype=np.float64)
        soft = not np.array_equal(t, np.eye(ds.n_classes)[y])
    if soft:
        warnings.warn(
            f"`{shown}`: LIBSVM holds hard labels only, so the soft targets are not written "
            "(each row gets its top class); write .parquet or .csv to keep them.",
            DataWarning, stacklevel=3,
        )
