"""`rdia synth`: Avazu-shaped sparse click data with planted label noise (for scale tests)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from rdia_cli.cli.core import OUTPUT_PANEL, app, handle_errors
from rdia_cli.cli.params import Seed


@app.command()
@handle_errors(json=True)
def synth(
    output: Annotated[Path, typer.Option("-o", "--output", help="Parquet file to write, e.g. synth.parquet.", rich_help_panel=OUTPUT_PANEL)],
    rows: Annotated[int, typer.Option("--rows", help="Rows N (avazu-app has 14,596,137).")] = 100_000,
    features: Annotated[int, typer.Option("--features", help="Hashed feature columns P.")] = 1_000_000,
    nnz: Annotated[int, typer.Option("--nnz", help="One-hot categorical fields = nonzeros a row.")] = 15,
    positive: Annotated[float, typer.Option("--positive", help="Share of clicks (label 1) before noise.")] = 0.17,
    noise: Annotated[float, typer.Option("--noise", help="τ: probability that a label is flipped.")] = 0.0,
    signal: Annotated[float, typer.Option("--signal", help="Std of the planted model's logits.")] = 1.0,
    row_group_size: Annotated[int, typer.Option("--row-group-size", help="Parquet rows per row group.")] = 1 << 18,
    stream: Annotated[int, typer.Option("--stream", help="Row stream: 0 training, 1 validation, 2 test (same planted model, other rows).")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", help="Processes generating rows (0: one per core); the data do not depend on it.")] = 1,
    seed: Seed = 0,
) -> dict:
    """Write synthetic Avazu-shaped sparse data (-o FILE.parquet), streamed row group by row group.

    Labels follow a planted logistic model; `is_noisy` and `clean_label` columns record the
    flipped labels.
    """
    from rdia_cli.cli.render import activity, say, warn
    from rdia_cli.data.synth import SynthSpec, write_synth

    if Path(output).suffix.lower() != ".parquet":
        warn(f"`{output}` does not end in .parquet; it is Parquet anyway.")
    spec = SynthSpec(n_samples=rows, n_features=features, nnz=nnz, positive=positive,
                     noise=noise, seed=seed, signal=signal, row_group_size=row_group_size,
                     stream=stream)
    with activity("generating", total=rows, phase="generate") as act:
        summary = write_synth(str(output), spec, jobs=jobs or (os.cpu_count() or 1),
                              progress=lambda done, total: act.update(done, total, "rows"))
    n = summary.n_samples
    say(
        f"wrote {output}  ({n:,} rows × {summary.n_features:,} features, {summary.nnz} nonzeros a "
        f"row, {summary.n_positive / n:.1%} label 1, {summary.n_noisy:,} labels flipped) in "
        f"{summary.seconds:.1f} s"
    )
    return {"wrote": {"data": str(output)}, "rows": n, "features": summary.n_features,
            "flipped": summary.n_noisy}
