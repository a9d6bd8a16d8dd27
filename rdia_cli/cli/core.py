"""The `rdia` command line: options, files, printing and exit codes. No math here.

Exit codes: 0 success, 2 usage or input error, 1 failure at run time. Messages go to stderr as
one red line; results (tables) to stdout. Set RDIA_DEBUG=1 to see tracebacks.

Every command takes ``-q/--quiet`` (only errors and warnings) and ``-v/--verbose`` (also the
time of each phase); the stages that do work also ``--json PATH|-`` (one JSON document; with
``-`` nothing else goes to standard output). ``handle_errors`` adds these options to a command,
so that each command only returns its document. Input files are checked to exist before any
heavy import: ``rdia --help``, ``--version`` and every usage or missing-file error answer
without importing torch, scikit-learn, scipy or pandas (``tests/test_startup.py``).
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rdia_cli.errors import InputError, RdiaError

# The --help panels, in this order after the command's main options (``RdiaCommand``).
DATA_PANEL, OUTPUT_PANEL = "Data", "Output"


class _Help:
    """What rdia changes in Typer's --help of every command: flags show no `<bool>` value
    placeholder (Typer 0.29 prints one for every flag, --help included), arguments are named
    in capitals (`DATA`, not `{data}`), and the Output panel (-o, -q, -v, --json) comes last,
    after the Data panel of the reader flags."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for p in params:
            if getattr(p, "is_flag", False) and p.metavar is None:
                p.metavar = ""
            elif getattr(p, "param_type_name", "") == "argument" and p.metavar is None:
                p.metavar = p.name.upper()
        last = [p for p in params if getattr(p, "rich_help_panel", None) == OUTPUT_PANEL]
        return [p for p in params if p not in last] + last


class RdiaCommand(_Help, typer.core.TyperCommand):
    pass


class RdiaGroup(_Help, typer.core.TyperGroup):
    pass


class _Typer(typer.Typer):
    """Every command of ``app`` is a ``RdiaCommand``."""

    def command(self, *args, cls=None, **kwargs):
        return super().command(*args, cls=cls or RdiaCommand, **kwargs)


app = _Typer(
    cls=RdiaGroup,
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
    context_settings={"help_option_names": ["-h", "--help"]},
)

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def _print_version(value: bool) -> None:
    if value:
        print(f"rdia {_version()}")
        raise typer.Exit()


def _version() -> str:
    """The package's ``__version__`` (the package root is imported before this module)."""
    return sys.modules["rdia_cli"].__version__


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", "-V", callback=_print_version,
                                          is_eager=True, help="Print rdia's version and exit.")] = False,
) -> None:
    pass


# --- how much a command says: -q/-v, --json ----------------------------------------------------
QUIET, NORMAL, VERBOSE = 0, 1, 2


@dataclass
class Speech:
    """What the running command may say (``level``: QUIET, NORMAL or VERBOSE), its name for
    plain progress lines, whether its JSON document goes to standard output (then every human
    table goes to stderr), and the seconds of each timed phase (``render.activity``), which
    -v prints and the JSON document records."""

    level: int = NORMAL
    command: str = "rdia"
    json_stdout: bool = False
    timings: dict[str, float] = field(default_factory=dict)


speech = Speech()

# parameter name -> what an input file is called when it does not exist
_INPUTS = {"data": "Data", "train": "Training data", "val": "Validation data",
           "test": "Test data", "model": "Model file", "models": "Model file",
           "scores": "Scores file", "cleaned": "Cleaned data", "matrix": "--matrix file",
           "transition": "--transition file", "labels": "IDX label file",
           "val_labels": "IDX label file", "test_labels": "IDX label file"}


def check_inputs(kwargs: dict) -> list[Path]:
    """Every input file a command was given (by its parameter name, ``_INPUTS``) exists, the
    first missing one in the command's order is the error; returns them. Standard input (`-`)
    and options not given are skipped; standard input given for two inputs is an error (it
    can be read once)."""
    given, stdin = [], []
    for name, value in kwargs.items():  # in the command's order of parameters
        noun = _INPUTS.get(name)
        for p in (value if isinstance(value, list) else [value]) if noun else []:
            if not isinstance(p, Path):
                continue
            if str(p) == "-":
                stdin.append(name)
                continue
            if not p.exists():
                if p.is_symlink():
                    raise InputError(f"{noun} `{p}` is a symbolic link to nothing (its target "
                                     "is missing, or links lead back to it); check the path.")
                raise InputError(f"{noun} `{p}` does not exist; check the path.")
            given.append(p)
    if len(stdin) > 1:
        a, b = stdin[0], stdin[1]
        both = f"`{a}` is `-` twice" if a == b else f"`{a}` and `{b}` are both `-`"
        raise InputError(f"{both}: standard input can be read only once; give files for all "
                         "but one of them.")
    return given


_SPEECH_FLAGS = [
    ("quiet", Annotated[bool, typer.Option("-q", "--quiet", help="Print only errors and warnings.", rich_help_panel=OUTPUT_PANEL)], False),
    ("verbose", Annotated[bool, typer.Option("-v", "--verbose", help="Also print the time of each phase.", rich_help_panel=OUTPUT_PANEL)], False),
]
_JSON_FLAG = ("json_out", Annotated[str | None, typer.Option("--json", metavar="PATH|-", help="Write one JSON document (files written, rows, counts, timings, metrics) to PATH; `-`: to standard output, and nothing else there (tables go to stderr).", show_default=False, rich_help_panel=OUTPUT_PANEL)], None)


