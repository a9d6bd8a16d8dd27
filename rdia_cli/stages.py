"""The five stages as library functions over in-memory objects (the CLI adds files and printing).

    model   = train_model(train_ds, model_type="logreg")
    result  = score_model(model, train_ds, val_ds)            # Φ, see rdia_cli.glossary
    cleaned = relabel_dataset(train_ds, result, alpha=0.05)   # a Dataset with soft targets
    model2  = retrain_model(cleaned, model)
    metrics = evaluate_model(model2, test_ds)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rdia_cli.cleaning.strategies import Cleaning, clean, gradient_norms
from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError
from rdia_cli.glossary import relabel_effect
from rdia_cli.influence import ScoreResult
from rdia_cli.models.common import check_model_data, probabilities, schema_of_model
from rdia_cli.models.io import ModelFile

__all__ = [
    "MODEL_TYPES", "NET_ARCHS", "RelabelOutcome", "apply_cleaning", "auto_alpha",
    "check_model_data", "evaluate_model", "probabilities", "relabel_dataset", "retrain_cleaned",
    "retrain_model", "schema_of_model", "score_model", "train_model",
]

NET_ARCHS = ("mlp", "lenet", "cnn")
NET_HESSIAN_SAMPLES = 2000  # networks: curvature on this many rows unless --hessian-samples
MODEL_TYPES = ("logreg", *NET_ARCHS)


# --- train ------------------------------------------------------------------------------------
def train_model(
    ds: Dataset,
    *,
    model_type: str = "logreg",
    device="cpu",
    l2: float | None = None,
    fit_intercept: bool = True,
    tol: float = 1e-8,
    max_iter: int = 100,
    net_options: dict | None = None,
    init: ModelFile | None = None,
    progress: Callable | None = None,
) -> ModelFile:
    if model_type not in MODEL_TYPES:
        raise InputError(
            f"--model-type must be one of {', '.join(MODEL_TYPES)}, not {model_type!r}."
        )
    if model_type == "logreg":
        from rdia_cli.models.logreg.training import train_logreg

        return train_logreg(ds, l2=l2, fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                            device=device, init=init, progress=progress)
    from rdia_cli.models.common import check_trainable, schema_meta
    from rdia_cli.models.nets.training import train_net

    check_trainable(ds)
    opts = dict(net_options or {})
    model = train_net(ds, arch=model_type, device=device, init=init, progress=progress, **opts)
    model.meta.update(schema_meta(ds))
    return model


# --- score ------------------------------------------------------------------------------------
def score_model(
    model: ModelFile,
    train: Dataset,
    val: Dataset,
    *,
    device="cpu",
    solver: str = "auto",
    damping: float | None = None,
    tol: float | None = None,
    max_iter: int | None = None,
    hessian: str = "ggn",
    hessian_samples: int | None = None,
    seed: int = 0,
    on_iter: Callable | None = None,
) -> ScoreResult:
    """Φ for every training row: ONE solve s = H⁻¹∇L_Q and one pass over the data."""
    check_model_data(model, train, "training data")
    check_model_data(model, val, "validation data")
    if model.arch == "logreg":
        from rdia_cli.device import threads_for
        from rdia_cli.influence.logreg import score_logreg

        with threads_for(train.n_samples * train.n_features * model.n_classes):
            return score_logreg(model, train, val, solver=solver, damping=damping or 0.0,
                                tol=tol or 1e-10, max_iter=max_iter or 1000, device=device,
                                on_iter=on_iter)
    from rdia_cli.influence.nets import score_net

    net_solver = "cg" if solver in ("auto", "cg") else solver
    if hessian_samples is None:
        hessian_samples = min(train.n_samples, NET_HESSIAN_SAMPLES)
    elif hessian_samples <= 0 or hessian_samples >= train.n_samples:
        hessian_samples = None  # curvature on every training row
    if net_solver not in ("cg", "lissa"):
        raise InputError(f"--solver for networks must be cg or lissa, not {solver!r}.")
    return score_net(model, train, val, hessian=hessian, solver=net_solver,
                     damping=0.01 if damping is None else damping, tol=tol or 1e-6,
                     max_iter=max_iter or 200, hessian_samples=hessian_samples, seed=seed,
                     device=device)


# --- relabel ----------------------------------------------------------------------------------
@dataclass
class RelabelOutcome:
    dataset: Dataset  # the cleaned training set (rows removed by drop/uids are gone)
    cleaning: Cleaning
    alpha: float | None
    fraction: float | None
    sweep: list[dict[str, Any]] = field(default_factory=list)


def _row_norms(ds: Dataset, fit_intercept: bool = True) -> np.ndarray:
    import scipy.sparse as sp

    X = ds.flat_X()
    if sp.issparse(X):
        sq = np.asarray(X.multiply(X).sum(1)).ravel()
    else:
        sq = (X.astype(np.float64) ** 2).sum(1)
    return np.sqrt(sq + (1.0 if fit_intercept else 0.0))


def apply_cleaning(ds: Dataset, cleaning: Cleaning, phi: np.ndarray) -> Dataset:
    """The cleaned Dataset: targets, weights, ``relabeled`` and ``phi`` columns, removals."""
    out = Dataset(
        X=ds.X, y=ds.y, classes=list(ds.classes), row_id=ds.row_id,
        target=cleaning.target.astype(np.float32), weight=cleaning.weight,
        feature_names=ds.feature_names,
        extra=dict(ds.extra, relabeled=cleaning.relabeled, phi=np.asarray(phi, np.float64)),
        meta=dict(ds.meta), source=ds.source,
    )
    return out if cleaning.keep.all() else out.subset(cleaning.keep)


def relabel_dataset(
    ds: Dataset,
    phi: np.ndarray,
    probs: np.ndarray,
    *,
    strategy: str = "rdia",
    alpha: float | None = None,
    fraction: float | None = None,
    targets: str = "paper",
    seed: int = 0,
    select_on: np.ndarray | None = None,
) -> RelabelOutcome:
    """Apply ``strategy``; ``alpha`` is a threshold on ``select_on`` (default ``phi``; the CLI
    passes the paper-scale ``phi_paper`` for ``--alpha``), the file's ``phi`` column stays Φ."""
    grad_norm = None
    if strategy == "optlr":
        grad_norm = gradient_norms(probs, ds.y, _row_norms(ds))
    cleaning = clean(phi if select_on is None else select_on, probs, ds.y, strategy=strategy,
                     alpha=alpha, fraction=fraction, targets=targets, seed=seed,
                     grad_norm=grad_norm)
    return RelabelOutcome(apply_cleaning(ds, cleaning, phi), cleaning, alpha, fraction)


