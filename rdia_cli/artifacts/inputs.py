"""Which input files an output was made from, and how they were read: recorded in the output's
metadata so that a later stage can read them again (``relabel`` without DATA reads the training
data the scores record; ``retrain`` adds back the clean set a cleaned file records).

For each input NAME the record holds ``NAME_path`` (absolute) and ``NAME_read_options`` (the
reader options as JSON). Standard input and pipes are not recorded: they cannot be read twice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from rdia_cli.errors import InputError

STDIN = "-"  # the path that means standard input (or output) wherever a path is taken


def is_stream(path) -> bool:
    """A path that can be read only once, from the start: a named pipe (`mkfifo`), a process
    substitution (`<(cat a.svm)`, /dev/fd/N), a character device, a socket. Not `-`."""
    if path is None or str(path) == STDIN:
        return False
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


_PIPES: dict[str, bytes] = {}


def pipe_bytes(path) -> bytes:
    """The bytes of a pipe (:func:`is_stream`), read the first time it is asked for and kept
    for this process: a model file given as `<(cat m.pt)` is loaded, then fingerprinted."""
    key = str(path)
    if key not in _PIPES:
        with open(path, "rb") as f:
            _PIPES[key] = f.read()
    return _PIPES[key]


@contextlib.contextmanager
def read_once(stream: BinaryIO, empty: Callable[[], Exception], *, prefix: str = ".rdia-pipe."
              ) -> Iterator[str]:
    """Copy ``stream`` (standard input, a pipe) into a temporary file named ``prefix``...,
    removed afterwards, and yield its path: readers seek, detect formats by content and read
    twice, which a pipe cannot do. Raises ``empty()`` when nothing came."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(stream, f)
        if os.path.getsize(tmp) == 0:
            raise empty()
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def absolute(path) -> str | None:
    return None if path is None else str(Path(path).absolute())


def record_inputs(**inputs) -> dict[str, Any]:
    """``{NAME_path, NAME_read_options}`` for each ``NAME=(path, options)``; ``options`` is a
    reader-options dataclass (its IDX ``labels`` file made absolute) or None."""
    out: dict[str, Any] = {}
    for name, (path, options) in inputs.items():
        if path is None or str(path) == STDIN or is_stream(path):
            continue
        out[f"{name}_path"] = absolute(path)
        if options is None:
            continue
        if getattr(options, "labels", None) is not None:
            options = replace(options, labels=absolute(options.labels))
        out[f"{name}_read_options"] = {k: (list(v) if isinstance(v, tuple) else v)
                                       for k, v in asdict(options).items()}
    return out


def recorded_options(meta: dict, name: str, options_type):
    """The ``options_type`` (a dataclass) recorded for input NAME; lists back to tuples, fields
    this version does not know are ignored, missing ones take their defaults."""
    raw = meta.get(f"{name}_read_options")
    raw = dict(raw) if isinstance(raw, dict) else {}
    known = {f.name for f in fields(options_type)} if is_dataclass(options_type) else set(raw)
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items() if k in known}
    return options_type(**values)


def recorded_path(meta: dict, name: str, what: str, fix: str) -> Path:
    """The absolute path recorded for input NAME, or an InputError saying what to give
    instead (``fix``, e.g. "give --val")."""
    path = meta.get(f"{name}_path")
    if not path:
        raise InputError(f"the scores do not record their {what} (made from standard input or "
                         f"by an older rdia); {fix}.")
    if not Path(path).exists():
        raise InputError(f"the scores were computed on {what} `{path}`, which no longer "
                         f"exists; {fix}.")
    return Path(path)
