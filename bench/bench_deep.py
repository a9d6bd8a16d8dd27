"""Benchmarks for the deep-learning part: curvature products, scoring speed, Φ accuracy, RDIA-LS.

    python bench/bench_deep.py hvp        # exact/GGN product implementations, LeNet on MNIST
    python bench/bench_deep.py speed      # train LeNet on 60k MNIST (τ=0.4), score, lower bound
    python bench/bench_deep.py accuracy   # Φ vs a long float64 CG reference; top-1% precision
    python bench/bench_deep.py rdials     # ERM / self-teaching / RDIA-LS at τ ∈ {.2,.4,.6,.8}
    python bench/bench_deep.py all

The paper's Table 6 protocol with all comparison methods and the memorizing MLP: bench/table6.py.

Each section writes ``bench/results/deep_<section>.md``; ``bench/results/deep.md`` is rebuilt from
the section files present. Numbers are what this run measured, with the machine's load average
(the machine is shared), so read timings with that in mind.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from benchlib import flip_labels, load_images, log, machine, quick_defaults, results_dir

from rdia_cli.data.dataset import Dataset
from rdia_cli.influence.nets import NetProblem, score_net
from rdia_cli.models.nets.batches import Rows
from rdia_cli.models.nets.training import net_from_model as _net_from_model
from rdia_cli.models.nets.training import predict_proba_net, train_net

RESULTS = results_dir()  # main() sets it; --quick: a scratch folder
TAG = ""  # --tag: suffix of the section file, to keep runs with other settings side by side
QUICK_ROWS = 0  # --quick: every section on the first this many MNIST training images


# --- data -----------------------------------------------------------------------------------------
def load_mnist():
    """(Xtr, ytr, Xte, yte): images (N,1,28,28) float32 in [0,1] read from the IDX files."""
    Xtr, ytr, Xte, yte = load_images("mnist", QUICK_ROWS or None)
    # quick: 1,000 validation images (the sections' first 1,000) and 200 for testing
    return (Xtr, ytr, Xte[:1200], yte[:1200]) if QUICK_ROWS else (Xtr, ytr, Xte, yte)


def symmetric_noise(y: np.ndarray, tau: float, k: int, seed: int):
    """Each label flipped w.p. τ to a uniformly chosen *other* class (paper, appendix C)."""
    return flip_labels(y, tau, k, seed=seed)


def ds(X, y) -> Dataset:
    return Dataset(X=X, y=y, classes=list(range(10)), row_id=np.arange(len(y)))


def write(section: str, lines: list[str]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    cmd = "python bench/bench_deep.py " + " ".join(sys.argv[1:])
    text = "\n".join(lines + ["", f"Machine: {machine()}.", f"Command: `{cmd}`", ""])
    tag = f"_{TAG}" if TAG else ""
    (RESULTS / f"deep_{section}{tag}.md").write_text(text)
    print(text, flush=True)
    parts = ["# Deep-learning benchmarks (rdia_cli.models.nets.training)", "",
             "Assembled from the `deep_*.md` section files written by `bench/bench_deep.py`.", ""]
    for name in ("hvp", "speed", "accuracy", "rdials"):
        for p in sorted(RESULTS.glob(f"deep_{name}*.md")):
            parts += [p.read_text(), ""]
    (RESULTS / "deep.md").write_text("\n".join(parts))


# --- sections -------------------------------------------------------------------------------------
def bench_hvp(args) -> None:
    """Time one curvature-vector product per implementation, interleaved to share the noise."""
    Xtr, ytr, _, _ = load_mnist()
    n = args.hvp_rows
    train = ds(Xtr[:n], ytr[:n])
    log(f"training LeNet on {n} rows, 1 epoch")
    model = train_net(train, arch="lenet", epochs=1, seed=0)
    net = _net_from_model(model, torch.float32, torch.device("cpu"))
    rows = Rows(train.X, [1, 28, 28], device="cpu", dtype=torch.float32)
    impls = [("exact", "autograd"), ("exact", "func"), ("ggn", "dual"), ("ggn", "func")]
    probs = {}
    for hess, impl in impls:
        kw = {"hvp_impl": impl} if hess == "exact" else {"ggn_impl": impl}
        p = NetProblem(net, batch_size=args.batch_size, damping=0.01, **kw)
        p.set_curvature_data(rows, torch.as_tensor(train.y), None)
        probs[(hess, impl)] = p
    cached = NetProblem(net, batch_size=args.batch_size, damping=0.01)
    cached.set_curvature_data(rows, torch.as_tensor(train.y), None)
    t = time.perf_counter()
    cached.cache_jacobian()
    cache_s = time.perf_counter() - t
    impls.append(("ggn", "cache"))
    probs[("ggn", "cache")] = cached
    v = torch.randn(probs[impls[0]].n_params, generator=torch.Generator().manual_seed(0))
    times = {k: [] for k in impls}
    for k in impls:  # warm-up
        probs[k].matvec(v, k[0])
    fwd = []
    for _ in range(args.reps):
        for k in impls:
            t = time.perf_counter()
            probs[k].matvec(v, k[0])
            times[k].append(time.perf_counter() - t)
        t = time.perf_counter()
        with torch.no_grad():
            for a in range(0, n, args.batch_size):
                net(rows.get(slice(a, a + args.batch_size)))
        fwd.append(time.perf_counter() - t)
    f = float(np.median(fwd))
    lines = ["## Curvature-vector products (LeNet, MNIST)", "",
             f"One product over {n} training rows, batch {args.batch_size}, float32, median of "
             f"{args.reps} interleaved repetitions; LeNet (conv 6, conv 16, fc; "
             f"{probs[impls[0]].n_params} parameters) trained 1 epoch.", "",
             "| matrix | implementation | seconds / product | × one forward pass |",
             "|---|---|---|---|"]
    for (hess, impl), ts in times.items():
        m = float(np.median(ts))
        desc = {"autograd": "double backward (autograd.grad twice)",
                "func": "torch.func forward-over-reverse (jvp of grad)" if hess == "exact"
                else "torch.func jvp + vjp (two forwards)",
                "dual": "dual-number forward (Jv) + one backward (Jᵀu)",
                "cache": "cached per-row Jacobians (two mat-vecs)"}[impl]
        lines.append(f"| {hess} | {desc} | {m:.3f} | {m / f:.1f} |")
    lines += ["", f"One no-grad forward pass over the same rows: {f:.3f} s (median). Building "
              f"the Jacobian cache (vmap of jacrev, {n}×10×{cached.n_params} float32) took "
              f"{cache_s:.1f} s once."]
    write("hvp", lines)


def _score_report(r, label):
    i = r.info
    return (f"| {label} | {i['iterations']} | {i['residual']:.1e} | {i['converged']} | "
            f"{i['solve_seconds']:.1f} | {i['score_seconds']:.1f} | "
            f"{i['solve_seconds'] + i['score_seconds']:.1f} |")


def bench_speed(args) -> None:
    Xtr, ytr, Xte, yte = load_mnist()
    ynoisy, flip = symmetric_noise(ytr, 0.4, 10, seed=0)
    train, val = ds(Xtr, ynoisy), ds(Xte[:1000], yte[:1000])
    log(f"training LeNet on 60000 rows (τ=0.4), {args.epochs} epochs")
    t = time.perf_counter()
    model = train_net(train, arch="lenet", epochs=args.epochs, batch_size=128, lr=1e-3, seed=0,
                      progress=lambda e, n, info: log(f"epoch {e}/{n} loss {info['loss']:.4f}"))
    train_s = time.perf_counter() - t
    test_acc = float((predict_proba_net(model, Xte[1000:]).argmax(1) == yte[1000:]).mean())

    net = _net_from_model(model, torch.float32, torch.device("cpu"))
    rows = Rows(train.X, [1, 28, 28], device="cpu", dtype=torch.float32)
    log("lower bound: one forward pass over the training set")
    t = time.perf_counter()
    with torch.no_grad():
        for a in range(0, train.n_samples, args.batch_size):
            net(rows.get(slice(a, a + args.batch_size)))
    fwd_s = time.perf_counter() - t

    log(f"score_net: ggn, cg, damping {args.damping}, hessian_samples {args.hessian_samples}")
    t = time.perf_counter()
    r = score_net(model, train, val, hessian="ggn", solver="cg", damping=args.damping,
                  tol=args.tol, max_iter=args.max_iter, hessian_samples=args.hessian_samples,
                  batch_size=args.batch_size, seed=0)
    total = time.perf_counter() - t
    i = r.info
    np.save(RESULTS / "deep_speed_phi.npy", r.phi) if args.save_phi else None
    order = np.argsort(-r.phi)
    lines = ["## Scoring speed: LeNet on full MNIST", "",
             f"Training set: the 60,000 MNIST training images with τ = 0.4 symmetric label noise "
             f"(seed 0, {int(flip.sum())} flipped); validation: the first 1,000 test images "
             "(clean). LeNet (conv 6, conv 16, fc), Adam lr 1e-3, batch 128, "
             f"{args.epochs} epochs: **{train_s:.0f} s** training "
             f"(test accuracy on the other 9,000 test images {test_acc:.4f}).", "",
             f"`score_net(hessian='ggn', solver='cg', damping={args.damping}, tol={args.tol}, "
             f"max_iter={args.max_iter}, hessian_samples={args.hessian_samples}, "
             f"batch_size={args.batch_size})`, float32:", "",
             "| stage | seconds |", "|---|---|",
             f"| solve (validation gradient, "
             f"{'per-row Jacobian cache, ' if i.get('ggn_jacobian_cache') else ''}"
             f"{i['iterations']} CG products on {i['hessian_samples'] or 60000} curvature rows)"
             f" | {i['solve_seconds']:.1f} |",
             f"| scoring pass (jvp over all 60,000 rows) | {i['score_seconds']:.1f} |",
             f"| **total score_net call** | **{total:.1f}** |",
             f"| lower bound: one no-grad forward pass over the 60,000 rows | {fwd_s:.1f} |",
             "", f"Ratio total / lower bound: **{total / fwd_s:.1f}×**; scoring pass / lower "
             f"bound: {i['score_seconds'] / fwd_s:.1f}×. CG converged: {i['converged']} "
             f"(relative residual {i['residual']:.1e}, {i['n_params']} parameters).", "",
             "Top-k harmful (largest Φ) vs the truly flipped labels:", "",
             "| top share | rows | precision (flipped among them) | base rate |",
             "|---|---|---|---|"]
    for share in (0.01, 0.05, 0.1, 0.4):
        k = int(share * len(order))
        lines.append(f"| {share:.0%} | {k} | {flip[order[:k]].mean():.3f} | {flip.mean():.3f} |")
    by_loss = np.argsort(-r.loss)
    k = int(0.01 * len(order))
    lines += ["", f"For comparison, the top 1% by training loss alone: precision "
              f"{flip[by_loss[:k]].mean():.3f}."]
    write("speed", lines)


def bench_accuracy(args) -> None:
    Xtr, ytr, Xte, yte = load_mnist()
    n = args.acc_rows
    ynoisy, flip = symmetric_noise(ytr[:n], 0.4, 10, seed=1)
    train, val = ds(Xtr[:n], ynoisy), ds(Xte[:1000], yte[:1000])
    log(f"training LeNet on {n} rows (τ=0.4), {args.epochs} epochs")
    model = train_net(train, arch="lenet", epochs=args.epochs, batch_size=128, seed=0)
    hs = args.acc_curv
    log(f"reference: float64 CG tol 1e-10, max_iter {args.ref_iter}, curvature rows {hs}")
    ref = score_net(model, train, val, hessian="ggn", solver="cg", damping=args.damping,
                    tol=1e-10, max_iter=args.ref_iter, hessian_samples=hs, dtype="float64",
                    batch_size=args.batch_size, seed=0)
    from scipy.stats import spearmanr

    runs = [
        ("ggn, cg, tol 1e-6, float32 (default)", dict(hessian="ggn", solver="cg", tol=1e-6)),
        ("ggn, cg, tol 1e-3, float32", dict(hessian="ggn", solver="cg", tol=1e-3)),
        ("ggn, lissa, 100 steps, float32",
         dict(hessian="ggn", solver="lissa", tol=1e-12, max_iter=100)),
        (f"ggn, cg, tol 1e-6, float32, curvature on {hs // 4} other random rows",
         dict(hessian="ggn", solver="cg", tol=1e-6, hessian_samples=hs // 4)),
        ("exact, cg, tol 1e-6, float32", dict(hessian="exact", solver="cg", tol=1e-6)),
    ]
    lines = ["## Accuracy of Φ (LeNet, MNIST subset, τ = 0.4)", "",
             f"Training set: the first {n} MNIST training images with τ = 0.4 symmetric noise "
             f"(seed 1, {int(flip.sum())} flipped); validation: first 1,000 test images. LeNet, "
             f"Adam 1e-3, {args.epochs} epochs. Curvature on a seeded subsample of {hs} rows "
             "(the same rows in every run unless the row says otherwise), damping "
             f"{args.damping}. Reference: float64 CG, "
             f"tol 1e-10, max_iter {args.ref_iter}: {ref.info['iterations']} iterations, residual "
             f"{ref.info['residual']:.1e}, converged {ref.info['converged']}, "
             f"{ref.info['solve_seconds']:.0f} s.", "",
             "| run | Spearman vs reference | rel. L2 error | iterations | residual | seconds |"
             " top-1% precision |", "|---|---|---|---|---|---|---|"]
    k = max(1, int(0.01 * n))

    def prec(phi):
        return flip[np.argsort(-phi)[:k]].mean()

    for label, kw in runs:
        kw.setdefault("max_iter", args.max_iter)
        kw.setdefault("hessian_samples", hs)
        log(label)
        try:
            r = score_net(model, train, val, damping=args.damping, batch_size=args.batch_size,
                          seed=0, **kw)
        except Exception as e:  # noqa: BLE001 - report the failure (e.g. negative curvature)
            lines.append(f"| {label} | failed: {type(e).__name__}: {e} | | | | | |")
            continue
        rho = spearmanr(r.phi, ref.phi)[0]
        err = np.linalg.norm(r.phi - ref.phi) / np.linalg.norm(ref.phi)
        sec = r.info["solve_seconds"] + r.info["score_seconds"]
        lines.append(f"| {label} | {rho:.4f} | {err:.1e} | {r.info['iterations']} | "
                     f"{r.info['residual']:.1e} | {sec:.1f} | {prec(r.phi):.3f} |")
    lines += ["", f"Top-1% ({k} rows) precision of the reference itself: {prec(ref.phi):.3f}; "
              f"by training loss alone: {flip[np.argsort(-ref.loss)[:k]].mean():.3f}; "
              f"base rate {flip.mean():.3f}."]
    write("accuracy", lines)


PAPER_TABLE6 = {  # paper Table 6: MNIST, mean test accuracy over the last 10 of 200 epochs
    "ERM": (79.46, 59.12, 41.40, 23.43),
    "Self-teaching": (94.49, 92.49, 86.26, 75.95),
    "RDIA-LS": (98.12, 97.57, 95.32, 87.85),
}


def bench_rdials(args) -> None:
    Xtr, ytr, Xte, yte = load_mnist()
    n = args.ls_rows
    taus = (0.2, 0.4, 0.6, 0.8)
    res: dict[tuple[str, float], float] = {}
    t_all = time.perf_counter()
    for tau in taus:
        ynoisy, _ = symmetric_noise(ytr[:n], tau, 10, seed=0)
        train = ds(Xtr[:n], ynoisy)
        for method in ("ERM", "Self-teaching", "RDIA-LS"):
            kw = {}
            if method == "Self-teaching":
                kw["self_teaching"] = {"noise_rate": tau, "tk": args.tk}
            elif method == "RDIA-LS":
                kw["rdia_ls"] = {"noise_rate": tau, "gamma": args.gamma, "tk": args.tk}
            t = time.perf_counter()
            m = train_net(train, arch="lenet", epochs=args.ls_epochs, batch_size=128, lr=1e-3,
                          schedule="paper", seed=0, **kw)
            acc = float((predict_proba_net(m, Xte).argmax(1) == yte).mean())
            res[(method, tau)] = acc
            log(f"τ={tau} {method}: test accuracy {acc:.4f} ({time.perf_counter() - t:.0f} s)")
    total = time.perf_counter() - t_all
    lines = ["## RDIA-LS on MNIST (LeNet)", "",
             f"Training: the first {n} MNIST training images, τ symmetric noise (seed 0); LeNet "
             f"(conv 6, conv 16, fc); Adam lr 1e-3, batch 128, {args.ls_epochs} epochs, "
             "schedule `paper` (constant for 40% of the epochs, then linear decay to 0, β1 = 0.1 "
             f"in the decay phase); T_k = {args.tk}, γ = {args.gamma} (not tuned), "
             "ρ = 1 - min(t·τ/T_k, τ) with t counted from 1. Metric: accuracy on the 10,000 "
             f"test images after the last epoch, one seed. Whole sweep: {total / 60:.1f} min.", "",
             "| method | τ = 0.2 | τ = 0.4 | τ = 0.6 | τ = 0.8 |", "|---|---|---|---|---|"]
    for method in ("ERM", "Self-teaching", "RDIA-LS"):
        lines.append(f"| {method} (measured) | "
                     + " | ".join(f"{100 * res[(method, t)]:.2f}" for t in taus) + " |")
    for method, vals in PAPER_TABLE6.items():
        lines.append(f"| {method} (paper Table 6) | " + " | ".join(f"{v:.2f}" for v in vals)
                     + " |")
    lines += ["", "The paper's figures are the mean over the last 10 of 200 epochs on all 60,000 "
              "images (Table 6); its ERM numbers include the memorization of noisy labels that a "
              "long run shows and a short run does not, so the ERM rows are not comparable in "
              "kind."]
    write("rdials", lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("section", choices=["hvp", "speed", "accuracy", "rdials", "all"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--hvp-rows", type=int, default=4096)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--damping", type=float, default=0.01)
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--max-iter", type=int, default=200)
    ap.add_argument("--hessian-samples", type=int, default=2000)
    ap.add_argument("--save-phi", action="store_true")
    ap.add_argument("--acc-rows", type=int, default=5000)
    ap.add_argument("--acc-curv", type=int, default=1000)
    ap.add_argument("--ref-iter", type=int, default=300)
    ap.add_argument("--ls-rows", type=int, default=10000)
    ap.add_argument("--ls-epochs", type=int, default=10)
    ap.add_argument("--tk", type=int, default=3)
    ap.add_argument("--gamma", type=float, default=0.5)
    ap.add_argument("--tag", default="", help="result file suffix: deep_<section>_<tag>.md")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 600 MNIST training images (1,200 test images), 1 epoch, few "
                         "iterations, results into a scratch folder")
    args = ap.parse_args()
    global TAG, RESULTS, QUICK_ROWS
    TAG, RESULTS = args.tag, results_dir(args.quick)
    if args.quick:
        QUICK_ROWS = 600
        quick_defaults(ap, args, reps=1, hvp_rows=256, epochs=1, max_iter=10, hessian_samples=200,
                       acc_rows=400, acc_curv=100, ref_iter=20, ls_rows=400, ls_epochs=1)
    torch.set_num_threads(args.threads)
    sections = ["hvp", "speed", "accuracy", "rdials"] if args.section == "all" \
        else [args.section]
    for s in sections:
        {"hvp": bench_hvp, "speed": bench_speed, "accuracy": bench_accuracy,
         "rdials": bench_rdials}[s](args)


if __name__ == "__main__":
    main()
