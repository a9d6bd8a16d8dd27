"""`rdia score`: Φ of every training row, written as a scores file (Parquet)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from rdia_cli.artifacts.inputs import record_inputs
from rdia_cli.cli.checks import device_of
from rdia_cli.cli.core import OUTPUT_PANEL, app, handle_errors
from rdia_cli.cli.params import NETWORKS_PANEL, Device, Seed
from rdia_cli.cli.paths import default_output, shown_path
from rdia_cli.cli.reading import ReadArgs, load, read_options
from rdia_cli.cli.render import activity, say, summary_table, warn


# --- score ------------------------------------------------------------------------------------
@app.command()
@handle_errors(json=True)
@read_options("val")
def score(
    data: Annotated[Path, typer.Argument(help="The training data the model was trained on.")],
    val: Annotated[Path, typer.Option("--val", help="Clean validation data: Φ measures each row's effect on its loss.")],
    model: Annotated[Path, typer.Option("--model", help="Model file from `rdia train`.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Scores file (Parquet) to write; `-`: standard output (`rdia score ... | rdia relabel ...`).", show_default="standard output if it is a pipe or a file, else DATA's name + .scores.parquet beside DATA", rich_help_panel=OUTPUT_PANEL)] = None,
    solver: Annotated[str, typer.Option("--solver", help="How to solve H⁻¹g: auto, direct (Cholesky) or cg; networks: cg or lissa.")] = "auto",
    damping: Annotated[float | None, typer.Option("--damping", help="δ added to the Hessian.", show_default="0 logreg, 0.01 networks")] = None,
    tol: Annotated[float | None, typer.Option("--tol", help="Relative residual of the solve.", show_default="1e-10 logreg, 1e-6 networks")] = None,
    max_iter: Annotated[int | None, typer.Option("--max-iter", help="Solver iterations at most.", show_default="the solver's")] = None,
    hessian: Annotated[str, typer.Option("--hessian", help="exact or ggn (Gauss-Newton).", rich_help_panel=NETWORKS_PANEL)] = "ggn",
    hessian_samples: Annotated[int | None, typer.Option("--hessian-samples", help="Estimate the curvature on this many random rows (0: all rows).", show_default="2000", rich_help_panel=NETWORKS_PANEL)] = None,
    top: Annotated[int, typer.Option("--top", help="Most harmful rows shown in the summary.", rich_help_panel=OUTPUT_PANEL)] = 5,
    device: Device = "auto",
    seed: Seed = 0,
    read: ReadArgs = None,
) -> dict:
    """Influence Φ of every training row on the validation loss (Φ > 0: harmful).

    A small logistic regression (rows × features × classes ≤ 4 million) on the CPU (`--device
    cpu` or `auto`) is scored with numpy: no torch to load, so it starts in a fraction of a
    second (a conjugate-gradient solve still runs in torch)."""
    from rdia_cli import distributed
    from rdia_cli import stages as api
    from rdia_cli.artifacts.atomic import check_output
    from rdia_cli.artifacts.scores import file_fingerprint, write_scores
    from rdia_cli.models.io import load_model
    from rdia_cli.models.kinds import kind_of
    from rdia_cli.models.logreg.arrays import NUMPY_DEVICE, numpy_device

    _check_score_options(damping, tol, max_iter, hessian_samples, top)
    output = default_output(output, data, ".scores.parquet")
    check_output(output, data, val, model, *read.files)
    opts = read.options
    torchrun = distributed.world_from_env()[1] > 1
    m = load_model(model, arrays="numpy")
    numpy = kind_of(m).numpy_cpu and not torchrun and numpy_device(device)
    dev = None if numpy else device_of(device)  # numpy: decided once the rows are counted
    shard = distributed.Sharding.from_env(dev) if torchrun else None  # this rank's rows only
    if shard is not None:
        dev = shard.device
    schema = api.schema_of_model(m)
    opts = opts.inherit(schema.read_options)  # the options train was given, unless given here
    if shard is None:
        ds = load(data, opts, what="training data", schema=schema)
    else:
        distributed.check_shardable(m.arch)
        ds, n_total = distributed.load_shard(data, opts, shard, what="training data",
                                             schema=schema)
    vds = load(val, read.for_input("val"), what="validation data", schema=schema)
    if dev is None:
        outputs = 1 if m.n_classes == 2 else m.n_classes
        work = ds.n_samples * m.n_features * outputs
        dev = NUMPY_DEVICE if numpy_device(device, work) else device_of(device)
    hashing = _hash_in_background(ds) if shard is None else None  # overlaps the solve
    t0 = time.perf_counter()
    with activity(f"scoring {ds.n_samples:,} rows", phase="score") as act:

        def on_iter(k, residual):
            act.update(k, None, f"CG iteration {k}, residual {residual:.2e}")

        if shard is None:
            result = api.score_model(m, ds, vds, device=dev, solver=solver, damping=damping,
                                     tol=tol, max_iter=max_iter, hessian=hessian,
                                     hessian_samples=hessian_samples, seed=seed,
                                     on_iter=on_iter)
        else:
            result = distributed.score_logreg(m, ds, vds, shard, n_total, solver=solver,
                                              damping=damping, tol=tol, max_iter=max_iter,
                                              on_iter=on_iter)
    seconds = time.perf_counter() - t0
    if hashing is not None:
        hashing.join()
    if ds.fingerprint() != m.meta.get("train_fingerprint") and (shard is None or shard.is_root):
        warn(f"`{data}` is not the data `{model}` was trained on (fingerprints differ); Φ "
             "assumes θ̂ minimizes the loss on DATA.")
    probs = result.probs if result.probs is not None else api.probabilities(m, ds, device=dev)
    if shard is not None:  # rank 0 gathers every row and writes the one scores file
        result, ds, probs = distributed.gather_scores(shard, result, ds, probs)
        shard.close()
        if result is None:
            return {}
    meta = dict(result.info)
    meta.update({
        "model_fingerprint": file_fingerprint(model), "model": str(model),
        "train_fingerprint": ds.fingerprint(), "val_fingerprint": vds.fingerprint(),
        "n_train": ds.n_samples, "n_val": vds.n_samples, "seconds": seconds,
        "arch": m.arch,
        # where the inputs are, so `rdia relabel` can find them without being told again
        **record_inputs(train=(data, opts),
                        val=(val, read.for_input("val").inherit(schema.read_options))),
    })
    write_scores(output, row_id=ds.row_id, labels=ds.y, classes=ds.classes, result=result,
                 probs=probs, meta=meta, ids=ds.ids())
    return _print_score_summary(result, ds, meta, top, output)


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


def _print_score_summary(result, ds, meta, top, output) -> dict:
    """The summary on stderr; returns the --json document."""
    import numpy as np
    from rich.table import Table

    from rdia_cli.glossary import relabel_effect

    phi, n = result.phi, ds.n_samples
    pos = phi > 0
    pred = float(relabel_effect(phi[pos], result.p_label[pos], n).sum())
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
        ("wrote", shown_path(output)),
    ]
    say(summary_table("rdia score", rows))
    doc = {"wrote": {"scores": shown_path(output) if str(output) == "-" else str(output)},
           "rows": n, "val_rows": meta["n_val"], "solver": meta["solver"],
           "iterations": meta["iterations"], "residual": meta["residual"],
           "damping": meta["damping"], "val_loss": meta["val_loss"],
           "harmful": int(pos.sum()), "predicted_val_loss_change": pred}
    if top > 0 and n:
        t = Table(title=f"top {min(top, n)} harmful rows", title_justify="left")
        ids = ds.ids()
        for c in (ids[0] if ids else "row_id", "label", "p_label", "Φ",
                  "Δ val loss if relabeled"):
            t.add_column(c, justify="right")
        head = np.argpartition(-phi, min(top, n) - 1)[:top] if top < n else np.arange(n)
        for i in head[np.lexsort((head, -phi[head]))]:
            row = ids[1][int(i)].as_py() if ids else ds.row_id[i]
            t.add_row(str(row), str(ds.classes[ds.y[i]]), f"{result.p_label[i]:.3f}",
                      f"{phi[i]:.4g}", f"{relabel_effect(phi[i], result.p_label[i], n):+.2e}")
        say(t)
    return doc


def _paper_scale_rows(meta, phi) -> list[tuple[str, str]]:
    import numpy as np

    from rdia_cli.artifacts.scores import paper_factor

    f = paper_factor(meta)
    if np.isnan(f):
        return [("paper's scale", "none (λ + δ = 0): use --phi-threshold or --fraction")]
    n = int((phi * f > 0.002).sum())
    return [("paper's scale", f"phi_paper = {f:.4g}·Φ (C·M/N, C = 1/(λN)); "
                              f"`relabel --alpha 0.002` selects {n:,} rows")]
