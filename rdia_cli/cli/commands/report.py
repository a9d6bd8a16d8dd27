"""`rdia inspect` (the most harmful rows, a figure) and `rdia report` (one HTML page per run).

Thin: options, paths and printing here; reading, figures and HTML in ``rdia_cli.report``.
Plotting needs ``pip install 'rdia-cli[report]'``; the table of `inspect` does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rdia_cli.cli.core import app, err, handle_errors
from rdia_cli.cli.params import Device
from rdia_cli.cli.reading import ReadArgs, load, read_options, recorded_options
from rdia_cli.cli.render import activity, say, show, warn
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
@read_options("val")
def inspect(
    scores: Annotated[Path, typer.Argument(help="Scores file from `rdia score` (or DIR/scores.parquet of `rdia run`).")],
    data: Annotated[Path, typer.Option("--data", help="The training data that was scored, or a cleaned file made from it.")],
    top: Annotated[int, typer.Option("--top", help="How many of the most harmful rows to show.")] = 10,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Also draw FILE.png: the images (image data) or a Φ histogram (tabular data). Needs matplotlib.")] = None,
    alpha: Annotated[float | None, typer.Option("--alpha", help="Threshold marked on the histogram (default: the α of a cleaned file, else 0).")] = None,
    val: Annotated[Path | None, typer.Option("--val", help="Validation data, for why (default: the one the scores or the run record).", show_default=False)] = None,
    model: Annotated[Path | None, typer.Option("--model", help="Model file, for why (default: the one the scores record).", show_default=False)] = None,
    device: Device = "auto",
    read: ReadArgs = None,
) -> None:
    """Show the most harmful training rows (Φ > 0 hurts the validation loss), their new labels
    and why: the 3 validation rows that push each Φ most, with their shares (needs the
    validation data and the model, found from the scores when they record them)."""
    from rich.markup import escape
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
    whys, vds = _whys(sc, scores, ds, rows, val, model, read, cleaned, device)

    t = Table(title=f"top {len(rows)} harmful rows of {data} (of {sc.n_samples:,})",
              title_justify="left",
              caption="new label: " + ("the top class of the file's target" if cleaned else
                                       "the top class of the paper's Eq. 12 target"),
              caption_justify="left")
    id_name = sc.meta.get("id_column") if sc.ids is not None else None
    for c in (id_name or "row_id", "label", "p_label", "Φ", "Δ val loss if relabeled",
              "new label", *(["why: validation rows pushing Φ (share)"] if whys else [])):
        t.add_column(c, justify="right" if c[:3] != "why" else "left")
    for n, r in enumerate(rows):
        if r.status in ("kept", "removed"):
            new = f"[dim]{r.status}[/]"
        else:
            new = str(r.new_label) + (f" ({r.new_weight:.2f})" if r.new_weight < 0.995 else "")
        why = [] if not whys else [escape(whys[n].text()) if whys[n] is not None else ""]
        t.add_row(str(sc.ids[r.index] if id_name else r.row_id), str(r.label), f"{r.p_label:.3f}", f"{r.phi:.4g}",
                  f"{r.delta_relabel:+.2e}", new, *why)
    show(t)

    if output is not None:
        if ds.image_shape is not None and whys:
            png = report.why_grid_png(ds, vds, rows, whys)
            what = (f"{sum(w is not None for w in whys)} images, each with the 3 validation "
                    "images pushing its Φ most")
        elif ds.image_shape is not None:
            png = report.harmful_grid_png(ds, rows)
            what = f"{sum(r.position is not None for r in rows)} images"
        else:
            a = report.default_alpha(ds) if alpha is None else alpha
            png = report.phi_histogram_png(sc.phi, alpha=a, title=f"Φ of {sc.n_samples:,} rows "
                                           f"in {Path(str(scores)).name}")
            what = f"Φ histogram, α = {a:.4g}"
        report.write_png(png, output)
        say(f"wrote {output}  ({what})")


def _whys(sc, scores_path, ds, rows, val, model, read, cleaned, device):
    """Why each row is harmful, when the validation data and the model are at hand (given, or
    recorded by the scores or by the run folder they sit in), with the validation data they
    point into; else (None, None): inspect as before."""
    from dataclasses import replace

    from rdia_cli.cli.checks import device_of

    given = val is not None or model is not None
    if model is None:
        model = _recorded_file(sc.meta.get("model"), scores_path)
    if val is not None:
        val_opts = replace(read.options.inherit(sc.meta.get("train_read_options")),
                           labels=read.for_input("val").labels)
    elif sc.meta.get("val_path") and Path(sc.meta["val_path"]).exists():
        val, val_opts = Path(sc.meta["val_path"]), recorded_options(sc.meta, "val")
    else:
        val = _run_val(scores_path)
        val_opts = read.options.inherit(sc.meta.get("train_read_options"))
    if val is None or model is None or not rows:
        if given:
            raise InputError("why needs both the validation data and the model; give "
                             f"{'--model' if model is None else '--val'} as well.")
        return None, None
    if cleaned:
        if given:
            raise InputError("why needs the training data that was scored, not a cleaned file; "
                             "give it with --data.")
        return None, None
    from rdia_cli import report
    from rdia_cli.models.io import load_model
    from rdia_cli.stages import schema_of_model

    m = load_model(model)
    vds = load(val, val_opts, what="validation data", schema=schema_of_model(m))
    want = sc.meta.get("val_fingerprint")
    if want is not None and want != vds.fingerprint():
        warn(f"scores `{scores_path}` were computed on other validation data than `{val}`; "
             "the shares then do not add up to Φ.")
    with activity("explaining Φ by validation rows", stage=False):
        whys = report.explain_harmful(rows, sc, ds, vds, m, device=device_of(device))
    return whys, vds


def _recorded_file(recorded, scores_path) -> Path | None:
    """A file the scores record, as written or beside the scores file (a moved run folder)."""
    if not recorded:
        return None
    for p in (Path(recorded), Path(str(scores_path)).parent / Path(recorded).name):
        if p.is_file():
            return p
    return None


def _run_val(scores_path) -> Path | None:
    """The validation data run.json records, when the scores sit in a run folder."""
    import json

    run_dir = Path(str(scores_path)).parent
    try:
        run = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return None
    from rdia_cli.report import resolve_recorded

    return resolve_recorded(run_dir, run, run.get("val")) if isinstance(run, dict) else None


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
