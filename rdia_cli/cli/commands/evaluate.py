"""`rdia evaluate`: loss, accuracy and AUC of each model on one data file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rdia_cli.cli.checks import check_train_options, device_of
from rdia_cli.cli.core import app, handle_errors
from rdia_cli.cli.params import Device
from rdia_cli.cli.reading import ReadArgs, load, read_options
from rdia_cli.cli.render import activity, print_metrics


# --- evaluate ---------------------------------------------------------------------------------
@app.command()
@handle_errors(json=True)
@read_options()
def evaluate(
    models: Annotated[list[Path], typer.Argument(help="One or more model files.")],
    data: Annotated[Path, typer.Option("--data", help="Test data.")],
    device: Device = "auto",
    read: ReadArgs = None,
) -> dict:
    """Loss, accuracy and (binary) AUC of each model on --data, side by side.

    A logistic regression is evaluated on the CPU with numpy (`--device cpu` or `auto`; one pass
    over the data never pays a GPU back): no torch to load, so it starts in a fraction of a
    second."""
    from rdia_cli import stages as api
    from rdia_cli.models.io import load_model
    from rdia_cli.models.kinds import kind_of
    from rdia_cli.models.logreg.arrays import NUMPY_DEVICE, numpy_device

    check_train_options(n_features=read.flags["n_features"])
    opts = read.options
    loaded = [load_model(p, arrays="numpy") for p in models]
    on_numpy = [kind_of(m).numpy_cpu and numpy_device(device) for m in loaded]
    dev = NUMPY_DEVICE if all(on_numpy) else device_of(device)
    results = []
    cache = {}
    for path, m, numpy in zip(models, loaded, on_numpy, strict=True):
        schema = api.schema_of_model(m)
        key = json.dumps(schema.__dict__, default=str, sort_keys=True)
        if key not in cache:
            cache[key] = load(data, opts, what="test data", schema=schema)
        with activity(f"evaluating {path}", phase="evaluate", stage=False):
            metrics = api.evaluate_model(m, cache[key], device=NUMPY_DEVICE if numpy else dev)
        results.append({"model": str(path), **metrics})
    print_metrics(results, title=f"rdia evaluate on {data}")
    return {"data": str(data), "models": results}
