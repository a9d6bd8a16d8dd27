"""The `rdia` command line: options, files, printing and exit codes. No math here.

Exit codes: 0 success, 2 usage or input error, 1 failure at run time. Messages go to stderr as
one red line; results (tables) to stdout. Set RDIA_DEBUG=1 to see tracebacks.
"""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import replace
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
        except KeyboardInterrupt as e:
            terminated = isinstance(e, Terminated)
            err.print(f"{'terminated' if terminated else 'interrupted'}; no output was written.")
            raise typer.Exit(143 if terminated else 130) from None
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


def _read_transition(path: Path):
    """A K×K matrix from .npy, or text/CSV with K rows of K numbers (comma or blank separated)."""
    import numpy as np

    if not path.exists():
        raise InputError(f"--transition file {path} does not exist.")
    try:
        if path.suffix == ".npy":
            T = np.load(path, allow_pickle=False)
        else:
            text = path.read_text().replace(",", " ")
            T = np.array([[float(v) for v in line.split()] for line in text.splitlines()
                          if line.strip() and not line.lstrip().startswith("#")])
    except (ValueError, OSError) as e:
        raise InputError(f"--transition file {path} is not a numeric K×K matrix ({e}).") from None
    if T.ndim != 2 or T.shape[0] != T.shape[1]:
        raise InputError(f"--transition file {path} holds a {T.shape} array; it must be K×K "
                         "(row i = P(given label | true class i)).")
    return T.tolist()


def _net_options(epochs, batch_size, lr, optimizer, weight_decay, schedule, seed, hidden,
                 rdia_ls, self_teaching, noise_rate, gamma, tk, method=None,
                 rdia_ls_variant="paper", tk_steps=None, transition=None, sigua_ascent=0.01,
                 estimate_epochs=None) -> dict:
    from rdia_cli.noisy_training import METHODS, RDIA_LS_VARIANTS

    if epochs is None:  # the paper's preset: 200 epochs with --schedule paper
        epochs = 200 if schedule == "paper" else 10
    opts = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": optimizer,
            "weight_decay": weight_decay, "schedule": schedule, "seed": seed}
    if hidden:
        try:
            opts["arch_args"] = {"hidden": [int(h) for h in hidden.split(",") if h.strip()]}
        except ValueError:
            raise InputError(f"--hidden must be comma-separated integers, not {hidden!r}.") from None
    if rdia_ls and self_teaching:
        raise InputError("--rdia-ls and --self-teaching are alternatives; give one.")
    flag = "rdia-ls" if rdia_ls else "self-teaching" if self_teaching else None
    if method is not None:
        if method not in METHODS:
            raise InputError(f"--method must be one of {', '.join(METHODS)}; got {method!r}.")
        if flag is not None and flag != method:
            raise InputError(f"--{flag} and --method {method} disagree; give one of them.")
    method = method or flag or "erm"
    if isinstance(gamma, str) and gamma.strip().lower() == "auto":
        gamma = "auto"
    else:
        try:
            gamma = float(gamma)
        except (TypeError, ValueError):
            raise InputError(f"--gamma must be a number in [0, 1] or 'auto'; got {gamma!r}.") from None
        if not 0.0 <= gamma <= 1.0:
            raise InputError(f"--gamma must be in [0, 1] or 'auto'; got {gamma}.")
    if rdia_ls_variant not in RDIA_LS_VARIANTS:
        raise InputError(f"--rdia-ls-variant must be one of {', '.join(RDIA_LS_VARIANTS)}; got "
                         f"{rdia_ls_variant!r}.")
    if rdia_ls_variant != "paper" and method != "rdia-ls":
        raise InputError("--rdia-ls-variant applies to RDIA-LS only; add --rdia-ls.")
    if tk < 1 or (tk_steps is not None and tk_steps < 1):
        raise InputError(f"--tk and --tk-steps must be ≥ 1; got {tk} and {tk_steps}.")
    if not 0.0 <= sigua_ascent <= 1.0:
        raise InputError(f"--sigua-ascent must be in [0, 1]; got {sigua_ascent}.")
    if estimate_epochs is not None and estimate_epochs < 1:
        raise InputError(f"--estimate-epochs must be ≥ 1; got {estimate_epochs}.")
    if transition is not None and method not in ("f-correction", "s-model"):
        raise InputError("--transition is for --method f-correction (the known T) or s-model "
                         "(the channel's start).")
    selects = ("rdia-ls", "self-teaching", "co-teaching", "sigua")
    if method in selects:
        if noise_rate is None:
            if method in ("rdia-ls", "self-teaching"):
                raise InputError("--rdia-ls and --self-teaching need --noise-rate τ (the "
                                 "expected noise).")
            raise InputError(f"--method {method} needs --noise-rate τ (the expected noise).")
        sel = {"noise_rate": noise_rate, "tk": tk}
        if tk_steps is not None:
            sel["tk_steps"] = tk_steps
        if method == "rdia-ls":
            sel["gamma"] = gamma
            if rdia_ls_variant != "paper":
                sel["variant"] = rdia_ls_variant
        if method == "sigua":
            sel["ascent"] = sigua_ascent
        opts[method.replace("-", "_")] = sel
    elif method in ("f-correction", "s-model"):
        cfg = {} if estimate_epochs is None else {"estimate_epochs": estimate_epochs}
        if transition is not None:
            cfg["transition" if method == "f-correction" else "init"] = _read_transition(transition)
        opts[method.replace("-", "_")] = cfg
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
def _check_train_options(*, l2=None, tol=None, max_iter=None, epochs=None, batch_size=None,
                         lr=None, weight_decay=None, noise_rate=None,
                         n_features=None) -> None:
    """The options of `train` (and `retrain`, `run`) checked before any work; None: not given."""
    from rdia_cli import validate as v

    v.non_negative("--l2", l2)
    v.positive("--tol", tol)
    v.positive_int("--max-iter", max_iter)
    v.positive_int("--epochs", epochs)
    v.positive_int("--batch-size", batch_size)
    v.positive("--lr", lr)
    v.non_negative("--weight-decay", weight_decay)
    v.share("--noise-rate", noise_rate)
    v.positive_int("--n-features", n_features)


