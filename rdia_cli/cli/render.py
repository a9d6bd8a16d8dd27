"""Rendering for the terminal: progress bars, summary and metrics tables, warnings printed
to stderr. Everything here writes through the consoles of ``rdia_cli.cli.core``."""

from __future__ import annotations

from rdia_cli.cli.core import err, out
from rdia_cli.cli.paths import shown_path


def progress_bar():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal,
    )


def summary_table(title: str, rows: list[tuple[str, str]]):
    from rich.table import Table

    t = Table(title=title, show_header=False, title_justify="left", box=None, padding=(0, 2))
    for k, v in rows:
        t.add_row(f"[dim]{k}[/]", v)
    return t


def fmt_value(x, spec=".4f"):
    return "-" if x is None else format(x, spec)


def print_metrics(results: list[dict], title: str) -> None:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    named = any("name" in r for r in results)
    if named:
        t.add_column("name")
    for c in ("model", "n", "loss", "accuracy", "auc"):
        t.add_column(c, justify="left" if c == "model" else "right")
    best = min(r["loss"] for r in results)
    for r in results:
        loss = f"{r['loss']:.4f}"
        if len(results) > 1 and r["loss"] == best:
            loss = f"[bold green]{loss}[/]"
        cells = [r.get("name", "")] if named else []
        cells += [r["model"], str(r["n"]), loss, f"{r['accuracy']:.4f}", fmt_value(r["auc"])]
        t.add_row(*cells)
    out.print(t)


def warn_not_converged(model, output) -> None:
    """A logistic regression that stopped short of --tol but close to it (far from it is a
    RuntimeFailure in `training.train_logreg`) is written, with this warning."""
    m = model.meta.get("metrics", {})
    from rdia_cli.models.kinds import kind_of

    if not kind_of(model).exact_influence or m.get("converged", True):
        return
    tol = (model.meta.get("training") or {}).get("tol")
    tol = "the tolerance" if tol is None else f"--tol {tol:g}"
    err.print(f"[bold yellow]warning:[/] the fit written to `{shown_path(output)}` did not "
              f"converge: relative gradient norm {m.get('rel_grad_norm', float('nan')):.2e} "
              f"after {m.get('iterations')} Newton steps, above {tol}; Φ assumes the "
              "minimizer. Raise --max-iter or --tol.", soft_wrap=True)