AUTO_FRACTIONS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


def auto_alpha(
    ds: Dataset,
    phi: np.ndarray,
    probs: np.ndarray,
    model: ModelFile,
    val: Dataset,
    *,
    strategy: str = "rdia",
    targets: str = "paper",
    seed: int = 0,
    device="cpu",
    fractions=AUTO_FRACTIONS,
    progress: Callable[[int, int], None] | None = None,
) -> RelabelOutcome:
    """Choose α on the validation set, as the paper tunes it.

    Candidates are the thresholds that select the top f·N rows by Φ for f in ``fractions``
    (only rows with Φ > 0; f = 0 is "change nothing"). For each, the cleaned set is built, the
    model retrained (warm start) and its validation loss measured; the α with the lowest
    validation loss wins. Every candidate is recorded in ``sweep`` with the first-order
    prediction of the validation-loss change. This reuses the validation set that produced Φ,
    so the chosen α is optimistic.
    """
    phi = np.asarray(phi, dtype=np.float64)
    n = len(phi)
    order = np.sort(phi)[::-1]
    n_pos = int((phi > 0).sum())
    base_loss = evaluate_model(model, val, device=device)["loss"]
    p_label = probs[np.arange(n), ds.y]
    candidates: list[float] = []
    for f in fractions:
        k = min(int(np.ceil(f * n)), n_pos)
        alpha = float(np.inf) if k == 0 else (max(float(order[k]), 0.0) if k < n else 0.0)
        if alpha not in candidates:
            candidates.append(alpha)
    sweep = []
    best = None
    for i, alpha in enumerate(candidates):
        if np.isinf(alpha):
            outcome = relabel_dataset(ds, phi, probs, strategy=strategy, fraction=0.0,
                                      targets=targets, seed=seed)
            loss = base_loss
        else:
            outcome = relabel_dataset(ds, phi, probs, strategy=strategy, alpha=alpha,
                                      targets=targets, seed=seed)
            m2 = retrain_model(outcome.dataset, model, device=device)
            loss = evaluate_model(m2, val, device=device)["loss"]
        sel = phi > alpha
        if strategy == "drop":
            predicted = float((-phi[sel] / n).sum())
        else:
            predicted = float(relabel_effect(phi[sel], p_label[sel], n).sum())
        row = {"alpha": None if np.isinf(alpha) else alpha, "n_selected": int(sel.sum()),
               "n_relabeled": outcome.cleaning.n_relabeled, "n_removed": outcome.cleaning.n_removed,
               "predicted_val_loss": base_loss + predicted, "val_loss": loss}
        sweep.append(row)
        if best is None or loss < best[0] - 1e-12:
            best = (loss, alpha, outcome)
        if progress is not None:
            progress(i + 1, len(candidates))
    _, alpha, outcome = best
    outcome.alpha = None if np.isinf(alpha) else alpha
    outcome.sweep = sweep
    return outcome


