"""The files of a run folder (`rdia run -o DIR`): which files are the run's, moving an earlier
run's files aside while a new run writes, and JSON written atomically."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

from rdia_cli.artifacts.atomic import atomic_path


def write_json(path: Path, payload, *, default=None) -> None:
    """``payload`` as indented JSON plus a newline, written atomically (``default`` as in
    :func:`json.dump`)."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(payload, f, indent=2, default=default)
        f.write("\n")


def is_run_file(name: str, models: tuple[str, ...]) -> bool:
    """Whether ``name`` is a file `rdia run` writes (``rdia_cli.pipeline``'s docstring; ``models``
    the names of its NAME.pt files besides erm) or a temp file of one."""
    if name.startswith(".") and name.endswith(".tmp"):
        return any(is_run_file(name[1:].split(".", 2)[0] + "." + ext, models)
                   for ext in ("pt", "parquet", "json"))
    if name in ("erm.pt", "scores.parquet", "cleaned.parquet", "metrics.json", "run.json"):
        return True
    if name.startswith("cleaned-") and name.endswith(".parquet"):
        return True
    return name.endswith(".pt") and name[:-3] in models


class PreviousRun:
    """The files an earlier `rdia run` left in ``outdir``, moved into a hidden folder inside it
    for the time of the new run, so that the folder never holds a mix of two runs: ``restore``
    (on failure) removes the new run's files and puts the old ones back, ``discard`` (on
    success) deletes them. Files that are not the run's (the data, your notes) stay put."""

    def __init__(self, outdir: Path, inputs, models: tuple[str, ...]) -> None:
        import tempfile

        self.outdir = outdir
        self.models = models
        self.keep = {Path(p).resolve() for p in inputs if p}
        self.saved = Path(tempfile.mkdtemp(prefix=".rdia-previous-run.", dir=outdir))
        for p in self._own_files():
            p.rename(self.saved / p.name)

    def _own_files(self) -> list[Path]:
        return [p for p in self.outdir.iterdir()
                if p.is_file() and is_run_file(p.name, self.models)
                and p.resolve() not in self.keep]

    def restore(self) -> None:
        for p in self._own_files():
            p.unlink(missing_ok=True)
        for p in self.saved.iterdir():
            p.rename(self.outdir / p.name)
        shutil.rmtree(self.saved, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.saved, ignore_errors=True)


@contextlib.contextmanager
def signals_held():
    """Hold SIGINT and SIGTERM back while the folder is put in order (main thread only)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
