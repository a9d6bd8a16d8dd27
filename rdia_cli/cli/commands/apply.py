"""`rdia apply`: write the cleaned table that a reviewed issues table asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rdia_cli.cli.core import app, err, handle_errors
from rdia_cli.cli.params import DataOutput
from rdia_cli.cli.paths import shown_path
from rdia_cli.cli.reading import ReadArgs, load, read_options
from rdia_cli.cli.render import summary_table


@app.command()
@handle_errors
@read_options()
def apply(
    data: Annotated[Path, typer.Argument(help="The training data the issues table was made from.")],
    output: DataOutput,
    issues: Annotated[Path, typer.Option("--issues", help="The issues table from `rdia issues`, edited or not: per row `action` keep/relabel/drop and `suggested_label`.")],
    read: ReadArgs = None,
) -> None:
    """Apply a reviewed issues table: relabel, drop or keep each row as its `action` says, and
    write the cleaned table in your own format, as `rdia relabel` writes it (rows missing from
    the table are kept)."""
    from rdia_cli.artifacts.atomic import check_output
    from rdia_cli.cleaning.files import write_cleaned
    from rdia_cli.cleaning.issues import cleaning_from_issues, read_issues
    from rdia_cli.data.writers import output_format
    from rdia_cli.stages import apply_cleaning

    check_output(output, data, issues, *read.files)
    output_format(str(output))
    table = read_issues(issues)
    ds = load(data, read.options, what="training data")
    cleaning, phi = cleaning_from_issues(ds, table, source=f"`{issues}`")
    record = {"strategy": "review", "issues": str(issues),
              "source_fingerprint": ds.fingerprint(), "n_relabeled": cleaning.n_relabeled,
              "n_removed": cleaning.n_removed}
    cleaned = apply_cleaning(ds, cleaning, phi)
    write_cleaned(cleaned, output, record)
    err.print(summary_table("rdia apply", [
        ("rows", f"{ds.n_samples:,} ({len(table):,} in the issues table)"),
        ("relabeled", f"{cleaning.n_relabeled:,}"),
        ("removed", f"{cleaning.n_removed:,}"),
        ("wrote", f"{shown_path(output)}  ({cleaned.n_samples:,} rows; `label` holds the new "
                  "labels)"),
    ]))
