"""`--strategy auto` per kind of label noise: issue #30's grid (item 5; the defaults, results
`bench/results/strategy_grid.*`) and issue #21's (item 4; `results/noise_types.*`).

Full grid of issue #30 (5 data sets × pools of 600 / 1,500 / 3,000 rows with a 5% clean set of
30 / 75 / 150 rows × no noise, symmetric 0.2, class pair 0.5 and 0.9, instance 0.2 × 3 seeds:
207 runs in 69 cells), two processes on the 2-core machine, then the merge. Measured: 410
CPU-seconds in all, 7 minutes of wall on 2 free cores, with OMP_NUM_THREADS=1 at commit
8832635 (auto revision a7ee4395caac; bench/README.md has the table; allow 15 minutes where other
jobs share the machine):

    OMP_NUM_THREADS=1 python bench/noise_types.py --shard 1/2 --out bench/results/strategy_grid_1 &
    OMP_NUM_THREADS=1 python bench/noise_types.py --shard 2/2 --out bench/results/strategy_grid_2 &
    wait
    python bench/noise_types.py --report-only \\
        --merge bench/results/strategy_grid_1.json,bench/results/strategy_grid_2.json
    python bench/noise_types.py --quick           # smoke: digits, 2 runs, a scratch folder

Issue #21's grid (results/noise_types.*) with these options:

    OMP_NUM_THREADS=1 python bench/noise_types.py --datasets breast-cancer,diabetes,digits \
        --kinds symmetric,pair,class,instance --taus 0.2,0.4 --clean 0.05,50 --pools 2000 \
        --seeds 5 --out bench/results/noise_types_a

Protocol (bench/default_strategy.py's ``cell``, ``load`` and ``pool_and_test``): per data set and
seed a labelled pool (stratified subsample of --pools rows) and test data (the data set's test
file, else a stratified 20% of the data; capped at --max-test rows); the clean set is --clean of
the pool (a share < 1, or rows ≥ 1), the rest the training set, noise in the training rows only.
Per run: test log-loss, accuracy, wall and process-CPU seconds of erm, clean-only, train+val,
rdia (the paper's, α by the validation sweep), cleanlab (or drop where cleanlab is missing) and
auto, whether auto's noise test fired, and the realized share of wrong training labels.

Noise kinds (--kinds, ``KIND:τ/τ`` or ``KIND`` for --taus): ``none`` (τ = 0, always, once per
data set × pool × clean set × seed: the never-worse-than-ERM check), and the kinds of
``inject_noise``: ``symmetric``, ``pair`` (k → k+1; multi-class only), ``class`` (the first class
into the second), ``instance`` (flip probability ∝ out-of-fold loss, to the most probable wrong
class) and ``classpair``: kind ``class`` from class a into class b, where a → b is the pair an
out-of-fold logistic regression on the pool's clean labels confuses most (5 folds, seeded,
decided before any noise; recorded per run) — τ of class a flips, so τ × a's share of all
training labels are wrong (multi-class only).

A *cell* is (kind, data set, pool, clean set, τ), its numbers means over the seeds. The report
(``.md``) gives per kind issue #30's "Done when" measures, then each cell.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from benchlib import machine, quick_defaults, results_dir
from default_strategy import AUTO_REVISION, auto_revision, cap, cell, load, pool_and_test

HERE = Path(__file__).resolve().parent


def _has_cleanlab() -> bool:
    try:
        import cleanlab  # noqa: F401
    except ImportError:
        return False
    return True


# cleanlab where it is installed (the `bench` extra), else the drop baseline of the paper's α
BASELINE = "cleanlab" if _has_cleanlab() else "drop"
METHODS = ("erm", "clean-only", "train+val", "rdia", BASELINE, "auto")
KINDS = ("symmetric", "pair", "class", "classpair", "instance")
# the data sets auto's rules were chosen or tuned on (bench/default_strategy.py, issue #21's
# grid, bench/union_lambda.py, bench/choice_rules.py); the report says which of its data are
TUNED_ON = ("breast-cancer", "diabetes", "a9a", "mnist17", "digits", "mnist10", "cifar-catdog")
# issue #30's "Done when"
WITHIN, ERM_SLACK, CPU_RATIO, SHARE_WITHIN = 0.02, 0.005, 2.0, 0.90
# a tie: the same model fitted twice agrees to about 1e-8 relative, not bit for bit
TIE = 1 + 1e-6


def pool_size(r: dict) -> int | None:
    """The pool a run drew its clean and training rows from (``max_rows`` before pools)."""
    return r.get("pool", r.get("max_rows"))


def run_key(r: dict) -> tuple:
    return (r["kind"], r["dataset"], r["clean"], pool_size(r), r["tau"], r["seed"])


def parse_kinds(text: str, taus: str) -> list[tuple[str, list[float]]]:
    """``symmetric:0.2,classpair:0.5/0.9,instance`` → [(kind, [τ, ...])]; a kind without τ
    takes ``taus``."""
    out = []
    for part in filter(None, text.split(",")):
        kind, _, ts = part.partition(":")
        if kind not in KINDS:
            raise SystemExit(f"Unknown noise kind `{kind}`; use one of {', '.join(KINDS)}.")
        out.append((kind, [float(t) for t in (ts.split("/") if ts else taus.split(","))]))
    return out


def most_confused(pool, seed: int) -> dict:
    """The class pair a → b (class values) with the most rows of clean class a predicted as b
    by a 5-fold out-of-fold logistic regression (C = 1) on the pool's clean labels, and that
    count."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import confusion_matrix
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    pred = cross_val_predict(LogisticRegression(C=1.0, max_iter=1000), pool.X, pool.y, cv=folds)
    conf = confusion_matrix(pool.y, pred, labels=np.arange(pool.n_classes))
    np.fill_diagonal(conf, -1)
    a, b = np.unravel_index(int(np.argmax(conf)), conf.shape)
    value = lambda k: pool.classes[int(k)]  # noqa: E731
    return {"from_class": value(a), "to_class": value(b), "confused": int(conf[a, b]),
            "from_rows": int((pool.y == a).sum())}