def _warn_not_converged(model, output) -> None:
    """A logistic regression that stopped short of --tol but close to it (far from it is a
    RuntimeFailure in `training.train_logreg`) is written, with this warning."""
    m = model.meta.get("metrics", {})
    if model.arch != "logreg" or m.get("converged", True):
        return
    tol = (model.meta.get("training") or {}).get("tol")
    tol = "the tolerance" if tol is None else f"--tol {tol:g}"
    err.print(f"[bold yellow]warning:[/] the fit written to `{_shown_path(output)}` did not "
              f"converge: relative gradient norm {m.get('rel_grad_norm', float('nan')):.2e} "
              f"after {m.get('iterations')} Newton steps, above {tol}; Φ assumes the "
              "minimizer. Raise --max-iter or --tol.", soft_wrap=True)


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
    epochs: Annotated[int | None, typer.Option("--epochs", help="Networks: passes over the data (default 10; 200 with --schedule paper).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Networks: mini-batch size.")] = 128,
    lr: Annotated[float, typer.Option("--lr", help="Networks: learning rate.")] = 1e-3,
    optimizer: Annotated[str, typer.Option("--optimizer", help="Networks: adam or sgd.")] = "adam",
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="Networks: weight decay.")] = 0.0,
    schedule: Annotated[str, typer.Option("--schedule", help="Networks: none, or paper: the paper's preset (Adam, lr 1e-3, batch 128 are the defaults; 200 epochs unless --epochs; lr constant for 40% of the epochs, i.e. 80 of 200, then linear decay to 0, Adam β1 0.1 while decaying).")] = "none",
    hidden: Annotated[str | None, typer.Option("--hidden", help="mlp: hidden sizes, e.g. 256,128 (the default); --hidden 256 on MNIST is the authors' MLP 784-256-10.")] = None,
    method: Annotated[str | None, typer.Option("--method", help="Networks, training under label noise: erm (default), rdia-ls (= --rdia-ls), self-teaching (= --self-teaching), co-teaching (two networks, each trained on the peer's small-loss rows; the first is saved), sigua (descent on small-loss rows, ascent ×--sigua-ascent on the rest), f-correction (forward loss correction with T from --transition or estimated from anchor points), s-model (a learned noise-adaptation softmax layer).")] = None,
    rdia_ls: Annotated[bool, typer.Option("--rdia-ls", help="Train with RDIA-LS (paper appendix F).")] = False,
    self_teaching: Annotated[bool, typer.Option("--self-teaching", help="Train on the small-loss share only.")] = False,
    noise_rate: Annotated[float | None, typer.Option("--noise-rate", help="RDIA-LS, self-teaching, co-teaching, sigua: expected noise rate τ.")] = None,
    gamma: Annotated[str, typer.Option("--gamma", help="RDIA-LS: weight γ in [0, 1] (paper variant: of the relabeled loss; reference: of the clean loss), or auto: hold out 10% of the rows, train once per γ in 0.05, 0.10, ..., 0.95 on the rest, keep the γ with the best held-out accuracy on the given labels, retrain on all rows (20 trainings).")] = "0.5",
    tk: Annotated[int, typer.Option("--tk", help="Small-loss methods: T_k, epochs of this data set until ρ reaches 1 - τ (ρ fixed per epoch; the old behaviour).")] = 10,
    tk_steps: Annotated[int | None, typer.Option("--tk-steps", help="Small-loss methods: T_k in optimizer steps instead of --tk (ρ updated every step), so a subset and the full set get the same schedule; the paper's T_k = 10 epochs of 60,000 rows at batch 128 is 4690.")] = None,
    rdia_ls_variant: Annotated[str, typer.Option("--rdia-ls-variant", help="RDIA-LS loss: paper (Algorithm 2) or reference (the authors' code: γ on the clean part, CE on softmax outputs, relabels only the band between the int(ρB) smallest and the int(τ/2·B) largest-loss rows, which are dropped, relabeled part ÷ B, small-loss-only warm-up until T_k).")] = "paper",
    transition: Annotated[Path | None, typer.Option("--transition", help="f-correction: the known K×K transition matrix, T_ij = P(given label j | true class i) (.npy, or text/CSV rows); s-model: the channel's start. Default: estimated from a baseline network.")] = None,
    sigua_ascent: Annotated[float, typer.Option("--sigua-ascent", help="sigua: weight of the gradient ascent on the large-loss rows.")] = 0.01,
    estimate_epochs: Annotated[int | None, typer.Option("--estimate-epochs", help="f-correction, s-model: epochs of the ERM baseline that estimates T (default 10% of --epochs).")] = None,
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

    _check_train_options(l2=l2, tol=tol, max_iter=max_iter, epochs=epochs, batch_size=batch_size,
                         lr=lr, weight_decay=weight_decay, noise_rate=noise_rate,
                         n_features=n_features)
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
                       rdia_ls, self_teaching, noise_rate, gamma, tk, method, rdia_ls_variant,
                       tk_steps, transition, sigua_ascent, estimate_epochs)
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
    _warn_not_converged(model, output)


