"""The ``rdia.*`` key/value metadata of rdia's Parquet files (data, scores, cleaned files).

Each entry is the key ``rdia.<name>`` and the JSON text of its value, both UTF-8 bytes; keys
without the prefix belong to others (pyarrow, pandas) and are skipped when decoding.
:func:`encode` is what :func:`~rdia_cli.data.writers.write_dataset` stores; :func:`decode` is
what the readers use. The readers differ in how strict they are with a damaged file, so that is
a parameter of :func:`decode` (see there).

:func:`jsonable` turns numpy scalars and arrays into plain Python values (give
:func:`json_default` as ``encode``'s ``default``); :func:`classes_array` is the one way rdia
writes class values as an Arrow column (the data files' and the scores file's ``label``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from rdia_cli.errors import InputError

META_PREFIX = "rdia."


def encode(
    meta: Mapping[Any, Any], *, default: Callable[[Any], Any] | None = None
) -> dict[bytes, bytes]:
    """``{b"rdia.<key>": JSON bytes}`` for every item of ``meta``, in its order.

    ``default`` is passed to :func:`json.dumps` for values JSON cannot store (numpy scalars...).
    A value it still cannot store is an InputError naming the key.
    """
    encoded = {}
    for k, v in meta.items():
        try:
            text = json.dumps(v, default=default)
        except TypeError as e:
            raise InputError(f"Metadata `{k}` is not JSON-serialisable: {e}.") from None
        encoded[(META_PREFIX + str(k)).encode()] = text.encode()
    return encoded


def jsonable(v: Any) -> Any:
    """``v`` as a plain Python value where numpy made it something else: a numpy scalar becomes
    its ``.item()``, an array or a tuple/set a list; anything else is returned as it is."""
    import numpy as np

    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, tuple | set):
        return list(v)
    return v


def json_default(v: Any) -> Any:
    """:func:`json.dumps`'s ``default``: :func:`jsonable`, or TypeError for what it cannot turn
    into JSON."""
    out = jsonable(v)
    if out is v:
        raise TypeError(f"{type(v).__name__} is not JSON-able")
    return out


def classes_array(classes: Any) -> Any:
    """The class values as a ``pyarrow.Array``, in index order: int64 when every value is an
    integer (or bool), float64 when every value is a number, else strings. ``.take(y)`` of it
    is a label column of class indices ``y``."""
    import numpy as np
    import pyarrow as pa

    from rdia_cli.artifacts.arrow import arrow_of

    values = [jsonable(c) for c in classes]
    if all(isinstance(c, bool | int) for c in values):
        return arrow_of(np.asarray(values, dtype=np.int64).reshape(-1))
    if all(isinstance(c, bool | int | float) for c in values):
        return arrow_of(np.asarray(values, dtype=np.float64).reshape(-1))
    return pa.array([str(c) for c in values], type=pa.string())


def decode(
    raw: Mapping[bytes, bytes] | None,
    *,
    key_errors: str = "strict",
    raw_on: type[Exception] | tuple[type[Exception], ...] = (),
) -> dict[str, Any]:
    """``{name: value}`` of the ``rdia.<name>`` entries of ``raw`` (a schema's metadata), in
    file order; other keys are skipped.

    ``key_errors``  how keys that are not UTF-8 are decoded (:meth:`bytes.decode`'s ``errors``):
                    "strict" raises UnicodeDecodeError, "replace" reads them with U+FFFD.
    ``raw_on``      the exceptions of :func:`json.loads` on which a value is kept as its raw
                    text (decoded with U+FFFD for bad bytes) instead of raising: ``()`` (any bad
                    value raises), ``json.JSONDecodeError`` (text that is not JSON), or
                    ``ValueError`` (that, and bytes that are not text).
    """
    meta: dict[str, Any] = {}
    for k, v in (raw or {}).items():
        key = k.decode(errors=key_errors)
        if key.startswith(META_PREFIX):
            name = key[len(META_PREFIX) :]
            try:
                meta[name] = json.loads(v)
            except raw_on:
                meta[name] = v.decode(errors="replace")
    return meta
