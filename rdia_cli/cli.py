"""The `rdia` command line: options, files, printing and exit codes. No math here.

Exit codes: 0 success, 2 usage or input error, 1 failure at run time. Messages go to stderr as
one red line; results (tables) to stdout. Set RDIA_DEBUG=1 to see tracebacks.
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rdia_cli.errors import InputError, RdiaError

app = typer.Typer(
    name="rdia",
    help=(
        "Repair classification training data with influence-based relabeling (RDIA, ICLR 2022).\n\n"
        "Pipeline: train -> score -> relabel -> retrain -> evaluate; `rdia run` does all five, "
        "`rdia demo` shows it on a built-in dataset. Φ > 0 means a training row hurts the "
        "validation loss; removing it changes that loss by about -Φ/N."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def _fail(message: str, code: int) -> None:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(fn):
    """Turn rdia's exceptions into one red line and an exit code (the only place that does)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except RdiaError as e:
            if os.environ.get("RDIA_DEBUG"):
                raise
            _fail(str(e), e.exit_code)
        except MemoryError:
            _fail("out of memory; try a smaller --batch-size or a machine with more memory.", 1)
        except KeyboardInterrupt:
            err.print("interrupted; no output was written.")
            raise typer.Exit(130) from None
        except Exception as e:  # noqa: BLE001 - last line of defence: no tracebacks for users
            if os.environ.get("RDIA_DEBUG"):
                raise
            _fail(f"internal error ({type(e).__name__}: {e}); rerun with RDIA_DEBUG=1 to see "
                  "the traceback and report it.", 1)

    return wrapper


# --- shared options ---------------------------------------------------------------------------
Device = Annotated[str, typer.Option("--device", help="auto (CUDA if available), cpu, cuda or cuda:N.")]
Labels = Annotated[Path | None, typer.Option("--labels", help="IDX label file for IDX image data.")]
LabelCol = Annotated[str, typer.Option("--label-col", help="Label column of CSV/Parquet files.")]
ZeroBased = Annotated[
    bool | None,
    typer.Option("--zero-based/--one-based", help="LIBSVM feature indices (default: detect).",
                 show_default=False),
]
NFeatures = Annotated[int | None, typer.Option("--n-features", help="LIBSVM: fix the width.")]
Classes = Annotated[
    str | None,
    typer.Option("--classes", help="Keep only rows with these label values, e.g. 1,7."),
]
Format = Annotated[
    str, typer.Option("--format", help="auto, libsvm, csv, parquet, idx or cifar.")
]
Seed = Annotated[int, typer.Option("--seed", help="Random seed.")]
Output = Annotated[Path, typer.Option("-o", "--output", help="Output file.")]


def read_opts(labels=None, label_col="label", zero_based=None, n_features=None, classes=None,
              fmt="auto"):
    from rdia_cli.data.readers import ReadOptions

    cls = tuple(c.strip() for c in classes.split(",") if c.strip()) if classes else None
    return ReadOptions(format=fmt, labels=str(labels) if labels else None, label_col=label_col,
                       zero_based=zero_based, n_features=n_features, classes=cls)


def load(path, opts, *, what="data", schema=None, labels="same"):
    """Read a dataset; ``labels`` replaces the IDX label file of ``opts`` (None: no labels
    file, for a --val/--test whose own --val-labels/--test-labels was not given)."""
    from dataclasses import replace

    from rdia_cli.data.readers import read_dataset

    if labels != "same":
        opts = replace(opts, labels=str(labels) if labels is not None else None)
    return read_dataset(str(path), opts, schema=schema, what=what)


def device_of(name: str):
    from rdia_cli.device import resolve_device

    return resolve_device(name)


def progress_bar():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal,
    )


def _net_options(epochs, batch_size, lr, optimizer, weight_decay, schedule, seed, hidden,
                 rdia_ls, self_teaching, noise_rate, gamma, tk) -> dict:
    opts = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": optimizer,
            "weight_decay": weight_decay, "schedule": schedule, "seed": seed}
    if hidden:
        try:
            opts["arch_args"] = {"hidden": [int(h) for h in hidden.split(",") if h.strip()]}
        except ValueError:
            raise InputError(f"--hidden must be comma-separated integers, not {hidden!r}.") from None
    if rdia_ls and self_teaching:
        raise InputError("--rdia-ls and --self-teaching are alternatives; give one.")
    if (rdia_ls or self_teaching) and noise_rate is None:
        raise InputError("--rdia-ls and --self-teaching need --noise-rate τ (the expected noise).")
    if rdia_ls:
        opts["rdia_ls"] = {"noise_rate": noise_rate, "gamma": gamma, "tk": tk}
    if self_teaching:
        opts["self_teaching"] = {"noise_rate": noise_rate, "tk": tk}
    return opts