# --- score ------------------------------------------------------------------------------------
@app.command()
@handle_errors
def score(
    data: Annotated[Path, typer.Argument(help="The training data the model was trained on.")],
    val: Annotated[Path, typer.Option("--val", help="Clean validation data.")],
    model: Annotated[Path, typer.Option("--model", help="Model file from `rdia train`.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Scores file (Parquet). Default: standard output when it is a pipe or a file (`rdia score ... | rdia relabel ...`), else DATA's name + .scores.parquet beside DATA. `-` is standard output.", show_default=False)] = None,
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

    _check_score_options(damping, tol, max_iter, hessian_samples, top)
    output = default_output(output, data, ".scores.parquet")
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
        # where the inputs are, so `rdia relabel` can find them without being told again
        **recorded_inputs(train=(data, opts), val=(val, replace(opts, labels=_abs(val_labels)))),
    })
    write_scores(output, row_id=ds.row_id, labels=ds.y, classes=ds.classes, result=result,
                 probs=probs, meta=meta)
    _print_score_summary(result, ds, meta, top, output)


def _abs(path) -> str | None:
    return None if path is None else str(Path(path).absolute())


def recorded_inputs(**inputs) -> dict:
    """``{name}_path`` (absolute) and ``{name}_read_options`` for each input file given as
    (path, ReadOptions); nothing for standard input, which cannot be read twice."""
    from dataclasses import asdict, replace

    out = {}
    for name, (path, opts) in inputs.items():
        if path is None or str(path) == "-":
            continue
        o = replace(opts, labels=_abs(opts.labels))
        out[f"{name}_path"] = _abs(path)
        out[f"{name}_read_options"] = {k: (list(v) if isinstance(v, tuple) else v)
                                       for k, v in asdict(o).items()}
    return out


def recorded_read_options(meta: dict, name: str):
    from rdia_cli.data.readers import ReadOptions

    raw = dict(meta.get(f"{name}_read_options") or {})
    if raw.get("classes") is not None:
        raw["classes"] = tuple(raw["classes"])
    return ReadOptions(**raw)


def default_output(output: Path | None, data: Path, suffix: str) -> Path:
    """-o when given; else standard output (`-`) when stdout is a pipe or a file, and else a
    file beside DATA named after it (train.svm -> train.scores.parquet)."""
    import sys

    if output is not None:
        return output
    if not sys.stdout.isatty():
        return Path("-")
    if str(data) == "-":
        return Path("stdin" + suffix)
    name = Path(data).name
    for ext in (".gz", ".bz2", ".xz"):
        name = name.removesuffix(ext)
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return Path(data).parent / f"{stem}{suffix}"


def _shown_path(path) -> str:
    return "standard output" if str(path) == "-" else str(path)


