"""`rdia apply`: write the cleaned table that a reviewed issues table asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rdia_cli.cli.core import app, handle_errors
from rdia_cli.cli.params import DataOutput
from rdia_cli.cli.paths import shown_path
from rdia_cli.cli.reading import ReadArgs, load, read_options, recorded_options
from rdia_cli.cli.render import say, summary_table
from rdia_cli.errors import InputError


@app.command()
@handle_errors(json=True)
@read_options()
def apply(
    output: DataOutput,
    issues: Annotated[Path, typer.Option("--issues", help="The issues table from `rdia issues`, edited or not: per row `action` keep/relabel/drop and `suggested_label`.")],
    data: Annotated[Path | None, typer.Argument(help="The training data the issues table was made from (default: the file a .parquet issues table records).", show_default=False)] = None,
    read: ReadArgs = None,
) -> dict:
    """Apply a reviewed issues table: relabel, drop or keep each row as its `action` says, and
    write the cleaned table in your own format, as `rdia relabel` writes it (rows missing from
    the table are kept). The reader options the table records (a .parquet table, from the
    scores) fill in those not given."""
    from rdia_cli.artifacts.atomic import check_output
    from rdia_cli.cleaning.files import write_cleaned
    from rdia_cli.cleaning.issues import cleaning_from_issues, read_issues
    from rdia_cli.data.writers import output_format
    from rdia_cli.stages import apply_cleaning

    check_output(output, data, issues, *read.files)
    output_format(str(output))
    table = read_issues(issues)
    recorded = table.attrs.get("rdia") or {}
    if data is None:
        path = recorded.get("train_path")
        if not path:
            raise InputError(f"`{issues}` does not record its training data (only a .parquet "
                             "issues table does); give DATA.")
        if not Path(path).exists():
            raise InputError(f"`{issues}` was made from training data `{path}`, which no "
                             "longer exists; give DATA.")
        data = Path(path)
        opts = recorded_options(recorded, "train")
        check_output(output, data)
    else:
        opts = read.options.inherit(recorded.get("train_read_options"))
    ds = load(data, opts, what="training data")
    cleaning, phi = cleaning_from_issues(ds, table, source=f"`{issues}`")
    record = {"strategy": "review", "issues": str(issues),
              "source_fingerprint": ds.fingerprint(), "n_relabeled": cleaning.n_relabeled,
              "n_removed": cleaning.n_removed}
    cleaned = apply_cleaning(ds, cleaning, phi)
    write_cleaned(cleaned, output, record)
    label = (ds.meta.get("columns") or {}).get("label") or "label"
    say(summary_table("rdia apply", [
        ("rows", f"{ds.n_samples:,} ({len(table):,} in the issues table)"),
        ("relabeled", f"{cleaning.n_relabeled:,}"),
        ("removed", f"{cleaning.n_removed:,}"),
        ("wrote", f"{shown_path(output)}  ({cleaned.n_samples:,} rows; `{label}` holds the new "
                  "labels)"),
    ]))
    return {"data": str(data), "issues": str(issues), "output": str(output),
            "label_column": label, "n_rows": int(ds.n_samples),
            "n_in_table": int(len(table)), "n_relabeled": int(cleaning.n_relabeled),
            "n_removed": int(cleaning.n_removed), "n_written": int(cleaned.n_samples)}
