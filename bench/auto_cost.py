"""What cheaper `--strategy auto` policies would cost and change (issue #30 item 4): process CPU
of auto and of cleanlab (find_label_issues on 5-fold out-of-fold probabilities, drop, refit) on
the same split, and auto's test log-loss under each policy variant, from one ERM fit.

Variants (``dataclasses.replace(DEFAULT_POLICY, ...)``): the race without dropping, after each
fold, the candidates the best beats by 3 standard errors (``race_drop_se``; before #30), or
dropping at 2, fewer folds on small clean sets
(5 instead of 10 below 100 rows), a faster race (every candidate on 20% of the folds, then the
best sixth), no Φ ranker, fewer fractions, the race and Φ ones together, CV fits to a
relative gradient of 1e-3 instead of 1e-4 (alone and with the faster race), and the three
cheapest together. A variant is worth
taking only with the same or better picks; this script counts them.

    OMP_NUM_THREADS=1 python bench/auto_cost.py --datasets breast-cancer,diabetes,digits --seeds 3
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from benchlib import quick_defaults, results_dir
from default_strategy import load, pool_and_test

from rdia_cli.cleaning.auto import DEFAULT_POLICY

HERE = Path(__file__).resolve().parent
VARIANTS = {
    "default": DEFAULT_POLICY,
    "race without dropping (before)": replace(DEFAULT_POLICY, race_drop_se=None),
    "race drops at 2 SE": replace(DEFAULT_POLICY, race_drop_se=2.0),
    "5 folds on small clean sets": replace(DEFAULT_POLICY, small_clean_folds=5),
    "faster race": replace(DEFAULT_POLICY, race_first_folds=0.2, race_keep=1 / 6,
                           race_keep_min=6),
    "no Φ ranker": replace(DEFAULT_POLICY, rankers=("clean", "oof")),
    "5 fractions": replace(DEFAULT_POLICY, fractions=(0.1, 0.2, 0.3, 0.4, 0.6)),
    "faster race, no Φ": replace(DEFAULT_POLICY, race_first_folds=0.2, race_keep=1 / 6,
                                 race_keep_min=6, rankers=("clean", "oof")),
    "CV fits to 1e-3": replace(DEFAULT_POLICY, cv_tol=1e-3),
    "CV fits to 1e-3, faster race": replace(DEFAULT_POLICY, cv_tol=1e-3, race_first_folds=0.2,
                                            race_keep=1 / 6, race_keep_min=6),
    "all three cheapest": replace(DEFAULT_POLICY, small_clean_folds=5, race_first_folds=0.2,
                                  race_keep=1 / 6, race_keep_min=6, rankers=("clean", "oof")),
}
NOISE = (("symmetric", 0.2), ("symmetric", 0.4), ("class", 0.4))


def run(pool, test, seed: int, kind: str, tau: float, clean: float) -> dict:
    from rdia_cli import stages as api
    from rdia_cli.cleaning import baselines
    from rdia_cli.cleaning.auto import auto_clean
    from rdia_cli.data import inject_noise, split_dataset

    train, val, _ = split_dataset(pool, val=clean, test=0.0, seed=seed)
    train = inject_noise(train, rate=tau, seed=seed, kind=kind)
    erm = api.train_model(train)
    t = time.process_time()
    model, _ = baselines.cleanlab_drop(train, erm, seed=seed)
    out = {"cleanlab": {"loss": api.evaluate_model(model, test)["loss"],
                        "cpu": time.process_time() - t}}
    for name, policy in VARIANTS.items():
        t = time.process_time()
        ac = auto_clean(train, val, erm, seed=seed, policy=policy)
        out[name] = {"loss": api.evaluate_model(ac.model, test)["loss"],
                     "cpu": time.process_time() - t, "chosen": ac.verdict["chosen"]}
    return out


def summarize(results: list[dict]) -> str:
    lines = ["| policy | median CPU × cleanlab | CPU × default | mean test loss | picks "
             "better / same / worse than default |", "|---|---|---|---|---|"]
    for name in VARIANTS:
        ratio = [r["methods"][name]["cpu"] / r["methods"]["cleanlab"]["cpu"] for r in results]
        own = [r["methods"][name]["cpu"] / r["methods"]["default"]["cpu"] for r in results]
        diff = np.array([r["methods"][name]["loss"] - r["methods"]["default"]["loss"]
                         for r in results])
        lines.append(f"| {name} | {np.median(ratio):.1f}× | {np.median(own):.2f}× | "
                     f"{np.mean([r['methods'][name]['loss'] for r in results]):.4f} | "
                     f"{(diff < -1e-6).sum()} / {(abs(diff) <= 1e-6).sum()} / "
                     f"{(diff > 1e-6).sum()} |")
    lines.append(f"| cleanlab | 1.0× | | "
                 f"{np.mean([r['methods']['cleanlab']['loss'] for r in results]):.4f} | |")
    per = {}
    for r in results:
        per.setdefault(r["dataset"], []).append(r["methods"]["default"]["cpu"]
                                                / r["methods"]["cleanlab"]["cpu"])
    lines += ["", "Default policy, CPU × cleanlab per data set (median): " + ", ".join(
        f"{d} {np.median(v):.1f}×" for d, v in per.items())]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="breast-cancer,diabetes,digits")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--clean", type=float, default=0.05)
    p.add_argument("--max-rows", type=int, default=2000)
    p.add_argument("--data-root", default=str(HERE.parents[1] / "shared" / "data"))
    p.add_argument("--out", default=str(results_dir() / "auto_cost"))
    p.add_argument("--quick", action="store_true", help="smoke run: digits, 300 rows, 1 seed")
    args = p.parse_args(argv)
    if args.quick:
        quick_defaults(p, args, datasets="digits", seeds=1, max_rows=300, clean=0.2,
                       out=str(results_dir(quick=True) / "auto_cost"))
    results = []
    for name in args.datasets.split(","):
        full, test_file = load(name, Path(args.data_root))
        for seed in range(args.seeds):
            pool, test = pool_and_test(full, test_file, seed, args.max_rows)
            for kind, tau in NOISE[:1] if args.quick else NOISE:
                methods = run(pool, test, seed, kind, tau, args.clean)
                results.append({"dataset": name, "seed": seed, "kind": kind, "tau": tau,
                                "methods": methods, "load": list(os.getloadavg())})
                print(f"{name} seed={seed} {kind} τ={tau}: " + " ".join(
                    f"{m}={v['loss']:.3f}/{v['cpu']:.2f}s" for m, v in methods.items()),
                    flush=True)
    Path(args.out + ".json").write_text(json.dumps({"results": results}, indent=1))
    text = ("# What cheaper auto policies cost and change (issue #30 item 4)\n\n"
            f"Command: `OMP_NUM_THREADS=1 python bench/auto_cost.py --datasets {args.datasets} "
            f"--seeds {args.seeds}`; process CPU; clean set {args.clean:.0%} of a pool of at "
            f"most {args.max_rows} rows; noise {', '.join(f'{k} {t}' for k, t in NOISE)}.\n\n"
            + summarize(results) + "\n")
    Path(args.out + ".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
