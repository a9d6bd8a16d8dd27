"""`rdia retrain`: refit a model file's architecture on a cleaned file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from rdia_cli.cli.checks import check_train_options, device_of
from rdia_cli.cli.core import app, handle_errors
from rdia_cli.cli.params import LOGREG_PANEL, NETWORKS_PANEL, SEED_MAX, Device, ModelOutput
from rdia_cli.cli.reading import ReadArgs, load, read_options
from rdia_cli.cli.render import activity, fmt_value, say, summary_table, warn_not_converged


# --- retrain ----------------------------------------------------------------------------------
@app.command()
@handle_errors(json=True)
@read_options("val")
def retrain(
    cleaned: Annotated[Path, typer.Argument(help="Cleaned training set from `rdia relabel`.")],
    model: Annotated[Path, typer.Option("--model", help="The model to retrain (its settings are reused).")],
    output: ModelOutput,
    val: Annotated[Path | None, typer.Option("--val", help="The clean set to add back to a `relabel --strategy auto` file written without it (its fingerprint is checked).", show_default="the file CLEANED records")] = None,
    from_scratch: Annotated[bool, typer.Option("--from-scratch", help="Start from a fresh model instead of MODEL's weights.")] = False,
    device: Device = "auto",
    seed: Annotated[int | None, typer.Option("--seed", min=0, max=SEED_MAX, help="Random seed of a network's retraining (logistic regression needs none).", show_default="MODEL's")] = None,
    l2: Annotated[float | None, typer.Option("--l2", help="Override λ; on `relabel --strategy auto` output: one fit on all its rows, no blend with the clean set alone.", show_default="MODEL's, or the λ auto chose", rich_help_panel=LOGREG_PANEL)] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Override the epochs.", show_default="MODEL's", rich_help_panel=NETWORKS_PANEL)] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Override the learning rate.", show_default="MODEL's ÷ 10 when warm-starting", rich_help_panel=NETWORKS_PANEL)] = None,
    read: ReadArgs = None,
) -> dict:
    """Retrain MODEL's architecture on CLEANED, the output of `rdia relabel`: its targets and
    weights (the raw Eq. 12 targets where the file keeps them in `target_raw`), with MODEL's
    settings unless overridden here."""
    from rdia_cli import stages as api
    from rdia_cli.artifacts.atomic import check_output
    from rdia_cli.models.io import load_model, save_model

    check_train_options(l2=l2, epochs=epochs, lr=lr)
    check_train_options(n_features=read.flags["n_features"])
    check_output(output, cleaned, model, val, *read.files)
    dev = device_of(device)
    m = load_model(model)
    from rdia_cli.cleaning.files import from_file, load_clean_rows, needs_clean_rows

    schema = api.schema_of_model(m)
    ds = from_file(load(cleaned, read.options, what="cleaned data", schema=schema))
    net = {k: v for k, v in {"epochs": epochs, "lr": lr, "seed": seed}.items() if v is not None}
    if needs_clean_rows(ds):  # auto trained on them: add them back
        clean = None if val is None else load(val, read.for_input("val"), what="clean data",
                                              schema=schema)
        ds = load_clean_rows(ds, clean, schema=schema)
    t0 = time.perf_counter()
    with activity(f"retraining {m.arch}", phase="retrain"):
        m2, blend = api.retrain_cleaned(ds, m, from_scratch=from_scratch, device=dev, l2=l2,
                                        net_options=net)
    m2.meta["retrained_from"] = str(model)
    m2.meta["source"] = str(cleaned)
    save_model(m2, output)
    mt = m2.meta.get("metrics", {})
    rows = [("data", f"{cleaned}  ({ds.n_samples:,} rows, "
                     f"{int(ds.extra.get('relabeled', []).sum()) if 'relabeled' in ds.extra else 0:,} relabeled)"),
            ("start", "from scratch" if from_scratch else f"warm from {model}"),
            *([("blend", f"{blend['clean_only_share']:.0%} of a fit on the clean rows alone "
                         "(auto's choice)")] if blend else []),
            ("train objective", fmt_value(mt.get("train_objective", mt.get("train_loss")), ".6f")),
            ("time", f"{time.perf_counter() - t0:.2f} s"), ("wrote", str(output))]
    say(summary_table("rdia retrain", rows))
    warn_not_converged(m2, output)
    return {"wrote": {"model": str(output)}, "rows": ds.n_samples,
            "from_scratch": from_scratch, "blend": blend or None, "metrics": mt}
