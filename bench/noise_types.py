"""`--strategy auto` per kind of label noise (issue #21 item 4): symmetric, pair flip,
one-directional class-conditional and instance-dependent noise (``inject_noise(kind=...)``).

Same protocol as bench/default_strategy.py (its ``cell``, ``load`` and ``pool_and_test``): the
labelled pool capped at --max-rows, a clean set of a share (< 1) or a number of rows (≥ 1),
noise in the training rows only; per run: whether auto's label-noise test fired (and which
test), and the test log-loss of auto, ERM, clean-only, train+val and cleanlab (or, where
cleanlab is not installed, drop: Φ > α removed, α by the validation sweep). Pair flip on two
classes is the symmetric kind (both flip to the other class), so it runs on multi-class data
only; τ = 0 runs once per (data, clean set) as the false-alarm check.

    OMP_NUM_THREADS=1 python bench/noise_types.py --datasets breast-cancer,diabetes,digits \\
        --out bench/results/noise_types_a
    python bench/noise_types.py --report-only --merge bench/results/noise_types_a.json,...
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from benchlib import quick_defaults, results_dir
from default_strategy import cell, load, pool_and_test

HERE = Path(__file__).resolve().parent


def _has_cleanlab() -> bool:
    try:
        import cleanlab  # noqa: F401
    except ImportError:
        return False
    return True


# cleanlab where it is installed (the `bench` extra), else the drop baseline of the paper's α
METHODS = ("erm", "clean-only", "train+val", "cleanlab" if _has_cleanlab() else "drop", "auto")
KINDS = ("symmetric", "pair", "class", "instance")


def summarize(results: list[dict]) -> str:
    cells = defaultdict(list)
    for r in results:
        cells[(r["kind"], r["dataset"], r["clean"], r["tau"])].append(r)
    out = []
    for kind in ("none",) + KINDS:
        rows = {k: v for k, v in cells.items() if k[0] == kind}
        if not rows:
            continue
        title = "no noise (τ = 0): false alarms" if kind == "none" else f"{kind} noise"
        out += [f"### {title}", "",
                "| dataset | clean | τ | runs | noise test fired (loss / labels) | "
                + " | ".join(METHODS) + " | auto vs best other |",
                "|---|---|---|---|---|" + "---|" * (len(METHODS) + 1)]
        for (_, name, clean, tau), runs in sorted(rows.items()):
            fired = [r["methods"]["auto"].get("noise_fired") or [] for r in runs]
            n_any = sum(bool(f) for f in fired)
            n_loss = sum(any(t.startswith("loss") for t in f) for f in fired)
            n_lab = sum("labels" in f for f in fired)
            mean = {m: float(np.mean([r["methods"][m]["loss"] for r in runs])) for m in METHODS}
            best = min(mean.values())
            other = min((m for m in METHODS if m != "auto"), key=lambda m: mean[m])
            cells_txt = [f"**{mean[m]:.3f}**" if mean[m] <= best * 1.01 else f"{mean[m]:.3f}"
                         for m in METHODS]
            size = f"{clean:.0%}" if clean < 1 else f"{clean:g} rows"
            out.append(f"| {name} | {size} | {tau:g} | {len(runs)} | {n_any}/{len(runs)} "
                       f"({n_loss} / {n_lab}) | " + " | ".join(cells_txt)
                       + f" | {mean['auto'] / mean[other] - 1:+.1%} vs {other} |")
        out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="breast-cancer,diabetes,digits,a9a,mnist17")
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--taus", default="0.2,0.4")
    p.add_argument("--clean", default="0.05,50")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--large-seeds", default="a9a=3,mnist17=3", help="per-data-set seed caps")
    p.add_argument("--max-rows", type=int, default=2000)
    p.add_argument("--data-root", default=str(HERE.parents[1] / "shared" / "data"))
    p.add_argument("--out", default=str(HERE / "results" / "noise_types"))
    p.add_argument("--merge", default="", help="comma-separated result JSON files to add")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--note", default="", help="a markdown file to put under the title")
    p.add_argument("--quick", action="store_true", help="smoke run: digits, 400 rows, 1 seed, "
                   "pair noise τ 0.4, clean 20%%, into a scratch folder")
    args = p.parse_args(argv)
    if args.quick:
        quick_defaults(p, args, datasets="digits", kinds="pair", taus="0.4", clean="0.2",
                       seeds=1, max_rows=400, out=str(results_dir(quick=True) / "noise_types"))
    out_json = Path(args.out + ".json")
    results = json.loads(out_json.read_text())["results"] if out_json.exists() else []
    key = lambda r: (r["kind"], r["dataset"], r["clean"], r["tau"], r["seed"])  # noqa: E731
    for extra in filter(None, args.merge.split(",")):
        have = {key(r) for r in results}
        results += [r for r in json.loads(Path(extra).read_text())["results"]
                    if key(r) not in have]
    caps = {k: int(v) for k, v in (x.split("=") for x in filter(None,
                                                                args.large_seeds.split(",")))}
    have = {key(r) for r in results}
    for name in ([] if args.report_only else filter(None, args.datasets.split(","))):
        full, test_file = load(name, Path(args.data_root))
        for seed in range(min(args.seeds, caps.get(name, args.seeds))):
            pool, test = pool_and_test(full, test_file, seed, args.max_rows)
            for clean in map(float, args.clean.split(",")):
                plan = [("none", 0.0)] + [(k, float(t)) for k in args.kinds.split(",")
                                          for t in args.taus.split(",")
                                          if not (k == "pair" and pool.n_classes == 2)]
                for kind, tau in plan:
                    if (kind, name, clean, tau, seed) in have:
                        continue
                    t0 = time.perf_counter()
                    r = cell(pool, test, clean=clean, tau=tau, seed=seed, methods=METHODS,
                             kind="symmetric" if kind == "none" else kind)
                    results.append({"kind": kind, "dataset": name, "clean": clean, "tau": tau,
                                    "seed": seed, "max_rows": args.max_rows, "methods": r})
                    a = r["auto"]
                    print(f"{kind} {name} clean={clean:g} tau={tau} seed={seed} "
                          f"z={a['noise_z']:+.2f} fired={a['noise_fired']} "
                          + " ".join(f"{m}={r[m]['loss']:.3f}" for m in METHODS)
                          + f" {time.perf_counter() - t0:.0f}s", flush=True)
                    out_json.write_text(json.dumps({"results": results}, indent=1))
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps({"results": results}, indent=1))
    md = Path(args.out + ".md")
    note = Path(args.note).read_text() + "\n" if args.note else ""
    md.write_text("# auto per kind of label noise (issue #21)\n\n" + note + summarize(results))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
