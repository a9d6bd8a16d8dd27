"""Start-up cost of `rdia` (issue #27): the wall time of `rdia evaluate` and `rdia score` of a
tiny logistic regression, and of `rdia --help` / `--version`, beside `python -c "import torch"`,
measured interleaved (one run of each command per round) so that load on the machine hits all
of them alike; the median of --runs rounds. Target: evaluate and score ≤ 1.3× import torch.

    python bench/startup.py [--runs 7] [--out bench/results/startup.md]
    python bench/startup.py --quick      # 2 rounds, into the scratch results folder
    python bench/startup.py --baseline /tmp/old   # also `rdia evaluate`/`score` of another
                                                  # tree (`git archive OLD rdia_cli | tar -x`)

Writes a Markdown table with the machine (nproc, CPU model) and its load (uptime) before and
after, and a second table of what the parts cost: `python -c "import X"` for the libraries the
two commands load (each includes Python's own start-up, the `python -c pass` row), timed in the
same rounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import quick_defaults, results_dir

ROOT = Path(__file__).resolve().parents[1]
TINY = "+1 1:0.5 3:1\n-1 2:1.5 4:0.25\n+1 1:1 4:-1\n-1 3:0.5\n"


def _commands(work: Path, baseline: Path | None) -> dict[str, list[str]]:
    py, rdia = sys.executable, [sys.executable, "-m", "rdia_cli"]
    data = str(work / "tiny.svm")
    old = {}
    if baseline is not None:  # the other tree's rdia_cli first on the path
        run = f"import sys; sys.path.insert(0, {str(baseline)!r}); import runpy; " \
              "runpy.run_module('rdia_cli', run_name='__main__')"
        old = {f"rdia evaluate (4 rows), tree {baseline}": [
            py, "-c", run, "evaluate", str(work / "lr.pt"), "--data", data],
               f"rdia score (4 rows), tree {baseline}": [
            py, "-c", run, "score", data, "--val", data, "--model", str(work / "lr.pt"), "-o",
            str(work / "s_old.parquet")]}
    return {
        "python -c 'import torch'": [py, "-c", "import torch"],
        "rdia evaluate (4 rows)": [*rdia, "evaluate", str(work / "lr.pt"), "--data", data],
        "rdia score (4 rows)": [*rdia, "score", data, "--val", data, "--model",
                                str(work / "lr.pt"), "-o", str(work / "s.parquet")],
        "rdia --help": [*rdia, "--help"],
        "rdia --version": [*rdia, "--version"],
        "python -c pass": [py, "-c", "pass"],
        **old,
    }


# what the commands load, one `python -c "import ..."` each (cumulative where it says "+")
PARTS = {
    "numpy": "import numpy",
    "scipy.sparse (+ numpy)": "import scipy.sparse",
    "scipy.sparse + scipy.linalg (score's Cholesky)": "import scipy.sparse, scipy.linalg",
    "pyarrow + pyarrow.compute + pyarrow.parquet": "import pyarrow, pyarrow.compute, "
                                                   "pyarrow.parquet",
    "typer + its pydantic adapters (Typer 0.29 coerces options with pydantic)":
        "import typer, typer._adapters",
    "rich.console + rich.table": "import rich.console, rich.table",
    "all of the above together (no rdia)": "import scipy.sparse, scipy.linalg, pyarrow, "
        "pyarrow.compute, pyarrow.parquet, typer, typer._adapters, rich.console, rich.table",
    "rdia_cli.cli (the commands registered, before any runs)": "import rdia_cli.cli",
    "rdia_cli.cli + stages + data + models (all evaluate imports but the model file's)":
        "import rdia_cli.cli, rdia_cli.stages, rdia_cli.models.kinds, "
        "rdia_cli.models.logreg.problem",
}


def _time(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr.decode()[-2000:]}")
    return seconds


def _machine() -> tuple[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return str(os.cpu_count()), cpu


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="rounds (≥ 5 for the issue's check)")
    ap.add_argument("--out", type=Path, default=None,
                    help="Markdown file (default: startup.md in the results folder)")
    ap.add_argument("--quick", action="store_true", help="2 rounds, scratch results folder")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a folder holding another version's rdia_cli, timed beside")
    ap.add_argument("--no-parts", action="store_true",
                    help="leave out the table of what each library's import costs")
    args = ap.parse_args()
    if args.quick:
        quick_defaults(ap, args, runs=2)
    if args.out is None:
        args.out = results_dir(args.quick) / "startup.md"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "tiny.svm").write_text(TINY)
        subprocess.run([sys.executable, "-m", "rdia_cli", "train", str(work / "tiny.svm"),
                        "-o", str(work / "lr.pt"), "-q"], check=True, env=env, cwd=ROOT)
        commands = _commands(work, args.baseline)
        if not args.no_parts:
            commands.update({f"parts: {name}": [sys.executable, "-c", code]
                             for name, code in PARTS.items()})
        for cmd in commands.values():  # warm the file cache once
            _time(cmd, env)
        load_before = _uptime()
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, cmd in commands.items():
                times[name].append(_time(cmd, env))
        load_after = _uptime()
    medians = {name: statistics.median(t) for name, t in times.items()}
    torch_s = medians["python -c 'import torch'"]
    nproc, cpu = _machine()
    lines = [
        "# Start-up time of `rdia` (issue #27)",
        "",
        f"Machine: {nproc} cores (`nproc`), {cpu}; Python {platform.python_version()}.  ",
        f"Load before: `{load_before}`  ",
        f"Load after: `{load_after}`",
        "",
        f"Median wall time of {args.runs} interleaved rounds (one run of each command per "
        "round), `OMP_NUM_THREADS=1`. Target: `rdia evaluate` and `rdia score` of a tiny "
        "logistic regression ≤ 1.3× `python -c 'import torch'`.",
        "",
        "| command | median (s) | min (s) | max (s) | × import torch |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, t in times.items():
        if not name.startswith("parts: "):
            lines.append(f"| `{name}` | {medians[name]:.3f} | {min(t):.3f} | {max(t):.3f} | "
                         f"{medians[name] / torch_s:.2f} |")
    parts = [name for name in times if name.startswith("parts: ")]
    if parts:
        bare = medians["python -c pass"]
        lines += ["", "What the parts cost, `python -c \"import ...\"` in the same rounds (median; "
                  "\"added\" is beyond `python -c pass`):", "",
                  "| import | median (s) | added (s) |", "|---|---:|---:|"]
        for name in parts:
            lines.append(f"| {name[len('parts: '):]} | {medians[name]:.3f} | "
                         f"{medians[name] - bare:.3f} |")
    lines += ["", "Reproduce: `python bench/startup.py --runs 7`.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