def _summary_table(title: str, rows: list[tuple[str, str]]):
    from rich.table import Table

    t = Table(title=title, show_header=False, title_justify="left", box=None, padding=(0, 2))
    for k, v in rows:
        t.add_row(f"[dim]{k}[/]", v)
    return t


def _fmt(x, spec=".4f"):
    return "-" if x is None else format(x, spec)


# --- train ------------------------------------------------------------------------------------
@app.command()
@handle_errors
def train(
    data: Annotated[Path, typer.Argument(help="Training data (LIBSVM, CSV, Parquet, IDX, CIFAR).")],
    output: Output,
    val: Annotated[Path | None, typer.Option("--val", help="Validation data: report its loss.")] = None,
    model_type: Annotated[str, typer.Option("--model-type", help="logreg, mlp, lenet or cnn.")] = "logreg",
    l2: Annotated[float | None, typer.Option("--l2", help="λ of (λ/2)‖W‖² (logreg; default 1/N, scikit-learn's C=1).")] = None,
    no_intercept: Annotated[bool, typer.Option("--no-intercept", help="Fit no intercept.")] = False,
    tol: Annotated[float, typer.Option("--tol", help="Stop when ‖∇L‖ ≤ tol·‖∇L(0)‖ (logreg).")] = 1e-8,
    max_iter: Annotated[int, typer.Option("--max-iter", help="Newton steps at most (logreg).")] = 100,
    epochs: Annotated[int, typer.Option("--epochs", help="Networks: passes over the data.")] = 10,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Networks: mini-batch size.")] = 128,
    lr: Annotated[float, typer.Option("--lr", help="Networks: learning rate.")] = 1e-3,
    optimizer: Annotated[str, typer.Option("--optimizer", help="Networks: adam or sgd.")] = "adam",
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="Networks: weight decay.")] = 0.0,
    schedule: Annotated[str, typer.Option("--schedule", help="Networks: none, or paper (linear decay from 40% of the epochs).")] = "none",
    hidden: Annotated[str | None, typer.Option("--hidden", help="mlp: hidden sizes, e.g. 256,128.")] = None,
    rdia_ls: Annotated[bool, typer.Option("--rdia-ls", help="Train with RDIA-LS (paper appendix F).")] = False,
    self_teaching: Annotated[bool, typer.Option("--self-teaching", help="Train on the small-loss share only.")] = False,
    noise_rate: Annotated[float | None, typer.Option("--noise-rate", help="RDIA-LS: expected noise rate τ.")] = None,
    gamma: Annotated[float, typer.Option("--gamma", help="RDIA-LS: weight γ of the relabeled loss.")] = 0.5,
    tk: Annotated[int, typer.Option("--tk", help="RDIA-LS: epochs T_k to reach τ.")] = 10,
    device: Device = "auto",
    seed: Seed = 0,
    labels: Labels = None,
    val_labels: Annotated[Path | None, typer.Option("--val-labels", help="IDX label file for --val.")] = None,
    label_col: LabelCol = "label",
    zero_based: ZeroBased = None,
    n_features: NFeatures = None,
    classes: Classes = None,
    fmt: Format = "auto",
) -> None:
    """Train a model on DATA and write the model file (-o MODEL.pt)."""
    from rdia_cli import api
    from rdia_cli.io_utils import check_output
    from rdia_cli.models.io import save_model

    check_output(output, data, val, labels, val_labels)
    opts = read_opts(labels, label_col, zero_based, n_features, classes, fmt)
    dev = device_of(device)
    from rdia_cli import distributed

    shard = distributed.Sharding.from_env(dev)  # under torchrun: this rank's rows only
    if shard is None:
        ds, n_total = load(data, opts, what="training data"), None
    else:
        dev = shard.device
        distributed._check_logreg(model_type)
        ds, n_total = distributed.load_shard(data, opts, shard, what="training data")
    net = _net_options(epochs, batch_size, lr, optimizer, weight_decay, schedule, seed, hidden,
                       rdia_ls, self_teaching, noise_rate, gamma, tk)
    t0 = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task(f"training {model_type}", total=None, info="")

        def progress(step, total_or_loss, extra=None):
            if isinstance(extra, dict):
                bar.update(task, completed=step, total=total_or_loss,
                           info=" ".join(f"{k} {v:.4g}" for k, v in extra.items()))
            else:
                bar.update(task, completed=step, info=f"loss {total_or_loss:.6g} |g| {extra:.2e}")

        if shard is None:
            model = api.train_model(ds, model_type=model_type, device=dev, l2=l2,
                                    fit_intercept=not no_intercept, tol=tol, max_iter=max_iter,
                                    net_options=net, progress=progress)
        else:
            model = distributed.train_logreg(ds, shard, n_total, l2=l2, device=dev,
                                             fit_intercept=not no_intercept, tol=tol,
                                             max_iter=max_iter, progress=progress)
    seconds = time.perf_counter() - t0
    if shard is not None:
        shard.close()
        if not shard.is_root:  # rank 0 writes the one model file
            return
    rows = [("data", f"{data}  ({n_total or ds.n_samples:,} rows × {ds.n_features:,} features, "
                     f"{ds.n_classes} classes{', sparse' if ds.is_sparse else ''})"),
            ("model", model_type), ("device", str(dev))]
    m = model.meta.get("metrics", {})
    if model_type == "logreg":
        rows += [("λ (l2)", f"{model.meta['l2']:.6g}"),
                 ("Newton steps", f"{m.get('iterations')}  (converged: {m.get('converged')})"),
                 ("train objective", _fmt(m.get("train_objective"), ".6f")),
                 ("‖∇L‖ relative", _fmt(m.get("rel_grad_norm"), ".2e"))]
    else:
        rows += [("train loss", _fmt(m.get("train_loss"), ".4f"))]
    if val is not None:
        vds = load(val, opts, what="validation data", schema=api.schema_of_model(model),
                   labels=val_labels)
        vm = api.evaluate_model(model, vds, device=dev)
        model.meta["val_metrics"] = vm
        rows.append(("validation", f"loss {vm['loss']:.4f}  accuracy {vm['accuracy']:.4f}"
                     + (f"  auc {vm['auc']:.4f}" if vm["auc"] is not None else "")))
    rows.append(("time", f"{seconds:.2f} s"))
    model.meta["source"] = str(data)
    save_model(model, output)
    rows.append(("wrote", str(output)))
    err.print(_summary_table("rdia train", rows))


