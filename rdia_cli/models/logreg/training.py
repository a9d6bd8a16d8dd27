"""Logistic regression from a Dataset to a model file (λ = 1/N by default, Newton to tol)."""

from __future__ import annotations

from collections.abc import Callable

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError, RuntimeFailure
from rdia_cli.models.common import check_trainable, schema_meta
from rdia_cli.models.io import ModelFile


def train_logreg(
    ds: Dataset,
    *,
    l2: float | None = None,
    fit_intercept: bool = True,
    tol: float = 1e-8,
    max_iter: int = 100,
    solver: str = "auto",
    device="cpu",
    init: ModelFile | None = None,
    progress: Callable[[int, float, float], None] | None = None,
    reduce=None,
    n_total: int | None = None,
    record_fingerprint: bool = True,
    reference=None,
) -> ModelFile:
    """Logistic regression to ‖∇L_D‖ ≤ tol·‖∇L_D(0)‖; λ defaults to 1/N (scikit-learn's C = 1).

    ``init`` warm-starts from a model of the same feature and label space; ``reference`` (a
    ``SharedCurvature``) preconditions the Newton steps of solver auto.
    """
    from rdia_cli.models.logreg.newton import fit
    from rdia_cli.models.logreg.problem import LogRegProblem, state_to_theta, theta_to_state

    check_trainable(ds)
    n_all = n_total if n_total is not None else ds.n_samples
    l2 = 1.0 / n_all if l2 is None else float(l2)
    if l2 < 0:
        raise InputError(f"`l2` must be ≥ 0, not {l2}.")
    problem = LogRegProblem.from_arrays(
        ds.flat_X(), ds.targets(), ds.weight, n_classes=ds.n_classes, l2=l2,
        fit_intercept=fit_intercept, device=device, reduce=reduce, n_total=n_total,
    )
    theta0 = None
    if init is not None:
        theta0 = state_to_theta(init.state, fit_intercept=fit_intercept,
                                device=problem.design.device)
        if tuple(theta0.shape) != problem.shape:
            raise InputError(
                f"cannot warm-start from `{init.path}`: its parameters have shape "
                f"{tuple(theta0.shape)}, this data needs {problem.shape}."
            )
    from rdia_cli.device import threads_for

    with threads_for(ds.n_samples * ds.n_features * problem.n_out):
        result = fit(problem, theta0=theta0, tol=tol, max_iter=max_iter, solver=solver,
                     progress=progress, reference=reference)
    if not result.converged and result.rel_grad_norm > max(tol * 1e3, 1e-5):
        raise RuntimeFailure(
            f"training did not converge: relative gradient norm {result.rel_grad_norm:.2e} after "
            f"{result.iterations} Newton steps (tol {tol:g})",
            fixes=[("max_iter", "raise `max_iter`"), ("l2", "raise `l2`")],
        )
    meta = schema_meta(ds)
    meta.update(
        {
            "l2": l2,
            "train_fingerprint": ds.fingerprint() if record_fingerprint else None,
            "n_train": n_all,
            "training": {"tol": tol, "max_iter": max_iter, "solver": result.solver,
                         "warm_start": init is not None},
            "metrics": {
                "train_objective": result.loss,
                "grad_norm": result.grad_norm,
                "rel_grad_norm": result.rel_grad_norm,
                "iterations": result.iterations,
                "cg_iterations": result.cg_iterations,
                "converged": bool(result.converged),
                "seconds": result.seconds,
            },
        }
    )
    return ModelFile(
        arch="logreg",
        arch_args={"fit_intercept": bool(fit_intercept), "n_classes": ds.n_classes,
                   "n_features": ds.n_features},
        state=theta_to_state(result.theta, fit_intercept=fit_intercept),
        meta=meta,
    )
