"""`rdia issues`: the label-issues table (cleanlab's columns, the strategy's action, and why)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from rdia_cli.artifacts.inputs import record_inputs, recorded_path
from rdia_cli.cli.checks import device_of, parse_alpha
from rdia_cli.cli.core import app, handle_errors
from rdia_cli.cli.params import Device, Seed
from rdia_cli.cli.paths import shown_path
from rdia_cli.cli.reading import ReadArgs, load, read_options, recorded_options
from rdia_cli.cli.render import activity, say, summary_table
from rdia_cli.errors import InputError


@app.command()
@handle_errors(json=True)
@read_options("val")
def issues(
    output: Annotated[Path, typer.Option("-o", "--output", help="The issues table: .csv, .tsv or .parquet (`-`: CSV on standard output).")],
    data: Annotated[Path | None, typer.Argument(help="The training data that was scored (default: the file the scores record).", show_default=False)] = None,
    scores: Annotated[Path | None, typer.Option("--scores", help="Scores file from `rdia score`.", show_default=False)] = None,
    val: Annotated[Path | None, typer.Option("--val", help="Validation data (the auto strategy and `why`; default: the one the scores record).", show_default=False)] = None,
    model: Annotated[Path | None, typer.Option("--model", help="Model file (default: the one the scores record).", show_default=False)] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="auto (default when the clean set and a logreg model are at hand), rdia (relabel; the default with a rule) or drop.", show_default=False)] = None,
    alpha: Annotated[float | None, typer.Option("--alpha", help="Rule: rows whose Φ on the paper's scale exceeds A (as `rdia relabel`).")] = None,
    phi_threshold: Annotated[float | None, typer.Option("--phi-threshold", help="Rule: rows with Φ > T.")] = None,
    fraction: Annotated[float | None, typer.Option("--fraction", help="Rule: the top fraction of rows by Φ, in (0, 1].")] = None,
    explain: Annotated[int, typer.Option("--explain", help="Explain the N flagged rows with the largest Φ by the validation rows that push it (0: none).")] = 50,
    sort: Annotated[str, typer.Option("--sort", help="input (the data's order), quality (lowest label_quality first) or phi (largest first).")] = "input",
    top: Annotated[int | None, typer.Option("--top", help="Write only the first N rows (after --sort).")] = None,
    device: Device = "auto",
    seed: Seed = 0,
    read: ReadArgs = None,
) -> dict:
    """Write one row per training row: is_label_issue, label_quality (low = suspect),
    given/predicted/suggested label, the action the strategy takes, Φ, the predicted change of
    the validation loss, and why (the validation rows that make Φ large)."""
    from rdia_cli.artifacts.atomic import check_output
    from rdia_cli.artifacts.scores import check_scores_match, read_scores
    from rdia_cli.cleaning.issues import find_issues, issues_format
    from rdia_cli.models.io import load_model
    from rdia_cli.stages import schema_of_model
    from rdia_cli.validate import check_number

    check_number("--fraction", fraction, low=0.0, high=1.0, open_low=True)
    check_number("--phi-threshold", phi_threshold, low=0.0)
    if alpha is not None:
        parse_alpha(str(alpha))
    if scores is None:
        raise InputError("give --scores FILE (from `rdia score`).")
    check_output(output, data, scores, val, model, *read.files)
    issues_format(output)
    sc = read_scores(scores)
    if data is None:
        data = recorded_path(sc.meta, "train", "training data", "give DATA")
        opts = recorded_options(sc.meta, "train")
    else:
        opts = read.options.inherit(sc.meta.get("train_read_options"))
    check_output(output, data)
    ds = load(data, opts, what="training data")
    check_scores_match(sc, ds.fingerprint(), ds.row_id, str(data))
    if model is None and sc.meta.get("model") and Path(sc.meta["model"]).exists():
        model = Path(sc.meta["model"])
    m = load_model(model) if model is not None else None
    vds = None
    if val is None and sc.meta.get("val_path") and Path(sc.meta["val_path"]).exists():
        val, val_opts = Path(sc.meta["val_path"]), recorded_options(sc.meta, "val")
    else:
        val_opts = replace(opts, labels=read.for_input("val").labels)
    if val is not None:
        vds = load(val, val_opts, what="validation data",
                   schema=schema_of_model(m) if m is not None else None)
    with activity("finding issues") as act:
        table = find_issues(ds, sc, val=vds, model=m, strategy=strategy, alpha=alpha,
                            phi_threshold=phi_threshold, fraction=fraction, explain=explain,
                            sort=sort, top=top, seed=seed, device=device_of(device),
                            progress=lambda i, k: act.update(completed=i, total=k))
    from rdia_cli.cleaning.issues import write_issues

    # how the data was read, so that `rdia apply` can read it again (a .parquet table keeps it)
    table.attrs["rdia"].update(record_inputs(train=(data, opts)))
    write_issues(table, output)
    return print_issues_summary(table.attrs["rdia"], output, len(table))


def print_issues_summary(s: dict, output, n_written: int) -> dict:
    """The summary on stderr (not with -q); returns the `--json` document: the summary and
    what was written."""
    how = s["strategy"]
    rule = (how.get("chosen") if how["strategy"] == "auto"
            else ", ".join(f"{k} {v}" for k, v in how.items() if k != "strategy" and v is not None))
    rows = [
        ("rows", f"{s['n_rows']:,}"),
        ("strategy", f"{how['strategy']} ({rule})"),
        ("label issues", f"{s['n_issues']:,}  ({s['n_relabel']:,} relabel, {s['n_drop']:,} drop; "
                         f"{s['n_explained']:,} explained)"),
        ("noise rate", f"{s['noise_rate']:.1%} estimated ({s['noise_estimated_by']})"),
        ("label_quality", s["label_quality"]),
        ("wrote", f"{shown_path(output)}  ({n_written:,} rows)"),
    ]
    from rich.markup import escape

    say(summary_table("rdia issues", [(k, escape(v)) for k, v in rows]))
    if s["pairs"]:
        top = ", ".join(f"{p['given']} → {p['suggested']}: {p['rows']:,}" for p in s["pairs"][:8])
        more = len(s["pairs"]) - 8
        say(escape(f"  issues by (given → suggested): {top}"
                   + (f" (+{more} pairs)" if more > 0 else "")))
    return {"output": str(output), "n_written": int(n_written), **s}