# --- score ------------------------------------------------------------------------------------
@app.command()
@handle_errors
def score(
    data: Annotated[Path, typer.Argument(help="The training data the model was trained on.")],
    val: Annotated[Path, typer.Option("--val", help="Clean validation data.")],
    model: Annotated[Path, typer.Option("--model", help="Model file from `rdia train`.")],
    output: Output,
    solver: Annotated[str, typer.Option("--solver", help="auto, direct (Cholesky) or cg; networks: cg or lissa.")] = "auto",
    damping: Annotated[float | None, typer.Option("--damping", help="δ added to the Hessian (default 0 for logreg, 0.01 for networks).")] = None,
    tol: Annotated[float | None, typer.Option("--tol", help="Relative residual of the solve (default 1e-10 logreg, 1e-6 networks).")] = None,
    max_iter: Annotated[int | None, typer.Option("--max-iter", help="Solver iterations at most.")] = None,
    hessian: Annotated[str, typer.Option("--hessian", help="Networks: exact or ggn (Gauss-Newton).")] = "ggn",
    hessian_samples: Annotated[int | None, typer.Option("--hessian-samples", help="Networks: estimate the curvature on this many random rows (default 2000; 0 = all rows).")] = None,
    top: Annotated[int, typer.Option("--top", help="Rows shown in the summary.")] = 5,
    device: Device = "auto",
    seed: Seed = 0,
    labels: Labels = None,
    val_labels: Annotated[Path | None, typer.Option("--val-labels", help="IDX label file for --val.")] = None,
    label_col: LabelCol = "label",
    zero_based: ZeroBased = None,
    n_features: NFeatures = None,
    classes: Classes = None,
    fmt: Format = "auto",
) -> None:
    """Influence Φ of every training row on the validation loss (Φ > 0: harmful)."""
    from rdia_cli import api
    from rdia_cli.io_utils import check_output
    from rdia_cli.models.io import load_model
    from rdia_cli.scores import file_fingerprint, write_scores

    check_output(output, data, val, model, labels, val_labels)
    opts = read_opts(labels, label_col, zero_based, n_features, classes, fmt)
    dev = device_of(device)
    from rdia_cli import distributed

    shard = distributed.Sharding.from_env(dev)  # under torchrun: this rank's rows only
    if shard is not None:
        dev = shard.device
    m = load_model(model)
    schema = api.schema_of_model(m)
    if shard is None:
        ds = load(data, opts, what="training data", schema=schema)
    else:
        distributed._check_logreg(m.arch)
        ds, n_total = distributed.load_shard(data, opts, shard, what="training data",
                                             schema=schema)
    vds = load(val, opts, what="validation data", schema=schema, labels=val_labels)
    hashing = _hash_in_background(ds) if shard is None else None  # overlaps the solve
    t0 = time.perf_counter()
    if shard is None:
        result = api.score_model(m, ds, vds, device=dev, solver=solver, damping=damping, tol=tol,
                                 max_iter=max_iter, hessian=hessian,
                                 hessian_samples=hessian_samples, seed=seed)
    else:
        result = distributed.score_logreg(m, ds, vds, shard, n_total, solver=solver,
                                          damping=damping, tol=tol, max_iter=max_iter)
    seconds = time.perf_counter() - t0
    if hashing is not None:
        hashing.join()
    if ds.fingerprint() != m.meta.get("train_fingerprint") and (shard is None or shard.is_root):
        err.print(f"[yellow]warning:[/] `{data}` is not the data `{model}` was trained on "
                  "(fingerprints differ); Φ assumes θ̂ minimizes the loss on DATA.")
    probs = result.probs if result.probs is not None else api.probabilities(m, ds, device=dev)
    if shard is not None:  # rank 0 gathers every row and writes the one scores file
        result, ds, probs = distributed.gather_scores(shard, result, ds, probs)
        shard.close()
        if result is None:
            return
    meta = dict(result.info)
    meta.update({
        "model_fingerprint": file_fingerprint(model), "model": str(model),
        "train_fingerprint": ds.fingerprint(), "val_fingerprint": vds.fingerprint(),
        "n_train": ds.n_samples, "n_val": vds.n_samples, "seconds": seconds,
        "arch": m.arch,
    })
    write_scores(output, row_id=ds.row_id, labels=ds.y, classes=ds.classes, result=result,
                 probs=probs, meta=meta)
    _print_score_summary(result, ds, meta, top, output)


