"""`rdia train`: fit a model (logistic regression or a network) and write the model file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from rdia_cli.cli.checks import check_train_options, device_of
from rdia_cli.cli.core import app, handle_errors
from rdia_cli.cli.networks import net_options
from rdia_cli.cli.params import (
    LOGREG_PANEL,
    NETWORKS_PANEL,
    NOISY_PANEL,
    Device,
    ModelOutput,
    Seed,
)
from rdia_cli.cli.reading import ReadArgs, load, read_options
from rdia_cli.cli.render import activity, fmt_value, say, summary_table, warn_not_converged


# --- train ------------------------------------------------------------------------------------
@app.command()
@handle_errors(json=True)
@read_options("val")
def train(
    data: Annotated[Path, typer.Argument(help="Training data (LIBSVM, CSV, Parquet, IDX, CIFAR).")],
    output: ModelOutput,
    val: Annotated[Path | None, typer.Option("--val", help="Validation data: report the model's loss on it.")] = None,
    model_type: Annotated[str, typer.Option("--model-type", help="logreg (logistic regression), mlp, lenet or cnn.")] = "logreg",
    l2: Annotated[float | None, typer.Option("--l2", help="λ of the penalty (λ/2)‖W‖².", show_default="1/N, scikit-learn's C=1", rich_help_panel=LOGREG_PANEL)] = None,
    no_intercept: Annotated[bool, typer.Option("--no-intercept", help="Fit no intercept.", rich_help_panel=LOGREG_PANEL)] = False,
    tol: Annotated[float, typer.Option("--tol", help="Stop when ‖∇L‖ ≤ tol·‖∇L(0)‖.", rich_help_panel=LOGREG_PANEL)] = 1e-8,
    max_iter: Annotated[int, typer.Option("--max-iter", help="Newton steps at most.", rich_help_panel=LOGREG_PANEL)] = 100,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Passes over the data.", show_default="10; 200 with --schedule paper", rich_help_panel=NETWORKS_PANEL)] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Mini-batch size.", rich_help_panel=NETWORKS_PANEL)] = 128,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.", rich_help_panel=NETWORKS_PANEL)] = 1e-3,
    optimizer: Annotated[str, typer.Option("--optimizer", help="adam or sgd.", rich_help_panel=NETWORKS_PANEL)] = "adam",
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="Weight decay.", rich_help_panel=NETWORKS_PANEL)] = 0.0,
    schedule: Annotated[str, typer.Option("--schedule", help="none, or paper: the paper's preset (200 epochs unless --epochs; lr constant for 40% of the epochs, then linear decay to 0, Adam β1 0.1 while decaying; Adam, lr 1e-3 and batch 128 are the defaults anyway).", rich_help_panel=NETWORKS_PANEL)] = "none",
    hidden: Annotated[str | None, typer.Option("--hidden", help="mlp: hidden layer sizes; --hidden 256 on MNIST is the authors' MLP 784-256-10.", show_default="256,128", rich_help_panel=NETWORKS_PANEL)] = None,
    method: Annotated[str | None, typer.Option("--method", help="How to train under label noise: erm (plain training), rdia-ls (= --rdia-ls), self-teaching (= --self-teaching), co-teaching (two networks, each trained on the peer's small-loss rows; the first is saved), sigua (descent on small-loss rows, ascent ×--sigua-ascent on the rest), f-correction (forward loss correction with T from --transition or estimated from anchor points), s-model (a learned noise-adaptation softmax layer).", show_default="erm", rich_help_panel=NOISY_PANEL)] = None,
    rdia_ls: Annotated[bool, typer.Option("--rdia-ls", help="Train with RDIA-LS (paper appendix F); needs --noise-rate.", rich_help_panel=NOISY_PANEL)] = False,
    self_teaching: Annotated[bool, typer.Option("--self-teaching", help="Train on the small-loss share only; needs --noise-rate.", rich_help_panel=NOISY_PANEL)] = False,
    noise_rate: Annotated[float | None, typer.Option("--noise-rate", help="rdia-ls, self-teaching, co-teaching, sigua: the expected noise rate τ.", rich_help_panel=NOISY_PANEL)] = None,
    gamma: Annotated[str, typer.Option("--gamma", help="rdia-ls: weight γ in [0, 1] (paper variant: of the relabeled loss; reference: of the clean loss), or auto: hold out 10% of the rows, train once per γ in 0.05, 0.10, ..., 0.95 on the rest, keep the γ with the best held-out accuracy on the given labels, retrain on all rows (20 trainings).", rich_help_panel=NOISY_PANEL)] = "0.5",
    tk: Annotated[int, typer.Option("--tk", help="Small-loss methods: T_k, the epochs until the kept share ρ reaches 1 - τ (ρ fixed within an epoch).", rich_help_panel=NOISY_PANEL)] = 10,
    tk_steps: Annotated[int | None, typer.Option("--tk-steps", help="Small-loss methods: T_k in optimizer steps instead of --tk (ρ updated every step), so a subset and the full set get the same schedule; the paper's T_k = 10 epochs of 60,000 rows at batch 128 is 4690.", rich_help_panel=NOISY_PANEL)] = None,
    rdia_ls_variant: Annotated[str, typer.Option("--rdia-ls-variant", help="rdia-ls loss: paper (Algorithm 2) or reference (the authors' code: γ on the clean part, CE on softmax outputs, relabels only the band between the int(ρB) smallest and the int(τ/2·B) largest-loss rows, which are dropped, relabeled part ÷ B, small-loss-only warm-up until T_k).", rich_help_panel=NOISY_PANEL)] = "paper",
    transition: Annotated[Path | None, typer.Option("--transition", help="f-correction: the known K×K transition matrix, T_ij = P(given label j | true class i) (.npy, or text/CSV rows); s-model: the channel's start.", show_default="estimated from a baseline network", rich_help_panel=NOISY_PANEL)] = None,
    sigua_ascent: Annotated[float, typer.Option("--sigua-ascent", help="sigua: weight of the gradient ascent on the large-loss rows.", rich_help_panel=NOISY_PANEL)] = 0.01,
    estimate_epochs: Annotated[int | None, typer.Option("--estimate-epochs", help="f-correction, s-model: epochs of the plain (erm) baseline that estimates T.", show_default="10% of --epochs", rich_help_panel=NOISY_PANEL)] = None,
    device: Device = "auto",
    seed: Seed = 0,
    read: ReadArgs = None,
) -> dict:
    """Train a model on DATA and write the model file (-o MODEL.pt).

    Logistic regression (the default) is fitted exactly by Newton's method, so `rdia score`
    gets exact influence; the network options apply to mlp, lenet and cnn."""
    from rdia_cli import stages as api
    from rdia_cli.artifacts.atomic import check_output
    from rdia_cli.models.io import save_model

    check_train_options(l2=l2, tol=tol, max_iter=max_iter, epochs=epochs, batch_size=batch_size,
                         lr=lr, weight_decay=weight_decay, noise_rate=noise_rate,
                         n_features=read.flags["n_features"])
    check_output(output, data, val, *read.files)
    opts = read.options
    dev = device_of(device)
    from rdia_cli import distributed

    shard = distributed.Sharding.from_env(dev)  # under torchrun: this rank's rows only
    if shard is None:
        ds, n_total = load(data, opts, what="training data"), None
    else:
        dev = shard.device
        distributed.check_shardable(model_type)
        ds, n_total = distributed.load_shard(data, opts, shard, what="training data")
    net = net_options(epochs, batch_size, lr, optimizer, weight_decay, schedule, seed, hidden,
                       rdia_ls, self_teaching, noise_rate, gamma, tk, method, rdia_ls_variant,
                       tk_steps, transition, sigua_ascent, estimate_epochs)
    t0 = time.perf_counter()
    with activity(f"training {model_type}", phase="train") as act:

        def progress(step, total_or_loss, extra=None):
            if isinstance(extra, dict):  # networks: step of total, the losses
                act.update(step, total_or_loss,
                           " ".join(f"{k} {v:.4g}" for k, v in extra.items()))
            else:  # logistic regression: Newton step, objective, relative gradient norm
                act.update(step, None, f"Newton step {step}, loss {total_or_loss:.6g}, "
                                       f"|g| {extra:.2e}")

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
            return {}
    rows = [("data", f"{data}  ({n_total or ds.n_samples:,} rows × {ds.n_features:,} features, "
                     f"{ds.n_classes} classes{', sparse' if ds.is_sparse else ''})"),
            ("model", model_type), ("device", str(dev))]
    rows[1:1] = _table_rows(ds)
    m = model.meta.get("metrics", {})
    from rdia_cli.models.kinds import kind_of

    if kind_of(model_type).exact_influence:  # logistic regression: Newton's report
        rows += [("λ (l2)", f"{model.meta['l2']:.6g}"),
                 ("Newton steps", f"{m.get('iterations')}  (converged: {m.get('converged')})"),
                 ("train objective", fmt_value(m.get("train_objective"), ".6f")),
                 ("‖∇L‖ relative", fmt_value(m.get("rel_grad_norm"), ".2e"))]
    else:
        rows += [("train loss", fmt_value(m.get("train_loss"), ".4f"))]
    if val is not None:
        vds = load(val, read.for_input("val"), what="validation data",
                   schema=api.schema_of_model(model))
        vm = api.evaluate_model(model, vds, device=dev)
        model.meta["val_metrics"] = vm
        rows.append(("validation", f"loss {vm['loss']:.4f}  accuracy {vm['accuracy']:.4f}"
                     + (f"  auc {vm['auc']:.4f}" if vm["auc"] is not None else "")))
    rows.append(("time", f"{seconds:.2f} s"))
    model.meta["source"] = str(data)
    save_model(model, output)
    rows.append(("wrote", str(output)))
    say(summary_table("rdia train", rows))
    warn_not_converged(model, output)
    return {"wrote": {"model": str(output)},
            "data": {"path": str(data), "rows": n_total or ds.n_samples,
                     "features": ds.n_features, "classes": list(ds.classes)},
            "model_type": model_type, "device": str(dev), "metrics": m,
            "val_metrics": model.meta.get("val_metrics")}


def _table_rows(ds) -> list[tuple[str, str]]:
    """How a table's columns were typed and encoded (the prep saved in the model)."""
    from rdia_cli.data.tables import prep_of

    prep = prep_of(ds)
    if prep is None:
        return []
    s = prep.summary
    rows = [("columns", s.describe())]
    for kind in ("numeric", "boolean", "categorical"):
        names = list(getattr(s, kind))
        if names:
            shown = ", ".join(names[:8]) + (f", … ({len(names)})" if len(names) > 8 else "")
            rows.append((f"  {kind}", shown))
    roles = ds.meta.get("columns") or {}
    kept = [c for c in (roles.get("id"), *(roles.get("ignore") or ())) if c]
    if kept:
        rows.append(("  not features", ", ".join(kept)))
    return rows
