"""The files of a run folder (`rdia run -o DIR`): which files are the run's, building a run
beside DIR and swapping it in whole (``RunFolder``), and JSON written atomically."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
from pathlib import Path

from rdia_cli.artifacts.atomic import atomic_path
from rdia_cli.errors import InputError


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


class RunFolder:
    """Build a run in a staging folder beside ``outdir`` and swap it in whole, so that
    ``outdir`` only ever holds one complete run (issue #28).

    Names, all in ``outdir``'s parent (DIR below is ``outdir``'s name):

    - ``.DIR.rdia-lock``: the lock file. ``open`` takes an ``fcntl.flock`` on it for the whole
      run and writes its pid into it; a second run on the same folder meanwhile does not wait,
      it raises ``InputError`` (exit code 2) naming the holder's pid. The file stays (removing
      a lock file others may have open is a race).
    - ``.DIR.rdia-staging-PID``: the new run's files; ``commit`` moves into it the entries of
      ``outdir`` that are not a run's (the data, your notes: hard links, else copies), gives it
      ``outdir``'s permissions and each replaced output the permissions it had, then renames
      ``outdir`` to ``.DIR.rdia-old-PID``, the staging folder to ``outdir``, and removes the
      old one.

    Whatever a killed run (SIGKILL included) left, the next one repairs under the lock before
    it starts: ``outdir`` missing but an old folder there → the old folder is put back; old
    folders beside an existing ``outdir`` → removed; staging folders → removed (a live run
    holds the lock, so every staging folder found by the lock's holder is a dead run's; the
    pid in the name is for people); hidden ``.rdia-previous-run.*`` folders inside ``outdir``
    (rdia ≤ this change moved an old run there) → their files are put back. A failed or
    interrupted run (``close(failed=True)``) removes its staging folder: ``outdir`` is as it
    was, and is never created when it did not exist."""

    def __init__(self, outdir: Path, models: tuple[str, ...]) -> None:
        self.outdir = Path(os.path.realpath(outdir))  # a link to a folder: swap the folder
        self.models = models
        self.parent = self.outdir.parent
        name = self.outdir.name
        self.lock_path = self.parent / f".{name}.rdia-lock"
        self.staging = self.parent / f".{name}.rdia-staging-{os.getpid()}"
        self._old = self.parent / f".{name}.rdia-old-{os.getpid()}"
        self._pattern = f".{glob.escape(name)}.rdia-"
        self._lock = None

    def __enter__(self) -> RunFolder:
        self.open()
        return self

    def __exit__(self, kind, value, tb) -> None:
        self.close(failed=kind is not None)

    def open(self) -> Path:
        """Take the lock, repair what a killed run left, make the staging folder; return it."""
        import fcntl

        self.parent.mkdir(parents=True, exist_ok=True)
        lock = open(self.lock_path, "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            lock.close()
            raise InputError(f"`{self.outdir}` is being written by another `rdia run` (pid "
                             f"{holder}); wait for it to end or give another output folder.") \
                from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock
        try:
            with signals_held():
                self._repair()
            self.staging.mkdir()
        except BaseException:
            self.close(failed=True)
            raise
        return self.staging

    def _siblings(self, kind: str) -> list[Path]:
        return sorted(self.parent.glob(f"{self._pattern}{kind}-*"),
                      key=lambda p: p.lstat().st_mtime)

    def _repair(self) -> None:
        olds = [p for p in self._siblings("old") if p.is_dir() and not p.is_symlink()]
        if olds and not os.path.lexists(self.outdir):
            os.rename(olds.pop(), self.outdir)  # killed between the two renames: roll back
        for p in olds + self._siblings("staging"):
            shutil.rmtree(p, ignore_errors=True)
        if self.outdir.is_dir():
            for saved in self.outdir.glob(".rdia-previous-run.*"):
                if saved.is_dir() and not saved.is_symlink():
                    self._restore_previous(saved)

    def _restore_previous(self, saved: Path) -> None:
        """An older rdia's ``.rdia-previous-run.*``: the earlier run's files, moved aside by a
        run that was then killed; that run's half-written files go, the earlier ones return."""
        for p in self.outdir.iterdir():
            if p.is_file() and is_run_file(p.name, self.models):
                p.unlink()
        for p in saved.iterdir():
            os.replace(p, self.outdir / p.name)
        saved.rmdir()

    def commit(self) -> None:
        """Swap the staging folder in for ``outdir`` (class docstring)."""
        if self.outdir.is_dir():
            self._carry_over()
            shutil.copymode(self.outdir, self.staging)
        try:
            cwd = Path(os.getcwd())
        except OSError:  # the working folder was removed
            cwd = Path("/")
        with signals_held():
            if os.path.lexists(self.outdir):
                os.rename(self.outdir, self._old)
            os.rename(self.staging, self.outdir)
        if cwd == self.outdir or self.outdir in cwd.parents:  # `-o .`: follow the new folder
            with contextlib.suppress(OSError):
                os.chdir(self.outdir / cwd.relative_to(self.outdir))
        shutil.rmtree(self._old, ignore_errors=True)

    def _carry_over(self) -> None:
        for src in self.outdir.iterdir():
            dst = self.staging / src.name
            if is_run_file(src.name, self.models) or src.name.startswith(".rdia-previous-run."):
                if os.path.lexists(dst) and src.is_file() and not src.is_symlink():
                    shutil.copymode(src, dst)  # a replaced output keeps its permissions
                continue
            if os.path.lexists(dst):  # a file the run wrote: the new one wins
                continue
            if src.is_symlink():
                os.symlink(os.readlink(src), dst)
            elif src.is_dir():
                shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
            else:
                _link_or_copy(src, dst)

    def close(self, *, failed: bool = False) -> None:
        """Remove the staging folder after a failure; release the lock."""
        if failed:
            with signals_held():
                shutil.rmtree(self.staging, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


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
