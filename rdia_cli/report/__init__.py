"""`rdia report` and `rdia inspect` without the command line: ``run`` collects a run folder,
``inspect`` finds the most harmful rows, ``figures`` draws (matplotlib, optional), ``html``
renders the one-file page. The names below are the public ones."""

from rdia_cli.report.figures import (
    INSTALL_HINT,
    image_grid_png,
    phi_histogram_png,
    require_matplotlib,
    sweep_png,
    write_png,
)
from rdia_cli.report.html import render_html, write_text
from rdia_cli.report.inspect import (
    HarmfulRow,
    check_inspect_match,
    default_alpha,
    explain_harmful,
    harmful_grid_png,
    harmful_rows,
    is_cleaned,
    why_grid_png,
)
from rdia_cli.report.run import RUN_FILES, NoiseStats, RunReport, collect_run, resolve_recorded

__all__ = [
    "INSTALL_HINT", "RUN_FILES", "HarmfulRow", "NoiseStats", "RunReport", "check_inspect_match",
    "collect_run", "default_alpha", "explain_harmful", "harmful_grid_png", "harmful_rows",
    "image_grid_png", "is_cleaned", "phi_histogram_png", "render_html", "require_matplotlib",
    "resolve_recorded", "sweep_png", "why_grid_png", "write_png", "write_text",
]