def _hash_in_background(ds):
    """Start ``ds.fingerprint()`` (cached on ds) in a thread: hashing releases the GIL, so it
    runs beside the solver. Any in-place sort of X's indices happens here, before the solver
    reads X."""
    import threading

    if ds.is_sparse:
        ds.X.sort_indices()
    t = threading.Thread(target=ds.fingerprint, name="rdia-fingerprint", daemon=True)
    t.start()
    return t


def _print_score_summary(result, ds, meta, top, output) -> None:
    import numpy as np
    from rich.table import Table

    phi, n = result.phi, ds.n_samples
    pos = phi > 0
    pred = float((-phi[pos] / (n * np.maximum(1 - result.p_label[pos], 1e-12))).sum())
    rows = [
        ("rows", f"{n:,} training, {meta['n_val']:,} validation"),
        ("solver", f"{meta['solver']} ({meta.get('hessian', 'exact')} Hessian), "
                   f"{meta['iterations']} iterations, residual {meta['residual']:.1e}, "
                   f"damping {meta['damping']:g}"),
        ("validation loss", f"{meta['val_loss']:.4f}"),
        ("Φ > 0 (harmful)", f"{int(pos.sum()):,} rows ({pos.mean():.1%})"),
        ("relabel all of them", f"predicted validation-loss change {pred:+.4f} (first order)"),
        ("time", f"{meta['seconds']:.2f} s (solve {meta.get('solve_seconds', 0):.2f} s, "
                 f"scores {meta.get('score_seconds', 0):.2f} s)"),
        ("wrote", str(output)),
    ]
    err.print(_summary_table("rdia score", rows))
    if top > 0 and n:
        t = Table(title=f"top {min(top, n)} harmful rows", title_justify="left")
        for c in ("row_id", "label", "p_label", "Φ", "Δ val loss if relabeled"):
            t.add_column(c, justify="right")
        head = np.argpartition(-phi, min(top, n) - 1)[:top] if top < n else np.arange(n)
        for i in head[np.lexsort((head, -phi[head]))]:
            t.add_row(str(ds.row_id[i]), str(ds.classes[ds.y[i]]), f"{result.p_label[i]:.3f}",
                      f"{phi[i]:.4g}", f"{-phi[i] / (n * max(1 - result.p_label[i], 1e-12)):+.2e}")
        err.print(t)