def _check_score_options(damping, tol, max_iter, hessian_samples, top) -> None:
    from rdia_cli.validate import check_int, check_number

    check_number("--damping", damping, low=0.0)
    check_number("--tol", tol, low=0.0, open_low=True)
    check_int("--max-iter", max_iter, low=1)
    check_int("--hessian-samples", hessian_samples, low=0)
    check_int("--top", top, low=0)


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
        *_paper_scale_rows(meta, phi),
        ("relabel all of them", f"predicted validation-loss change {pred:+.4f} (first order)"),
        ("time", f"{meta['seconds']:.2f} s (solve {meta.get('solve_seconds', 0):.2f} s, "
                 f"scores {meta.get('score_seconds', 0):.2f} s)"),
        ("wrote", _shown_path(output)),
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


def _paper_scale_rows(meta, phi) -> list[tuple[str, str]]:
    import numpy as np

    from rdia_cli.scores import paper_factor

    f = paper_factor(meta)
    if np.isnan(f):
        return [("paper's scale", "none (λ + δ = 0): use --phi-threshold or --fraction")]
    n = int((phi * f > 0.002).sum())
    return [("paper's scale", f"phi_paper = {f:.4g}·Φ (C·M/N, C = 1/(λN)); "
                              f"`relabel --alpha 0.002` selects {n:,} rows")]


# --- relabel ----------------------------------------------------------------------------------
def parse_alpha(alpha: str | None) -> float | str | None:
    """--alpha: a number ≥ 0 on the paper's scale, or `auto`."""
    import math

    if alpha is None or alpha == "auto":
        return alpha
    try:
        value = float(alpha)
    except ValueError:
        raise InputError(f"--alpha must be a number ≥ 0 or `auto`, not {alpha!r}.") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"--alpha must be a finite number ≥ 0 (the paper's α, e.g. 0.002) or "
                         f"`auto`, not {alpha}.")
    return value


def _relabel_choice(alpha, phi_threshold, fraction, strategy):
    """Which rows: (α on the paper's scale | 'auto' | None, Φ threshold, fraction, strategy)."""
    from rdia_cli.validate import check_number

    a = parse_alpha(alpha)
    check_number("--phi-threshold", phi_threshold, low=0.0)
    check_number("--fraction", fraction, low=0.0, high=1.0, open_low=True)
    given = [name for name, v in (("--alpha", a), ("--phi-threshold", phi_threshold),
                                  ("--fraction", fraction)) if v is not None]
    if len(given) > 1:
        raise InputError(f"give one of --alpha, --phi-threshold and --fraction, not "
                         f"{' and '.join(given)}.")
    if strategy is None:  # no rule given: auto, as `rdia run`; a rule: the paper's method
        strategy = "rdia" if given else "auto"
    if strategy == "auto":
        if given and given != ["--alpha"] or a not in (None, "auto"):
            raise InputError("--strategy auto chooses the rows itself by cross-validation; "
                             "drop --alpha/--phi-threshold/--fraction.")
        return "auto", None, None, strategy
    if not given:
        raise InputError("give --alpha A (the paper's α, e.g. 0.002), --alpha auto, "
                         "--phi-threshold T or --fraction Q (which rows to relabel), or use "
                         "--strategy auto.")
    return a, phi_threshold, fraction, strategy


def _scores_source(scores: Path | None) -> Path:
    import sys

    if scores is not None:
        return scores
    if sys.stdin is None or sys.stdin.isatty():
        raise InputError("give --scores FILE, or pipe `rdia score` into this command "
                         "(`rdia score DATA --val VAL --model MODEL | rdia relabel ...`).")
    return Path("-")


def _recorded(meta: dict, key: str, what: str, option: str) -> Path:
    """An input file the scores recorded (its absolute path), or a clear error."""
    path = meta.get(f"{key}_path")
    if not path:
        raise InputError(f"the scores do not record their {what} (made from standard input or "
                         f"by an older rdia); give {option}.")
    if not Path(path).exists():
        raise InputError(f"the scores were computed on {what} `{path}`, which no longer "
                         f"exists; give {option}.")
    return Path(path)


