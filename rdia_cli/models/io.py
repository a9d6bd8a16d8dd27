"""Saving and loading model files (see ``rdia_cli.models``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdia_cli.errors import InputError
from rdia_cli.io_utils import atomic_path

FORMAT = "rdia-model"
VERSION = 1
ARCHS = ("logreg", "mlp", "lenet", "cnn")


@dataclass
class ModelFile:
    arch: str
    arch_args: dict[str, Any]
    state: dict[str, Any]  # name -> torch.Tensor
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
    """Write ``model`` to ``path`` atomically."""
    import torch

    json.dumps(model.meta)  # fail early on anything not JSON-able
    json.dumps(model.arch_args)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": model.arch,
        "arch_args": model.arch_args,
        "state": {k: v.detach().cpu().contiguous() for k, v in model.state.items()},
        "meta": model.meta,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_model(path: str | Path) -> ModelFile:
    """Read a model file; anything else is an ``InputError`` naming the file."""
    import pickle
    import zipfile

    import torch

    p = Path(path)
    if not p.exists():
        raise InputError(f"Model file `{p}` does not exist.")
    with open(p, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # torch.save writes a zip archive
            raise InputError(
                f"`{p}` is not an rdia model file (not a torch file); give a file written by "
                "`rdia train`."
            )
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, OSError) as e:
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
    if payload.get("arch") not in ARCHS:
        raise InputError(f"`{p}` has unknown architecture {payload.get('arch')!r}.")
    return ModelFile(
        arch=payload["arch"],
        arch_args=dict(payload["arch_args"]),
        state=dict(payload["state"]),
        meta=dict(payload["meta"]),
        path=str(p),
    )