# --- relabel ----------------------------------------------------------------------------------
def parse_alpha(alpha: str | None) -> float | str | None:
    if alpha is None or alpha == "auto":
        return alpha
    try:
        return float(alpha)
    except ValueError:
        raise InputError(f"--alpha must be a number or `auto`, not {alpha!r}.") from None


@app.command()
@handle_errors
def relabel(
    data: Annotated[Path, typer.Argument(help="The training data that was scored.")],
    scores: Annotated[Path, typer.Option("--scores", help="Scores file from `rdia score`.")],
    output: Output,
    alpha: Annotated[str | None, typer.Option("--alpha", help="Relabel rows with Φ > α, or `auto` to choose α on --val.")] = None,
    fraction: Annotated[float | None, typer.Option("--fraction", help="Relabel the top fraction of rows by Φ (only Φ > 0).")] = None,
    strategy: Annotated[str, typer.Option("--strategy", help="rdia, drop, uids, optlr, random, or auto (cross-validated on --val; logreg).")] = "rdia",
    targets: Annotated[str, typer.Option("--targets", help="rdia targets: paper (Eq. 12), gradient or hard.")] = "paper",
    val: Annotated[Path | None, typer.Option("--val", help="Validation data (for --alpha auto and --strategy auto).")] = None,
    model: Annotated[Path | None, typer.Option("--model", help="Model file (for --alpha auto and --strategy auto).")] = None,
    device: Device = "auto",
    seed: Seed = 0,
    labels: Labels = None,
    val_labels: Annotated[Path | None, typer.Option("--val-labels", help="IDX label file for --val.")] = None,
    label_col: LabelCol = "label",
    zero_based: ZeroBased = None,
    n_features: NFeatures = None,
    classes: Classes = None,
    fmt: Format = "auto",
) -> None:
    """Relabel (or drop, reweight...) the harmful rows; write the cleaned training set."""
    from rdia_cli import api
    from rdia_cli.data.writers import write_dataset
    from rdia_cli.io_utils import check_output
    from rdia_cli.scores import check_scores_match, read_scores

    check_output(output, data, scores, val, model, labels, val_labels)
    a = parse_alpha(alpha)
    if strategy == "auto":
        a = a or "auto"
    if a is None and fraction is None:
        raise InputError("give --alpha A, --alpha auto or --fraction Q (which rows to relabel).")
    if a is not None and fraction is not None:
        raise InputError("give either --alpha or --fraction, not both.")
    opts = read_opts(labels, label_col, zero_based, n_features, classes, fmt)
    sc = read_scores(scores)
    ds = load(data, opts, what="training data")
    check_scores_match(sc, ds.fingerprint(), ds.row_id, str(data))
    if strategy == "auto":
        _relabel_auto(ds, sc, output, val, model, opts, val_labels, device, seed)
        return
    if a == "auto":
        if val is None or model is None:
            raise InputError("--alpha auto retrains on candidates: give --val and --model too.")
        from rdia_cli.models.io import load_model

        dev = device_of(device)
        m = load_model(model)
        vds = load(val, opts, what="validation data", schema=api.schema_of_model(m),
                   labels=val_labels)
        with progress_bar() as bar:
            task = bar.add_task("choosing α", total=None, info="")
            outcome = api.auto_alpha(
                ds, sc.phi, sc.probs, m, vds, strategy=strategy, targets=targets, seed=seed,
                device=dev, progress=lambda i, k: bar.update(task, completed=i, total=k, info=""),
            )
    else:
        outcome = api.relabel_dataset(ds, sc.phi, sc.probs, strategy=strategy, alpha=a,
                                      fraction=fraction, targets=targets, seed=seed)
    meta = {"strategy": strategy, "targets": targets, "alpha": outcome.alpha,
            "fraction": fraction, "scores": str(scores), "scores_fingerprint":
            sc.meta.get("train_fingerprint"), "source_fingerprint": ds.fingerprint(),
            "n_relabeled": outcome.cleaning.n_relabeled, "n_removed": outcome.cleaning.n_removed,
            "sweep": outcome.sweep}
    write_dataset(outcome.dataset, str(output), meta={"relabel": meta})
    _print_relabel_summary(outcome, ds, output)


