"""The Typer option types that several commands share (the reader flags: ``cli.reading``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Device = Annotated[str, typer.Option("--device", help="auto (CUDA if available), cpu, cuda or cuda:N.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed.")]
Output = Annotated[Path, typer.Option("-o", "--output", help="Output file.")]
DataOutput = Annotated[Path, typer.Option("-o", "--output", help="Output data file; its extension names the format: .parquet, .csv, .tsv, .svm or .libsvm (CSV/TSV/LIBSVM also .gz, .bz2, .xz). `-` writes Parquet to standard output.")]
