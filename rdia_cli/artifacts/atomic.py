"""Atomic output files and input/output path checks.

Where an output goes, by what ``path`` is:

- a regular file, or a name that does not exist yet: a temporary file in the same folder
  (``.{name}.XXXX.tmp``), renamed onto ``path`` on success;
- a symbolic link to a regular file: the same, in the folder of the link's target, renamed onto
  the target (the link stays);
- ``-``: standard output;
- anything else that exists (a FIFO, a device such as ``/dev/null`` or ``/dev/stdout``, or a
  link to one): written *through*, never replaced by a regular file.

In the last two cases the bytes are first written to a temporary file in
``tempfile.gettempdir()`` and copied to the destination only on success, so a failed write
sends nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from rdia_cli.errors import InputError, RuntimeFailure

STDIO = "-"
STALE_SECONDS = 3600.0  # temp files older than this, left by a killed run, are removed


def is_stdio(path: str | Path | None) -> bool:
    return path is not None and str(path) == STDIO


def _is_fd_path(path: str | Path) -> bool:
    """/dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N: a descriptor this process holds,
    written through even when it is a redirected regular file (never renamed over)."""
    text = os.path.normpath(str(path))
    return text in ("/dev/stdout", "/dev/stderr", "/dev/stdin") or text.startswith(
        ("/dev/fd/", "/proc/self/fd/"))


def _special(path: Path) -> bool:
    """An existing path (links followed) that is not a regular file or a folder, or a path
    naming one of this process's descriptors."""
    if _is_fd_path(path):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _python_stream(path: str | Path):
    """sys.stdout for ``-`` and /dev/stdout, sys.stderr for /dev/stderr (so that what Python
    buffered there comes first), else None."""
    text = os.path.normpath(str(path))
    if is_stdio(path) or text == "/dev/stdout":
        return sys.stdout
    return sys.stderr if text == "/dev/stderr" else None


def _destination(path: Path) -> Path:
    """Where the bytes finally go: the target of a symbolic link, else ``path`` itself."""
    if path.is_symlink():
        return Path(os.path.realpath(path))
    return path


