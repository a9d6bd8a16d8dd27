"""Reading data files from the command line: one reader-options parameter group shared by every
command that reads data (``@read_options``), and loading a file with it.

A command declares one parameter ``read: ReadArgs``; the decorator replaces it, in ``--help``
and on the command line, by the reader flags (``--labels``, ``--label-col``, ``--id-col``,
``--ignore-cols``, ``--categorical``, ``--zero-based``, ``--n-features``, ``--classes``,
``--format``, and the IDX label files of the other inputs the command names, e.g.
``--val-labels``), and hands the command the parsed :class:`ReadArgs`. Options given at
`train` are remembered by the model: reading with its schema fills in what is not given.
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from rdia_cli.cli.core import DATA_PANEL

# The reader flags, in --help order: (parameter, annotation, default). `{input}` labels are
# added after `labels` for each other input of the command.
_FLAGS: list[tuple[str, Any, Any]] = [
    ("labels", Annotated[Path | None, typer.Option("--labels", help="IDX label file for IDX image data.", rich_help_panel=DATA_PANEL)], None),
    ("label_col", Annotated[str | None, typer.Option("--label-col", help="Label column of CSV/Parquet files.", show_default="the model's, else label", rich_help_panel=DATA_PANEL)], None),
    ("id_col", Annotated[str | None, typer.Option("--id-col", help="CSV/Parquet: a column of row IDs (e.g. customer_id); never a feature, kept in every output and used as the row's ID.", rich_help_panel=DATA_PANEL)], None),
    ("ignore_cols", Annotated[str | None, typer.Option("--ignore-cols", help="CSV/Parquet: columns kept in the outputs but never used as features, e.g. name,notes.", rich_help_panel=DATA_PANEL)], None),
    ("categorical", Annotated[str | None, typer.Option("--categorical", help="CSV/Parquet: columns to one-hot encode even if they look numeric, e.g. zip,grade.", rich_help_panel=DATA_PANEL)], None),
    ("zero_based", Annotated[bool | None, typer.Option("--zero-based/--one-based", help="LIBSVM: whether feature indices start at 0 or 1.", show_default="detected", rich_help_panel=DATA_PANEL)], None),
    ("n_features", Annotated[int | None, typer.Option("--n-features", help="LIBSVM: the number of features.", show_default="the model's, else the file's largest index", rich_help_panel=DATA_PANEL)], None),
    ("classes", Annotated[str | None, typer.Option("--classes", help="Keep only rows with these label values, e.g. 1,7.", show_default="all", rich_help_panel=DATA_PANEL)], None),
    ("fmt", Annotated[str, typer.Option("--format", help="auto (from the file's name and content), libsvm, csv, parquet, idx or cifar.", rich_help_panel=DATA_PANEL)], "auto"),
]
_LABELS_HELP = "IDX label file for --{input}."


@dataclass(frozen=True)
class ReadArgs:
    """The reader flags of one command line (``flags``: parameter -> value as given), the
    IDX label files of the command's other inputs (``label_files["val"]``), and ``options``,
    the ReadOptions for DATA (built, and so checked, when first used)."""

    flags: dict[str, Any]
    label_files: dict[str, Path | None]

    @functools.cached_property
    def options(self):
        return make_options(**self.flags)

    def for_input(self, name: str):
        """The options for input ``name`` ("data", "val", "test"): DATA's, with that input's
        own IDX label file (none unless its --NAME-labels was given)."""
        if name == "data":
            return self.options
        path = self.label_files.get(name)
        return replace(self.options, labels=None if path is None else str(path))

    @property
    def files(self) -> list[Path]:
        """Every IDX label file given (inputs an output must not overwrite)."""
        main = [] if self.flags.get("labels") is None else [Path(self.flags["labels"])]
        return main + [p for p in self.label_files.values() if p is not None]


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip()) if text else ()


def make_options(labels=None, label_col=None, id_col=None, ignore_cols=None, categorical=None,
                 zero_based=None, n_features=None, classes=None, fmt="auto"):
    """A ReadOptions from the flags' values (lists as typed: "1,7", "name,notes")."""
    from rdia_cli.data.readers import ReadOptions

    return ReadOptions(format=fmt, labels=str(labels) if labels else None, label_col=label_col,
                       id_col=id_col, ignore_cols=_names(ignore_cols),
                       categorical=_names(categorical), zero_based=zero_based,
                       n_features=n_features, classes=_names(classes) or None)


def read_options(*inputs: str, labels_help: str = _LABELS_HELP):
    """Decorator: replace the command's ``read: ReadArgs`` parameter by the reader flags, with
    an IDX label flag ``--INPUT-labels`` for each of ``inputs`` (e.g. "val", "test")."""

    def decorate(fn):
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)  # the module's string annotations
        params = [p.replace(annotation=hints.get(p.name, p.annotation))
                  for p in sig.parameters.values() if p.name != "read"]
        flags = list(_FLAGS)
        for j, name in enumerate(inputs, start=1):
            help_ = labels_help.format(input=name)
            flags.insert(j, (f"{name}_labels", Annotated[Path | None, typer.Option(
                f"--{name}-labels", help=help_, rich_help_panel=DATA_PANEL)], None))
        params += [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                     default=default, annotation=ann)
                   for name, ann, default in flags]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            values = {name: kwargs.pop(name) for name, _, _ in flags if name in kwargs}
            files = {name: values.pop(f"{name}_labels", None) for name in inputs}
            read = ReadArgs(values, files)
            return fn(*args, read=read, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


def load(path, opts, *, what="data", schema=None):
    """Read a dataset with reader options ``opts`` (as the phase "read" of -v and --json)."""
    from rdia_cli.cli.paths import shown_path
    from rdia_cli.cli.render import activity
    from rdia_cli.data.readers import read_dataset

    shown = "standard input" if str(path) == "-" else shown_path(path)
    with activity(f"reading {what} {shown}", phase="read", stage=False) as act:
        ds = read_dataset(str(path), opts, schema=schema, what=what)
        act.done(f"{ds.n_samples:,} rows × {ds.n_features:,} features")
    return ds


def recorded_options(meta: dict, name: str):
    """The reader options an output recorded for its input ``name``."""
    from rdia_cli.artifacts.inputs import recorded_options as recorded
    from rdia_cli.data.readers import ReadOptions

    return recorded(meta, name, ReadOptions)
