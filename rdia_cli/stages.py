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
from rdia_cli.models.kinds import KINDS, kind_of
from rdia_cli.models.kinds import NET_ARCHS as NET_ARCHS

__all__ = [
    "MODEL_TYPES", "NET_ARCHS", "RelabelOutcome", "apply_cleaning", "auto_alpha",
    "check_model_data", "evaluate_model", "probabilities", "relabel_dataset", "retrain_cleaned",
    "retrain_model", "schema_of_model", "score_model", "train_model",
]

MODEL_TYPES = tuple(KINDS)  # rdia_cli.models.kinds: one object per model kind


# --- train ------------------------------------------------------------------------------------
# The most float64 weights a model may need for its first layer (P × K), refused before it is
# allocated: 4 GiB of weights, before the solver's copies of them.
MAX_MODEL_BYTES = 4 * 2**30


def _check_model_size(ds: Dataset) -> None:
    P, K = int(ds.n_features), max(len(ds.classes), 1)
    need = 8 * P * K
    if need > MAX_MODEL_BYTES:
        raise InputError(
            f"A model on {P:,} features × {K} classes needs {need / 2**30:,.1f} GiB for its "
            f"weights alone (rdia allows {MAX_MODEL_BYTES // 2**30} GiB); give a smaller "
            "`n_features` or reduce the features."
        )


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
    """A model of kind ``model_type`` (``rdia_cli.models.kinds``) fit to ``ds``: ``l2``,
    ``fit_intercept``, ``tol``, ``max_iter`` for logistic regression, ``net_options`` (the dict
    form of ``rdia_cli.models.nets.training.NetSettings`` and one method) for networks."""
    _check_model_size(ds)
    return kind_of(model_type).fit(ds, device=device, l2=l2, fit_intercept=fit_intercept,
                                   tol=tol, max_iter=max_iter, net_options=net_options,
                                   init=init, progress=progress)


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
    """Φ for every training row: ONE solve s = H⁻¹∇L_Q and one pass over the data, with the
    model kind's scorer and defaults (``rdia_cli.influence.scoring``)."""
    from rdia_cli.influence.scoring import influence

    check_model_data(model, train, "training data")
    check_model_data(model, val, "validation data")
    result = influence(model, train, val, device=device, solver=solver, damping=damping,
                       tol=tol, max_iter=max_iter, hessian=hessian,
                       hessian_samples=hessian_samples, seed=seed, on_iter=on_iter)
    result.n_val = val.n_samples  # for the paper's scale (``ScoreResult.paper_factor``)
    return result


# --- relabel ----------------------------------------------------------------------------------
@dataclass
class RelabelOutcome:
    """A cleaned training set and how it was chosen.

    alpha          the paper's α of the cut (a threshold on C·(M/N)·Φ; None: no cut, or no
                   paper scale), ``phi_threshold`` the same cut on Φ (``rdia_cli.glossary``).
    """

    dataset: Dataset  # the cleaned training set (rows removed by drop/uids are gone)
    cleaning: Cleaning
    alpha: float | None
    fraction: float | None
    sweep: list[dict[str, Any]] = field(default_factory=list)
    phi_threshold: float | None = None

    def to_pandas(self):
        """The cleaned table as `rdia relabel` writes it: the input's own columns with the new
        label under the label column's name, then ``original_label``, ``target_<class>``,
        ``relabeled``, ``phi`` (``cleaning.files``)."""
        from rdia_cli.cleaning.files import for_file

        return for_file(self.dataset).to_pandas()


def default_strategy(arch: str | None, rule_given: bool) -> str:
    """The strategy when none is named: ``auto`` for a model kind that supports it (logistic
    regression; ``arch`` None: not known yet) unless a rule (α, Φ threshold or fraction) was
    given, else the paper's ``rdia``."""
    from rdia_cli.models.kinds import kind_of

    if rule_given:
        return "rdia"
    return "auto" if arch is None else kind_of(arch).default_strategy


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
        meta=dict(ds.meta), source=ds.source, table=ds.table,
    )
    return out if cleaning.keep.all() else out.subset(cleaning.keep)


