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
  out-of-sample probabilities, then drop) and auto (rdia_cli.cleaning.auto.clean);
- metric: test log-loss (lower is better) and accuracy; mean over seeds.

    python bench/default_strategy.py --seeds 2          # writes bench/results/default_strategy.*
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from benchlib import DATASETS, quick_defaults, read, results_dir

from rdia_cli.cleaning.auto import DEFAULT_POLICY

HERE = Path(__file__).resolve().parent

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
# the digest of the policy auto runs under; `--methods auto` recomputes auto in cells whose auto
# ran under another (the baselines do not depend on it)
AUTO_REVISION = DEFAULT_POLICY.digest()
# results numbered before policies had digests: the digest of the policy each number ran under
_NUMBERED = {11: "fc10ab334a1e"}
# a tie: the same model fitted twice (e.g. auto choosing "clean set only" and the clean-only
# baseline) agrees to about 1e-8 relative, not bit for bit
TIE = 1 + 1e-6


def auto_revision(auto: dict) -> str:
    """The policy digest an auto result ran under (its ``revision``; a number for older ones)."""
    rev = auto.get("revision", 1)
    return _NUMBERED.get(rev, str(rev))


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


def pool_and_test(full, test_file, seed: int, max_rows: int):
    """The labelled pool and the test data of one seed: the data set's own test file, or a
    stratified 20% of the data; both capped at ``max_rows`` (stratified)."""
    if test_file is None:
        from rdia_cli.data import split_dataset

        pool, _, test = split_dataset(full, val=0.0, test=0.2, seed=seed)
    else:
        pool, test = full, test_file
    return cap(pool, max_rows, seed), cap(test, max_rows, seed)


def clock() -> tuple[float, float]:
    """(wall, process CPU) seconds now."""
    return time.perf_counter(), time.process_time()


def cell(pool, test, *, clean: float, tau: float, seed: int, device: str = "cpu",
         methods=METHODS, candidates: Path | None = None, kind: str = "symmetric",
         noise: dict | None = None) -> dict:
    """One run: ``clean`` is the clean set's share of the pool (or, when ≥ 1, its rows);
    ``kind`` the noise kind of ``inject_noise`` (bench/noise_types.py), ``noise`` its other
    arguments (e.g. ``from_class`` / ``to_class`` of kind ``class``).

    Per method: test ``loss`` and ``accuracy``, wall ``seconds`` and process ``cpu`` seconds
    (``time.process_time``: every thread of this process, robust to other jobs on the machine)
    of its own work, the final evaluation on the test data included; the ERM fit every method
    starts from is counted under ``erm`` only; drop and rdia share one Φ (and the ERM
    probabilities), whose cost each of them records apart as ``shared_seconds`` /
    ``shared_cpu``. ``_``: sizes, the share of training labels the noise changed, totals."""
    from rdia_cli import stages as api
    from rdia_cli.cleaning import baselines
    from rdia_cli.cleaning.auto import auto_clean
    from rdia_cli.data import inject_noise, split_dataset

    share = clean if clean < 1 else clean / pool.n_samples
    train, val, _ = split_dataset(pool, val=share, test=0.0, seed=seed)
    train = (inject_noise(train, rate=tau, seed=seed, kind=kind, **(noise or {})) if tau > 0
             else train)
    out: dict[str, dict] = {}
    t0 = clock()

    def record(name, model, t):
        m = api.evaluate_model(model, test, device=device)
        out[name] = {"loss": m["loss"], "accuracy": m["accuracy"],
                     "seconds": time.perf_counter() - t[0], "cpu": time.process_time() - t[1]}

    t = clock()
    erm = api.train_model(train, device=device)  # every method needs it (θ̂ for Φ)
    if "erm" in methods:
        record("erm", erm, t)
    if "clean-only" in methods:
        t = clock()
        record("clean-only", baselines.clean_only(val, erm, device=device), t)
    if "train+val" in methods:
        t = clock()
        record("train+val", baselines.train_plus_val(train, val, erm, device=device), t)
    if "drop" in methods or "rdia" in methods:
        t = clock()
        res = api.score_model(erm, train, val, device=device)
        probs = api.probabilities(erm, train, device=device)
        phi = clock()
        phi = {"shared_seconds": phi[0] - t[0], "shared_cpu": phi[1] - t[1]}
    for strategy in ("drop", "rdia"):
        if strategy not in methods:
            continue
        t = clock()
        o = api.auto_alpha(train, res, erm, val, probs=probs, strategy=strategy, device=device)
        record(strategy, api.retrain_model(o.dataset, erm, device=device), t)
        out[strategy]["selected"] = int(o.cleaning.n_relabeled + o.cleaning.n_removed)
        out[strategy].update(phi)
    if "cleanlab" in methods:
        t = clock()
        model, issues = baselines.cleanlab_drop(train, erm, seed=seed, device=device)
        record("cleanlab", model, t)
        out["cleanlab"]["selected"] = int(issues.sum())
    if "auto" in methods:
        t = clock()
        ac = auto_clean(train, val, erm, seed=seed, device=device)
        record("auto", ac.model, t)
        noise_test = ac.verdict.get("noise") or {}
        out["auto"]["chosen"] = ac.verdict["chosen"]
        out["auto"]["noise_z"] = noise_test.get("z")
        out["auto"]["noise_fired"] = noise_test.get("fired")
        out["auto"]["noise_labels_p"] = noise_test.get("labels_p")
        out["auto"]["decided_by"] = ac.verdict.get("decided_by")  # the rule that decided
        out["auto"]["cv"] = {k: ac.verdict.get(k) for k in (
            "cv_loss_chosen", "cv_loss_clean_only", "cv_loss_train_plus_val")}
        out["auto"]["revision"] = AUTO_REVISION
        if candidates is not None:
            save_candidates(candidates, ac, test, device, erm=erm, val=val)
    noisy = train.extra.get("is_noisy")
    out["_"] = {"n_train": train.n_samples, "n_val": val.n_samples, "n_test": test.n_samples,
                "seconds": time.perf_counter() - t0[0], "cpu": time.process_time() - t0[1],
                "noisy_share": 0.0 if noisy is None else float(np.mean(noisy)),
                "load": list(os.getloadavg()), "device": device}
    return out