# --- the report -------------------------------------------------------------------------------
def _methods(runs: list[dict]) -> list[str]:
    """The methods every run of a cell has (older results lack some; drop is optional)."""
    return [m for m in ("erm", "clean-only", "train+val", "drop", "rdia", "cleanlab", "auto")
            if all(m in r["methods"] for r in runs)]


def _cells(results: list[dict]) -> dict[tuple, list[dict]]:
    cells = defaultdict(list)
    for r in results:
        cells[(r["kind"], r["dataset"], pool_size(r), r["clean"], r["tau"])].append(r)
    return cells


def _cell_stats(runs: list[dict]) -> dict:
    methods = _methods(runs)
    mean = {m: float(np.mean([r["methods"][m]["loss"] for r in runs])) for m in methods}
    best = min(mean.values())
    other = min((m for m in methods if m != "auto"), key=lambda m: mean[m])
    base = next((m for m in ("cleanlab", "drop") if m in methods), None)
    ratios = [r["methods"]["auto"]["cpu"] / r["methods"][base]["cpu"] for r in runs
              if base and "cpu" in r["methods"]["auto"] and r["methods"][base].get("cpu")]
    shares = [r["methods"]["_"]["noisy_share"] for r in runs if "noisy_share" in r["methods"]["_"]]
    fired = [r["methods"]["auto"].get("noise_fired") or [] for r in runs]
    return {"methods": methods, "mean": mean, "best": best, "other": other, "base": base,
            "lowest": mean["auto"] <= best * TIE, "within": mean["auto"] <= best * (1 + WITHIN),
            "erm_gap": mean["auto"] - mean["erm"], "ratios": ratios, "shares": shares,
            "fired": sum(bool(f) for f in fired),
            "stale": sorted({auto_revision(r["methods"]["auto"]) for r in runs}
                            - {AUTO_REVISION})}


def _pct(k: int, n: int) -> str:
    return f"{k} / {n} ({k / n:.1%})" if n else "–"


def _median(xs: list[float]) -> str:
    return f"{np.median(xs):.2f}× ({min(xs):.1f}–{max(xs):.1f}, {len(xs)} runs)" if xs else "–"


def _share(xs: list[float]) -> str:
    if not xs:
        return "–"
    lo, hi = min(xs), max(xs)
    return f"{lo:.1%}" if hi - lo < 5e-4 else f"{lo:.1%}–{hi:.1%}"


