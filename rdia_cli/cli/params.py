"""The Typer option types that several commands share (the reader flags: ``cli.reading``), and
the names of the --help panels that group options (Typer's ``rich_help_panel``).

Defaults are shown one way, Typer's ``[default: x]``; a default that is computed from the data
or from other options is written ``show_default="..."``, which Typer shows as
``[default: (...)]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rdia_cli.cli.core import OUTPUT_PANEL

Device = Annotated[str, typer.Option("--device", help="auto (CUDA if available; a logistic regression is evaluated, and a small one scored, on the CPU), cpu, cuda or cuda:N.")]
SEED_MAX = 2**64 - 1  # numpy's and torch's generators take seeds in [0, 2^64)
Seed = Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX, help="Random seed (the same seed, the same result).")]

LOGREG_PANEL, NETWORKS_PANEL, NOISY_PANEL = ("Logistic regression", "Networks",
                                             "Noisy-label methods (networks)")
ModelOutput = Annotated[Path, typer.Option("-o", "--output", help="Model file to write, e.g. model.pt.", rich_help_panel=OUTPUT_PANEL)]
DataOutput = Annotated[Path, typer.Option("-o", "--output", help="Output data file; its extension names the format: .parquet, .csv, .tsv, .svm or .libsvm (CSV/TSV/LIBSVM also .gz, .bz2, .xz). `-` writes Parquet to standard output.", rich_help_panel=OUTPUT_PANEL)]