def save_candidates(path: Path, ac, test, device: str, erm=None, val=None) -> None:
    """Every candidate auto measured on all folds (the race's survivors, the anchors and the λ
    steps): its out-of-fold loss per clean row and its test loss when fitted on the whole data
    like the chosen one, so that rules choosing among them can be compared offline, without
    refitting."""
    from rdia_cli import stages as api
    from rdia_cli.metrics import evaluate_probs

    configs = list(ac.row_losses)
    models = [ac.model if c == ac.config and ac.clean_only_share in (0.0, 1.0) else ac.refit(c)[1]
              for c in configs]  # a blended model is not its training-based part's
    test_probs = np.stack([api.probabilities(m, test, device=device) for m in models])
    test_loss = [evaluate_probs(p, test.y)["loss"] for p in test_probs]  # one prediction each
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, label=np.array([c.label for c in configs]),
        action=np.array([c.action for c in configs]), ranker=np.array([c.ranker for c in configs]),
        fraction=np.array([c.fraction for c in configs]),
        weight=np.array([c.weight for c in configs]), reg=np.array([c.reg for c in configs]),
        row_loss=np.vstack([ac.row_losses[c] for c in configs]), test_loss=np.array(test_loss),
        chosen=ac.config.label, noise_z=ac.verdict["noise"]["z"], n_folds=ac.verdict["n_folds"],
        row_probs=np.stack([ac.row_probs[c] for c in configs]).astype(np.float32),
        alone_shift=np.stack([ac.alone_shift.get(c, np.zeros(len(ac.row_losses[c])))
                              for c in configs]),
        test_probs=test_probs.astype(np.float32), test_y=test.y,
        val_y=ac.cleaned.y[-len(ac.row_losses[configs[0]]):],  # the validation rows come last
        union_reg=np.array(list(ac.union_losses), dtype=np.float64),
        union_loss=(np.vstack(list(ac.union_losses.values())) if ac.union_losses
                    else np.zeros((0, 0))),
        **({} if erm is None else {  # ERM never saw the clean rows: its losses there are honest
            "erm_val_probs": api.probabilities(erm, val, device=device).astype(np.float32),
            "erm_test_probs": api.probabilities(erm, test, device=device).astype(np.float32)}))


def describe_choices(labels: list[str]) -> str:
    """What auto chose over a cell's runs, in words: how many runs went to each kind of model,
    then the most frequent exact choice."""
    from collections import Counter

    def kind(label: str) -> str:
        if " + " in label:
            return "blend with the clean set alone"
        if label.startswith("clean set only"):
            return "clean set alone"
        return "a cleaning" if " top " in label else "train+val"

    n = len(labels)
    kinds = Counter(kind(label) for label in labels)
    (top, k), = Counter(labels).most_common(1)
    if len(kinds) == 1 and k == n:
        return f"{top} (all {n})" if n > 1 else top
    parts = ", ".join(f"{what} {c}" for what, c in kinds.most_common())
    return f"{parts} of {n}; " + (f"most often {top} ({k})" if k > 1 else f"e.g. {top}")