def summarize(results: list[dict]) -> str:
    """Issue #30's "Done when" per noise kind and in all, then every cell."""
    cells = _cells(results)
    stats = {k: _cell_stats(v) for k, v in cells.items()}
    kinds = [k for k in ("none",) + KINDS if any(c[0] == k for c in cells)]
    base = next((s["base"] for s in stats.values() if s["base"]), BASELINE)
    head = ["| noise kind | cells | auto lowest | auto within 2% of the best | auto worse than "
            f"ERM by > {ERM_SLACK} | CPU auto / {base} (median over runs; range) | wrong "
            "training labels |", "|---|---|---|---|---|---|---|"]

    def row(name, keys):
        ss = [stats[k] for k in keys]
        n = len(ss)
        return (f"| {name} | {n} | {_pct(sum(s['lowest'] for s in ss), n)} | "
                f"{_pct(sum(s['within'] for s in ss), n)} | "
                f"{_pct(sum(s['erm_gap'] > ERM_SLACK for s in ss), n)} | "
                f"{_median([x for s in ss for x in s['ratios']])} | "
                f"{_share([x for s in ss for x in s['shares']])} |")

    for kind in kinds:
        head.append(row("no noise (τ = 0)" if kind == "none" else kind,
                        [k for k in cells if k[0] == kind]))
    head.append(row("**all**", list(cells)))
    n = len(cells)
    within = sum(s["within"] for s in stats.values())
    worse = [k for k, s in stats.items() if s["erm_gap"] > ERM_SLACK]
    ratios = [x for s in stats.values() for x in s["ratios"]]
    ok = lambda b: "met" if b else "**not met**"  # noqa: E731
    done = [
        "",
        f"Issue #30's \"Done when\" on these {n} cells: auto within 2% of the best in ≥ 90% of "
        f"cells — {within} / {n} ({within / max(n, 1):.1%}), {ok(within >= SHARE_WITHIN * n)}; "
        f"never worse than ERM by more than {ERM_SLACK} — {len(worse)} cells, {ok(not worse)}; "
        f"CPU ≤ {CPU_RATIO:g}× {base}'s (median over runs) — "
        + (f"{np.median(ratios):.2f}×, {ok(np.median(ratios) <= CPU_RATIO)}." if ratios
           else "no CPU recorded (results older than the `cpu` key).")]
    stale = [k for k, s in stats.items() if s["stale"]]
    if stale:
        done += ["", f"**† {len(stale)} cells hold auto results of another revision than "
                 f"{AUTO_REVISION}** (marked † below); rerun the grid to recompute them."]
    per = defaultdict(set)
    for r in results:
        per[r["dataset"]].add(r["seed"])
    data = ["", "Data sets (seeds): " + "; ".join(
        f"{d} ({', '.join(map(str, sorted(s)))}; "
        + ("**auto's rules were tuned on it**" if d in TUNED_ON else "not used to tune auto")
        + ")" for d, s in sorted(per.items())) + "."]
    short = [f"- {'† ' if s['stale'] else ''}{k[0]} {k[1]} pool {k[2]} clean {_clean(k[3])} "
             f"τ={k[4]:g}: auto {s['mean']['auto']:.3f} vs {s['other']} "
             f"{s['mean'][s['other']]:.3f} ({s['mean']['auto'] / s['best'] - 1:+.1%}); "
             f"auto chose {_choices(cells[k])}"
             for k, s in sorted(stats.items()) if not s["within"]]
    lines = head + done + data + ["", "### Cells where auto is more than 2% off the best", ""]
    lines += short or ["- none"]
    lines += ["", "### ERM-gap: cells where auto is worse than ERM by more than "
              f"{ERM_SLACK}", ""]
    lines += [f"- {k[0]} {k[1]} pool {k[2]} clean {_clean(k[3])} τ={k[4]:g}: auto "
              f"{stats[k]['mean']['auto']:.4f}, ERM {stats[k]['mean']['erm']:.4f} "
              f"({stats[k]['erm_gap']:+.4f})" for k in sorted(worse)] or ["- none"]
    return "\n".join(lines + [""] + _cell_tables(cells, stats, kinds)) + "\n"


def _clean(clean: float) -> str:
    return f"{clean:.0%}" if clean < 1 else f"{clean:g} rows"


def _choices(runs: list[dict]) -> str:
    from collections import Counter

    (top, k), = Counter(r["methods"]["auto"].get("chosen", "?") for r in runs).most_common(1)
    rules = Counter("; ".join(r["methods"]["auto"].get("decided_by") or []) for r in runs)
    (rule, j), = rules.most_common(1)
    return f"{top} ({k} of {len(runs)})" + (f", decided by: {rule} ({j})" if rule else "")


