"""IDX files (MNIST): a uint8 image file plus its label file, images scaled to [0, 1]."""

from __future__ import annotations

import math
import struct

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
from rdia_cli.errors import InputError

IDX_IMAGES_MAGIC = b"\x00\x00\x08\x03"
IDX_LABELS_MAGIC = b"\x00\x00\x08\x01"
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _parse_idx(data: bytes, name: str) -> np.ndarray:
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in _IDX_DTYPES:
        raise InputError(f"{name} is not an IDX file (bad magic number {data[:4].hex()}).")
    ndim = data[3]
    head = 4 + 4 * ndim
    if ndim == 0 or len(data) < head:
        raise InputError(f"{name} has a truncated IDX header.")
    dims = struct.unpack(f">{ndim}I", data[4:head])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    count = math.prod(dims)  # Python ints: a forged header cannot overflow to a small count
    if len(data) - head != count * dtype.itemsize:
        raise InputError(
            f"{name} holds {len(data) - head} data bytes, but its header {list(dims)} needs "
            f"{count * dtype.itemsize}; the file is truncated or corrupt."
        )
    return np.frombuffer(data, dtype=dtype, count=count, offset=head).reshape(dims)


def read_idx(src: Source, opts: ReadOptions, schema: Schema | None) -> Parsed:
    data = read_all(src)
    if not data:
        raise src.error("is empty (after decompression).")
    if data[:4] == IDX_LABELS_MAGIC:
        raise src.error(
            "is an IDX label file; give the IDX image file as the data and this one as "
            "`labels` (`--labels`)."
        )
    if data[:4] != IDX_IMAGES_MAGIC:
        raise src.error(
            f"is not an IDX image file (magic number {data[:4].hex()}, expected 00000803 for "
            "uint8 images); pass `format` (`--format`) if it is another format."
        )
    images = _parse_idx(data, src.name)
    del data
    if opts.labels is None:
        raise src.error(
            "is an IDX image file, which holds no labels; pass the matching IDX label file "
            "with `labels` (`--labels`), e.g. train-labels-idx1-ubyte.gz."
        )
    lname = f"Label file `{opts.labels}` (for {src.what} `{src.shown}`)"
    src.check_file(opts.labels, lname)
    ldata = read_all(src, opts.labels, lname)
    if ldata[:4] != IDX_LABELS_MAGIC:
        raise InputError(
            f"{lname} is not an IDX label file (magic number {ldata[:4].hex()}, expected 00000801)."
        )
    y = _parse_idx(ldata, lname)
    if len(y) != len(images):
        raise InputError(
            f"{lname} has {len(y)} labels, but the image file has {len(images)} images; give "
            "the label file that belongs to the images."
        )
    X = scale_pixels(images[:, None, :, :])

    return image_rows(X, y, src, "image")
