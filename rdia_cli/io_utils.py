"""Atomic output files and input/output path checks."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rdia_cli.errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[str]:
    """Yield a temporary path in the same folder; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise InputError(f"Output folder `{folder}` does not exist.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_output(output: str | Path, *inputs: str | Path | None) -> None:
    """Refuse an output path that is one of the inputs."""
    out = Path(output).resolve()
    for inp in inputs:
        if inp is None:
            continue
        if Path(inp).resolve() == out:
            raise InputError(
                f"Output `{output}` is also an input; write to another path "
                "(rdia never overwrites its inputs)."
            )
