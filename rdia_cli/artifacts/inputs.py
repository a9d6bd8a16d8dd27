"""Which input files an output was made from, and how they were read: recorded in the output's
metadata so that a later stage can read them again (``relabel`` without DATA reads the training
data the scores record; ``retrain`` adds back the clean set a cleaned file records).

For each input NAME the record holds ``NAME_path`` (absolute) and ``NAME_read_options`` (the
reader options as JSON). Standard input is not recorded: it cannot be read twice.
"""

from __future__ import annotations

from dataclasses import asdict, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from rdia_cli.errors import InputError

STDIN = "-"  # the path that means standard input (or output) wherever a path is taken


def absolute(path) -> str | None:
    return None if path is None else str(Path(path).absolute())


def record_inputs(**inputs) -> dict[str, Any]:
    """``{NAME_path, NAME_read_options}`` for each ``NAME=(path, options)``; ``options`` is a
    reader-options dataclass (its IDX ``labels`` file made absolute) or None."""
    out: dict[str, Any] = {}
    for name, (path, options) in inputs.items():
        if path is None or str(path) == STDIN:
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