@app.command()
@handle_errors
def relabel(
    output: Output,
    data: Annotated[Path | None, typer.Argument(help="The training data that was scored (default: the file the scores were computed on, as they record it).", show_default=False)] = None,
    scores: Annotated[Path | None, typer.Option("--scores", help="Scores file from `rdia score` (default, or `-`: standard input).", show_default=False)] = None,
    alpha: Annotated[str | None, typer.Option("--alpha", help="Relabel the rows whose Φ on the paper's scale (scores column phi_paper = C·(M/N)·Φ, C = 1/(λN)) exceeds A: the paper's α, e.g. 0.002. Or `auto`: choose on --val.")] = None,
    phi_threshold: Annotated[float | None, typer.Option("--phi-threshold", help="Relabel the rows with Φ > T in rdia's normalization (scores column phi; -Φ/N is the predicted validation-loss change of removing a row).")] = None,
    fraction: Annotated[float | None, typer.Option("--fraction", help="Relabel the top fraction of rows by Φ, in (0, 1] (only Φ > 0).")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="rdia (the paper; the default with --alpha, --phi-threshold or --fraction), drop, uids, optlr, random, or auto (the default without them: cross-validated on the clean set, logreg; it chooses the rows itself).", show_default=False)] = None,
    targets: Annotated[str, typer.Option("--targets", help="rdia targets: paper (Eq. 12), gradient or hard.")] = "paper",
    include_clean: Annotated[bool, typer.Option("--include-clean", help="--strategy auto: also write the clean validation rows it trains on (column part = 1). By default they are left out, so that appending your clean set does not count it twice.")] = False,
    val: Annotated[Path | None, typer.Option("--val", help="Validation data (for --alpha auto and --strategy auto; default: the one the scores record).", show_default=False)] = None,
    model: Annotated[Path | None, typer.Option("--model", help="Model file (for --alpha auto and --strategy auto; default: the one the scores record).", show_default=False)] = None,
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
    """Relabel (or drop, reweight...) the harmful rows; write the cleaned training set.

    The output is ready for any trainer: `label` is the new hard label (the old one in
    `original_label`), `target` a probability vector per row, `weight` only when not all 1.
    `rdia score train.svm --val val.svm --model lr.pt | rdia relabel --alpha 0.002 -o
    cleaned.parquet` reads the scores from the pipe and the data from where they were made."""
    import numpy as np

    from rdia_cli import api
    from rdia_cli.io_utils import check_output
    from rdia_cli.scores import check_scores_match, paper_factor, read_scores

    a, phi_threshold, fraction, strategy = _relabel_choice(alpha, phi_threshold, fraction,
                                                           strategy)
    dev = device_of(device)
    source = _scores_source(scores)
    check_output(output, data, source, val, model, labels, val_labels)
    sc = read_scores(source)
    if data is None:
        data = _recorded(sc.meta, "train", "training data", "DATA")
        opts = recorded_read_options(sc.meta, "train")
    else:
        opts = read_opts(labels, label_col, zero_based, n_features, classes, fmt)
    check_output(output, data)
    ds = load(data, opts, what="training data")
    check_scores_match(sc, ds.fingerprint(), ds.row_id, str(data))
    if strategy == "auto" or a == "auto":
        if model is None and sc.meta.get("model") and Path(sc.meta["model"]).exists():
            model = Path(sc.meta["model"])
        if val is None and sc.meta.get("val_path"):
            val = _recorded(sc.meta, "val", "validation data", "--val")
            val_opts = recorded_read_options(sc.meta, "val")
        else:
            val_opts = replace(opts, labels=str(val_labels) if val_labels else None)
        if val is None or model is None:
            raise InputError(f"{'--strategy' if strategy == 'auto' else '--alpha'} auto "
                             "(the default without --alpha, --phi-threshold or --fraction) "
                             "retrains on the clean set: give --val and --model, or choose "
                             "the rows with --alpha A or --fraction Q.")
        check_output(output, val, model)
    if strategy == "auto":
        _relabel_auto(ds, sc, output, val, val_opts, model, dev, seed, include_clean)
        return
    factor = paper_factor(sc.meta)
    select_on, threshold = sc.phi, phi_threshold
    if a not in (None, "auto"):
        if np.isnan(factor):
            raise InputError(f"scores `{sc.path}` have no paper scale (the Hessian was solved "
                             "with λ + δ = 0); use --phi-threshold or --fraction.")
        select_on, threshold = sc.phi_paper, a
    if a == "auto":
        from rdia_cli.models.io import load_model

        m = load_model(model)
        vds = load(val, val_opts, what="validation data", schema=api.schema_of_model(m))
        with progress_bar() as bar:
            task = bar.add_task("choosing α", total=None, info="")
            outcome = api.auto_alpha(
                ds, sc.phi, sc.probs, m, vds, strategy=strategy, targets=targets, seed=seed,
                device=dev, progress=lambda i, k: bar.update(task, completed=i, total=k, info=""),
            )
        phi_cut = outcome.alpha
        for row in outcome.sweep:
            row["alpha_paper"] = None if row["alpha"] is None else row["alpha"] * factor
    else:
        outcome = api.relabel_dataset(ds, sc.phi, sc.probs, strategy=strategy, alpha=threshold,
                                      fraction=fraction, targets=targets, seed=seed,
                                      select_on=select_on)
        phi_cut = phi_threshold
        _warn_if_too_many(outcome, sc, alpha if a is not None else None, fraction,
                          phi_threshold)
    paper_alpha = a if isinstance(a, float) else (
        None if phi_cut is None or np.isnan(factor) else phi_cut * factor)
    meta = {"strategy": strategy, "targets": targets, "alpha": paper_alpha,
            "phi_threshold": phi_cut, "fraction": fraction,
            "paper_factor": None if np.isnan(factor) else factor, "scores": str(sc.path),
            "scores_fingerprint": sc.meta.get("train_fingerprint"),
            "source_fingerprint": ds.fingerprint(), "n_relabeled": outcome.cleaning.n_relabeled,
            "n_removed": outcome.cleaning.n_removed, "sweep": outcome.sweep}
    _write_cleaned(outcome.dataset, output, meta)
    _print_relabel_summary(outcome, ds, output, paper_alpha, phi_cut)


