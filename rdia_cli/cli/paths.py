"""Output paths on the command line: defaults, how a path is shown, output folders."""

from __future__ import annotations

from pathlib import Path

from rdia_cli.artifacts.inputs import STDIN
from rdia_cli.errors import InputError


def default_output(output: Path | None, data: Path, suffix: str) -> Path:
    """-o when given; else standard output (`-`) when stdout is a pipe or a file (and not taken
    by `--json -`), and else a file beside DATA named after it (train.svm ->
    train.scores.parquet)."""
    import sys

    from rdia_cli.cli.core import speech

    if output is not None:
        return output
    if not sys.stdout.isatty() and not speech.json_stdout:  # `--json -` has standard output
        return Path(STDIN)
    if str(data) == STDIN:
        return Path("stdin" + suffix)
    name = Path(data).name
    for ext in (".gz", ".bz2", ".xz"):
        name = name.removesuffix(ext)
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return Path(data).parent / f"{stem}{suffix}"


def shown_path(path) -> str:
    return "standard output" if str(path) == STDIN else str(path)


def check_output_folder(output: Path, option: str = "-o") -> None:
    """An output *folder* (split, run): not empty, not a file, its parent writable."""
    from rdia_cli.artifacts.atomic import check_folder_writable, check_no_link_loop

    if str(output).strip() in ("", STDIN):
        raise InputError(f"{option} must name a folder, not {str(output)!r}.")
    check_no_link_loop(output, option)
    if output.exists() and not output.is_dir():
        raise InputError(f"{option} `{output}` is a file; give a folder for the outputs.")
    probe = output if output.is_dir() else next(
        (p for p in output.absolute().parents if p.exists()), Path("."))
    if not probe.is_dir():
        raise InputError(f"{option} `{output}`: `{probe}` is not a folder.")
    check_folder_writable(probe, option, str(output))