def summarize(results: list[dict]) -> str:
    from collections import defaultdict

    cells = defaultdict(list)
    for r in results:
        cells[(r["dataset"], r["clean"], r["tau"])].append(r["methods"])
    lines = ["| dataset | clean | τ | seeds | " + " | ".join(METHODS) + " | auto chose |",
             "|---|---|---|---|" + "---|" * (len(METHODS) + 1)]
    wins = near = noisy = seed_wins = seed_cells = 0
    never_worse, short, stale = [], [], []
    for (name, clean, tau), runs in sorted(cells.items()):
        mean = {m: float(np.mean([r[m]["loss"] for r in runs])) for m in METHODS}
        best = min(mean.values())
        row = []
        for m in METHODS:
            v = f"{mean[m]:.3f}"
            row.append(f"**{v}**" if mean[m] <= best * 1.01 else v)
        chosen = describe_choices([r["auto"]["chosen"] for r in runs])
        old = sorted({auto_revision(r["auto"]) for r in runs} - {AUTO_REVISION})
        if old:  # auto of an older revision in this cell: marked, counted apart
            stale.append((name, clean, tau, tau > 0 and mean["auto"] <= best * TIE))
            chosen = f"† revision {', '.join(map(str, old))}: {chosen}"
        lines.append(f"| {name} | {clean:.0%} | {tau} | {len(runs)} | " + " | ".join(row)
                     + f" | {chosen} |")
        if tau > 0:
            noisy += 1
            wins += mean["auto"] <= best * TIE
            near += mean["auto"] <= best * 1.01
            for r in runs:
                seed_cells += 1
                seed_wins += r["auto"]["loss"] <= min(r[m]["loss"] for m in METHODS) * TIE
            if mean["auto"] > best * TIE:
                winner = min((m for m in METHODS if m != "auto"), key=lambda m: mean[m])
                short.append(f"- {'† ' if old else ''}{name} {clean:.0%} τ={tau}: auto "
                             f"{mean['auto']:.3f} vs "
                             f"{winner} {mean[winner]:.3f} (+{mean['auto'] / best - 1:.1%}; "
                             f"auto chose {chosen})")
        else:
            gap = np.array([r["auto"]["loss"] - r["erm"]["loss"] for r in runs])
            se = float(gap.std(ddof=1) / np.sqrt(len(gap))) if len(gap) > 1 else float("nan")
            never_worse.append((name, clean, mean["auto"] - mean["erm"], mean["erm"], se,
                                int((gap > 0).sum()), len(gap)))
    per_data = defaultdict(set)
    for r in results:
        per_data[r["dataset"]].add(r["seed"])
    worse = [(n, c, d, e, *rest) for n, c, d, e, *rest in never_worse if e + d > e * TIE]
    head = [
        "Seeds per data set: " + ", ".join(f"{n} {sorted(v)}" for n, v in sorted(per_data.items()))
        + f". Cells: {len(cells)} ({noisy} noisy). Test log-loss, mean over the seeds of a cell; "
        "bold = lowest in the row or within 1% of it.",
        "",
        f"**auto has the lowest mean test loss in {wins} of {noisy} noisy cells "
        f"({wins / max(noisy, 1):.0%}); it is lowest or within 1% of the lowest in {near} "
        f"({near / max(noisy, 1):.0%}).** Seed by seed it is lowest in {seed_wins} of "
        f"{seed_cells} noisy runs ({seed_wins / max(seed_cells, 1):.0%}).",
        "",
    ]
    noisy_stale = [c for c in stale if c[2] > 0]
    if stale:
        current = noisy - len(noisy_stale)
        won = wins - sum(c[3] for c in noisy_stale)
        head += [
            f"**† {len(stale)} cells ({len(noisy_stale)} noisy) hold `auto` results of an older "
            f"revision** (not recomputed at revision {AUTO_REVISION}; the ‘auto chose’ column "
            f"says which); auto is lowest in {sum(c[3] for c in noisy_stale)} of those noisy "
            f"cells. In the {current} noisy cells at revision {AUTO_REVISION} alone it is "
            f"lowest in {won} ({won / max(current, 1):.0%}).",
            ""]
    ratios = [r["methods"]["auto"]["cpu"] / r["methods"]["cleanlab"]["cpu"] for r in results
              if "cpu" in r["methods"]["auto"] and r["methods"].get("cleanlab", {}).get("cpu")]
    if ratios:  # runs from before the `cpu` key have none
        head += [f"Process CPU of auto / cleanlab, median over the {len(ratios)} runs that "
                 f"recorded it: {np.median(ratios):.2f}× ({min(ratios):.1f}–{max(ratios):.1f}).",
                 ""]
    head += [
        f"**τ = 0: auto is worse than ERM in {len(worse)} of {len(never_worse)} cells.** auto "
        "minus ERM (≤ 0: not worse): "
        + ", ".join(f"{n} {c:.0%}: {d:+.4f}" for n, c, d, *_ in never_worse),
        "",
    ]
    tail = ["", "## Where auto falls short (generated)", ""] + (short or ["- nowhere"])
    if worse:
        tail += ["", "τ = 0 cells where auto is worse than ERM (± one standard error of the "
                 "paired difference over the seeds):"]
        tail += [f"- {n} {c:.0%}: ERM {e:.4f}, auto {e + d:.4f} ({d:+.4f} ± {se:.4f}, "
                 f"{d / e:+.1%}; worse in {k} of {runs} seeds)"
                 for n, c, d, e, se, k, runs in worse]
    return "\n".join(head + lines + tail) + "\n"


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
    p.add_argument("--note", default="", help="a markdown file to put under the title")
    p.add_argument("--device", default="cpu", help="cpu or cuda (every fit of the cell)")
    p.add_argument("--recompute", action="store_true", help="with --methods: recompute them "
                   "even where auto is at the current revision (e.g. with --candidates)")
    p.add_argument("--candidates", default="", help="a folder: save every auto candidate's "
                   "out-of-fold row losses and test loss per run (DATASET_CLEAN_TAU_SEED.npz)")
    p.add_argument("--only-runs", default="", help="a file of lines `DATASET CLEAN TAU SEED`: "
                   "run only these (e.g. the runs a change of auto can touch)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help="recompute only these in cells that exist (e.g. auto); empty: all")
    p.add_argument("--quick", action="store_true", help="smoke run: digits, 400 rows, 1 seed, "
                   "τ 0.4, clean 20%%, into a scratch folder (options given on the line win)")
    args = p.parse_args(argv)
    if args.quick:
        quick_defaults(p, args, datasets="digits", taus="0.4", clean="0.2", seeds=1,
                       max_rows=400, out=str(results_dir(quick=True) / "default_strategy"))
    root = Path(args.data_root)
    out_json = Path(args.out + ".json")
    out_json.parent.mkdir(parents=True, exist_ok=True)
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
    methods = tuple(m for m in METHODS if m in (args.methods or ",".join(METHODS)).split(","))
    partial = set(methods) != set(METHODS)
    have = {(r["dataset"], r["clean"], r["tau"], r["seed"]): r for r in results}
    only = None
    if args.only_runs:
        only = {(d, float(c), float(t), int(s)) for d, c, t, s in
                (line.split() for line in Path(args.only_runs).read_text().splitlines()
                 if line.strip())}
        args.datasets = ",".join(n for n in args.datasets.split(",") if any(
            k[0] == n for k in only))
    for name in filter(None, args.datasets.split(",")):
        full, test_file = load(name, root)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            pool, test = pool_and_test(full, test_file, seed, args.max_rows)
            for clean in map(float, args.clean.split(",")):
                for tau in map(float, args.taus.split(",")):
                    if only is not None and (name, clean, tau, seed) not in only:
                        continue
                    old = have.get((name, clean, tau, seed))
                    if old is not None and (not partial or (not args.recompute and auto_revision(
                            old["methods"]["auto"]) == AUTO_REVISION)):
                        continue
                    if old is None and partial:
                        continue  # nothing to add the recomputed methods to
                    dump = (Path(args.candidates) / f"{name}_{clean:g}_{tau:g}_{seed}.npz"
                            if args.candidates else None)
                    r = cell(pool, test, clean=clean, tau=tau, seed=seed, device=args.device,
                             methods=methods, candidates=dump)
                    if old is not None:
                        old["methods"].update(r)
                        r = old["methods"]
                    else:
                        results.append({"dataset": name, "clean": clean, "tau": tau,
                                        "seed": seed, "max_rows": args.max_rows, "methods": r})
                    print(f"{name} clean={clean} tau={tau} seed={seed} "
                          + " ".join(f"{m}={r[m]['loss']:.3f}" for m in METHODS)
                          + f" [{r['auto']['chosen']}] {r['_']['seconds']:.0f}s", flush=True)
                    out_json.write_text(json.dumps({"results": results}, indent=1))
    out_json.write_text(json.dumps({"results": results}, indent=1))
    md = Path(args.out + ".md")
    note = Path(args.note).read_text() + "\n" if args.note else ""
    md.write_text("# Default strategy vs baselines (issue #7)\n\n"
                  "Command: `python bench/default_strategy.py` (see its docstring for the "
                  "protocol; bench/README.md for the options).\n\n" + note
                  + summarize(results))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