def _write_cleaned(ds, output, meta: dict) -> None:
    from rdia_cli.cleaned import for_file
    from rdia_cli.data.writers import write_dataset

    write_dataset(for_file(ds), str(output), meta={"relabel": meta})


def _warn_if_too_many(outcome, sc, alpha, fraction, phi_threshold) -> None:
    """A hand-picked α, Φ threshold or fraction that changes more rows than the data supports:
    more than 30% of the rows, or more than the rows the model itself gets wrong (a label that
    the fitted model predicts is no evidence of noise; measured: α = 0 flags about half of the
    clean rows of a noise-free set)."""

    n = sc.n_samples
    changed = outcome.cleaning.n_relabeled + outcome.cleaning.n_removed
    if outcome.cleaning.weight is not None:
        changed = int((outcome.cleaning.weight < 1).sum())
    misfit = int((sc.probs.argmax(1) != sc.label).sum())
    reasons = []
    if changed > 0.3 * n:
        reasons.append("more than 30% of the rows")
    if changed > misfit + max(5, 0.02 * n):
        reasons.append(f"more than the {misfit:,} rows whose label the model does not predict")
    if not reasons:
        return
    given = (f"--alpha {alpha}" if alpha is not None else f"--fraction {fraction}"
             if fraction is not None else f"--phi-threshold {phi_threshold}")
    err.print(f"[yellow]warning:[/] {given} changes {changed:,} of {n:,} rows "
              f"({changed / max(n, 1):.0%}), {' and '.join(reasons)}; on clean data that "
              "makes the model worse. `--strategy auto --val VAL --model MODEL` chooses the "
              "rows by cross-validation on the clean set.", soft_wrap=True)


def _relabel_auto(ds, sc, output, val, val_opts, model, dev, seed, include_clean) -> None:
    """--strategy auto: cross-validated cleaning. The output holds the cleaned training rows
    (and with --include-clean the validation rows, column `part` = 1); its metadata records the
    clean set, λ and the blend, which `rdia retrain` uses."""
    from rdia_cli import api
    from rdia_cli.autoclean import auto_clean, verdict_lines
    from rdia_cli.cleaned import hint_lines, split_clean_rows
    from rdia_cli.models.io import load_model

    m = load_model(model)
    vds = load(val, val_opts, what="validation data", schema=api.schema_of_model(m))
    with progress_bar() as bar:
        task = bar.add_task("cross-validating", total=None, info="")
        ac = auto_clean(ds, vds, m, seed=seed, device=dev,
                        progress=lambda i, k: bar.update(task, completed=i, total=k, info=""))
    rows, clean_info = split_clean_rows(ac.cleaned, include_clean)
    meta = {"strategy": "auto", "action": ac.config.action, "ranker": ac.config.ranker,
            "fraction": ac.config.fraction, "weight": ac.config.weight, "l2": ac.model.meta["l2"],
            "scores": str(sc.path), "source_fingerprint": ds.fingerprint(), "verdict": ac.verdict,
            "cv": ac.cv, "n_relabeled": int(ac.cleaned.extra["relabeled"].sum()),
            **clean_info, "clean_fingerprint": vds.fingerprint(),
            **recorded_inputs(clean=(val, val_opts))}
    if "blend" in ac.model.meta:  # `rdia retrain` refits both parts and blends them the same way
        meta["blend"] = {"clean_only_share": ac.clean_only_share,
                         "clean_only_l2": ac.model.meta["blend"]["l2"][1]}
    _write_cleaned(rows, output, meta)
    which = ("with" if clean_info.get("clean_rows") == "included" else "without") + (
        f" the {vds.n_samples:,} clean rows")
    if "clean_rows_why" in clean_info:
        which += f": {clean_info['clean_rows_why']}"
    err.print(_summary_table("rdia relabel --strategy auto", [
        ("rows", f"{ds.n_samples:,} training + {vds.n_samples:,} validation"),
        ("wrote", f"{_shown_path(output)}  ({rows.n_samples:,} rows, {which}; retrain on it "
                  "with `rdia retrain`)"),
    ]))
    for line in verdict_lines(ac.verdict):
        err.print(f"  {line}")
    hints = hint_lines(meta, rows.n_samples)
    if hints:
        err.print("[bold]for your own trainer:[/]")
        for line in hints:
            err.print(f"  {line}")