def _no_space(e: BaseException) -> bool:
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return True
    # pyarrow's OSError carries the text, not always the errno
    return isinstance(e, OSError) and "No space left on device" in str(e)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[str]:
    """Yield a temporary path; move or copy it to ``path`` on success (module docstring).

    On any exception (Ctrl-C and SIGTERM included) the temporary file is removed and ``path``
    is left as it was; running out of disk space becomes a ``RuntimeFailure``.
    """
    shown = "standard output" if is_stdio(path) else str(path)
    if is_stdio(path) or _special(Path(path)):
        fd, tmp = tempfile.mkstemp(prefix=".rdia-out.", suffix=".tmp")
        os.close(fd)
        try:
            yield tmp
            with open(tmp, "rb") as src:
                stream = _python_stream(path)
                if stream is not None:
                    stream.flush()
                    shutil.copyfileobj(src, stream.buffer)
                    stream.buffer.flush()
                else:  # append: a redirected descriptor keeps what was written before
                    with open(path, "ab" if _is_fd_path(path) else "wb") as dst:
                        shutil.copyfileobj(src, dst)
        except BaseException as e:
            if _no_space(e):
                raise RuntimeFailure(f"no space left on {shown}.") from None
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return

    dest = _destination(Path(path))
    folder = dest.parent if str(dest.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"Output folder `{folder}` does not exist.")
    remove_stale_temps(folder, dest.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        os.replace(tmp, dest)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if _no_space(e):
            raise RuntimeFailure(f"no space left on {shown}.") from None
        raise


def remove_stale_temps(folder: Path, name: str, *, older_than: float = STALE_SECONDS) -> int:
    """Remove ``.{name}.*.tmp`` files in ``folder`` last changed over ``older_than`` s ago
    (left by a run that was killed with SIGKILL); return how many."""
    now = time.time()
    removed = 0
    try:
        candidates = list(folder.glob(f".{_glob_escape(name)}.*.tmp"))
    except OSError:
        return 0
    for p in candidates:
        with contextlib.suppress(OSError):
            if p.is_file() and not p.is_symlink() and now - p.stat().st_mtime > older_than:
                p.unlink()
                removed += 1
    return removed


def _glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def without_timings(meta):
    """A copy of ``meta`` without wall-clock entries (keys `seconds`, `*_seconds`, `timings`,
    at any depth), so that the same command and seed write the same bytes. Print timings in
    the summary instead."""
    if isinstance(meta, dict):
        return {k: without_timings(v) for k, v in meta.items() if not _is_timing(k)}
    if isinstance(meta, list):
        return [without_timings(v) for v in meta]
    return meta


def _is_timing(key) -> bool:
    return isinstance(key, str) and (key in ("seconds", "timings") or key.endswith("_seconds"))


def check_folder_writable(folder: Path, option: str, shown: str) -> None:
    """Create and remove a file in ``folder`` (``os.access`` says yes to root everywhere)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".rdia-probe.", suffix=".tmp", dir=folder)
    except OSError as e:
        reason = "it is read-only" if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else (
            e.strerror or str(e))
        raise InputError(f"{option} `{shown}`: cannot write in folder `{folder}` ({reason}).") \
            from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def check_no_link_loop(path: Path, option: str) -> None:
    """A path whose symbolic links lead back to themselves (`a -> b -> a`) cannot be written."""
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InputError(f"{option} `{path}` is a loop of symbolic links; remove the links "
                             "or give another path.") from None


def check_output(output: str | Path, *inputs: str | Path | None, option: str = "-o") -> None:
    """Check an output path before any work is done.

    Refuses an empty path, a folder, a missing or read-only folder and a path that is one of
    the inputs. ``-`` (standard output) and existing FIFOs and devices are accepted.
    """
    text = str(output)
    if text.strip() == "":
        raise InputError(f"{option} is empty; give a file name.")
    if is_stdio(text):
        return
    path = Path(output)
    _check_name_length(path, option)
    check_no_link_loop(path, option)
    if path.is_dir():
        raise InputError(f"{option} `{text}` is a folder; give a file name (e.g. "
                         f"`{Path(text) / 'out'}`).")
    special = _special(path)
    out = path.resolve()
    for inp in inputs:
        if inp is None or is_stdio(inp):
            continue
        if Path(inp).resolve() == out:
            raise InputError(
                f"Output `{output}` is also an input; write to another path "
                "(rdia never overwrites its inputs)."
            )
    if special:
        return
    dest = _destination(path)
    folder = dest.parent if str(dest.parent) else Path(".")
    if not folder.exists():
        raise InputError(f"{option} `{text}`: folder `{folder}` does not exist; create it first.")
    if not folder.is_dir():
        raise InputError(f"{option} `{text}`: `{folder}` is not a folder.")
    check_folder_writable(folder, option, text)
    _check_name(folder, dest.name, option, text)


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _name_too_long(name: str, limit: int, option: str):
    raise InputError(
        f"{option}: file name `{name[:40]}…` is too long ({len(name.encode())} bytes; "
        f"an rdia output name may have {limit - 14} here: it writes `.NAME.XXXXXXXX.tmp` "
        "first); give a shorter name."
    ) from None


def _check_name_length(path: Path, option: str) -> None:
    """A file name the file system cannot hold (with ``atomic_path``'s 14 more characters)
    is refused before anything looks at the path (stat fails on it)."""
    parent = path.parent if str(path.parent) else Path(".")
    limit = _name_max(parent) if len(str(parent).encode()) < 4096 else 255
    for part in path.parts[:-1]:
        if len(part.encode()) > limit:
            raise InputError(f"{option}: folder name `{part[:40]}…` is too long "
                             f"({len(part.encode())} bytes; at most {limit}).")
    if len(path.name.encode()) + 14 > limit:
        _name_too_long(path.name, limit, option)


def _check_name(folder: Path, name: str, option: str, shown: str) -> None:
    """Create and remove the temporary file ``atomic_path`` will write (its name is ``name``
    plus 14 characters), so that a name the file system refuses fails before the work."""
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        if e.errno != errno.ENAMETOOLONG:
            raise InputError(f"{option} `{shown}`: cannot create a file of this name in "
                             f"`{folder}` ({e.strerror or e}).") from None
        _name_too_long(name, _name_max(folder), option)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