def _phi_probs(scores, probs) -> tuple[np.ndarray, np.ndarray]:
    """Φ and the class probabilities of a ScoreResult or a scores file (``read_scores``)."""
    probs = getattr(scores, "probs", None) if probs is None else probs
    if probs is None:
        raise InputError("`scores` carries no class probabilities; pass `probs` "
                         "(``probabilities(model, ds)``).")
    return np.asarray(scores.phi, dtype=np.float64), np.asarray(probs)


def _paper_scale(scores) -> tuple[float, np.ndarray | None]:
    """(C·(M/N), phi_paper): the factor and Φ on the paper's scale (None without a scale)."""
    factor = float(scores.paper_factor)
    if np.isnan(factor):
        return factor, None
    paper = getattr(scores, "phi_paper", None)  # a scores file has the column
    return factor, np.asarray(scores.phi, np.float64) * factor if paper is None else paper


def relabel_dataset(
    ds: Dataset,
    scores,
    *,
    probs: np.ndarray | None = None,
    strategy: str = "rdia",
    alpha: float | None = None,
    phi_threshold: float | None = None,
    fraction: float | None = None,
    targets: str = "paper",
    seed: int = 0,
) -> RelabelOutcome:
    """Apply ``strategy`` to the rows one rule picks (give exactly one):

    alpha          the paper's α: rows whose C·(M/N)·Φ exceeds it (``phi_paper`` of the
                   scores; e.g. 0.002, as the authors' code thresholds it),
    phi_threshold  rows whose Φ exceeds it (rdia's own scale, ``rdia_cli.glossary``),
    fraction       the top share of rows by Φ (only Φ > 0).

    ``scores`` is the ScoreResult of ``score_model`` or a scores file (``read_scores``);
    ``probs`` the model's class probabilities on ``ds`` where ``scores`` lacks them."""
    phi, probs = _phi_probs(scores, probs)
    given = [name for name, v in (("alpha", alpha), ("phi_threshold", phi_threshold),
                                  ("fraction", fraction)) if v is not None]
    if len(given) != 1:
        raise InputError("give exactly one of `alpha`, `phi_threshold` and `fraction`"
                         + (f", not {' and '.join(f'`{g}`' for g in given)}." if given else "."))
    factor, phi_paper = _paper_scale(scores)
    select_on, cut = phi, phi_threshold
    if alpha is not None:
        if phi_paper is None:
            raise InputError("the scores have no paper scale (the Hessian was solved with "
                             "λ + δ = 0); give `phi_threshold` or `fraction` instead of `alpha`.")
        select_on, cut = phi_paper, alpha
    grad_norm = None
    if strategy == "optlr":
        grad_norm = gradient_norms(probs, ds.y, _row_norms(ds))
    cleaning = clean(select_on, probs, ds.y, strategy=strategy, alpha=cut, fraction=fraction,
                     targets=targets, seed=seed, grad_norm=grad_norm)
    if alpha is not None:
        paper_alpha, phi_cut = alpha, alpha / factor
    else:
        phi_cut = phi_threshold
        paper_alpha = None if phi_cut is None or np.isnan(factor) else phi_cut * factor
    return RelabelOutcome(apply_cleaning(ds, cleaning, phi), cleaning, paper_alpha, fraction,
                          phi_threshold=phi_cut)


def changed_too_much(outcome: RelabelOutcome, probs: np.ndarray, labels: np.ndarray
                     ) -> list[str]:
    """Why a hand-picked rule changes more rows than the data supports (empty: it does not):
    more than 30% of the rows, or more than the rows the model itself gets wrong (a label
    that the fitted model predicts is no evidence of noise; measured: α = 0 flags about half
    of the clean rows of a noise-free set)."""
    n = len(labels)
    changed = changed_rows(outcome)
    misfit = int((np.asarray(probs).argmax(1) != np.asarray(labels)).sum())
    reasons = []
    if changed > 0.3 * n:
        reasons.append("more than 30% of the rows")
    if changed > misfit + max(5, 0.02 * n):
        reasons.append(f"more than the {misfit:,} rows whose label the model does not predict")
    return reasons


def changed_rows(outcome: RelabelOutcome) -> int:
    """Rows relabeled or removed (reweighting strategies: rows with weight below 1)."""
    c = outcome.cleaning
    if c.weight is not None:
        return int((c.weight < 1).sum())
    return c.n_relabeled + c.n_removed


