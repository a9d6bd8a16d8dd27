"""`rdia relabel`: choose the harmful rows by a rule (or `auto`) and write the cleaned file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from rdia_cli.artifacts.inputs import record_inputs, recorded_path
from rdia_cli.cli.checks import device_of, parse_alpha
from rdia_cli.cli.core import OUTPUT_PANEL, app, handle_errors
from rdia_cli.cli.params import DataOutput, Device, Seed
from rdia_cli.cli.paths import shown_path
from rdia_cli.cli.reading import ReadArgs, load, read_options, recorded_options
from rdia_cli.cli.render import activity, fmt_value, say, summary_table, warn
from rdia_cli.errors import InputError


# --- relabel ----------------------------------------------------------------------------------
def _relabel_choice(alpha, phi_threshold, fraction, strategy):
    """Which rows: (α on the paper's scale | 'auto' | None, Φ threshold, fraction, strategy)."""
    from rdia_cli.validate import check_number

    a = parse_alpha(alpha)
    check_number("--phi-threshold", phi_threshold, low=0.0)
    check_number("--fraction", fraction, low=0.0, high=1.0, open_low=True)
    given = [name for name, v in (("--alpha", a), ("--phi-threshold", phi_threshold),
                                  ("--fraction", fraction)) if v is not None]
    if len(given) > 1:
        raise InputError(f"give one of --alpha, --phi-threshold and --fraction, not "
                         f"{' and '.join(given)}.")
    if strategy is None:  # no rule given: auto, as `rdia run`; a rule: the paper's method
        from rdia_cli.stages import default_strategy

        strategy = default_strategy(None, rule_given=bool(given))
    if strategy == "auto":
        if given and given != ["--alpha"] or a not in (None, "auto"):
            raise InputError("--strategy auto chooses the rows itself by cross-validation; "
                             "drop --alpha/--phi-threshold/--fraction.")
        return "auto", None, None, strategy
    if not given:
        raise InputError("give --alpha A (the paper's α, e.g. 0.002), --alpha auto, "
                         "--phi-threshold T or --fraction Q (which rows to relabel), or use "
                         "--strategy auto.")
    return a, phi_threshold, fraction, strategy


def _scores_source(scores: Path | None, data: Path | None = None) -> Path:
    import sys

    if scores is not None:
        return scores
    if str(data) == "-":
        raise InputError("DATA is `-`, and so is --scores when not given: standard input can "
                         "be read only once; give --scores FILE or a DATA file.")
    if sys.stdin is None or sys.stdin.isatty():
        raise InputError("give --scores FILE, or pipe `rdia score` into this command "
                         "(`rdia score DATA --val VAL --model MODEL | rdia relabel ...`).")
    return Path("-")


@app.command()
@handle_errors(json=True)
@read_options("val")
def relabel(
    output: DataOutput,
    data: Annotated[Path | None, typer.Argument(help="The training data that was scored.", show_default="the file the scores record")] = None,
    scores: Annotated[Path | None, typer.Option("--scores", help="Scores file from `rdia score`; `-`: standard input.", show_default="standard input")] = None,
    alpha: Annotated[str | None, typer.Option("--alpha", help="Relabel the rows whose Φ on the paper's scale (scores column phi_paper = C·(M/N)·Φ, C = 1/(λN)) exceeds A: the paper's α, e.g. 0.002. Or `auto`: choose on --val.")] = None,
    phi_threshold: Annotated[float | None, typer.Option("--phi-threshold", help="Relabel the rows with Φ > T in rdia's normalization (scores column phi; -Φ/N is the predicted validation-loss change of removing a row).")] = None,
    fraction: Annotated[float | None, typer.Option("--fraction", help="Relabel the top fraction of rows by Φ, in (0, 1] (only Φ > 0).")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="What to do with the chosen rows: rdia (relabel, the paper), drop, uids, optlr, random, or auto (logreg: cross-validated on the clean set; it chooses the rows itself).", show_default="rdia with --alpha, --phi-threshold or --fraction, else auto")] = None,
    targets: Annotated[str, typer.Option("--targets", help="rdia targets: paper (Eq. 12), gradient or hard.")] = "paper",
    include_clean: Annotated[bool, typer.Option("--include-clean", help="--strategy auto: also write the clean validation rows it trains on (column part = 1). Left out by default, so that appending your clean set does not count it twice.", rich_help_panel=OUTPUT_PANEL)] = False,
    val: Annotated[Path | None, typer.Option("--val", help="Validation data, for --alpha auto and --strategy auto.", show_default="the one the scores record")] = None,
    model: Annotated[Path | None, typer.Option("--model", help="Model file, for --alpha auto and --strategy auto.", show_default="the one the scores record")] = None,
    device: Device = "auto",
    seed: Seed = 0,
    read: ReadArgs = None,
) -> dict:
    """Relabel (or drop, reweight...) the harmful rows; write the cleaned training set.

    The output is ready for any trainer: `label` is the new hard label (the old one in
    `original_label`), `target` a probability vector per row, `weight` only when not all 1.
    `rdia score train.svm --val val.svm --model lr.pt | rdia relabel --alpha 0.002 -o
    cleaned.parquet` reads the scores from the pipe and the data from where they were made."""
    from rdia_cli import stages as api
    from rdia_cli.artifacts.atomic import check_output
    from rdia_cli.artifacts.scores import check_scores_match, read_scores
    from rdia_cli.cleaning.files import rule_record, write_cleaned
    from rdia_cli.data.writers import output_format

    a, phi_threshold, fraction, strategy = _relabel_choice(alpha, phi_threshold, fraction,
                                                           strategy)
    dev = device_of(device)
    source = _scores_source(scores, data)
    check_output(output, data, source, val, model, *read.files)
    output_format(str(output))
    sc = read_scores(source)
    if data is None:
        data = recorded_path(sc.meta, "train", "training data", "give DATA")
        opts = recorded_options(sc.meta, "train")
    else:  # what the user gave, the rest as `rdia score` read it
        opts = read.options.inherit(sc.meta.get("train_read_options"))
    check_output(output, data)
    ds = load(data, opts, what="training data")
    check_scores_match(sc, ds.fingerprint(), ds.row_id, str(data))
    if strategy == "auto" or a == "auto":
        if model is None and sc.meta.get("model") and Path(sc.meta["model"]).exists():
            model = Path(sc.meta["model"])
        if val is None and sc.meta.get("val_path"):
            val = recorded_path(sc.meta, "val", "validation data", "give --val")
            val_opts = recorded_options(sc.meta, "val")
        else:
            val_opts = replace(opts, labels=read.for_input("val").labels)
        if val is None or model is None:
            raise InputError(f"{'--strategy' if strategy == 'auto' else '--alpha'} auto "
                             "(the default without --alpha, --phi-threshold or --fraction) "
                             "retrains on the clean set: give --val and --model, or choose "
                             "the rows with --alpha A or --fraction Q.")
        check_output(output, val, model)
    if strategy == "auto":
        return _relabel_auto(ds, sc, output, val, val_opts, model, dev, seed, include_clean)
    if a == "auto":
        from rdia_cli.models.io import load_model

        m = load_model(model)
        vds = load(val, val_opts, what="validation data", schema=api.schema_of_model(m))
        with activity("choosing α", phase="relabel") as act:
            outcome = api.auto_alpha(
                ds, sc, m, vds, strategy=strategy, targets=targets, seed=seed, device=dev,
                progress=lambda i, k: act.update(i, k, f"candidate {i} of {k}"),
            )
    else:
        outcome = api.relabel_dataset(ds, sc, strategy=strategy, alpha=a,
                                      phi_threshold=phi_threshold, fraction=fraction,
                                      targets=targets, seed=seed)
        _warn_if_too_many(outcome, sc, alpha if a is not None else None, fraction,
                          phi_threshold)
    record = rule_record(outcome.cleaning, strategy=strategy, targets=targets,
                         alpha=outcome.alpha, phi_threshold=outcome.phi_threshold,
                         fraction=fraction, paper_factor=sc.paper_factor, scores=str(sc.path),
                         scores_fingerprint=sc.meta.get("train_fingerprint"),
                         source_fingerprint=ds.fingerprint(), sweep=outcome.sweep)
    write_cleaned(outcome.dataset, output, record)
    _print_relabel_summary(outcome, ds, output, outcome.alpha, outcome.phi_threshold)
    c = outcome.cleaning
    return {"wrote": {"cleaned": str(output)}, "strategy": strategy, "targets": targets,
            "rows": ds.n_samples, "rows_written": outcome.dataset.n_samples,
            "relabeled": c.n_relabeled, "removed": c.n_removed,
            "reweighted": c.weight is not None, "alpha": outcome.alpha,
            "phi_threshold": outcome.phi_threshold, "fraction": fraction,
            "sweep": outcome.sweep or None}


