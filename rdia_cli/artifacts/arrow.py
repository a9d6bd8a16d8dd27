"""Arrow <-> numpy without pyarrow's pandas bridge (issue #27): ``Array.to_numpy`` and
``pa.array(ndarray)`` import pandas (0.3 s or more at start-up) even for plain numbers, so the
readers and writers of rdia's files convert numeric columns with these two instead."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa


def numpy_of(arr: Any) -> np.ndarray:
    """A numeric Arrow array without nulls as a numpy view (read-only); anything else through
    ``to_numpy``."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    typ = arr.type
    if arr.null_count or not (pa.types.is_integer(typ) or pa.types.is_floating(typ)):
        return arr.to_numpy(zero_copy_only=False)
    dtype = np.dtype(typ.to_pandas_dtype())
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr),
                         offset=arr.offset * dtype.itemsize)


def arrow_of(x: Any) -> pa.Array:
    """A 1-d numeric or boolean numpy array as an Arrow array without nulls (anything else
    through ``pa.array``)."""
    x = np.asarray(x)
    if x.ndim != 1 or x.dtype.kind not in "biuf":
        return pa.array(x)
    x = np.ascontiguousarray(x)
    if x.dtype == np.bool_:
        bits = np.packbits(x, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(x), [None, pa.py_buffer(bits)])
    return pa.Array.from_buffers(pa.from_numpy_dtype(x.dtype), len(x), [None, pa.py_buffer(x)])