def _relabel_auto(ds, sc, output, val, model, opts, val_labels, device, seed) -> None:
    """--strategy auto: cross-validated cleaning; the output holds the cleaned training rows
    followed by the validation rows (column `part`: 0 train, 1 validation)."""
    from rdia_cli import api
    from rdia_cli.autoclean import auto_clean, verdict_lines
    from rdia_cli.data.writers import write_dataset
    from rdia_cli.models.io import load_model

    if val is None or model is None:
        raise InputError("--strategy auto cross-validates on the clean set: give --val and --model.")
    dev = device_of(device)
    m = load_model(model)
    vds = load(val, opts, what="validation data", schema=api.schema_of_model(m), labels=val_labels)
    with progress_bar() as bar:
        task = bar.add_task("cross-validating", total=None, info="")
        ac = auto_clean(ds, vds, m, seed=seed, device=dev,
                        progress=lambda i, k: bar.update(task, completed=i, total=k, info=""))
    meta = {"strategy": "auto", "action": ac.config.action, "ranker": ac.config.ranker,
            "fraction": ac.config.fraction, "weight": ac.config.weight, "l2": ac.model.meta["l2"],
            "scores": str(sc.path), "source_fingerprint": ds.fingerprint(), "verdict": ac.verdict,
            "cv": ac.cv, "n_relabeled": int(ac.cleaned.extra["relabeled"].sum())}
    if "blend" in ac.model.meta:  # `rdia retrain` refits both parts and blends them the same way
        meta["blend"] = {"clean_only_share": ac.clean_only_share,
                         "clean_only_l2": ac.model.meta["blend"]["l2"][1]}
    write_dataset(ac.cleaned, str(output), meta={"relabel": meta})
    err.print(_summary_table("rdia relabel --strategy auto", [
        ("rows", f"{ds.n_samples:,} training + {vds.n_samples:,} validation"),
        ("wrote", f"{output}  ({ac.cleaned.n_samples:,} rows; retrain on it with `rdia retrain`)"),
    ]))
    for line in verdict_lines(ac.verdict):
        err.print(f"  {line}")


def _print_relabel_summary(outcome, ds, output) -> None:
    from rich.table import Table

    c = outcome.cleaning
    rows = [
        ("rows", f"{ds.n_samples:,}"),
        ("α", "-" if outcome.alpha is None else f"{outcome.alpha:.6g}"),
        ("relabeled", f"{c.n_relabeled:,}"),
        ("removed", f"{c.n_removed:,}"),
        ("reweighted", "yes" if c.weight is not None else "no"),
        ("wrote", f"{output}  ({outcome.dataset.n_samples:,} rows)"),
    ]
    err.print(_summary_table("rdia relabel", rows))
    if outcome.sweep:
        t = Table(title="α sweep on the validation set (in-sample)", title_justify="left")
        for col in ("α", "selected", "predicted val loss", "val loss after retrain"):
            t.add_column(col, justify="right")
        for r in outcome.sweep:
            t.add_row("none" if r["alpha"] is None else f"{r['alpha']:.4g}", str(r["n_selected"]),
                      f"{r['predicted_val_loss']:.4f}", f"{r['val_loss']:.4f}")
        err.print(t)


