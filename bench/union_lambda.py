"""How should `auto` choose λ for "train + clean set" when the training labels show no noise?

Without a sign of label noise `auto` trains on the training rows plus the clean rows, and every
row is a clean row, so λ can be cross-validated over all of them (``UNION_FOLDS`` folds). This
script measures, for noise-free splits (τ = 0) of the benchmark's data sets, the out-of-fold
loss of every row and the test loss of the model fitted on all rows at each λ = reg/rows on a
grid (reg = 2^-8 … 2^8), then replays choice rules on those numbers — the library's own
``reg_line_search`` among them — and compares each rule's test loss with ERM's (the training
rows alone at λ = 1/rows), as `default_strategy.py` does. Splits, caps and ERM are those of
`default_strategy.py`.

    python bench/union_lambda.py                     # measures, writes bench/results/union_lambda.*
    python bench/union_lambda.py --report-only       # the tables again, from the saved JSON
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import numpy as np
from benchlib import quick_defaults, results_dir
from default_strategy import load, pool_and_test

HERE = Path(__file__).resolve().parent

GRID = [2.0 ** k for k in range(-8, 9)]
SEEDS = {"breast-cancer": 100, "diabetes": 100, "a9a": 5, "mnist17": 5, "digits": 5}


def measure(name: str, seeds: int, root: Path) -> list[dict]:
    from rdia_cli import stages as api
    from rdia_cli.cleaning.auto import (
        CV_TOL,
        UNION_FOLDS,
        Config,
        build_training_set,
        out_of_fold_probabilities,
    )
    from rdia_cli.data import split_dataset
    from rdia_cli.metrics import row_losses
    from rdia_cli.models.logreg.training import train_logreg

    full, test_file = load(name, root)
    runs = []
    for seed in range(seeds):
        pool, test = pool_and_test(full, test_file, seed, 3000)
        for clean in (0.05, 0.2):
            t0 = time.perf_counter()
            train, val, _ = split_dataset(pool, val=clean, test=0.0, seed=seed)
            erm = api.train_model(train)
            both = build_training_set(train, np.zeros(train.n_samples), None, val,
                                      Config("drop", 0.0, 1.0))
            cv, test_loss = {}, {}
            # as auto walks: from λ = 1/rows up, then from it down, each fold's fit started
            # from the previous λ's
            at_one: dict = {}
            for way in (sorted(g for g in GRID if g >= 1), sorted(g for g in GRID if g < 1)[::-1]):
                folds = dict(at_one)
                for reg in way:
                    p = out_of_fold_probabilities(both, erm, folds=UNION_FOLDS, seed=seed,
                                                  tol=CV_TOL, warm=True, reg=reg,
                                                  fold_models=folds)
                    if reg == 1:
                        at_one = dict(folds)
                    cv[reg] = row_losses(p, both.y).round(6).tolist()
                    m = train_logreg(both, l2=reg / both.n_samples, tol=1e-8, max_iter=100)
                    test_loss[reg] = api.evaluate_model(m, test)["loss"]
            cv, test_loss = [cv[g] for g in GRID], [test_loss[g] for g in GRID]
            runs.append({"dataset": name, "clean": clean, "seed": seed, "rows": both.n_samples,
                         "erm": api.evaluate_model(erm, test)["loss"], "grid": GRID, "cv": cv,
                         "test": test_loss, "seconds": time.perf_counter() - t0})
            print(f"{name} clean={clean:g} seed={seed} erm={runs[-1]['erm']:.4f} "
                  f"λ=1/rows: {test_loss[GRID.index(1.0)]:.4f} "
                  f"{runs[-1]['seconds']:.1f}s", flush=True)
    return runs


def _argmin(grid, cv, lowest=0.0):
    return min((i for i, g in enumerate(grid) if g >= lowest), key=lambda i: cv[i].mean())


def _one_se(grid, cv):
    """The one-standard-error rule (Hastie, Tibshirani & Friedman, §7.10): the largest λ whose
    CV loss is within one standard error of the smallest."""
    best = _argmin(grid, cv, 1.0)
    se = cv[best].std(ddof=1) / np.sqrt(len(cv[best]))
    return max(i for i, g in enumerate(grid) if g >= 1 and cv[i].mean() <= cv[best].mean() + se)


def rules() -> dict:
    from dataclasses import replace

    from rdia_cli.cleaning.auto import DEFAULT_POLICY, Config, reg_line_search

    def library(**change):  # auto's own line search under a policy variant, on the measured grid
        policy = replace(DEFAULT_POLICY, **change)

        def rule(grid, cv):
            at = {g: i for i, g in enumerate(grid)}
            missing = np.full(len(cv[0]), np.inf)
            with np.errstate(invalid="ignore"):
                cfg = reg_line_search(lambda c: cv[at[c.reg]] if c.reg in at else missing,
                                      Config("drop", 0.0, 1.0), policy, down=True)
            return at[cfg.reg]
        return rule

    return {
        "auto (×4 up on 1 SE, else down on 2 SE)": library(),
        "rev. 9 (×4 up on 1 SE)": library(reg_down_se=None),
        "×4 up, else down, on 1 SE": library(reg_down_se=1.0),
        "×4 up, else down, on 2 SE": library(reg_se=2.0, reg_down_se=2.0),
        "λ = 1/rows": lambda grid, cv: grid.index(1.0),
        "CV argmin, λ ≥ 1/rows": lambda grid, cv: _argmin(grid, cv, 1.0),
        "CV argmin": lambda grid, cv: _argmin(grid, cv),
        "one-SE rule, λ ≥ 1/rows": _one_se,
    }


def pick(runs: list[dict], keep_rows: bool = False) -> list[dict]:
    """Each rule's choice (an index into the grid) per run, from the row losses; those are
    dropped unless ``keep_rows`` (tens of MB for the default grid)."""
    table = rules()
    for r in runs:
        if "cv" in r:
            cv = [np.asarray(c) for c in r["cv"]]
            r["picks"] = {rule: int(fn(r["grid"], cv)) for rule, fn in table.items()}
            r["cv_mean"] = [float(c.mean()) for c in cv]
            if not keep_rows:
                del r["cv"]
    return runs


def report(runs: list[dict]) -> str:
    cells = collections.defaultdict(list)
    for r in runs:
        cells[(r["dataset"], r["clean"])].append(r)
    # a rule added after the row losses were dropped has no picks: rerun with --keep-rows
    table = [rule for rule in rules() if all(rule in r["picks"] for r in runs)]
    rel = collections.defaultdict(list)
    lines = ["| data set | clean | splits | ERM | " + " | ".join(table) + " |",
             "|---|---|---|---|" + "---|" * len(table)]
    for (name, clean), rs in sorted(cells.items()):
        erm = np.array([r["erm"] for r in rs])
        row = []
        for rule in table:
            d, picks = [], []
            for r in rs:
                i = r["picks"][rule]
                d.append(r["test"][i] - r["erm"])
                picks.append(r["grid"][i])
            d = np.array(d)
            se = d.std(ddof=1) / np.sqrt(len(d))
            rel[rule].append(d.mean() / erm.mean())
            common = collections.Counter(picks).most_common(1)[0][0]
            row.append(f"{d.mean():+.4f} ± {se:.4f} ({int((d > 0).sum())} worse; ×{common:g})")
        lines.append(f"| {name} | {clean:.0%} | {len(rs)} | {erm.mean():.4f} | "
                     + " | ".join(row) + " |")
    lines += ["", "Mean over the cells of (rule − ERM) / ERM, and the worst cell:", ""]
    lines += [f"- {rule}: {100 * np.mean(v):+.2f}% (worst cell {100 * max(v):+.2f}%)"
              for rule, v in rel.items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(SEEDS))
    p.add_argument("--seeds", type=int, default=0, help="splits per data set (0: the defaults, "
                   + ", ".join(f"{k} {v}" for k, v in SEEDS.items()) + ")")
    p.add_argument("--data-root", default=str(HERE.parents[1] / "shared" / "data"))
    p.add_argument("--out", default=str(HERE / "results" / "union_lambda"))
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--note", default="", help="a markdown file to put under the title")
    p.add_argument("--keep-rows", action="store_true", help="keep every row's out-of-fold loss "
                   "in the JSON (to replay new rules with --report-only; tens of MB)")
    p.add_argument("--quick", action="store_true", help="smoke run: digits, 1 split, into a "
                   "scratch folder (options given on the line win)")
    args = p.parse_args(argv)
    if args.quick:
        quick_defaults(p, args, datasets="digits", seeds=1,
                       out=str(results_dir(quick=True) / "union_lambda"))
    out = Path(args.out + ".json")
    runs = json.loads(out.read_text())["runs"] if out.exists() else []
    if not args.report_only:
        for name in args.datasets.split(","):
            runs = [r for r in runs if r["dataset"] != name]
            runs += pick(measure(name, args.seeds or SEEDS[name], Path(args.data_root)),
                         args.keep_rows)
            out.write_text(json.dumps({"runs": runs}))
    runs = pick(runs, args.keep_rows)
    out.write_text(json.dumps({"runs": runs}))
    md = ("# λ of train + clean set without label noise: choice rules compared\n\n"
          "Command: `python bench/union_lambda.py` (protocol in its docstring). Each cell: mean "
          "test log-loss of the rule's model minus ERM's over the splits, ± its standard error, "
          "how many splits it was worse than ERM in, and the λ multiplier it chose most often "
          "(λ = multiplier/rows).\n\n"
          + (Path(args.note).read_text() + "\n" if args.note else "") + report(runs))
    Path(args.out + ".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
