"""The ``rdia.*`` key/value metadata of rdia's Parquet files (data, scores, cleaned files).

Each entry is the key ``rdia.<name>`` and the JSON text of its value, both UTF-8 bytes; keys
without the prefix belong to others (pyarrow, pandas) and are skipped when decoding.
:func:`encode` is what :func:`~rdia_cli.data.writers.write_dataset` stores; :func:`decode` is
what the readers use. The readers differ in how strict they are with a damaged file, so that is
a parameter of :func:`decode` (see there).
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