def _print_relabel_summary(outcome, ds, output, paper_alpha, phi_cut) -> None:
    from rich.table import Table

    c = outcome.cleaning
    rows = [
        ("rows", f"{ds.n_samples:,}"),
        ("α (paper's scale)", _fmt(paper_alpha, ".6g")),
        ("Φ threshold", _fmt(phi_cut, ".6g")),
        ("relabeled", f"{c.n_relabeled:,}"),
        ("removed", f"{c.n_removed:,}"),
        ("reweighted", "yes" if c.weight is not None else "no"),
        ("wrote", f"{_shown_path(output)}  ({outcome.dataset.n_samples:,} rows; `label` holds "
                  "the new labels)"),
    ]
    err.print(_summary_table("rdia relabel", rows))
    if outcome.sweep:
        t = Table(title="α sweep on the validation set (in-sample)", title_justify="left")
        for col in ("α (paper)", "Φ threshold", "selected", "predicted val loss",
                    "val loss after retrain"):
            t.add_column(col, justify="right")
        for r in outcome.sweep:
            t.add_row(_fmt(r.get("alpha_paper"), ".4g") if r["alpha"] is not None else "none",
                      "none" if r["alpha"] is None else f"{r['alpha']:.4g}", str(r["n_selected"]),
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
    val: Annotated[Path | None, typer.Option("--val", help="`relabel --strategy auto` output without its clean rows: the clean set to add back (default: the file it records; its fingerprint is checked).", show_default=False)] = None,
    device: Device = "auto",
) -> None:
    """Retrain MODEL's architecture on the cleaned targets and weights (the raw Eq. 12 targets
    where the file keeps them in `target_raw`)."""
    from rdia_cli import api
    from rdia_cli.io_utils import check_output
    from rdia_cli.models.io import load_model, save_model

    _check_train_options(l2=l2, epochs=epochs, lr=lr)
    check_output(output, cleaned, model)
    dev = device_of(device)
    m = load_model(model)
    opts = read_opts(fmt="parquet")
    from rdia_cli.cleaned import from_file

    ds = from_file(load(cleaned, opts, what="cleaned data", schema=api.schema_of_model(m)))
    net = {k: v for k, v in {"epochs": epochs, "lr": lr}.items() if v is not None}
    relabel = ds.meta.get("relabel") if isinstance(ds.meta.get("relabel"), dict) else {}
    if relabel.get("clean_rows") == "excluded":  # auto trained on them: add them back
        ds = _with_clean_rows(ds, relabel, val, cleaned, m)
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
    _warn_not_converged(m2, output)


