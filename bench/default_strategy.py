"""Is `--strategy auto` (issue #7) better than ERM, the paper's RDIA, dropping, cleanlab and
training on the clean set alone?  Measured, not assumed.

Protocol (logistic regression, λ = 1/rows for every fit, as scikit-learn's C = 1):
- data: breast-cancer, diabetes, a9a, MNIST 1-vs-7, digits (scikit-learn), MNIST 10-class and
  CIFAR-10 cat-vs-dog; the labelled pool is capped at --max-rows rows (stratified subsample) so
  that the whole grid fits this 2-core machine; test data: the dataset's own test file (capped
  the same way) or a stratified 20% of the data;
- the clean set is a stratified share (--clean, 5% and 20%) of the labelled pool, the rest is the
  training set; symmetric noise τ in the training set only;
- methods: ERM (train only), clean-only, train+val, drop and the paper's RDIA (α chosen by the
  in-sample validation sweep `api.auto_alpha`), cleanlab (find_label_issues on 5-fold
  out-of-sample probabilities, then drop) and auto (rdia_cli.autoclean);
- metric: test log-loss (lower is better) and accuracy; mean over seeds.

    python bench/default_strategy.py --seeds 2          # writes bench/results/default_strategy.*
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from paper_tables import DATASETS, read  # noqa: E402

DATA = {
    "breast-cancer": DATASETS["breast-cancer"],
    "diabetes": DATASETS["diabetes"],
    "a9a": DATASETS["a9a"],
    "mnist17": DATASETS["mnist17"],
    "digits": None,
    "mnist10": {"train": "mnist/train-images-idx3-ubyte.gz",
                "train_labels": "mnist/train-labels-idx1-ubyte.gz",
                "test": "mnist/t10k-images-idx3-ubyte.gz",
                "test_labels": "mnist/t10k-labels-idx1-ubyte.gz"},
    "cifar-catdog": DATASETS["cifar-catdog"],
}
METHODS = ("erm", "clean-only", "train+val", "drop", "rdia", "cleanlab", "auto")


def load(name: str, root: Path):
    from rdia_cli.data.dataset import Dataset

    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return Dataset(X=X / 16.0, y=y, classes=list(range(10)), row_id=np.arange(len(y))), None
    if name == "mnist10":
        DATASETS.setdefault("mnist10", DATA["mnist10"])
    return read(name, root)


def cap(ds, n: int, seed: int):
    if ds is None or ds.n_samples <= n:
        return ds
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(ds.n_samples), train_size=n, stratify=ds.y,
                               random_state=seed)
    return ds.subset(np.sort(keep))


def cell(pool, test, *, clean: float, tau: float, seed: int) -> dict:
    from rdia_cli import api, baselines
    from rdia_cli.autoclean import auto_clean
    from rdia_cli.data import inject_noise, split_dataset

    train, val, _ = split_dataset(pool, val=clean, test=0.0, seed=seed)
    train = inject_noise(train, rate=tau, seed=seed) if tau > 0 else train
    out: dict[str, dict] = {}
    t0 = time.perf_counter()

    def record(name, model, t):
        m = api.evaluate_model(model, test)
        out[name] = {"loss": m["loss"], "accuracy": m["accuracy"],
                     "seconds": time.perf_counter() - t}

    t = time.perf_counter()
    erm = api.train_model(train)
    record("erm", erm, t)
    t = time.perf_counter()
    record("clean-only", baselines.clean_only(val, erm), t)
    t = time.perf_counter()
    record("train+val", baselines.train_plus_val(train, val, erm), t)
    res = api.score_model(erm, train, val)
    probs = api.probabilities(erm, train)
    for strategy in ("drop", "rdia"):
        t = time.perf_counter()
        o = api.auto_alpha(train, res.phi, probs, erm, val, strategy=strategy)
        record(strategy, api.retrain_model(o.dataset, erm), t)
        out[strategy]["selected"] = int(o.cleaning.n_relabeled + o.cleaning.n_removed)
    t = time.perf_counter()
    model, issues = baselines.cleanlab_drop(train, erm, seed=seed)
    record("cleanlab", model, t)
    out["cleanlab"]["selected"] = int(issues.sum())
    t = time.perf_counter()
    ac = auto_clean(train, val, erm, seed=seed)
    record("auto", ac.model, t)
    out["auto"]["chosen"] = ac.verdict["chosen"]
    out["_"] = {"n_train": train.n_samples, "n_val": val.n_samples, "n_test": test.n_samples,
                "seconds": time.perf_counter() - t0, "load": list(os.getloadavg())}
    return out


def summarize(results: list[dict]) -> str:
    from collections import defaultdict

    cells = defaultdict(list)
    for r in results:
        cells[(r["dataset"], r["clean"], r["tau"])].append(r["methods"])
    lines = ["| dataset | clean | τ | " + " | ".join(METHODS) + " | auto chose |",
             "|---|---|---|" + "---|" * (len(METHODS) + 1)]
    wins = near = noisy = 0
    never_worse = []
    for (name, clean, tau), runs in sorted(cells.items()):
        mean = {m: float(np.mean([r[m]["loss"] for r in runs])) for m in METHODS}
        best = min(mean.values())
        row = []
        for m in METHODS:
            v = f"{mean[m]:.3f}"
            row.append(f"**{v}**" if mean[m] <= best * 1.01 else v)
        chosen = "; ".join(sorted({r["auto"]["chosen"] for r in runs}))
        lines.append(f"| {name} | {clean:.0%} | {tau} | " + " | ".join(row) + f" | {chosen} |")
        if tau > 0:
            noisy += 1
            wins += mean["auto"] <= best + 1e-12
            near += mean["auto"] <= best * 1.01
        else:
            never_worse.append((name, clean, mean["auto"] - mean["erm"]))
    seeds = sorted({r["seed"] for r in results})
    head = [
        f"Seeds: {seeds}. Cells: {len(cells)} ({noisy} noisy). Test log-loss, mean over seeds; "
        "bold = lowest in the row or within 1% of it.",
        "",
        f"**auto has the lowest test loss in {wins} of {noisy} noisy cells "
        f"({wins / max(noisy, 1):.0%}); it is lowest or within 1% of the lowest in {near} "
        f"({near / max(noisy, 1):.0%}).**",
        "",
        "τ = 0, auto minus ERM (≤ 0 means auto is not worse): "
        + ", ".join(f"{n} {c:.0%}: {d:+.4f}" for n, c, d in never_worse),
        "",
    ]
    return "\n".join(head + lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(DATA))
    p.add_argument("--taus", default="0,0.2,0.4,0.6,0.8")
    p.add_argument("--clean", default="0.05,0.2")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--max-rows", type=int, default=3000)
    p.add_argument("--data-root", default=str(HERE.parents[1] / "shared" / "data"))
    p.add_argument("--out", default=str(HERE / "results" / "default_strategy"))
    p.add_argument("--merge", default="", help="comma-separated result JSON files to add")
    p.add_argument("--report-only", action="store_true", help="only rewrite the .md")
    args = p.parse_args(argv)
    root = Path(args.data_root)
    out_json = Path(args.out + ".json")
    results = json.loads(out_json.read_text())["results"] if out_json.exists() else []
    for extra in filter(None, args.merge.split(",")):
        have = {(r["dataset"], r["clean"], r["tau"], r["seed"]) for r in results}
        for r in json.loads(Path(extra).read_text())["results"]:
            if (r["dataset"], r["clean"], r["tau"], r["seed"]) not in have:
                r.setdefault("max_rows", None)
                results.append(r)
        out_json.write_text(json.dumps({"results": results}, indent=1))
    if args.report_only:
        args.datasets = ""
    done = {(r["dataset"], r["clean"], r["tau"], r["seed"]) for r in results}
    for name in filter(None, args.datasets.split(",")):
        full, test_file = load(name, root)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            if test_file is None:
                from rdia_cli.data import split_dataset

                pool_all, _, test = split_dataset(full, val=0.0, test=0.2, seed=seed)
            else:
                pool_all, test = full, test_file
            pool = cap(pool_all, args.max_rows, seed)
            test = cap(test, args.max_rows, seed)
            for clean in map(float, args.clean.split(",")):
                for tau in map(float, args.taus.split(",")):
                    if (name, clean, tau, seed) in done:
                        continue
                    r = cell(pool, test, clean=clean, tau=tau, seed=seed)
                    results.append({"dataset": name, "clean": clean, "tau": tau, "seed": seed,
                                    "max_rows": args.max_rows, "methods": r})
                    print(f"{name} clean={clean} tau={tau} seed={seed} "
                          + " ".join(f"{m}={r[m]['loss']:.3f}" for m in METHODS)
                          + f" [{r['auto']['chosen']}] {r['_']['seconds']:.0f}s", flush=True)
                    out_json.write_text(json.dumps({"results": results}, indent=1))
    md = Path(args.out + ".md")
    md.write_text("# Default strategy vs baselines (issue #7)\n\n"
                  "Command: `python bench/default_strategy.py` (see its docstring for the "
                  "protocol). Machine: 2-core CPU shared with other work, torch 2.13 CPU.\n\n"
                  + summarize(results))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
