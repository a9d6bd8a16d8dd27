"""`rdia split`, `rdia noise` and `rdia convert`: the protocol helpers around the pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rdia_cli.cli.checks import check_train_options
from rdia_cli.cli.core import OUTPUT_PANEL, app, handle_errors
from rdia_cli.cli.params import DataOutput, Seed
from rdia_cli.cli.paths import check_output_folder, shown_path
from rdia_cli.cli.reading import ReadArgs, load, read_options
from rdia_cli.cli.render import say
from rdia_cli.errors import InputError


# --- protocol helpers -------------------------------------------------------------------------
@app.command()
@handle_errors(json=True)
@read_options()
def split(
    data: Annotated[Path, typer.Argument(help="Data to split.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for train/val/test.parquet.", rich_help_panel=OUTPUT_PANEL)],
    val: Annotated[float, typer.Option("--val-share", help="Share of rows for validation.")] = 0.2,
    test: Annotated[float, typer.Option("--test-share", help="Share of rows for test (0: none).")] = 0.2,
    seed: Seed = 0,
    suffix: Annotated[str, typer.Option("--suffix", help="File type of the parts: .parquet, .csv, .tsv, .svm or .libsvm.", rich_help_panel=OUTPUT_PANEL)] = ".parquet",
    val_old: Annotated[float | None, typer.Option("--val", hidden=True, help="Old name of --val-share.")] = None,
    test_old: Annotated[float | None, typer.Option("--test", hidden=True, help="Old name of --test-share.")] = None,
    read: ReadArgs = None,
) -> dict:
    """Stratified split into DIR/train.parquet, DIR/val.parquet and DIR/test.parquet (or
    another --suffix).

    --val-share and --test-share are shares of the rows (elsewhere --val and --test name
    files); the old spellings `--val 0.2` and `--test 0.2` still work."""
    from rdia_cli.data.protocol import split_dataset
    from rdia_cli.data.writers import output_format, write_dataset

    val = _renamed("--val", val_old, "--val-share", val, 0.2)
    test = _renamed("--test", test_old, "--test-share", test, 0.2)
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise InputError(f"--val-share and --test-share must be shares in [0, 1) summing below "
                         f"1, not {val} and {test}.")
    suffix = suffix if suffix.startswith(".") else f".{suffix}"
    try:
        output_format(f"train{suffix}")
    except InputError:
        raise InputError(f"--suffix {suffix} is not a format rdia writes; use .parquet, .csv, "
                         ".tsv, .svm or .libsvm.") from None
    check_train_options(n_features=read.flags["n_features"])
    check_output_folder(output)
    ds = load(data, read.options, what="data")
    parts = split_dataset(ds, val=val, test=test, seed=seed)
    output.mkdir(parents=True, exist_ok=True)
    wrote, rows = {}, {}
    for name, part in zip(("train", "val", "test"), parts, strict=True):
        if name != "train" and part.n_samples == 0:
            continue
        path = output / f"{name}{suffix}"
        if path.resolve() == data.resolve():
            raise InputError(f"`{path}` is the input; choose another -o folder.")
        write_dataset(part, str(path), meta={"split": {"seed": seed, "val": val, "test": test,
                                                       "source": str(data)}})
        say(f"wrote {path}  ({part.n_samples:,} rows)")
        wrote[name], rows[name] = str(path), part.n_samples
    return {"wrote": wrote, "rows": rows, "seed": seed}


def _renamed(old: str, old_value, new: str, value, default):
    """The value of an option given under its old name ``old`` or its new name ``new``."""
    if old_value is None:
        return value
    if value != default:
        raise InputError(f"{old} is the old name of {new}; give one of them.")
    return old_value


@app.command()
@handle_errors(json=True)
@read_options()
def noise(
    data: Annotated[Path, typer.Argument(help="Data to corrupt.")],
    output: DataOutput,
    rate: Annotated[float | None, typer.Option("--rate", help="τ: probability that a label is replaced (symmetric, pair: of every row; class: of the source class's rows; instance: on average). Not with --kind matrix.")] = None,
    kind: Annotated[str, typer.Option("--kind", help="symmetric (to a uniform other class), pair (class k → k+1 mod K), matrix (a K × K transition matrix, --matrix), class (only --from-class → --to-class), instance (harder rows flip more often, to the model's most likely other class).")] = "symmetric",
    matrix: Annotated[Path | None, typer.Option("--matrix", help="--kind matrix: text file of K lines of K numbers (whitespace or commas); line k is P(noisy = j | clean = k), classes in the data's order; rows sum to 1; # comments.")] = None,
    from_class: Annotated[str | None, typer.Option("--from-class", help="--kind class: the class whose rows flip.", show_default="the first class")] = None,
    to_class: Annotated[str | None, typer.Option("--to-class", help="--kind class: the class they flip into.", show_default="the next class")] = None,
    seed: Seed = 0,
    read: ReadArgs = None,
) -> dict:
    """Add label noise of one --kind to DATA and write the result (-o); the `is_noisy` and
    `clean_label` columns record what changed."""
    from rdia_cli.artifacts.atomic import check_output
    from rdia_cli.data.protocol import NOISE_KINDS, inject_noise, read_transition_matrix
    from rdia_cli.data.writers import output_format, write_dataset
    from rdia_cli.errors import InputError

    if kind not in NOISE_KINDS:
        raise InputError(f"`--kind` {kind!r} is not one of {', '.join(NOISE_KINDS)}.")
    if kind == "matrix" and matrix is None:
        raise InputError("`--kind matrix` needs `--matrix FILE` (K lines of K numbers).")
    if kind == "matrix" and rate is not None:
        raise InputError("`--rate` does not apply to `--kind matrix`: the matrix sets the flip "
                         "rates; leave `--rate` out.")
    if kind != "matrix" and rate is None:
        raise InputError(f"`--kind {kind}` needs `--rate` (a probability in [0, 1]).")
    if kind != "matrix" and matrix is not None:
        raise InputError("`--matrix` applies to `--kind matrix` only.")
    if kind != "class" and (from_class is not None or to_class is not None):
        raise InputError("`--from-class`/`--to-class` apply to `--kind class` only.")
    check_output(output, data, *read.files)
    output_format(str(output))
    ds = load(data, read.options, what="data")
    transition = read_transition_matrix(matrix, ds.n_classes) if matrix is not None else None
    noisy = inject_noise(ds, rate=rate, seed=seed, kind=kind, matrix=transition,
                         from_class=from_class, to_class=to_class)
    info = dict(noisy.meta["noise"], **({"matrix_file": str(matrix)} if matrix else {}))
    write_dataset(noisy, str(output), meta={"noise": info})
    n_noisy = int(noisy.extra["is_noisy"].sum())
    tau = "" if rate is None else f"τ={rate:g}"
    what = {"symmetric": f"symmetric noise {tau}", "pair": f"pair-flip noise (k → k+1) {tau}",
            "matrix": f"transition-matrix noise from {matrix}",
            "class": f"class-conditional noise {info.get('from_class')} → "
                     f"{info.get('to_class')} {tau}",
            "instance": f"instance-dependent noise, mean {tau}"}[kind]
    say(f"wrote {shown_path(output)}  ({noisy.n_samples:,} rows, {what}: {n_noisy:,} labels "
        "changed)")
    return {"wrote": {"data": str(output)}, "rows": noisy.n_samples, "changed": n_noisy,
            "noise": info}


@app.command()
@handle_errors(json=True)
@read_options()
def convert(
    data: Annotated[Path, typer.Argument(help="Data in any supported format.")],
    output: DataOutput,
    read: ReadArgs = None,
) -> dict:
    """Write DATA in the format -o names (e.g. MNIST IDX with --classes 1,7 to .parquet, a
    LIBSVM file to .csv)."""
    from rdia_cli.artifacts.atomic import check_output
    from rdia_cli.data.writers import output_format, write_dataset

    check_train_options(n_features=read.flags["n_features"])
    check_output(output, data, *read.files)
    output_format(str(output))
    ds = load(data, read.options)
    write_dataset(ds, str(output))
    say(f"wrote {shown_path(output)}  ({ds.n_samples:,} rows × {ds.n_features:,} "
        f"features, classes {ds.classes})")
    return {"wrote": {"data": str(output)}, "rows": ds.n_samples, "features": ds.n_features,
            "classes": list(ds.classes)}
