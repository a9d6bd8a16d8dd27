"""Saving and loading model files (see ``rdia_cli.models``)."""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdia_cli.artifacts.atomic import atomic_path, without_timings
from rdia_cli.artifacts.inputs import is_stream, pipe_bytes
from rdia_cli.errors import InputError

FORMAT = "rdia-model"
VERSION = 1


@dataclass
class ModelFile:
    arch: str
    arch_args: dict[str, Any]
    state: dict[str, Any]  # name -> torch.Tensor (numpy.ndarray: ``load_model(arrays="numpy")``)
    meta: dict[str, Any] = field(default_factory=dict)
    path: str = "<memory>"

    @property
    def classes(self) -> list:
        return list(self.meta["classes"])

    @property
    def n_classes(self) -> int:
        return len(self.meta["classes"])

    @property
    def n_features(self) -> int:
        return int(self.meta["n_features"])


def save_model(model: ModelFile, path: str | Path) -> None:
    """Write ``model`` to ``path`` atomically. The same model gives the same bytes: timings
    are not stored (see ``_deterministic_bytes``)."""
    json.dumps(model.meta)  # fail early on anything not JSON-able
    json.dumps(model.arch_args)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": model.arch,
        "arch_args": model.arch_args,
        "state": {k: _tensor(v) for k, v in model.state.items()},
        "meta": model.meta,
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(_deterministic_bytes(payload))


def _tensor(v):
    """A weight as the CPU tensor the file stores (from a tensor or a numpy array)."""
    import torch

    return torch.as_tensor(v).detach().cpu().contiguous()


def _deterministic_bytes(payload: dict) -> bytes:
    """``torch.save(payload)`` as bytes that depend on ``payload`` alone: saved to memory (so
    the archive's folder is `archive`, not the temporary file's name), wall-clock timings left
    out of the metadata (``without_timings``), and the random `.data/serialization_id` torch
    writes replaced by one derived from the rest of the file."""
    import hashlib
    import io

    import torch

    payload = dict(payload, meta=without_timings(payload["meta"]))
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = bytearray(buf.getvalue())
    _set_zip_member(data, "/.data/serialization_id", lambda old: b"0" * len(old))
    digest = int(hashlib.sha256(bytes(data)).hexdigest(), 16)
    _set_zip_member(data, "/.data/serialization_id",
                    lambda old: str(digest % 10 ** len(old)).zfill(len(old)).encode())
    return bytes(data)


def _set_zip_member(data: bytearray, suffix: str, new) -> None:
    """Replace, in place, the bytes of the stored (uncompressed) zip member whose name ends with
    ``suffix`` by ``new(old)`` of the same length, and fix its CRC-32 wherever the archive keeps
    it (local header, data descriptor, central directory). No such member: nothing changes."""
    import io
    import struct
    import zipfile
    import zlib

    zf = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = next((i for i in zf.infolist() if i.filename.endswith(suffix)), None)
    if info is None or info.compress_type != zipfile.ZIP_STORED:
        return
    at = info.header_offset
    name_len, extra_len = struct.unpack_from("<HH", data, at + 26)
    start = at + 30 + name_len + extra_len
    old = bytes(data[start:start + info.file_size])
    value = new(old)
    if len(value) != len(old):
        raise ValueError("a zip member can only be replaced by bytes of the same length")
    data[start:start + len(value)] = value
    crc = zlib.crc32(value) & 0xFFFFFFFF
    if struct.unpack_from("<I", data, at + 14)[0] != 0:
        struct.pack_into("<I", data, at + 14, crc)
    if info.flag_bits & 0x08:  # data descriptor after the data, with or without a signature
        end = start + len(value)
        off = end + 4 if data[end:end + 4] == b"PK\x07\x08" else end
        struct.pack_into("<I", data, off, crc)
    central = data.find(b"PK\x01\x02", zf.start_dir)
    while central != -1:
        n_len, e_len, c_len = struct.unpack_from("<HHH", data, central + 28)
        fname = bytes(data[central + 46:central + 46 + n_len]).decode("utf-8")
        if fname == info.filename:
            struct.pack_into("<I", data, central + 16, crc)
            break
        central = data.find(b"PK\x01\x02", central + 46 + n_len + e_len + c_len)


