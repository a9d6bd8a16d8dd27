"""`rdia run` (all five stages on your files) and `rdia demo` (the same on built-in data)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rdia_cli.artifacts.inputs import record_inputs
from rdia_cli.cli.checks import device_of, parse_alpha
from rdia_cli.cli.core import OUTPUT_PANEL, app, handle_errors
from rdia_cli.cli.params import LOGREG_PANEL, NETWORKS_PANEL, Device, Seed
from rdia_cli.cli.reading import ReadArgs, load, read_options
from rdia_cli.cli.render import activity, print_metrics, say


def _run_and_print(train, val, test, output: Path, settings, dev, inputs=None) -> dict:
    """Run the pipeline, print its tables, return the --json document."""
    import json

    from rdia_cli.pipeline import run_pipeline

    with activity("train → score → relabel → retrain → evaluate", phase="pipeline") as act:

        def stage_done(msg: str) -> None:
            say(f"[dim]·[/] {msg}")

        payload = run_pipeline(train, val, test, output, settings, device=dev, say=stage_done,
                               stage=act.begin, progress=act.update, inputs=inputs)
    print_metrics(payload["models"], title=f"test set: {test.source} ({test.n_samples:,} rows)")
    erm, main = payload["models"][0], payload["models"][1]
    change = main["loss"] - erm["loss"]
    verdict = "better" if change < 0 else "worse"
    say(f"{main['name']} vs erm: test loss {main['loss']:.4f} vs {erm['loss']:.4f} "
        f"({change:+.4f}, {verdict}); files in {output}/")
    if payload.get("verdict"):
        from rdia_cli.cleaning.auto import verdict_lines

        say("[bold]verdict (from the validation data alone):[/]")
        for line in verdict_lines(payload["verdict"]):
            say(f"  {line}")
    run = json.loads((output / "run.json").read_text())
    files = sorted(str(p) for p in output.iterdir() if p.is_file())
    return {"wrote": {"folder": str(output), "files": files},
            "rows": {"train": train.n_samples, "val": val.n_samples, "test": test.n_samples},
            "models": payload["models"], "verdict": payload.get("verdict"),
            "strategies": run.get("strategies"), "stage_seconds": run.get("timings")}


@app.command()
@handle_errors(json=True)
@read_options("val", "test")
def run(
    train: Annotated[Path, typer.Argument(help="Training data (possibly noisy or biased).")],
    val: Annotated[Path, typer.Option("--val", help="Small clean validation data.")],
    test: Annotated[Path, typer.Option("--test", help="Test data for the before/after table.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for every stage's files.", rich_help_panel=OUTPUT_PANEL)],
    model_type: Annotated[str, typer.Option("--model-type", help="logreg (logistic regression), mlp, lenet or cnn.")] = "logreg",
    l2: Annotated[float | None, typer.Option("--l2", help="λ of every fit; a given λ is kept, else --strategy auto tunes it by cross-validation.", show_default="1/N", rich_help_panel=LOGREG_PANEL)] = None,
    alpha: Annotated[str | None, typer.Option("--alpha", help="The paper's α (a threshold on C·(M/N)·Φ, as `rdia relabel --alpha`), or auto (tuned on --val).")] = "auto",
    fraction: Annotated[float | None, typer.Option("--fraction", help="Relabel the top fraction by Φ instead of α.")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="auto (cross-validated on --val, the clean set becomes training data; logreg only), rdia (the paper), drop, uids, optlr or random.", show_default="auto for logreg, rdia for networks")] = None,
    targets: Annotated[str, typer.Option("--targets", help="rdia targets: paper, gradient or hard.")] = "paper",
    compare: Annotated[bool, typer.Option("--compare", help="Also run the baseline strategies.")] = False,
    solver: Annotated[str, typer.Option("--solver", help="Influence solver: auto, direct or cg; networks: cg or lissa.")] = "auto",
    damping: Annotated[float | None, typer.Option("--damping", help="δ added to the Hessian.", show_default="0 logreg, 0.01 networks")] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the data.", rich_help_panel=NETWORKS_PANEL)] = 10,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Mini-batch size.", rich_help_panel=NETWORKS_PANEL)] = 128,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.", rich_help_panel=NETWORKS_PANEL)] = 1e-3,
    device: Device = "auto",
    seed: Seed = 0,
    read: ReadArgs = None,
) -> dict:
    """Train, score, relabel, retrain and evaluate in one go; files land in -o DIR."""
    from rdia_cli import validate as v
    from rdia_cli.cli.checks import check_train_options
    from rdia_cli.cli.paths import check_output_folder
    from rdia_cli.data.readers import Schema
    from rdia_cli.pipeline import RunSettings

    check_train_options(l2=l2, epochs=epochs, batch_size=batch_size, lr=lr,
                         n_features=read.flags["n_features"])
    v.non_negative("--damping", damping)
    v.check_number("--fraction", fraction, low=0.0, high=1.0, open_low=True)
    check_output_folder(output)
    for p in (train, val, test):
        if p.resolve() == output.resolve():
            raise_input(f"-o `{output}` is an input file; give a folder for the outputs.")
    from rdia_cli.pipeline import check_run_inputs

    check_run_inputs(output, [train, val, test, *read.files])
    a = parse_alpha(alpha) if fraction is None else None
    settings = RunSettings(model_type=model_type, l2=l2, alpha=a, fraction=fraction,
                           strategy=strategy, targets=targets, compare=compare, seed=seed,
                           solver=solver, damping=damping,
                           net_options={"epochs": epochs, "batch_size": batch_size, "lr": lr,
                                        "seed": seed})
    dev = device_of(device)
    opts = read.options
    tr = load(train, opts, what="training data")
    from rdia_cli.data.tables import prep_of

    if prep_of(tr) is not None:
        say(f"[dim]·[/] columns of {train}: {prep_of(tr).summary.describe()}")
    schema = Schema.of(tr)
    va = load(val, read.for_input("val"), what="validation data", schema=schema)
    te = load(test, read.for_input("test"), what="test data", schema=schema)
    inputs = record_inputs(train=(train, opts),
                           val=(val, read.for_input("val").inherit(schema.read_options)))
    return _run_and_print(tr, va, te, output, settings, dev, inputs)


def raise_input(message: str) -> None:
    from rdia_cli.errors import InputError

    raise InputError(message)


@app.command()
@handle_errors(json=True)
def demo(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Folder for the demo's files, named at the end.", show_default="a new temporary folder", rich_help_panel=OUTPUT_PANEL)] = None,
    noise_rate: Annotated[float, typer.Option("--noise-rate", help="Share of training labels corrupted.")] = 0.4,
    compare: Annotated[bool, typer.Option("--compare", help="Also run the baseline strategies.")] = False,
    strategy: Annotated[str, typer.Option("--strategy", help="Main strategy: auto, rdia, drop, uids, optlr or random.")] = "auto",
    device: Device = "auto",
    seed: Seed = 0,
) -> dict:
    """RDIA on scikit-learn's breast-cancer data with label noise, end to end (< 30 s).

    Shows ERM, the default `auto` strategy and the paper's RDIA on the test set."""
    from rdia_cli.data.writers import write_dataset
    from rdia_cli.pipeline import RunSettings

    dev = device_of(device)
    train, val, test = builtin_example(noise_rate=noise_rate, seed=seed)
    if output is None:  # never into the user's working copy unasked
        import tempfile

        output = Path(tempfile.mkdtemp(prefix="rdia-demo-"))
    output.mkdir(parents=True, exist_ok=True)
    for name, ds in (("train", train), ("val", val), ("test", test)):
        path = output / f"{name}.parquet"
        write_dataset(ds, str(path))
        ds.source = str(path)
    n_noisy = int(train.extra["is_noisy"].sum())
    say(f"breast-cancer (scikit-learn): {train.n_samples} train rows ({n_noisy} labels "
        f"corrupted, τ = {noise_rate}), {val.n_samples} clean validation, "
        f"{test.n_samples} test")
    settings = RunSettings(alpha="auto", compare=compare, seed=seed, strategy=strategy,
                           also=("rdia",))
    doc = _run_and_print(train, val, test, output, settings, dev)
    say(f"rerun any stage on the files in {output}/, e.g. "
        f"`rdia score {output}/train.parquet --val {output}/val.parquet "
        f"--model {output}/erm.pt -o scores.parquet`")
    return doc


def builtin_example(*, noise_rate: float = 0.4, seed: int = 0):
    """scikit-learn's breast-cancer data, standardized, split 60/20/20, noise in train only."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    from rdia_cli.data.dataset import Dataset
    from rdia_cli.data.protocol import inject_noise, split_dataset

    bunch = load_breast_cancer()
    X = bunch.data.astype(np.float64)
    X = (X - X.mean(0)) / X.std(0)
    names = [str(n).replace(" ", "_") for n in bunch.feature_names]
    ds = Dataset(X=X, y=bunch.target, classes=[0, 1], row_id=np.arange(len(X)),
                 feature_names=names, source="sklearn:breast_cancer")
    train, val, test = split_dataset(ds, val=0.2, test=0.2, seed=seed)
    return inject_noise(train, rate=noise_rate, seed=seed), val, test