# --- retrain ----------------------------------------------------------------------------------
@app.command()
@handle_errors
def retrain(
    cleaned: Annotated[Path, typer.Argument(help="Cleaned training set from `rdia relabel`.")],
    model: Annotated[Path, typer.Option("--model", help="The model to retrain (its settings are reused).")],
    output: Output,
    from_scratch: Annotated[bool, typer.Option("--from-scratch", help="Do not warm-start from MODEL.")] = False,
    l2: Annotated[float | None, typer.Option("--l2", help="Override λ (logreg; on `relabel --strategy auto` output: one fit on all its rows, no blend with the clean set alone).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Networks: override epochs.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Networks: override the learning rate (default: MODEL's ÷ 10 when warm-starting).")] = None,
    device: Device = "auto",
) -> None:
    """Retrain MODEL's architecture on the cleaned targets and weights."""
    from rdia_cli import api
    from rdia_cli.io_utils import check_output
    from rdia_cli.models.io import load_model, save_model

    check_output(output, cleaned, model)
    dev = device_of(device)
    m = load_model(model)
    opts = read_opts(fmt="parquet")
    ds = load(cleaned, opts, what="cleaned data", schema=api.schema_of_model(m))
    net = {k: v for k, v in {"epochs": epochs, "lr": lr}.items() if v is not None}
    relabel = ds.meta.get("relabel") if isinstance(ds.meta.get("relabel"), dict) else {}
    blend = relabel.get("blend") if l2 is None and "part" in ds.extra else None
    if l2 is None:  # the auto strategy tunes λ; keep what it chose
        l2 = relabel.get("l2")
    t0 = time.perf_counter()
    m2 = api.retrain_model(ds, m, from_scratch=from_scratch, device=dev, l2=l2, net_options=net)
    if blend:  # auto's model averages this fit with one on the clean rows alone
        from rdia_cli.autoclean import blend_models

        clean = ds.subset((ds.extra["part"] == 1).nonzero()[0])
        alone = api.retrain_model(clean, m, from_scratch=from_scratch, device=dev,
                                  l2=blend["clean_only_l2"])
        m2 = blend_models(m2, alone, blend["clean_only_share"])
    m2.meta["retrained_from"] = str(model)
    m2.meta["source"] = str(cleaned)
    save_model(m2, output)
    mt = m2.meta.get("metrics", {})
    rows = [("data", f"{cleaned}  ({ds.n_samples:,} rows, "
                     f"{int(ds.extra.get('relabeled', []).sum()) if 'relabeled' in ds.extra else 0:,} relabeled)"),
            ("start", "from scratch" if from_scratch else f"warm from {model}"),
            *([("blend", f"{blend['clean_only_share']:.0%} of a fit on the clean rows alone "
                         "(auto's choice)")] if blend else []),
            ("train objective", _fmt(mt.get("train_objective", mt.get("train_loss")), ".6f")),
            ("time", f"{time.perf_counter() - t0:.2f} s"), ("wrote", str(output))]
    err.print(_summary_table("rdia retrain", rows))


# --- evaluate ---------------------------------------------------------------------------------
@app.command()
@handle_errors
def evaluate(
    models: Annotated[list[Path], typer.Argument(help="One or more model files.")],
    data: Annotated[Path, typer.Option("--data", help="Test data.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the metrics as JSON.")] = None,
    device: Device = "auto",
    labels: Labels = None,
    label_col: LabelCol = "label",
    zero_based: ZeroBased = None,
    n_features: NFeatures = None,
    classes: Classes = None,
    fmt: Format = "auto",
) -> None:
    """Loss, accuracy and (binary) AUC of each model on --data, side by side."""
    from rdia_cli import api
    from rdia_cli.io_utils import check_output
    from rdia_cli.models.io import load_model

    if json_out is not None:
        check_output(json_out, data, labels, *models)
    dev = device_of(device)
    opts = read_opts(labels, label_col, zero_based, n_features, classes, fmt)
    loaded = [load_model(p) for p in models]
    results = []
    cache = {}
    for path, m in zip(models, loaded, strict=True):
        schema = api.schema_of_model(m)
        key = json.dumps(schema.__dict__, default=str, sort_keys=True)
        if key not in cache:
            cache[key] = load(data, opts, what="test data", schema=schema)
        metrics = api.evaluate_model(m, cache[key], device=dev)
        results.append({"model": str(path), **metrics})
    print_metrics(results, title=f"rdia evaluate on {data}")
    if json_out is not None:
        write_json(json_out, {"data": str(data), "models": results})


def print_metrics(results: list[dict], title: str) -> None:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    named = any("name" in r for r in results)
    if named:
        t.add_column("name")
    for c in ("model", "n", "loss", "accuracy", "auc"):
        t.add_column(c, justify="left" if c == "model" else "right")
    best = min(r["loss"] for r in results)
    for r in results:
        loss = f"{r['loss']:.4f}"
        if len(results) > 1 and r["loss"] == best:
            loss = f"[bold green]{loss}[/]"
        cells = [r.get("name", "")] if named else []
        cells += [r["model"], str(r["n"]), loss, f"{r['accuracy']:.4f}", _fmt(r["auc"])]
        t.add_row(*cells)
    out.print(t)