def _fail(message: str, code: int) -> None:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(fn=None, *, json: bool = False):
    """Turn rdia's exceptions into one red line and an exit code (the only place that does).

    Also adds -q/-v (and with ``json=True`` --json PATH|-) to the command, checks that its input
    files exist before it runs, and writes the JSON document the command returns (a dict)."""
    if fn is None:
        return functools.partial(handle_errors, json=json)
    flags = _SPEECH_FLAGS + ([_JSON_FLAG] if json else [])

    @functools.wraps(fn)
    def wrapper(*args, quiet=False, verbose=False, json_out=None, **kwargs):
        try:
            try:
                inputs = _begin(fn.__name__, quiet, verbose, json_out, kwargs)
                t0 = time.perf_counter()
                doc = fn(*args, **kwargs)
                if json_out is not None:
                    _write_document(json_out, fn.__name__, doc, time.perf_counter() - t0, inputs)
            finally:
                _end()
        except typer.Exit:
            raise
        except RdiaError as e:
            if os.environ.get("RDIA_DEBUG"):
                raise
            _fail(as_flags(e, fn), e.exit_code)
        except MemoryError:
            _fail("out of memory; try a smaller --batch-size or a machine with more memory.", 1)
        except BrokenPipeError:
            # the reader of standard output went away (`rdia ... -o - | head`): stop quietly
            # as Unix tools do; later writes (at exit too) go to /dev/null
            _silence_stdout()
            raise typer.Exit(141) from None
        except KeyboardInterrupt as e:
            terminated = isinstance(e, Terminated)
            err.print(f"{'terminated' if terminated else 'interrupted'}; no output was written.")
            raise typer.Exit(143 if terminated else 130) from None
        except Exception as e:  # noqa: BLE001 - last line of defence: no tracebacks for users
            if os.environ.get("RDIA_DEBUG"):
                raise
            _fail(f"internal error ({type(e).__name__}: {e}); rerun with RDIA_DEBUG=1 to see "
                  "the traceback and report it.", 1)

    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)
    params = [p.replace(annotation=hints.get(p.name, p.annotation))
              for p in sig.parameters.values()]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                 annotation=ann) for name, ann, default in flags]
    wrapper.__signature__ = sig.replace(parameters=params)
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def _begin(command: str, quiet: bool, verbose: bool, json_out: str | None, kwargs) -> list:
    """Set what the command may say; check its inputs and --json before any work."""
    speech.level = QUIET if quiet else VERBOSE if verbose else NORMAL
    speech.command = command
    speech.json_stdout = json_out == "-"
    speech.timings = {}
    if quiet and verbose:
        raise InputError("give -q (quiet) or -v (verbose), not both.")
    inputs = check_inputs(kwargs)
    if speech.json_stdout:
        if str(kwargs.get("output")) == "-":
            raise InputError("`--json -` and `-o -` both write to standard output; give one "
                             "of them a file.")
        out.file = sys.stderr  # the human tables, so that stdout holds the JSON alone
    elif json_out is not None:
        from rdia_cli.artifacts.atomic import check_output

        check_output(Path(json_out), *inputs, option="--json")
    return inputs


def _end() -> None:
    out.file = None  # back to the standard output of the moment


def _write_document(json_out: str, command: str, doc, seconds: float, inputs) -> None:
    """The command's document with what every command records: its name, rdia's version, the
    total and per-phase seconds. `-`: standard output."""
    import json

    body = {"command": command, "rdia": _version(), **(doc or {}),
            "seconds": round(seconds, 4),
            "timings": {k: round(v, 4) for k, v in speech.timings.items()}}
    text = json.dumps(_plain(body), indent=2, allow_nan=False) + "\n"
    if json_out == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from rdia_cli.artifacts.atomic import atomic_path

    with atomic_path(json_out) as tmp, open(tmp, "w") as f:
        f.write(text)


def _plain(v):
    """``v`` as strict JSON values: numpy scalars and arrays as Python ones, paths as text,
    NaN and infinities as null."""
    import math

    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set):
        return [_plain(x) for x in v]
    if isinstance(v, bool | int | str) or v is None:
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, Path):
        return str(v)
    if hasattr(v, "item") and hasattr(v, "dtype"):  # numpy, without importing it
        return _plain(v.tolist())
    return str(v)


def as_flags(message: str | RdiaError, command) -> str:
    """The library names its parameters in backticks (`alpha`); on the command line they are
    ``command``'s flags (--alpha). Other backticked words are left as they are. An error's
    advice (``RdiaError.fixes``) is kept only for the flags ``command`` has."""
    import re

    flags = {}
    for name, ann in typing.get_type_hints(command, include_extras=True).items():
        for info in getattr(ann, "__metadata__", ()):
            names = [getattr(info, "default", None), *(getattr(info, "param_decls", None) or ())]
            decls = [d.split("/")[0] for d in names if isinstance(d, str) and d.startswith("--")]
            if decls:
                flags[name] = max(decls, key=len)
            elif isinstance(info, typer.models.ArgumentInfo):
                flags[name] = name.upper()  # as --help names it (DATA)
    if isinstance(message, RdiaError):
        message = message.advice_for(flags)
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


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that flushing it at exit raises nothing."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests' CliRunner)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main() -> None:
    import signal
    import warnings

    global _python_showwarning
    if sys.stdout is None:  # started with standard output closed (`rdia evaluate ... >&-`)
        sys.stderr.write("error: standard output is closed; rdia prints its results there. "
                         "Redirect it (`> FILE` or `> /dev/null`) instead of closing it.\n")
        raise SystemExit(2)
    signal.signal(signal.SIGTERM, _on_sigterm)
    _python_showwarning = warnings.showwarning
    warnings.showwarning = _show_warning
    app()


_python_showwarning = None
