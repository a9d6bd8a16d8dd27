"""Read a torch ``.pt`` file (``torch.save``'s zip archive) into numpy arrays without torch.

An rdia model file is a plain dict of tensors and JSON-able values (``rdia_cli.models``), saved
by ``torch.save``: a zip archive whose ``<folder>/data.pkl`` is a pickle (protocol 2) in which
each tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
backward_hooks)`` and each storage a persistent id ``("storage", torch.<Type>Storage, key,
location, numel)`` naming the raw little-endian bytes in ``<folder>/data/<key>``.

:func:`read_pt` unpickles ``data.pkl`` with an allow-list of exactly those globals, mapped to
numpy (the storage types to dtypes, the rebuild function to a bounds-checked strided view that
is then copied); any other global, a storage whose bytes do not match its declared size, a
tensor view outside its storage, or a non-empty ``backward_hooks`` raises
:class:`UnsupportedPt`. Nothing a file names is ever called: like ``torch.load(...,
weights_only=True)``, but it accepts only what ``rdia train`` writes (the caller may still fall
back to ``torch.load(weights_only=True)`` for anything else, as ``rdia_cli.models.io`` does).

Why: ``import torch`` costs about a second on a small CPU, more than everything else in
`rdia evaluate` or `rdia score` of a small logistic regression (issue #27,
``bench/results/startup.md``).
"""

from __future__ import annotations

import io
import math
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

# torch.<Name>Storage -> numpy dtype (little-endian, as torch writes on every platform it
# supports); torch's types without a numpy equivalent (bfloat16, complex32, quantized) are
# not listed and make the file unsupported here
_STORAGE_DTYPES = {
    "DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?", "ComplexDoubleStorage": "<c16",
    "ComplexFloatStorage": "<c8",
}


class UnsupportedPt(ValueError):
    """The archive is not a plain dict of tensors this reader can map to numpy."""


class _StorageType:
    def __init__(self, name: str):
        self.name, self.dtype = name, np.dtype(_STORAGE_DTYPES[name])


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, backward_hooks=None,
                    metadata=None):
    """``torch._utils._rebuild_tensor_v2`` for numpy: a copy of the strided view, checked to
    lie within its storage."""
    if backward_hooks:
        raise UnsupportedPt("a tensor with backward hooks")
    if not isinstance(storage, np.ndarray) or storage.ndim != 1:
        raise UnsupportedPt("a tensor whose storage is not a persistent storage")
    try:
        offset, size, stride = int(offset), tuple(map(int, size)), tuple(map(int, stride))
    except (TypeError, ValueError):
        raise UnsupportedPt("a tensor with a malformed size or stride") from None
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size) or any(
            s < 0 for s in stride):
        raise UnsupportedPt("a tensor with a malformed size or stride")
    n = math.prod(size)  # Python integers: no overflow
    if n > storage.size:  # a broadcast view (stride 0): never written by rdia, not copied here
        raise UnsupportedPt("a tensor with more elements than its storage")
    if n > 0:
        last = offset + sum((s - 1) * st for s, st in zip(size, stride, strict=True))
        if last >= storage.size:
            raise UnsupportedPt("a tensor that reaches past the end of its storage")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:] if n > 0 else storage[:0], shape=size,
        strides=tuple(st * item for st in stride), writeable=False)
    return np.array(view, copy=True)


_ALLOWED = {("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
            ("collections", "OrderedDict"): OrderedDict}


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, read_storage):
        super().__init__(io.BytesIO(data))
        self._read_storage = read_storage

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsupportedPt(f"the global `{module}.{name}`") from None

    def persistent_load(self, pid):
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType)):
            raise UnsupportedPt(f"the persistent id {pid!r:.80}")
        _, kind, key, _location, numel = pid
        return self._read_storage(str(key), kind.dtype, int(numel))


def read_pt(path: str | Path) -> object:
    """The object ``torch.save`` wrote to ``path``, tensors as numpy arrays (copies, in the
    dtype of their storage). ``zipfile.BadZipFile``/``EOFError``/``OSError``: a damaged file;
    :class:`UnsupportedPt` or ``pickle.UnpicklingError``: not what this reader reads."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise UnsupportedPt("no single `<folder>/data.pkl` in the archive")
        folder = pkl[0][: -len("data.pkl")]
        order = folder + "byteorder"
        if order in names and zf.read(order).strip() not in (b"little", b""):
            raise UnsupportedPt("a big-endian archive")
        cache: dict[str, np.ndarray] = {}

        def read_storage(key: str, dtype: np.dtype, numel: int) -> np.ndarray:
            if key not in cache:
                member = f"{folder}data/{key}"
                if "/" in key or member not in names:
                    raise UnsupportedPt(f"a storage `{key}` the archive does not hold")
                info = zf.getinfo(member)
                if numel < 0 or info.file_size != numel * dtype.itemsize:
                    raise UnsupportedPt(f"storage `{key}` has {info.file_size} bytes, not "
                                        f"{numel} × {dtype.itemsize}")
                cache[key] = np.frombuffer(zf.read(member), dtype=dtype)
            arr = cache[key]
            if arr.dtype != dtype or arr.size != numel:
                raise UnsupportedPt(f"storage `{key}` is named with two types or sizes")
            return arr

        return _Unpickler(zf.read(pkl[0]), read_storage).load()
