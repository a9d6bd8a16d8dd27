"""The paper's Table 6 protocol on MNIST (and Table 7's CNN row on the CIFAR-10 subset we hold).

    python bench/table6.py run --grid cpu --jobs 2        # reduced grid, 2-core CPU (~40 min)
    python bench/table6.py run --grid full --jobs 8 --device cuda   # the whole protocol (GPU)
    python bench/table6.py run --grid cpu_lenet --jobs 2  # LeNet, reduced further (~1 h)
    python bench/table6.py run --grid cifar --jobs 2      # Table 7's CNN row on the subset
    python bench/table6.py report --grid cpu              # rebuild the results file only

Each finished run appends one JSON line to ``bench/results/table6_<grid>.jsonl`` (so a run that
was cut off resumes where it stopped: finished cells are skipped) and the report
``bench/results/table6_<grid>.md`` is rebuilt from those lines. The metric is the paper's: mean
test accuracy over the last 10 epochs (``train_net(monitor=test)`` scores every epoch), averaged
over seeds (± standard deviation over seeds); the last-epoch and best-epoch accuracies are kept
too. ``--shard i/n`` runs every n-th cell, for splitting the grid over commands.

Grids (training noise: symmetric unless ``--noise pair``, seeds 0, 1, 2):

* ``full``  the paper's: 60,000 training images; MLP 784-256-10 (the authors' MNIST network) and
  LeNet; Adam 1e-3, batch 128, 200 epochs, linear decay from epoch 80 (``schedule="paper"``);
  T_k = 4,690 steps (10 epochs of 60,000 rows); τ ∈ {0.2, 0.4, 0.6, 0.8}; all 8 methods.
* ``cpu``   reduced: the first 10,000 training images, the MLP only, 60 epochs with the same
  schedule scaled (decay from epoch 24), T_k = 790 steps (10 epochs of the subset), same τ,
  methods and seeds.
* ``cpu_lenet`` reduced further for LeNet on the CPU (~1 h on 2 cores): the first 5,000 training
  images, LeNet, 30 epochs (decay from epoch 12), T_k = 400 steps (10 epochs of the subset).
* ``cifar`` Table 7's row: the 4,000-image CIFAR-10 subset (test: its 1,000 images), the paper's
  6-conv CNN; ``--epochs`` (default 30) with the schedule scaled, T_k = 10 epochs of the subset.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np
from benchlib import flip_labels, load_images, log, quick_defaults, results_dir
from benchlib import machine as _machine

RESULTS = results_dir()  # main() sets it ($RDIA_BENCH_RESULTS; --quick: a scratch folder)

METHODS = ("ERM", "S-model", "F-correction", "Self-teaching", "Co-teaching", "SIGUA",
           "RDIA-LS (paper)", "RDIA-LS (reference)")
TAUS = (0.2, 0.4, 0.6, 0.8)
SEEDS = (0, 1, 2)

# Quoted from the paper (appendix G, Tables 6 and 7): mean (± std) test accuracy over the last 10
# of 200 epochs; MNIST with LeNet, CIFAR-10 with the 6-conv CNN; τ = 0.2, 0.4, 0.6, 0.8.
PAPER = {
    "mnist": {
        "ERM": ("79.46 ± 0.42", "59.12 ± 0.37", "41.40 ± 0.05", "23.43 ± 0.30"),
        "S-model": ("97.46 ± 0.15", "83.52 ± 0.14", "60.88 ± 0.32", "41.63 ± 1.42"),
        "F-correction": ("98.02 ± 0.11", "87.05 ± 0.05", "74.15 ± 1.09", "63.83 ± 1.76"),
        "Self-teaching": ("94.49 ± 0.13", "92.49 ± 0.14", "86.26 ± 0.27", "75.95 ± 1.03"),
        "Co-teaching": ("97.89 ± 0.12", "94.05 ± 0.07", "90.72 ± 0.03", "78.54 ± 0.21"),
        "SIGUA": ("97.94 ± 0.03", "96.57 ± 0.02", "93.84 ± 0.07", "83.75 ± 0.15"),
        "RDIA-LS": ("98.12 ± 0.02", "97.57 ± 0.05", "95.32 ± 0.06", "87.85 ± 0.21"),
    },
    "cifar": {
        "ERM": ("71.84 ± 1.07", "55.62 ± 0.31", "35.56 ± 0.22", "16.90 ± 0.62"),
        "S-model": ("76.83 ± 0.72", "65.37 ± 0.39", "43.79 ± 0.15", "17.41 ± 0.08"),
        "F-correction": ("80.91 ± 0.16", "71.68 ± 0.65", "57.51 ± 0.24", "19.63 ± 0.78"),
        "Self-teaching": ("78.92 ± 0.21", "70.91 ± 0.26", "62.76 ± 0.05", "20.32 ± 0.13"),
        "Co-teaching": ("79.43 ± 0.11", "72.88 ± 0.08", "66.23 ± 0.32", "22.47 ± 0.15"),
        "SIGUA": ("81.58 ± 0.36", "74.43 ± 0.11", "66.28 ± 0.14", "24.26 ± 0.23"),
        "RDIA-LS": ("82.94 ± 0.19", "77.26 ± 0.1", "67.52 ± 0.21", "25.35 ± 0.17"),
    },
}

GRIDS = {
    "full": dict(data="mnist", rows=60000, models=("mlp", "lenet"), epochs=200, tk_steps=4690),
    "cpu": dict(data="mnist", rows=10000, models=("mlp",), epochs=60, tk_steps=790),
    "cpu_lenet": dict(data="mnist", rows=5000, models=("lenet",), epochs=30, tk_steps=400),
    "cifar": dict(data="cifar", rows=4000, models=("cnn",), epochs=30, tk_steps=None),
    "quick": dict(data="mnist", rows=500, models=("mlp",), epochs=2, tk_steps=8),  # --quick
}
MODEL_ARGS = {"mlp": {"hidden": [256]}, "lenet": {}, "cnn": {}}
MODEL_DESC = {"mlp": "MLP 784-256-10 (the authors' MNIST network)",
              "lenet": "LeNet (conv 6, conv 16, fc)",
              "cnn": "6-conv + 2-fc CNN with BatchNorm (Wang et al. 2019)"}


# --- data -----------------------------------------------------------------------------------------
def load(data: str, rows: int):
    """(Xtr, ytr, Xte, yte), images (N, C, H, W) float32 in [0, 1]."""
    return load_images(data, rows)


def add_noise(y: np.ndarray, tau: float, kind: str, seed: int, k: int = 10):
    """symmetric: flipped w.p. τ to a uniform *other* class (paper appendix C); pair: flipped
    w.p. τ to the next class (y + 1) mod K (Han et al. 2018's pair flip). Noise seed 1000 + seed."""
    return flip_labels(y, tau, k, seed=1000 + seed, kind=kind)[0]


# --- one cell -------------------------------------------------------------------------------------
def method_kwargs(method: str, tau: float, tk_steps, gamma_paper: float, gamma_ref: float):
    sel = {"noise_rate": tau, "tk": 10, "tk_steps": tk_steps}
    return {
        "ERM": {},
        "S-model": {"s_model": {"init": "estimate"}},
        "F-correction": {"f_correction": {}},
        "Self-teaching": {"self_teaching": sel},
        "Co-teaching": {"co_teaching": sel},
        "SIGUA": {"sigua": {**sel, "ascent": 0.01}},
        "RDIA-LS (paper)": {"rdia_ls": {**sel, "gamma": gamma_paper, "variant": "paper"}},
        "RDIA-LS (reference)": {"rdia_ls": {**sel, "gamma": gamma_ref,
                                            "variant": "reference"}},
    }[method]


def run_cell(cell: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from rdia_cli.data.dataset import Dataset
    from rdia_cli.models.nets.training import train_net

    g = GRIDS[cell["grid"]]
    Xtr, ytr, Xte, yte = load(g["data"], g["rows"])
    ynoisy = add_noise(ytr, cell["tau"], cell["noise"], cell["seed"])
    train = Dataset(X=Xtr, y=ynoisy, classes=list(range(10)), row_id=np.arange(len(ytr)))
    test = Dataset(X=Xte, y=yte, classes=list(range(10)), row_id=np.arange(len(yte)))
    kw = method_kwargs(cell["method"], cell["tau"], cell["tk_steps"], cell["gamma_paper"],
                       cell["gamma_ref"])
    t = time.perf_counter()
    m = train_net(train, arch=cell["model"], arch_args=MODEL_ARGS[cell["model"]],
                  epochs=cell["epochs"], batch_size=128, lr=1e-3, schedule="paper",
                  weight_decay=cell["weight_decay"], seed=cell["seed"], device=cell["device"],
                  monitor=test, **kw)
    acc = m.meta["metrics"]["monitor_accuracy"]
    return {**cell, "last10": float(np.mean(acc[-10:])), "last": acc[-1], "best": max(acc),
            "best_epoch": int(np.argmax(acc)) + 1, "curve": acc,
            "noise_share": float((ynoisy != ytr).mean()),
            "seconds": time.perf_counter() - t, "steps": m.meta["training"]["steps"]}


def cells(args) -> list[dict]:
    g = GRIDS[args.grid]
    epochs = args.epochs or g["epochs"]
    tk = args.tk_steps if args.tk_steps is not None else g["tk_steps"]
    if tk is None:  # 10 epochs of the data at hand, in steps
        tk = 10 * -(-g["rows"] // 128)
    out = []
    for model in g["models"]:  # seed outermost: a grid cut short has whole seeds
        for seed in args.seeds:
            for tau in args.taus:
                for method in args.methods:
                    out.append({"grid": args.grid, "model": model, "method": method,
                                "tau": tau, "seed": seed, "noise": args.noise,
                                "epochs": epochs, "tk_steps": tk,
                                "gamma_paper": args.gamma_paper, "gamma_ref": args.gamma_ref,
                                "weight_decay": args.weight_decay, "device": args.device})
    i, n = (int(v) for v in args.shard.split("/"))
    return out[i::n]


def _key(c: dict) -> tuple:
    return tuple(c[k] for k in ("model", "method", "tau", "seed", "noise", "epochs", "tk_steps",
                                "gamma_paper", "gamma_ref", "weight_decay"))


def _paths(grid: str, noise: str):
    tag = grid if noise == "symmetric" else f"{grid}_{noise}"
    return RESULTS / f"table6_{tag}.jsonl", RESULTS / f"table6_{tag}.md"


def run(args) -> None:
    jsonl, _ = _paths(args.grid, args.noise)
    RESULTS.mkdir(parents=True, exist_ok=True)
    done = set()
    if jsonl.exists():
        done = {_key(json.loads(line)) for line in jsonl.read_text().splitlines() if line}
    todo = [c for c in cells(args) if _key(c) not in done]
    log(f"{len(todo)} cells to run ({len(done)} already in {jsonl.name}), {args.jobs} processes")
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futs = {pool.submit(run_cell, c): c for c in todo}
        for k, f in enumerate(as_completed(futs), 1):
            r = f.result()
            with jsonl.open("a") as fh:
                fh.write(json.dumps(r) + "\n")
            log(f"{k}/{len(todo)} {r['model']} {r['method']} τ={r['tau']} seed {r['seed']}: "
                f"last-10 {100 * r['last10']:.2f} last {100 * r['last']:.2f} best "
                f"{100 * r['best']:.2f}@{r['best_epoch']} ({r['seconds']:.0f} s; "
                f"{(time.perf_counter() - t0) / 60:.1f} min so far)")
            if k % 8 == 0 or k == len(todo):
                report(args)
    report(args)


# --- report ---------------------------------------------------------------------------------------
def machine(device: str) -> str:
    return _machine(device, threads="1 torch thread per process")


def _fmt(vals, key="last10") -> str:
    v = 100 * np.array([r[key] for r in vals])
    if len(v) == 0:
        return "–"
    return f"{v.mean():.2f} ± {v.std():.2f}" + ("" if len(v) >= 3 else f" (n={len(v)})")


def _label(r: dict, g: dict) -> str:
    """The method's row name; runs with non-default γ, epochs or T_k (ablations) get their own."""
    out = r["method"]
    extra = []
    if r["method"] == "RDIA-LS (paper)" and r["gamma_paper"] != DEFAULTS["gamma_paper"]:
        extra.append(f"γ = {r['gamma_paper']}")
    if r["method"] == "RDIA-LS (reference)" and r["gamma_ref"] != DEFAULTS["gamma_ref"]:
        extra.append(f"γ = {r['gamma_ref']}")
    if r["epochs"] != g["epochs"]:
        extra.append(f"{r['epochs']} epochs")
    default_tk = g["tk_steps"] or 10 * -(-g["rows"] // 128)
    if r["tk_steps"] != default_tk:
        extra.append(f"T_k = {r['tk_steps']} steps")
    return out + (f" [{', '.join(extra)}]" if extra else "")


DEFAULTS = {"gamma_paper": 0.05, "gamma_ref": 0.5}


def report(args) -> None:
    jsonl, md = _paths(args.grid, args.noise)
    if not jsonl.exists():
        print(f"no results in {jsonl}")
        return
    res = [json.loads(line) for line in jsonl.read_text().splitlines() if line]
    g = GRIDS[args.grid]
    for r in res:
        r["label"] = _label(r, g)
    labels = [m for m in METHODS if any(r["label"] == m for r in res)]
    labels += sorted({r["label"] for r in res} - set(labels))
    paper = PAPER[g["data"]]
    seeds = sorted({r["seed"] for r in res})
    epochs = sorted({r["epochs"] for r in res})
    tks = sorted({r["tk_steps"] for r in res})
    wall = sum(r["seconds"] for r in res)
    data_desc = (f"the first {g['rows']:,} MNIST training images" if g["data"] == "mnist"
                 else "the CIFAR-10 subset we hold: 4,000 training images (the first 4,000 of "
                 "data_batch_1), tested on the 1,000-image test subset — **a subset, not the "
                 "paper's 50,000/10,000**")
    test_desc = "the 10,000 MNIST test images" if g["data"] == "mnist" else \
        "the 1,000 CIFAR-10 test images we hold"
    lines = [f"# Table {'6' if g['data'] == 'mnist' else '7'} protocol, grid `{args.grid}`"
             f"{' (pair-flip noise)' if args.noise == 'pair' else ''}", "",
             f"Training data: {data_desc}, with {args.noise} label noise at rate τ (noise seed "
             "1000 + seed; pair flip = to the next class). Test: " + test_desc + ".",
             f"Optimizer: Adam lr 1e-3, batch 128, {'/'.join(map(str, epochs))} epochs, "
             "schedule `paper` (lr constant for 40% of the epochs, then linear decay to 0, "
             "β1 = 0.1 in the decay phase), weight decay "
             f"{res[0]['weight_decay']}; T_k = {'/'.join(map(str, tks))} optimizer steps "
             "(`tk_steps`; the paper's T_k = 10 epochs of 60,000 rows is 4,690 steps), "
             "ρ = 1 - min(t·τ/T_k, τ) per step.",
             f"Seeds: {', '.join(map(str, seeds))} (network init, shuffling and noise). "
             "Metric (the paper's): mean test accuracy (%) over the last 10 epochs; mean ± "
             "standard deviation over the seeds.",
             f"Methods: S-model initialised from a baseline's confusion matrix (baseline: ERM, "
             f"10% of the epochs); F-correction with T estimated by Patrini et al.'s anchor "
             f"points (97th percentile) from the same kind of baseline; SIGUA-SL with ascent "
             f"factor 0.01; RDIA-LS (paper) = Algorithm 2 with γ = {DEFAULTS['gamma_paper']} on "
             f"the relabeled part; RDIA-LS (reference) = the authors' code's loss (γ = "
             f"{DEFAULTS['gamma_ref']} on the clean part, see `rdia_cli.models.nets.noisy`). "
             "γ fixed, not tuned per cell (`--gamma auto` would cost 20 trainings per cell); rows "
             "marked [γ = ...] are ablations with another fixed γ.",
             f"Runs: {len(res)}; summed training time {wall / 60:.0f} process-minutes.", ""]
    for model in g["models"]:
        rows_m = [r for r in res if r["model"] == model]
        if not rows_m:
            continue
        lines += [f"## {MODEL_DESC[model]}", "",
                  "| method | " + " | ".join(f"τ = {t}" for t in TAUS) + " |",
                  "|---|" + "---|" * len(TAUS)]
        for method in labels:
            cellv = [[r for r in rows_m if r["label"] == method and r["tau"] == t]
                     for t in TAUS]
            if any(cellv):
                lines.append(f"| {method} (ours) | " + " | ".join(_fmt(c) for c in cellv) + " |")
        best = []
        for t in TAUS:
            means = {m: np.mean([r["last10"] for r in rows_m if r["label"] == m and r["tau"] == t])
                     for m in labels if any(r["label"] == m and r["tau"] == t for r in rows_m)}
            if means:
                top = max(means, key=means.get)
                best.append(f"τ = {t}: {top} ({100 * means[top]:.2f})")
        lines += ["", "Highest mean per τ: " + "; ".join(best) + "."]
        lines += ["", "Same runs, best single epoch (mean over seeds) / last epoch:", "",
                  "| method | " + " | ".join(f"τ = {t}" for t in TAUS) + " |",
                  "|---|" + "---|" * len(TAUS)]
        for method in labels:
            cellv = [[r for r in rows_m if r["label"] == method and r["tau"] == t]
                     for t in TAUS]
            if any(cellv):
                lines.append(f"| {method} | " + " | ".join(
                    (f"{100 * np.mean([r['best'] for r in c]):.2f} / "
                     f"{100 * np.mean([r['last'] for r in c]):.2f}") if c else "–"
                    for c in cellv) + " |")
        lines.append("")
    net = "LeNet" if g["data"] == "mnist" else "the 6-conv CNN"
    lines += [f"## The paper's figures ({'Table 6' if g['data'] == 'mnist' else 'Table 7'}, "
              f"{net}, full data, 200 epochs), quoted", "",
              "| method | " + " | ".join(f"τ = {t}" for t in TAUS) + " |",
              "|---|" + "---|" * len(TAUS)]
    for method, vals in paper.items():
        lines.append(f"| {method} (paper's Table {'6' if g['data'] == 'mnist' else '7'}) | "
                     + " | ".join(vals) + " |")
    cmd = "python bench/table6.py " + " ".join(sys.argv[1:])
    lines += ["", f"Machine: {machine(res[0]['device'])}.",
              f"Runs made by `python bench/table6.py run --grid {args.grid}` (ablation rows: "
              "the same with `--methods NAME --gamma-paper G` / `--gamma-ref G`); this file by "
              f"`{cmd}`. Per-run records, with every epoch's test accuracy: "
              f"`bench/results/{jsonl.name}`.", ""]
    notes = md.with_name(md.stem + "_notes.md")  # hand-written reading, kept across rebuilds
    if notes.exists():
        lines += [notes.read_text()]
    md.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["run", "report"])
    ap.add_argument("--grid", choices=sorted(GRIDS), default="cpu")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--noise", choices=["symmetric", "pair"], default="symmetric")
    ap.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    ap.add_argument("--taus", nargs="+", type=float, default=list(TAUS))
    ap.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    ap.add_argument("--epochs", type=int, default=None, help="override the grid's epochs")
    ap.add_argument("--tk-steps", type=int, default=None, help="override the grid's T_k")
    ap.add_argument("--gamma-paper", type=float, default=DEFAULTS["gamma_paper"])
    ap.add_argument("--gamma-ref", type=float, default=DEFAULTS["gamma_ref"])
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--shard", default="0/1", help="i/n: run every n-th cell from the i-th")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: grid `quick` (500 images, MLP, 2 epochs), τ 0.4, seed 0, "
                         "1 process, results into a scratch folder")
    args = ap.parse_args()
    global RESULTS
    RESULTS = results_dir(args.quick)
    if args.quick:
        quick_defaults(ap, args, grid="quick", taus=[0.4], seeds=[0], jobs=1)
    (run if args.action == "run" else report)(args)


if __name__ == "__main__":
    main()
