"""The `rdia` command line: options, files, printing and exit codes. No math here.

Exit codes: 0 success, 2 usage or input error, 1 failure at run time. Messages go to stderr as
one red line; results (tables) to stdout. Set RDIA_DEBUG=1 to see tracebacks.
"""

from __future__ import annotations

import functools
import os

import typer
from rich.console import Console

from rdia_cli.errors import RdiaError

app = typer.Typer(
    name="rdia",
    help=(
        "Repair classification training data with influence-based relabeling (RDIA, ICLR 2022).\n\n"
        "Pipeline: train -> score -> relabel -> retrain -> evaluate; `rdia run` does all five, "
        "`rdia demo` shows it on a built-in dataset. Φ > 0 means a training row hurts the "
        "validation loss; removing it changes that loss by about -Φ/N."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def _fail(message: str, code: int) -> None:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(fn):
    """Turn rdia's exceptions into one red line and an exit code (the only place that does)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except RdiaError as e:
            if os.environ.get("RDIA_DEBUG"):
                raise
            _fail(as_flags(str(e), fn), e.exit_code)
        except MemoryError:
            _fail("out of memory; try a smaller --batch-size or a machine with more memory.", 1)
        except KeyboardInterrupt as e:
            terminated = isinstance(e, Terminated)
            err.print(f"{'terminated' if terminated else 'interrupted'}; no output was written.")
            raise typer.Exit(143 if terminated else 130) from None
        except Exception as e:  # noqa: BLE001 - last line of defence: no tracebacks for users
            if os.environ.get("RDIA_DEBUG"):
                raise
            _fail(f"internal error ({type(e).__name__}: {e}); rerun with RDIA_DEBUG=1 to see "
                  "the traceback and report it.", 1)

    return wrapper


def as_flags(message: str, command) -> str:
    """The library names its parameters in backticks (`alpha`); on the command line they are
    ``command``'s flags (--alpha). Other backticked words are left as they are."""
    import re
    import typing

    flags = {}
    for name, ann in typing.get_type_hints(command, include_extras=True).items():
        for info in getattr(ann, "__metadata__", ()):
            names = [getattr(info, "default", None), *(getattr(info, "param_decls", None) or ())]
            decls = [d.split("/")[0] for d in names if isinstance(d, str) and d.startswith("--")]
            if decls:
                flags[name] = max(decls, key=len)
    return re.sub(r"`([a-z][a-z0-9_]*)`", lambda m: flags.get(m.group(1), m.group(0)), message)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that every `finally` and temporary-file
    cleanup runs; exits with 143 (128 + SIGTERM)."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """rdia's own warnings (``DataWarning``) as one yellow line; others as Python shows them."""
    from rich.markup import escape

    from rdia_cli.data.readers import DataWarning

    if issubclass(category, DataWarning):
        err.print(f"[bold yellow]warning:[/] {escape(str(message))}", soft_wrap=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


def main() -> None:
    import signal
    import warnings

    global _python_showwarning
    signal.signal(signal.SIGTERM, _on_sigterm)
    _python_showwarning = warnings.showwarning
    warnings.showwarning = _show_warning
    app()


_python_showwarning = None
