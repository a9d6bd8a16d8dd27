"""CIFAR-10 binary batches: 3073-byte records (label byte, 3 x 32 x 32 pixels), scaled to [0, 1]."""

from __future__ import annotations

import numpy as np

from rdia_cli.data.formats.common import (
    Parsed,
    ReadOptions,
    Schema,
    Source,
    image_rows,
    read_all,
    scale_pixels,
)

CIFAR_RECORD = 3073  # 1 label byte + 3 x 32 x 32 pixel bytes


def read_cifar(src: Source, opts: ReadOptions, schema: Schema | None) -> Parsed:
    data = read_all(src)
    if len(data) == 0:
        raise src.error("is empty.")
    if len(data) % CIFAR_RECORD:
        raise src.error(
            f"holds {len(data)} bytes, not a whole number of {CIFAR_RECORD}-byte CIFAR-10 "
            "records (1 label byte + 3072 pixel bytes); CIFAR-100 files are not supported."
        )
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    y = rec[:, 0]
    if (y > 9).any():
        r = int(np.flatnonzero(y > 9)[0])
        raise src.error(
            f"has label byte {int(y[r])} in record {r + 1}, not a CIFAR-10 class 0-9; "
            "CIFAR-100 files are not supported."
        )
    X = scale_pixels(rec[:, 1:].reshape(-1, 3, 32, 32))
    del rec, data
    return image_rows(X, y, src, "record", class_order=list(range(10)))