def load_model(path: str | Path, *, arrays: str = "torch") -> ModelFile:
    """Read a model file; anything else is an ``InputError`` naming the file.

    ``arrays``: the type of the weights in ``state``, ``"torch"`` (tensors) or ``"numpy"``
    (arrays, read by ``rdia_cli.models.ptfile`` without importing torch; a file that reader
    does not accept is read by ``torch.load(weights_only=True)`` and converted)."""
    import pickle
    import zipfile

    if arrays not in ("torch", "numpy"):
        raise ValueError(f"`arrays` must be torch or numpy, not {arrays!r}.")
    p = Path(path)
    if not p.exists():
        raise InputError(f"Model file `{p}` does not exist.")
    source = p
    if is_stream(p):  # a pipe (`<(cat m.pt)`) can be read once: into memory
        import io

        source = io.BytesIO(pipe_bytes(p))
    with open(p, "rb") if source is p else contextlib.nullcontext(source) as f:
        if f.read(4) != b"PK\x03\x04":  # torch.save writes a zip archive
            raise InputError(
                f"`{p}` is not an rdia model file (not a torch file); give a file written by "
                "`rdia train`."
            )
    try:
        payload = _read_numpy(source) if arrays == "numpy" else None
        if payload is None:
            import torch

            if source is not p:
                source.seek(0)  # after the magic bytes, or what ptfile read
            payload = torch.load(source, map_location="cpu", weights_only=True)
            if arrays == "numpy" and isinstance(payload, dict) and isinstance(
                    payload.get("state"), dict):
                payload["state"] = {k: v.numpy() if isinstance(v, torch.Tensor) else v
                                    for k, v in payload["state"].items()}
    except (pickle.UnpicklingError, RuntimeError, TypeError, zipfile.BadZipFile, EOFError,
            OSError) as e:
        kind = "a damaged torch file" if isinstance(e, (zipfile.BadZipFile, EOFError)) else (
            "it holds objects other than tensors and plain data"
        )
        raise InputError(
            f"`{p}` is not an rdia model file ({kind}); give a file written by `rdia train`."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"`{p}` is not an rdia model file (no `format: {FORMAT}` entry).")
    if payload.get("version") != VERSION:
        raise InputError(
            f"`{p}` is an rdia model file of version {payload.get('version')}; "
            f"this rdia reads version {VERSION}."
        )
    from rdia_cli.models.kinds import KINDS

    if not isinstance(payload.get("arch"), str) or payload["arch"] not in KINDS:
        raise InputError(f"`{p}` has unknown architecture {payload.get('arch')!r}.")
    _check_contents(payload, p)
    return ModelFile(
        arch=payload["arch"],
        arch_args=dict(payload["arch_args"]),
        state=dict(payload["state"]),
        meta=dict(payload["meta"]),
        path=str(p),
    )


def _read_numpy(p) -> dict | None:
    """The payload with numpy weights, read without torch (``ptfile.read_pt``); None where that
    reader does not accept the file (torch.load then decides). A damaged archive raises as
    torch.load would."""
    import zipfile

    from rdia_cli.models.ptfile import read_pt

    try:
        return read_pt(p)
    except (zipfile.BadZipFile, EOFError, OSError):
        raise
    except Exception:  # noqa: BLE001 - UnsupportedPt or a malformed pickle: torch.load decides
        return None


def _is_array(v) -> bool:
    """A weight: a torch tensor or a numpy array (without importing torch)."""
    import numpy as np

    if isinstance(v, np.ndarray):
        return True
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(v, torch.Tensor)


def _all_finite(v) -> bool:
    import numpy as np

    if isinstance(v, np.ndarray):
        return not np.issubdtype(v.dtype, np.inexact) or bool(np.isfinite(v).all())
    import torch

    return not v.is_floating_point() or bool(torch.isfinite(v).all())


def _check_contents(payload: dict, p: Path) -> None:
    """The entries, the weights' names and shapes, and the metadata agree with each other and
    with ``arch``; the weights are finite. Anything else is an ``InputError`` naming ``p``."""

    def bad(what: str) -> InputError:
        return InputError(f"Model file `{p}` is damaged: {what}; make it again with `rdia train`.")

    for key in ("arch_args", "state", "meta"):
        if not isinstance(payload.get(key), dict):
            raise bad(f"its `{key}` entry is missing or not a mapping")
    args, state, meta = payload["arch_args"], payload["state"], payload["meta"]
    if not all(_is_array(v) for v in state.values()):
        raise bad("its `state` holds values that are not tensors")
    classes = meta.get("classes")
    if not isinstance(classes, list) or len(classes) < 2 or len(set(map(str, classes))) != len(
            classes):
        raise bad(f"its metadata `classes` is {classes!r}, not a list of 2 or more distinct values")
    k = args.get("n_classes")
    if k != len(classes):
        raise bad(f"its metadata has {len(classes)} classes {classes} but the weights are for "
                  f"{k!r} classes")
    n_features = meta.get("n_features")
    if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
        raise bad(f"its metadata `n_features` is {n_features!r}, not a positive integer")
    expected = _expected_shapes(payload["arch"], args, n_features, bad)
    got = {name: tuple(t.shape) for name, t in state.items()}
    missing = [n for n in expected if n not in got]
    extra = [n for n in got if n not in expected]
    if missing or extra:
        raise bad(", ".join(
            ([f"missing weights {', '.join(f'`{n}`' for n in missing)}"] if missing else [])
            + ([f"weights {', '.join(f'`{n}`' for n in extra)}, which a `{payload['arch']}` "
                "model does not have"] if extra else [])))
    for name, shape in expected.items():
        if got[name] != shape:
            raise bad(f"weight `{name}` has shape {list(got[name])}, expected {list(shape)}")
    for name, t in state.items():
        if not _all_finite(t):
            raise bad(f"weight `{name}` holds NaN or infinite values")


def _expected_shapes(arch: str, args: dict, n_features: int, bad) -> dict[str, tuple]:
    """Name -> shape of the weights a model ``arch`` built from ``args`` has."""
    k = args["n_classes"]
    if arch == "logreg":
        width = 1 if k == 2 else k
        return {"weight": (n_features, width), "bias": (width,)}
    import math

    import torch

    from rdia_cli.models.nets.arch import build_net

    shape = args.get("input_shape")
    if (not isinstance(shape, list | tuple) or not shape
            or not all(isinstance(s, int) and s > 0 for s in shape)):
        raise bad(f"its `arch_args` `input_shape` is {shape!r}, not a list of positive sizes")
    if math.prod(shape) != n_features:
        raise bad(f"its `input_shape` {list(shape)} does not hold its {n_features} features")
    try:
        with torch.device("meta"):
            net = build_net(arch, args)
    except (InputError, KeyError, TypeError, ValueError, RuntimeError) as e:
        raise bad(f"its `arch_args` do not describe a `{arch}` network ({e})") from None
    return {name: tuple(t.shape) for name, t in net.state_dict().items()}
