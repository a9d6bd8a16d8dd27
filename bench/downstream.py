"""Does a downstream trainer gain from rdia's cleaned file?  (issue #18)

A user who runs `rdia relabel` and trains their own model on `cleaned.parquet` + their clean set
sees this gain, not rdia's own logistic regression's. Measured with scikit-learn's
HistGradientBoostingClassifier (defaults, random_state = seed), trained on

  noisy+clean   the noisy training rows and the clean set (what the user has without rdia)
  auto+clean    `rdia relabel --strategy auto`'s file (clean rows left out, as by default)
                plus the clean set; `label` and `weight` columns as written
  rdia+clean    `rdia relabel --alpha auto` (the paper's Eq. 12, α chosen on the clean set)
                plus the clean set
  clean         the clean set alone

on the splits of bench/default_strategy.py (same pools, clean shares, noise, seeds); each
cleaned file is written and read back through rdia's own writer and reader. Metric: test
log-loss (lower is better) and accuracy, mean over seeds.

    OMP_NUM_THREADS=1 python bench/downstream.py --seeds 3     # bench/results/downstream.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchlib import quick_defaults, results_dir
from default_strategy import load, pool_and_test

HERE = Path(__file__).resolve().parent

METHODS = ("noisy+clean", "auto+clean", "rdia+clean", "clean")


def _hgb(X, y, w, seed, classes):
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(random_state=seed)
    model.fit(_dense(X), y, sample_weight=w)
    missing = sorted(set(range(classes)) - set(model.classes_.tolist()))
    return model, missing


def _dense(X):
    return X.toarray() if hasattr(X, "toarray") else np.asarray(X)


def _score(model, X, y, k):
    proba = np.zeros((len(y), k))
    proba[:, model.classes_] = model.predict_proba(_dense(X))
    p = np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)
    return {"loss": float(-np.log(p).mean()), "accuracy": float((proba.argmax(1) == y).mean())}


def _stack(a, b):
    import scipy.sparse as sp

    return sp.vstack([a, b], format="csr") if sp.issparse(a) or sp.issparse(b) else np.vstack(
        [a, b])


def _through_file(ds, meta, folder: Path, name: str):
    """Write a cleaned Dataset as `rdia relabel` does and read it back as a user would."""
    from rdia_cli.cleaning.files import for_file
    from rdia_cli.data.readers import ReadOptions, read_dataset
    from rdia_cli.data.writers import write_dataset

    path = folder / f"{name}.parquet"
    write_dataset(for_file(ds), str(path), meta={"relabel": meta})
    return read_dataset(str(path), ReadOptions())


def cell(pool, test, *, clean: float, tau: float, seed: int, kind: str, folder: Path) -> dict:
    from rdia_cli import stages as api
    from rdia_cli.cleaning.auto import auto_clean
    from rdia_cli.cleaning.files import split_clean_rows
    from rdia_cli.data import inject_noise, split_dataset

    train, val, _ = split_dataset(pool, val=clean, test=0.0, seed=seed)
    if tau > 0:
        train = (inject_noise(train, rate=tau, seed=seed) if kind == "symmetric"
                 else inject_noise(train, rate=tau, seed=seed, kind=kind))
    k = train.n_classes
    Xv, yv = val.flat_X(), val.y
    out: dict = {}

    def fit(name, X, y, w):
        t = time.perf_counter()
        model, missing = _hgb(X, y, w, seed, k)
        out[name] = dict(_score(model, test.flat_X(), test.y, k),
                         seconds=time.perf_counter() - t, rows=int(len(y)))
        if missing:
            out[name]["missing_classes"] = missing

    fit("noisy+clean", _stack(train.flat_X(), Xv), np.concatenate([train.y, yv]), None)
    fit("clean", Xv, yv, None)
    erm = api.train_model(train)
    ac = auto_clean(train, val, erm, seed=seed)
    rows, info = split_clean_rows(ac.cleaned, include_clean=False)
    f = _through_file(rows, {"strategy": "auto", **info}, folder, "auto")
    w = None if f.weight is None else np.concatenate([f.weight, np.ones(len(yv))])
    fit("auto+clean", _stack(f.flat_X(), Xv), np.concatenate([f.y, yv]), w)
    out["auto+clean"].update(chosen=ac.verdict["chosen"], relabeled=int(
        rows.extra["relabeled"].sum()), removed=int(train.n_samples - rows.n_samples))
    res = api.score_model(erm, train, val)
    probs = api.probabilities(erm, train)
    o = api.auto_alpha(train, res, erm, val, probs=probs, strategy="rdia")
    f = _through_file(o.dataset, {"strategy": "rdia"}, folder, "rdia")
    fit("rdia+clean", _stack(f.flat_X(), Xv), np.concatenate([f.y, yv]), None)
    out["rdia+clean"]["relabeled"] = o.cleaning.n_relabeled
    out["_"] = {"n_train": train.n_samples, "n_val": val.n_samples, "n_test": test.n_samples}
    return out


def summarize(results: list[dict]) -> str:
    from collections import defaultdict

    cells = defaultdict(list)
    for r in results:
        cells[(r["kind"], r["dataset"], r["clean"], r["tau"])].append(r)
    lines = ["| noise | dataset | clean | τ | runs | " + " | ".join(METHODS)
             + " | auto+clean vs noisy+clean | auto+clean worse by > 0.01 |",
             "|---|---|---|---|---|" + "---|" * len(METHODS) + "---|---|"]
    wins = worse = total = 0
    for (kind, name, clean, tau), runs in sorted(cells.items()):
        means = {m: np.mean([r["methods"][m]["loss"] for r in runs]) for m in METHODS}
        diff = np.array([r["methods"]["auto+clean"]["loss"] - r["methods"]["noisy+clean"]["loss"]
                         for r in runs])
        best = min(means.values())
        cells_txt = [(f"**{means[m]:.4f}**" if means[m] == best else f"{means[m]:.4f}")
                     for m in METHODS]
        wins += int((diff < 0).sum())
        worse += int((diff > 0.01).sum())
        total += len(diff)
        lines.append(f"| {kind} | {name} | {clean:g} | {tau:g} | {len(runs)} | "
                     + " | ".join(cells_txt)
                     + f" | {diff.mean():+.4f} (better in {(diff < 0).sum()}/{len(diff)}) | "
                     f"{(diff > 0.01).sum()} |")
    lines += ["", f"auto+clean below noisy+clean in {wins} of {total} runs; worse by more than "
              f"0.01 in {worse}."]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="breast-cancer,diabetes,a9a,mnist17,digits")
    p.add_argument("--taus", default="0.2,0.4")
    p.add_argument("--clean", default="0.05,0.2")
    p.add_argument("--kinds", default="symmetric", help="noise kinds (rdia noise --kind)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--max-rows", type=int, default=3000)
    p.add_argument("--data-root", default=str(HERE.parents[1] / "shared" / "data"))
    p.add_argument("--out", default=str(HERE / "results" / "downstream"))
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--quick", action="store_true", help="smoke run: digits, 400 rows, 1 seed, "
                   "τ 0.4, clean 20%%, into a scratch folder (options given on the line win)")
    args = p.parse_args(argv)
    if args.quick:
        quick_defaults(p, args, datasets="digits", taus="0.4", clean="0.2", seeds=1,
                       max_rows=400, out=str(results_dir(quick=True) / "downstream"))
    out_json = Path(args.out + ".json")
    out_json.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(out_json.read_text())["results"] if out_json.exists() else []
    have = {(r["kind"], r["dataset"], r["clean"], r["tau"], r["seed"]) for r in results}
    names = [] if args.report_only else [n for n in args.datasets.split(",") if n]
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            full, test_file = load(name, Path(args.data_root))
            for seed in range(args.seeds):
                pool, test = pool_and_test(full, test_file, seed, args.max_rows)
                for kind in args.kinds.split(","):
                    for clean in map(float, args.clean.split(",")):
                        for tau in map(float, args.taus.split(",")):
                            key = (kind, name, clean, tau, seed)
                            if key in have:
                                continue
                            t = time.perf_counter()
                            methods = cell(pool, test, clean=clean, tau=tau, seed=seed,
                                           kind=kind, folder=Path(tmp))
                            results.append({"kind": kind, "dataset": name, "clean": clean,
                                            "tau": tau, "seed": seed, "methods": methods})
                            out_json.write_text(json.dumps({"results": results}, indent=1))
                            print(f"{kind} {name} clean={clean} tau={tau} seed={seed}: "
                                  + " ".join(f"{m} {methods[m]['loss']:.4f}" for m in METHODS)
                                  + f" ({time.perf_counter() - t:.1f} s)", flush=True)
    Path(args.out + ".md").write_text(
        "# Downstream trainer on rdia's cleaned file (HistGradientBoostingClassifier)\n\n"
        + "Command: `OMP_NUM_THREADS=1 python bench/downstream.py " + " ".join(argv or sys.argv[1:])
        + "`\n\nTest log-loss, mean over seeds (bold: lowest in the row). " + __doc__.split(
            "\n\n")[1].replace("\n", " ") + "\n\n" + summarize(results) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