def _warn_if_too_many(outcome, sc, alpha, fraction, phi_threshold) -> None:
    """A hand-picked rule that changes more rows than the data supports
    (``stages.changed_too_much``)."""
    from rdia_cli.stages import changed_rows, changed_too_much

    reasons = changed_too_much(outcome, sc.probs, sc.label)
    if not reasons:
        return
    n, changed = sc.n_samples, changed_rows(outcome)
    given = (f"--alpha {alpha}" if alpha is not None else f"--fraction {fraction}"
             if fraction is not None else f"--phi-threshold {phi_threshold}")
    warn(f"{given} changes {changed:,} of {n:,} rows ({changed / max(n, 1):.0%}), "
         f"{' and '.join(reasons)}; on clean data that makes the model worse. `--strategy auto "
         "--val VAL --model MODEL` chooses the rows by cross-validation on the clean set.")


def _relabel_auto(ds, sc, output, val, val_opts, model, dev, seed, include_clean) -> dict:
    """--strategy auto: cross-validated cleaning. The output holds the cleaned training rows
    (and with --include-clean the validation rows, column `part` = 1); its metadata records the
    clean set, λ and the blend, which `rdia retrain` uses."""
    from rdia_cli import stages as api
    from rdia_cli.cleaning.auto import auto_clean, verdict_lines
    from rdia_cli.cleaning.files import auto_record, hint_lines, split_clean_rows, write_cleaned
    from rdia_cli.data.writers import output_format
    from rdia_cli.models.io import load_model

    m = load_model(model)
    vds = load(val, val_opts, what="validation data", schema=api.schema_of_model(m))
    with activity("cross-validating", phase="relabel") as act:
        ac = auto_clean(ds, vds, m, seed=seed, device=dev,
                        progress=lambda i, k: act.update(i, k, f"fit {i} of about {k}"))
    rows, clean_info = split_clean_rows(ac.cleaned, include_clean, source=ds, clean=vds)
    record = auto_record(ac, source_fingerprint=ds.fingerprint(), clean=vds,
                         clean_info=clean_info, clean_inputs=record_inputs(clean=(val, val_opts)),
                         scores=str(sc.path))
    write_cleaned(rows, output, record)
    which = ("with" if clean_info.get("clean_rows") == "included" else "without") + (
        f" the {vds.n_samples:,} clean rows")
    if "clean_rows_why" in clean_info:
        which += f": {clean_info['clean_rows_why']}"
    say(summary_table("rdia relabel --strategy auto", [
        ("rows", f"{ds.n_samples:,} training + {vds.n_samples:,} validation"),
        ("wrote", f"{shown_path(output)}  ({rows.n_samples:,} rows, {which}; retrain on it "
                  "with `rdia retrain`)"),
    ]))
    for line in verdict_lines(ac.verdict):
        say(f"  {line}")
    if output_format(str(output))[0] != "parquet":
        say(f"[yellow]note:[/] {shown_path(output)} cannot hold auto's record (λ, the "
            "blend, where the clean rows are): `rdia retrain` repeats auto's model from "
            "a .parquet output only.")
    hints = hint_lines(record, rows.n_samples)
    if hints:
        say("[bold]for your own trainer:[/]")
        for line in hints:
            say(f"  {line}")
    return {"wrote": {"cleaned": str(output)}, "strategy": "auto",
            "rows": ds.n_samples, "val_rows": vds.n_samples, "rows_written": rows.n_samples,
            "clean_rows": clean_info.get("clean_rows"), "verdict": ac.verdict,
            "hints": hints}


