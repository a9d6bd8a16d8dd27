"""`rdia evaluate`: loss, accuracy and AUC of each model on one data file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rdia_cli.artifacts.run_folder import write_json
from rdia_cli.cli.core import app, handle_errors
from rdia_cli.cli.options import (
    Classes,
    Device,
    Format,
    LabelCol,
    Labels,
    NFeatures,
    ZeroBased,
    check_train_options,
    device_of,
    load,
    read_opts,
)
from rdia_cli.cli.render import print_metrics


# --- evaluate ---------------------------------------------------------------------------------
@app.command()
@handle_errors
def evaluate(
    models: Annotated[list[Path], typer.Argument(help="One or more model files.")],
    data: Annotated[Path, typer.Option("--data", help="Test data.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the metrics as JSON.")] = None,
    device: Device = "auto",
    labels: Labels = None,
    label_col: LabelCol = "label",
    zero_based: ZeroBased = None,
    n_features: NFeatures = None,
    classes: Classes = None,
    fmt: Format = "auto",
) -> None:
    """Loss, accuracy and (binary) AUC of each model on --data, side by side."""
    from rdia_cli import stages as api
    from rdia_cli.artifacts.atomic import check_output
    from rdia_cli.models.io import load_model

    check_train_options(n_features=n_features)
    if json_out is not None:
        check_output(json_out, data, labels, *models, option="--json")
    dev = device_of(device)
    opts = read_opts(labels, label_col, zero_based, n_features, classes, fmt)
    loaded = [load_model(p) for p in models]
    results = []
    cache = {}
    for path, m in zip(models, loaded, strict=True):
        schema = api.schema_of_model(m)
        key = json.dumps(schema.__dict__, default=str, sort_keys=True)
        if key not in cache:
            cache[key] = load(data, opts, what="test data", schema=schema)
        metrics = api.evaluate_model(m, cache[key], device=dev)
        results.append({"model": str(path), **metrics})
    print_metrics(results, title=f"rdia evaluate on {data}")
    if json_out is not None:
        write_json(json_out, {"data": str(data), "models": results})