def _with_clean_rows(ds, relabel: dict, val: Path | None, cleaned: Path, model):
    from rdia_cli import api
    from rdia_cli.cleaned import add_clean_rows
    from rdia_cli.errors import MismatchError

    if val is None:
        val = _recorded(relabel, "clean", "clean set", "--val")
        opts = recorded_read_options(relabel, "clean")
    else:
        opts = read_opts()
    clean = load(val, opts, what="clean data", schema=api.schema_of_model(model))
    want = relabel.get("clean_fingerprint")
    if want and clean.fingerprint() != want:
        raise MismatchError(f"`{val}` is not the clean set `{cleaned}` was made with "
                            f"(fingerprint {clean.fingerprint()}, expected {want}); give the "
                            "right one with --val.")
    return add_clean_rows(ds, clean)


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

    _check_train_options(n_features=n_features)
    if json_out is not None:
        check_output(json_out, data, labels, *models, option="--json")
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
    _check_train_options(n_features=n_features)
    _check_output_folder(output)
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
    output: Output,
    rate: Annotated[float | None, typer.Option("--rate", help="τ: probability that a label is replaced (symmetric, pair: of every row; class: of the source class's rows; instance: on average). Not with --kind matrix.")] = None,
    kind: Annotated[str, typer.Option("--kind", help="symmetric (to a uniform other class), pair (class k → k+1 mod K), matrix (a K × K transition matrix, --matrix), class (only --from-class → --to-class), instance (harder rows flip more often, to the model's most likely other class).")] = "symmetric",
    matrix: Annotated[Path | None, typer.Option("--matrix", help="--kind matrix: text file of K lines of K numbers (whitespace or commas); line k is P(noisy = j | clean = k), classes in the data's order; rows sum to 1; # comments.")] = None,
    from_class: Annotated[str | None, typer.Option("--from-class", help="--kind class: the class whose rows flip (default the first class).")] = None,
    to_class: Annotated[str | None, typer.Option("--to-class", help="--kind class: the class they flip into (default the next class).")] = None,
    seed: Seed = 0,
    labels: Labels = None,
    label_col: LabelCol = "label",
    zero_based: ZeroBased = None,
    n_features: NFeatures = None,
    classes: Classes = None,
    fmt: Format = "auto",
) -> None:
    """Label noise of one --kind (keeps `is_noisy` and `clean_label` columns)."""
    from rdia_cli.data.protocol import NOISE_KINDS, inject_noise, read_transition_matrix
    from rdia_cli.data.writers import write_dataset
    from rdia_cli.errors import InputError
    from rdia_cli.io_utils import check_output

    if kind not in NOISE_KINDS:
        raise InputError(f"`--kind` {kind!r} is not one of {', '.join(NOISE_KINDS)}.")
    if kind == "matrix" and matrix is None:
        raise InputError("`--kind matrix` needs `--matrix FILE` (K lines of K numbers).")
    if kind == "matrix" and rate is not None:
        raise InputError("`--rate` does not apply to `--kind matrix`: the matrix sets the flip "
                         "rates; leave `--rate` out.")
    if kind != "matrix" and rate is None:
        raise InputError(f"`--kind {kind}` needs `--rate` (a probability in [0, 1]).")
    if kind != "matrix" and matrix is not None:
        raise InputError("`--matrix` applies to `--kind matrix` only.")
    if kind != "class" and (from_class is not None or to_class is not None):
        raise InputError("`--from-class`/`--to-class` apply to `--kind class` only.")
    check_output(output, data, labels)
    opts = read_opts(labels, label_col, zero_based, n_features, classes, fmt)
    ds = load(data, opts, what="data")
    transition = read_transition_matrix(matrix, ds.n_classes) if matrix is not None else None
    noisy = inject_noise(ds, rate=rate, seed=seed, kind=kind, matrix=transition,
                         from_class=from_class, to_class=to_class)
    info = dict(noisy.meta["noise"], **({"matrix_file": str(matrix)} if matrix else {}))
    write_dataset(noisy, str(output), meta={"noise": info})
    n_noisy = int(noisy.extra["is_noisy"].sum())
    tau = "" if rate is None else f"τ={rate:g}"
    what = {"symmetric": f"symmetric noise {tau}", "pair": f"pair-flip noise (k → k+1) {tau}",
            "matrix": f"transition-matrix noise from {matrix}",
            "class": f"class-conditional noise {info.get('from_class')} → "
                     f"{info.get('to_class')} {tau}",
            "instance": f"instance-dependent noise, mean {tau}"}[kind]
    err.print(f"wrote {output}  ({noisy.n_samples:,} rows, {what}: {n_noisy:,} labels changed)")


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

    _check_train_options(n_features=n_features)
    check_output(output, data, labels)
    ds = load(data, read_opts(labels, label_col, zero_based, n_features, classes, fmt))
    write_dataset(ds, str(output))
    err.print(f"wrote {_shown_path(output)}  ({ds.n_samples:,} rows × {ds.n_features:,} "
              f"features, classes {ds.classes})")


def _check_output_folder(output: Path, option: str = "-o") -> None:
    """An output *folder* (split, run): not empty, not a file, its parent writable."""
    from rdia_cli.io_utils import check_folder_writable

    if str(output).strip() in ("", "-"):
        raise InputError(f"{option} must name a folder, not {str(output)!r}.")
    if output.exists() and not output.is_dir():
        raise InputError(f"{option} `{output}` is a file; give a folder for the outputs.")
    probe = output if output.is_dir() else next(
        (p for p in output.absolute().parents if p.exists()), Path("."))
    if not probe.is_dir():
        raise InputError(f"{option} `{output}`: `{probe}` is not a folder.")
    check_folder_writable(probe, option, str(output))


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that every `finally` and temporary-file
    cleanup runs; exits with 143 (128 + SIGTERM)."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """rdia's own warnings (``DataWarning``) as one yellow line; others as Python shows them."""
    from rich.markup import escape

    from rdia_cli.data.readers import DataWarning

    if issubclass(category, DataWarning):
        err.print(f"[bold yellow]warning:[/] {escape(str(message))}", soft_wrap=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


def main() -> None:
    import signal
    import warnings

    global _python_showwarning
    signal.signal(signal.SIGTERM, _on_sigterm)
    _python_showwarning = warnings.showwarning
    warnings.showwarning = _show_warning
    app()


_python_showwarning = None


# the modules below register more commands on `app`
from rdia_cli import (  # noqa: E402, F401, I001
    commands_report,
    commands_run,
    commands_synth,
)

if __name__ == "__main__":
    main()
