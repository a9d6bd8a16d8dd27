"""Rendering for the terminal and for logs: progress, summary and metrics tables, warnings.
Everything here writes through the consoles of ``rdia_cli.cli.core`` and obeys its ``speech``
(-q: only errors and warnings; -v: also each phase's time).

Long work runs inside ``activity(...)``: a Rich progress bar when stderr is a terminal; else
(Make, CI, ``2> log``) plain lines like pip's or rsync's in a log: one when a stage (training,
scoring, the pipeline, and each stage inside the pipeline: ``Activity.begin``) starts, one when
it ends, and one at least every
``RDIA_PROGRESS_SECONDS`` (10) seconds in between, with the latest step (Newton step and loss,
epoch, CG iteration and residual), or that it is still running when the library reports nothing.
Smaller work (reading a file, evaluating a model) says nothing unless it lasts that long.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

from rdia_cli.cli.core import NORMAL, QUIET, VERBOSE, err, out, speech
from rdia_cli.cli.paths import shown_path


def say(*objects, **kw) -> None:
    """Information for the user on stderr (summary tables, `wrote ...`); not with -q."""
    if speech.level >= NORMAL:
        err.print(*objects, soft_wrap=kw.pop("soft_wrap", True), **kw)


def detail(message: str) -> None:
    """Detail on stderr that only -v prints."""
    if speech.level >= VERBOSE:
        err.print(f"[dim]{message}[/]", soft_wrap=True)


def warn(message: str) -> None:
    """One yellow `warning:` line on stderr; printed even with -q. ``message`` is Rich markup."""
    err.print(f"[bold yellow]warning:[/] {message}", soft_wrap=True)


def show(renderable) -> None:
    """A result table on stdout (on stderr with `--json -`); not with -q."""
    if speech.level >= NORMAL:
        out.print(renderable)


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("RDIA_PROGRESS_SECONDS", "10")))
    except ValueError:
        return 10.0


class Activity:
    """One piece of long work, as a progress bar or as plain log lines (``activity``)."""

    def __init__(self, what: str, total: float | None, bar, plain: bool = False) -> None:
        self.what, self.total, self.bar, self.plain = what, total, bar, plain
        self.current = what  # the step of the work now running (``begin``)
        self.completed: float | None = None
        self.info = ""
        self.result = ""
        self.t0 = self.last = time.perf_counter()
        self.lines = 1  # lines printed (the start line of a stage)
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.task = None if bar is None else bar.add_task(what, total=total, info="")

    def update(self, completed: float | None = None, total: float | None = None,
               info: str | None = None) -> None:
        """The latest step: how far (``completed`` of ``total``) and what it says (``info``)."""
        with self.lock:
            if completed is not None:
                self.completed = completed
            if total is not None:
                self.total = total
            if info is not None:
                self.info = info
        if self.bar is not None:
            self.bar.update(self.task, completed=completed, total=total,
                            **({} if info is None else {"info": info}))
        elif time.perf_counter() - self.last >= _interval():
            self._line(self._state())

    def begin(self, what: str) -> None:
        """A new step of the work starts (a stage of `rdia run`): a plain line says so at
        once, the progress bar shows it; its progress starts over."""
        with self.lock:
            self.current, self.completed, self.total, self.info = what, None, None, ""
        if self.bar is not None:
            self.bar.update(self.task, description=what, completed=0, total=None, info="")
        elif self.plain:
            self.last = time.perf_counter()
            self.lines += 1
            err.print(f"rdia {speech.command}: {what} ...", markup=False, highlight=False,
                      soft_wrap=True)

    def done(self, result: str) -> None:
        """What the end line says besides the time, e.g. "300 rows × 6 features"."""
        self.result = result

    def _state(self) -> str:
        with self.lock:
            step = ""
            if self.completed is not None:
                step = (f"{self.completed:g}/{self.total:g}" if self.total else
                        f"step {self.completed:g}")
            text = ", ".join(x for x in (step, self.info) if x)
        return text or "still running"

    def _line(self, text: str) -> None:
        now = time.perf_counter()
        self.last = now
        self.lines += 1
        err.print(f"rdia {speech.command}: {self.current}: {text} ({now - self.t0:.0f} s)",
                  markup=False, highlight=False, soft_wrap=True)

    def _beat(self) -> None:
        """At least one line every interval while the work lasts, whatever the library says."""
        while not self.stopped.wait(max(0.05, min(1.0, _interval() / 4))):
            if time.perf_counter() - self.last >= _interval():
                self._line(self._state())


@contextlib.contextmanager
def activity(what: str, *, total: float | None = None, phase: str | None = None,
             stage: bool = True):
    """Run long work as ``with activity("training logreg") as act: ... act.update(...)``.

    Quiet (-q): nothing. stderr a terminal: a transient progress bar (and with -v the phase's
    time after it). Otherwise plain lines (see the module's docstring): a start and an end line
    for a ``stage``; for other work only when it lasts (its end line also with -v). The seconds are added to
    ``speech.timings[phase or what]`` (-v prints them; --json records them)."""
    plain = speech.level > QUIET and not err.is_terminal
    bar = None
    if speech.level > QUIET and err.is_terminal:
        bar = progress_bar()
    with bar if bar is not None else contextlib.nullcontext():
        act = Activity(what, total, bar, plain)
        beat = None
        if plain:
            if stage:
                err.print(f"rdia {speech.command}: {what} ...", markup=False,
                          highlight=False, soft_wrap=True)
            else:
                act.lines = 0  # counts the lines it printed
            beat = threading.Thread(target=act._beat, name="rdia-progress", daemon=True)
            beat.start()
        try:
            yield act
        finally:
            act.stopped.set()
            if beat is not None:
                beat.join()
    seconds = time.perf_counter() - act.t0
    key = phase or what
    speech.timings[key] = speech.timings.get(key, 0.0) + seconds
    end = f"done in {seconds:.2f} s" + (f": {act.result}" if act.result else "")
    if plain and (stage or act.lines or speech.level >= VERBOSE):
        err.print(f"rdia {speech.command}: {what}: {end}", markup=False, highlight=False,
                  soft_wrap=True)
    elif bar is not None:
        detail(f"{what}: {end}")


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
    show(t)


def warn_not_converged(model, output) -> None:
    """A logistic regression that stopped short of --tol but close to it (far from it is a
    RuntimeFailure in `training.train_logreg`) is written, with this warning."""
    m = model.meta.get("metrics", {})
    from rdia_cli.models.kinds import kind_of

    if not kind_of(model).exact_influence or m.get("converged", True):
        return
    tol = (model.meta.get("training") or {}).get("tol")
    tol = "the tolerance" if tol is None else f"--tol {tol:g}"
    warn(f"the fit written to `{shown_path(output)}` did not converge: relative gradient norm "
         f"{m.get('rel_grad_norm', float('nan')):.2e} after {m.get('iterations')} Newton "
         f"steps, above {tol}; Φ assumes the minimizer. Raise --max-iter or --tol.")