AUTO_FRACTIONS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


def auto_alpha(
    ds: Dataset,
    scores,
    model: ModelFile,
    val: Dataset,
    *,
    probs: np.ndarray | None = None,
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
    validation loss wins. Every candidate is recorded in ``sweep`` (``alpha``: the cut on Φ,
    ``alpha_paper``: on the paper's scale) with the first-order prediction of the
    validation-loss change. This reuses the validation set that produced Φ, so the chosen α
    is optimistic.
    """
    phi, probs = _phi_probs(scores, probs)
    factor = float(scores.paper_factor)
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
            outcome = relabel_dataset(ds, scores, probs=probs, strategy=strategy, fraction=0.0,
                                      targets=targets, seed=seed)
            loss = base_loss
        else:
            outcome = relabel_dataset(ds, scores, probs=probs, strategy=strategy,
                                      phi_threshold=alpha, targets=targets, seed=seed)
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
        row["alpha_paper"] = (None if row["alpha"] is None or np.isnan(factor)
                              else row["alpha"] * factor)
        sweep.append(row)
        if best is None or loss < best[0] - 1e-12:
            best = (loss, alpha, outcome)
        if progress is not None:
            progress(i + 1, len(candidates))
    _, alpha, outcome = best
    outcome.phi_threshold = None if np.isinf(alpha) else alpha
    outcome.alpha = (None if outcome.phi_threshold is None or np.isnan(factor)
                     else outcome.phi_threshold * factor)
    outcome.fraction = None
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
    return kind_of(model).refit(cleaned, model, from_scratch=from_scratch, device=device, l2=l2,
                                net_options=net_options, progress=progress)


def retrain_cleaned(
    cleaned: Dataset,
    model: ModelFile,
    *,
    from_scratch: bool = False,
    device="cpu",
    l2: float | None = None,
    net_options: dict | None = None,
) -> tuple[ModelFile, dict | None]:
    """``retrain_model`` on a cleaned file as `rdia relabel` wrote it. An ``--strategy auto``
    file is refit as auto fitted it (the same model, bit for bit, where ``model`` is the one
    auto started from): from ``model`` with its Hessian as the preconditioner
    (``cleaning.auto.fit_from``; ``from_scratch``: from zero), to auto's tolerance, at the λ
    it chose (unless ``l2`` is given); where it blended with a fit on the clean rows
    alone (``part`` = 1; add them back first, ``cleaning.files.load_clean_rows``), the same blend.
    Returns the model and the blend used (``None`` when there is none)."""
    from rdia_cli.cleaning.auto import DEFAULT_POLICY, blend_models, fit_from
    from rdia_cli.cleaning.files import record_of

    relabel = record_of(cleaned)
    blend = relabel.get("blend") if l2 is None and "part" in cleaned.extra else None
    if l2 is None:  # the auto strategy tunes λ; keep what it chose
        l2 = relabel.get("l2")

    def refit(ds: Dataset, lam: float | None) -> ModelFile:
        if relabel.get("strategy") != "auto" or model.arch != "logreg":
            return retrain_model(ds, model, from_scratch=from_scratch, device=device, l2=lam,
                                 net_options=net_options)
        check_model_data(model, ds, "cleaned data")
        return fit_from(ds, model, l2=model.meta["l2"] if lam is None else lam,
                        tol=DEFAULT_POLICY.fit_tol, max_iter=DEFAULT_POLICY.max_iter,
                        device=device, from_scratch=from_scratch)

    model2 = refit(cleaned, l2)
    if blend:  # auto's model averages this fit with one on the clean rows alone
        clean = cleaned.subset((cleaned.extra["part"] == 1).nonzero()[0])
        model2 = blend_models(model2, refit(clean, blend["clean_only_l2"]),
                              blend["clean_only_share"])
    return model2, blend


def evaluate_model(model: ModelFile, ds: Dataset, *, device="cpu") -> dict:
    from rdia_cli.metrics import evaluate_probs

    check_model_data(model, ds, "test data")
    return evaluate_probs(probabilities(model, ds, device=device), ds.y)