def write_json(path: Path, payload) -> None:
    from rdia_cli.io_utils import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")


# --- protocol helpers -------------------------------------------------------------------------
@app.command()
@handle_errors
def split(
    data: Annotated[Path, typer.Argument(help="Data to split.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for train/val/test.parquet.")],
    val: Annotated[float, typer.Option("--val", help="Share of rows for validation.")] = 0.2,
    test: Annotated[float, typer.Option("--test", help="Share of rows for test (0: none).")] = 0.2,
    seed: Seed = 0,
    labels: Labels = None,
    label_col: LabelCol = "label",
    zero_based: ZeroBased = None,
    n_features: NFeatures = None,
    classes: Classes = None,
    fmt: Format = "auto",
) -> None:
    """Stratified split into DIR/train.parquet, DIR/val.parquet and DIR/test.parquet."""
    from rdia_cli.data.protocol import split_dataset
    from rdia_cli.data.writers import write_dataset

    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise InputError(f"--val and --test must be shares in [0, 1) summing below 1, not {val} and {test}.")
    opts = read_opts(labels, label_col, zero_based, n_features, classes, fmt)
    ds = load(data, opts, what="data")
    parts = split_dataset(ds, val=val, test=test, seed=seed)
    output.mkdir(parents=True, exist_ok=True)
    for name, part in zip(("train", "val", "test"), parts, strict=True):
        if name != "train" and part.n_samples == 0:
            continue
        path = output / f"{name}.parquet"
        if path.resolve() == data.resolve():
            raise InputError(f"`{path}` is the input; choose another -o folder.")
        write_dataset(part, str(path), meta={"split": {"seed": seed, "val": val, "test": test,
                                                       "source": str(data)}})
        err.print(f"wrote {path}  ({part.n_samples:,} rows)")


@app.command()
@handle_errors
def noise(
    data: Annotated[Path, typer.Argument(help="Data to corrupt.")],
    rate: Annotated[float, typer.Option("--rate", help="τ: probability that a label is replaced by another class.")],
    output: Output,
    seed: Seed = 0,
    labels: Labels = None,
    label_col: LabelCol = "label",
    zero_based: ZeroBased = None,
    n_features: NFeatures = None,
    classes: Classes = None,
    fmt: Format = "auto",
) -> None:
    """Symmetric label noise (keeps `is_noisy` and `clean_label` columns)."""
    from rdia_cli.data.protocol import inject_noise
    from rdia_cli.data.writers import write_dataset
    from rdia_cli.io_utils import check_output

    check_output(output, data, labels)
    opts = read_opts(labels, label_col, zero_based, n_features, classes, fmt)
    ds = load(data, opts, what="data")
    noisy = inject_noise(ds, rate=rate, seed=seed)
    write_dataset(noisy, str(output), meta={"noise": {"rate": rate, "seed": seed}})
    n_noisy = int(noisy.extra["is_noisy"].sum())
    err.print(f"wrote {output}  ({noisy.n_samples:,} rows, {n_noisy:,} labels changed)")


@app.command()
@handle_errors
def convert(
    data: Annotated[Path, typer.Argument(help="Data in any supported format.")],
    output: Output,
    labels: Labels = None,
    label_col: LabelCol = "label",
    zero_based: ZeroBased = None,
    n_features: NFeatures = None,
    classes: Classes = None,
    fmt: Format = "auto",
) -> None:
    """Write DATA as rdia Parquet (e.g. MNIST IDX with --classes 1,7)."""
    from rdia_cli.data.writers import write_dataset
    from rdia_cli.io_utils import check_output

    check_output(output, data, labels)
    ds = load(data, read_opts(labels, label_col, zero_based, n_features, classes, fmt))
    write_dataset(ds, str(output))
    err.print(f"wrote {output}  ({ds.n_samples:,} rows × {ds.n_features:,} features, "
              f"classes {ds.classes})")


def main() -> None:
    app()


# the modules below register more commands on `app`
from rdia_cli import (  # noqa: E402, F401, I001
    commands_report,
    commands_run,
    commands_synth,
)

if __name__ == "__main__":
    main()