# --- retrain / evaluate -----------------------------------------------------------------------
def retrain_model(
    cleaned: Dataset,
    model: ModelFile,
    *,
    from_scratch: bool = False,
    device="cpu",
    l2: float | None = None,
    net_options: dict | None = None,
    progress: Callable | None = None,
) -> ModelFile:
    """Same architecture and hyperparameters as ``model`` (``l2``/``net_options`` override),
    trained on the cleaned targets and weights, warm-started from ``model`` unless
    ``from_scratch``."""
    check_model_data(model, cleaned, "cleaned data")
    init = None if from_scratch else model
    if model.arch == "logreg":
        from rdia_cli.models.logreg.training import train_logreg

        train = model.meta.get("training", {})
        return train_logreg(
            cleaned,
            l2=model.meta["l2"] if l2 is None else l2,
            fit_intercept=model.arch_args.get("fit_intercept", True),
            tol=train.get("tol", 1e-8),
            max_iter=max(train.get("max_iter", 100), 100),
            device=device, init=init, progress=progress,
        )
    from rdia_cli.models.nets.training import train_net

    opts = dict(model.meta.get("training", {}))
    opts = {k: v for k, v in opts.items() if k in (
        "epochs", "batch_size", "lr", "optimizer", "weight_decay", "schedule", "seed")}
    if not from_scratch:
        opts["lr"] = opts.get("lr", 1e-3) * 0.1  # the paper's appendix C.3: fine-tune lower
    opts.update(net_options or {})
    from rdia_cli.models.common import schema_meta

    model2 = train_net(cleaned, arch=model.arch, arch_args=model.arch_args, device=device,
                       init=init, progress=progress, **opts)
    model2.meta.update(schema_meta(cleaned))
    return model2


def retrain_cleaned(
    cleaned: Dataset,
    model: ModelFile,
    *,
    from_scratch: bool = False,
    device="cpu",
    l2: float | None = None,
    net_options: dict | None = None,
) -> tuple[ModelFile, dict | None]:
    """``retrain_model`` on a cleaned file as `rdia relabel` wrote it: where ``--strategy auto``
    chose λ, that λ (unless ``l2`` is given); where it blended with a fit on the clean rows
    alone (``part`` = 1; add them back first, ``cleaning.files.add_clean_rows``), the same blend.
    Returns the model and the blend used (``None`` when there is none)."""
    from rdia_cli.cleaning.auto import blend_models

    relabel = cleaned.meta.get("relabel")
    relabel = relabel if isinstance(relabel, dict) else {}
    blend = relabel.get("blend") if l2 is None and "part" in cleaned.extra else None
    if l2 is None:  # the auto strategy tunes λ; keep what it chose
        l2 = relabel.get("l2")
    model2 = retrain_model(cleaned, model, from_scratch=from_scratch, device=device, l2=l2,
                           net_options=net_options)
    if blend:  # auto's model averages this fit with one on the clean rows alone
        clean = cleaned.subset((cleaned.extra["part"] == 1).nonzero()[0])
        alone = retrain_model(clean, model, from_scratch=from_scratch, device=device,
                              l2=blend["clean_only_l2"])
        model2 = blend_models(model2, alone, blend["clean_only_share"])
    return model2, blend


def evaluate_model(model: ModelFile, ds: Dataset, *, device="cpu") -> dict:
    from rdia_cli.metrics import evaluate_probs

    check_model_data(model, ds, "test data")
    return evaluate_probs(probabilities(model, ds, device=device), ds.y)
