"""`rdia inspect` (the most harmful rows, a figure) and `rdia report` (one HTML page per run).

Thin: options, paths and printing here; reading, figures and HTML in ``rdia_cli.report``.
Plotting needs ``pip install 'rdia-cli[report]'``; the table of `inspect` does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rdia_cli.cli.core import app, err, handle_errors
from rdia_cli.cli.reading import ReadArgs, load, read_options
from rdia_cli.cli.render import say, show
from rdia_cli.errors import InputError


def _require_matplotlib() -> None:
    """Fail with the install hint, printed without Rich markup (which would eat `[report]`)."""
    from rdia_cli.report import require_matplotlib

    try:
        require_matplotlib()
    except InputError as e:
        err.print("[bold red]error:[/] ", end="")
        err.print(str(e), markup=False, soft_wrap=True)
        raise typer.Exit(e.exit_code) from None


@app.command()
@handle_errors
@read_options()
def inspect(
    scores: Annotated[Path, typer.Argument(help="Scores file from `rdia score` (or DIR/scores.parquet of `rdia run`).")],
    data: Annotated[Path, typer.Option("--data", help="The training data that was scored, or a cleaned file made from it.")],
    top: Annotated[int, typer.Option("--top", help="How many of the most harmful rows to show.")] = 10,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Also draw FILE.png: the images (image data) or a Φ histogram (tabular data). Needs matplotlib.")] = None,
    alpha: Annotated[float | None, typer.Option("--alpha", help="Threshold marked on the histogram (default: the α of a cleaned file, else 0).")] = None,
    read: ReadArgs = None,
) -> None:
    """Show the most harmful training rows (Φ > 0 hurts the validation loss) and their new labels."""
    from rich.table import Table

    from rdia_cli import report
    from rdia_cli.artifacts.atomic import check_output
    from rdia_cli.artifacts.scores import read_scores

    if output is not None:
        check_output(output, scores, data, *read.files)
        if output.suffix.lower() != ".png":
            raise InputError(f"-o `{output}` must end in .png (inspect draws a PNG image).")
        _require_matplotlib()
    sc = read_scores(scores)
    from rdia_cli.cleaning.files import from_file

    ds = from_file(load(data, read.options.inherit(sc.meta.get("train_read_options")),
                        what="training data"))  # a cleaned file: its original labels
    report.check_inspect_match(sc, ds, str(data))
    rows = report.harmful_rows(sc, ds, top=top)
    cleaned = report.is_cleaned(ds)

    t = Table(title=f"top {len(rows)} harmful rows of {data} (of {sc.n_samples:,})",
              title_justify="left",
              caption="new label: " + ("the top class of the file's target" if cleaned else
                                       "the top class of the paper's Eq. 12 target"),
              caption_justify="left")
    id_name = sc.meta.get("id_column") if sc.ids is not None else None
    for c in (id_name or "row_id", "label", "p_label", "Φ", "Δ val loss if relabeled",
              "new label"):
        t.add_column(c, justify="right")
    for r in rows:
        if r.status in ("kept", "removed"):
            new = f"[dim]{r.status}[/]"
        else:
            new = str(r.new_label) + (f" ({r.new_weight:.2f})" if r.new_weight < 0.995 else "")
        t.add_row(str(sc.ids[r.index] if id_name else r.row_id), str(r.label), f"{r.p_label:.3f}", f"{r.phi:.4g}",
                  f"{r.delta_relabel:+.2e}", new)
    show(t)

    if output is not None:
        if ds.image_shape is not None:
            png = report.harmful_grid_png(ds, rows)
            what = f"{sum(r.position is not None for r in rows)} images"
        else:
            a = report.default_alpha(ds) if alpha is None else alpha
            png = report.phi_histogram_png(sc.phi, alpha=a, title=f"Φ of {sc.n_samples:,} rows "
                                           f"in {Path(str(scores)).name}")
            what = f"Φ histogram, α = {a:.4g}"
        report.write_png(png, output)
        say(f"wrote {output}  ({what})")


@app.command()
@handle_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="The -o folder of `rdia run`.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="HTML file to write (default: DIR/report.html).")] = None,
    train: Annotated[Path | None, typer.Option("--train", help="Training data, if it moved since the run (for the label-noise precision/recall).")] = None,
) -> None:
    """One self-contained HTML page about a run: metrics, Φ, the α sweep, relabels, noise found."""
    from rdia_cli import report as rp
    from rdia_cli.artifacts.atomic import check_output

    _require_matplotlib()
    output = run_dir / "report.html" if output is None else output
    if output.is_dir():
        raise InputError(f"-o `{output}` is a folder; give the path of an .html file.")
    rep = rp.collect_run(run_dir, train=train)
    check_output(output, rep.train_path, *(run_dir / f for f in rp.RUN_FILES),
                 *run_dir.glob("*.parquet"))
    html = rp.render_html(rep)
    rp.write_text(html, output)
    say(f"wrote {output}  ({len(html.encode()) / 1024:,.0f} KiB, self-contained)")