def _print_relabel_summary(outcome, ds, output, paper_alpha, phi_cut) -> None:
    from rich.table import Table

    c = outcome.cleaning
    rows = [
        ("rows", f"{ds.n_samples:,}"),
        ("α (paper's scale)", fmt_value(paper_alpha, ".6g")),
        ("Φ threshold", fmt_value(phi_cut, ".6g")),
        ("relabeled", f"{c.n_relabeled:,}"),
        ("removed", f"{c.n_removed:,}"),
        ("reweighted", "yes" if c.weight is not None else "no"),
        ("wrote", f"{shown_path(output)}  ({outcome.dataset.n_samples:,} rows; "
                  f"`{_label_column(ds)}` holds the new labels)"),
    ]
    say(summary_table("rdia relabel", rows))
    if outcome.sweep:
        t = Table(title="α sweep on the validation set (in-sample)", title_justify="left")
        for col in ("α (paper)", "Φ threshold", "selected", "predicted val loss",
                    "val loss after retrain"):
            t.add_column(col, justify="right")
        for r in outcome.sweep:
            t.add_row(fmt_value(r.get("alpha_paper"), ".4g") if r["alpha"] is not None else "none",
                      "none" if r["alpha"] is None else f"{r['alpha']:.4g}", str(r["n_selected"]),
                      f"{r['predicted_val_loss']:.4f}", f"{r['val_loss']:.4f}")
        say(t)


def _label_column(ds) -> str:
    """The label column's name in the cleaned file: the input table's own, else `label`."""
    return (ds.meta.get("columns") or {}).get("label") or "label"