def _cell_tables(cells, stats, kinds) -> list[str]:
    out = []
    for kind in kinds:
        keys = sorted(k for k in cells if k[0] == kind)
        methods = list(dict.fromkeys(m for k in keys for m in stats[k]["methods"]))
        title = "no noise (τ = 0): false alarms" if kind == "none" else f"{kind} noise"
        out += [f"### {title}", "",
                "| dataset | pool | clean rows | τ | wrong labels | "
                + ("pair a → b | " if kind == "classpair" else "")
                + "runs | noise test fired | " + " | ".join(methods)
                + " | auto vs best other | CPU auto / baseline |",
                "|---|---|---|---|---|" + ("---|" if kind == "classpair" else "")
                + "---|---|" + "---|" * (len(methods) + 2)]
        for k in keys:
            s, runs = stats[k], cells[k]
            rows = sorted({r["methods"]["_"]["n_val"] for r in runs})
            txt = [f"**{s['mean'][m]:.3f}**" if m in s["mean"] and s["mean"][m] <= s["best"] * 1.01
                   else (f"{s['mean'][m]:.3f}" if m in s["mean"] else "–") for m in methods]
            pair = ""
            if kind == "classpair":
                pairs = sorted({f"{r['noise']['from_class']} → {r['noise']['to_class']}"
                                for r in runs if r.get("noise")})
                pair = f"{', '.join(pairs)} | "
            out.append(
                f"| {'† ' if s['stale'] else ''}{k[1]} | {k[2]} | "
                f"{'/'.join(map(str, rows))} ({_clean(k[3])}) | {k[4]:g} | "
                f"{_share(s['shares'])} | {pair}{len(runs)} | {s['fired']}/{len(runs)} | "
                + " | ".join(txt) + f" | {s['mean']['auto'] / s['mean'][s['other']] - 1:+.1%} vs "
                f"{s['other']} | "
                + (f"{np.median(s['ratios']):.1f}×" if s["ratios"] else "–") + " |")
        out.append("")
    return out


# --- the grid ---------------------------------------------------------------------------------
def plan(args) -> list[tuple]:
    """Every run of the grid, in order: (dataset, seed, pool, clean, kind, τ); multi-class-only
    kinds are dropped on binary data when the data are loaded."""
    kinds = parse_kinds(args.kinds, args.taus)
    caps = {k: int(v) for k, v in (x.split("=") for x in filter(None,
                                                                args.large_seeds.split(",")))}
    return [(name, seed, pool, clean, kind, tau)
            for name in filter(None, args.datasets.split(","))
            for seed in range(min(args.seeds, caps.get(name, args.seeds)))
            for pool in map(int, args.pools.split(","))
            for clean in map(float, args.clean.split(","))
            for kind, tau in [("none", 0.0)] + [(k, t) for k, ts in kinds for t in ts]]


def merge(results: list[dict], extra: list[dict]) -> None:
    """Add ``extra``'s runs to ``results``: new keys, and runs whose auto is at the current
    revision where ``results`` holds another."""
    index = {run_key(r): i for i, r in enumerate(results)}
    for r in extra:
        i = index.get(run_key(r))
        if i is None:
            index[run_key(r)] = len(results)
            results.append(r)
        elif (auto_revision(results[i]["methods"]["auto"]) != AUTO_REVISION
              and auto_revision(r["methods"]["auto"]) == AUTO_REVISION):
            results[i] = r


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="pendigits,satimage,optdigits,letter,phishing")
    p.add_argument("--kinds", default="symmetric:0.2,classpair:0.5/0.9,instance:0.2",
                   help="KIND:τ/τ,... (a KIND alone takes --taus); `none` (τ = 0) is always run")
    p.add_argument("--taus", default="0.2,0.4")
    p.add_argument("--pools", default="600,1500,3000", help="pool sizes (rows, stratified)")
    p.add_argument("--clean", default="0.05", help="clean set: share of the pool (< 1) or rows")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--large-seeds", default="", help="per-data-set seed caps, e.g. a9a=3")
    p.add_argument("--max-test", type=int, default=2000, help="test rows (stratified cap)")
    p.add_argument("--shard", default="1/1", help="I/N: run every N-th run of the grid from "
                   "the I-th (N processes side by side, then --merge)")
    p.add_argument("--recompute-auto", action="store_true", help="recompute auto in runs that "
                   "exist (a change of auto that keeps its policy digest); else only in runs of "
                   "another revision")
    p.add_argument("--data-root", default=str(HERE.parents[1] / "shared" / "data"))
    p.add_argument("--out", default=str(HERE / "results" / "strategy_grid"))
    p.add_argument("--merge", default="", help="comma-separated result JSON files to add")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--note", default="", help="a markdown file to put under the title")
    p.add_argument("--quick", action="store_true", help="smoke run: digits, pool 400, 1 seed, "
                   "class-pair noise τ 0.5, clean 20%%, into a scratch folder (recomputed every "
                   "time)")
    args = p.parse_args(argv)
    if args.quick:
        quick_defaults(p, args, datasets="digits", kinds="classpair:0.5", clean="0.2", seeds=1,
                       pools="400", max_test=400,
                       out=str(results_dir(quick=True) / "strategy_grid"))
    out_json = Path(args.out + ".json")
    out_json.parent.mkdir(parents=True, exist_ok=True)
    # a run resumes from its results, except the smoke run: its scratch folder may hold results
    # of other code under the same policy digest
    results = (json.loads(out_json.read_text())["results"] if out_json.exists() and not args.quick
               else [])
    for extra in filter(None, args.merge.split(",")):
        merge(results, json.loads(Path(extra).read_text())["results"])
    shard, n_shards = map(int, args.shard.split("/"))
    have = {run_key(r): r for r in results}
    loaded, pools, pairs = {}, {}, {}
    for i, (name, seed, size, clean, kind, tau) in enumerate(
            [] if args.report_only else plan(args)):
        if i % n_shards != shard - 1:
            continue
        if name not in loaded:
            loaded = {name: load(name, Path(args.data_root))}  # one data set in memory
        if (name, seed) not in pools:
            pools = {(name, seed): pool_and_test(*loaded[name], seed, 10**9)}
        full_pool, test = pools[(name, seed)]
        pool = cap(full_pool, size, seed)
        if kind in ("pair", "classpair") and pool.n_classes == 2:
            continue
        old = have.get((kind, name, clean, size, tau, seed))
        redo_auto = old is not None and (args.recompute_auto or auto_revision(
            old["methods"]["auto"]) != AUTO_REVISION)
        if old is not None and not redo_auto:
            continue
        noise = None
        if kind == "classpair":
            if (name, seed, size) not in pairs:
                pairs[(name, seed, size)] = most_confused(pool, seed)
            noise = pairs[(name, seed, size)]
        r = cell(pool, cap(test, args.max_test, seed), clean=clean, tau=tau, seed=seed,
                 methods=("auto",) if redo_auto else METHODS,
                 kind={"none": "symmetric", "classpair": "class"}.get(kind, kind),
                 noise=None if noise is None else {k: noise[k] for k in ("from_class",
                                                                         "to_class")})
        if redo_auto:
            old["methods"]["auto"] = r["auto"]
            r = old["methods"]
        else:
            results.append({"kind": kind, "dataset": name, "clean": clean, "pool": size,
                            "tau": tau, "seed": seed, "max_test": args.max_test,
                            "noise": noise, "methods": r})
        a, base = r["auto"], r.get(BASELINE, {})
        print(f"{kind} {name} pool={size} clean={r['_']['n_val']} tau={tau:g} seed={seed} "
              f"wrong={r['_']['noisy_share']:.1%} fired={a['noise_fired']} "
              + " ".join(f"{m}={r[m]['loss']:.3f}" for m in METHODS if m in r)
              + f" cpu auto={a['cpu']:.1f}s {BASELINE}={base.get('cpu', float('nan')):.1f}s "
              f"cell={r['_']['cpu']:.1f}s", flush=True)
        out_json.write_text(json.dumps({"results": results}, indent=1))
    out_json.write_text(json.dumps({"results": results}, indent=1))
    md = Path(args.out + ".md")
    note = Path(args.note).read_text() + "\n" if args.note else ""
    md.write_text("# auto per kind of label noise (issues #21, #30)\n\n"
                  f"Written by `python bench/noise_types.py` (its docstring: protocol and "
                  f"commands); auto revision {AUTO_REVISION}; {machine()}.\n\n" + note
                  + (summarize(results) if results else "No runs.\n"))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
