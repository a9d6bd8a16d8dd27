"""Exact influence for logistic regression: one solve s = H⁻¹∇L_Q, then one pass over X.

Φ_i = -∇ℓ_i·s with ∇ℓ_i = x̃_i ⊗ r_i (r_i = (Σt) p_i - t_i), so Φ = -rowsum(R ∘ (X̃ S)): one
matrix product, never the N×P matrix of per-sample gradients. Sign and scale:
``rdia_cli.glossary``.

``device="numpy"`` runs the same code on numpy/scipy without importing torch when the solve is
direct (Cholesky); where the solver is (or ``auto`` picks) conjugate gradient, it runs in torch
on the CPU (``rdia_cli.models.logreg.arrays``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import RuntimeFailure
from rdia_cli.influence import ScoreResult
from rdia_cli.linalg import conjugate_gradient
from rdia_cli.models.io import ModelFile
from rdia_cli.models.logreg.arrays import NUMPY
from rdia_cli.models.logreg.problem import LogRegProblem, state_to_theta
from rdia_cli.models.logreg.solver_choice import choose_influence_solver


def problem_for(model: ModelFile, ds: Dataset, *, device, reduce=None, n_total=None,
                l2: float | None = None) -> LogRegProblem:
    """The training objective of ``model``'s kind on ``ds`` (targets and weights included)."""
    return LogRegProblem.from_arrays(
        ds.flat_X(),
        ds.targets(),
        ds.weight,
        n_classes=model.n_classes,
        l2=model.meta["l2"] if l2 is None else l2,
        fit_intercept=model.arch_args.get("fit_intercept", True),
        device=device,
        reduce=reduce,
        n_total=n_total,
    )


def score_logreg(
    model: ModelFile,
    train: Dataset,
    val: Dataset,
    *,
    solver: str = "auto",
    damping: float = 0.0,
    tol: float = 1e-10,
    max_iter: int = 1000,
    device="cpu",
    reduce=None,
    n_total: int | None = None,
    on_iter: Callable[[int, float], None] | None = None,
    solve: Callable | None = None,
) -> ScoreResult:
    """Φ for every row of ``train`` (this shard's rows under torch.distributed). ``solve``
    (from ``hessian_solver`` for the same model, rows and damping) replaces the solve with H."""
    from rdia_cli.models.logreg.design import sparse_cpu_threads

    t0 = time.perf_counter()
    prob = problem_for(model, train, device=device, reduce=reduce, n_total=n_total)
    try:
        with sparse_cpu_threads(prob.design):
            return _score(prob, model, train, val, solver=solver, damping=damping, tol=tol,
                          max_iter=max_iter, device=device, on_iter=on_iter, t0=t0,
                          solve=solve)
    except _NeedsTorch:  # numpy, but conjugate gradient: the whole solve in torch on the CPU
        from rdia_cli.device import threads_for

        with threads_for(train.n_samples * train.n_features * model.n_classes):
            return score_logreg(model, train, val, solver=solver, damping=damping, tol=tol,
                                max_iter=max_iter, device="cpu", on_iter=on_iter)


class _NeedsTorch(Exception):
    """The numpy backend was asked for conjugate gradient (which runs in torch)."""


def hessian_solver(model: ModelFile, train: Dataset, *, device="cpu",
                   damping: float = 0.0) -> Callable | None:
    """g ↦ H⁻¹g at ``model`` on ``train`` by one Cholesky factor, for scoring the same model and
    rows against many validation sets (``score_logreg(solve=)``: auto's folds); None where
    ``score_logreg`` would not solve directly on the CPU in torch."""
    from rdia_cli.models.logreg.arrays import TORCH
    from rdia_cli.models.logreg.newton import solve_direct

    prob = problem_for(model, train, device=device)
    if prob.xp is not TORCH or str(prob.design.device) != "cpu":
        return None
    Z = prob.logits(state_to_theta(model.state, fit_intercept=prob.fit_intercept))
    if choose_influence_solver(prob, Z, "auto", damping=damping).choice != "direct":
        return None
    import torch

    H = prob.hessian(Z, damping=damping)
    L, info = torch.linalg.cholesky_ex(H)
    if int(info) != 0:  # the solve itself says why, with its fixes
        return lambda g: solve_direct(H, g)
    return lambda g: torch.cholesky_solve(g.reshape(-1, 1), L).reshape(-1)


def _score(prob, model, train, val, *, solver, damping, tol, max_iter, device, on_iter, t0,
           solve=None):
    xp = prob.xp
    theta = state_to_theta(model.state, fit_intercept=prob.fit_intercept, device=prob.design.device)
    Z = prob.logits(theta)
    # mean validation gradient (validation rows are the same on every shard: no reduce)
    vprob = problem_for(model, val, device=device)
    vprob.w = xp.ones(vprob.w.shape[0], dtype=vprob.design.dtype, device=vprob.design.device)
    Zv = vprob.logits(theta)
    val_loss = float(vprob.row_losses(Zv).mean())
    g = vprob._grad_from_residual(vprob.residual(Zv)).reshape(-1)
    t_setup = time.perf_counter()

    # "auto": direct or CG by estimated cost (rdia_cli.models.logreg.solver_choice)
    estimate = None if solve is not None else choose_influence_solver(prob, Z, solver,
                                                                      damping=damping, tol=tol)
    solver = "direct" if estimate is None else estimate.choice
    if solver != "direct" and xp is NUMPY:
        raise _NeedsTorch
    matvec = prob.hvp_operator(Z, damping=damping)
    preconditioner = None
    if solve is not None:  # the caller's factor of this same H
        s = solve(g)
        iterations = 1
    elif solver == "direct":
        s = xp.solve_spd(prob.hessian(Z, damping=damping), g)
        iterations = 1
    else:
        try:
            precond = prob.preconditioner(Z, damping=damping)
            preconditioner = (f"frequent-block({len(precond.idx)})+jacobi"
                              if callable(precond) else "jacobi")
            res = conjugate_gradient(
                matvec, g, precond=precond,
                tol=tol, max_iter=max_iter, on_iter=on_iter,
            )
        except ArithmeticError as e:
            from rdia_cli.models.logreg.newton import INFLUENCE_FIXES

            raise RuntimeFailure(f"CG failed: {e}; the Hessian is not positive definite",
                                 fixes=INFLUENCE_FIXES) from None
        s, iterations = res.x, res.iterations
    gnorm = xp.norm(g)
    residual = xp.norm(matvec(s) - g) / max(gnorm, 1e-300)
    if not residual <= max(tol, 1e-8) * 100:
        raise RuntimeFailure(
            f"the influence solve did not converge (relative residual {residual:.2e} after "
            f"{iterations} iterations)",
            fixes=[("max_iter", "raise `max_iter`"), ("tol", "raise `tol`"),
                   ("damping", "add `damping`")],
        )
    t_solve = time.perf_counter()

    # one pass: Φ_i = -r_i · (x̃_i S)
    S = s.reshape(prob.shape)
    XS = prob.logits(S)
    R = prob.residual(Z)
    phi = -(R * XS).sum(1)
    P = prob.probs(Z)
    p_label = xp.take_labels(P, train.y)
    loss = prob.row_losses(Z)
    t_score = time.perf_counter()
    info = {
        "solver": solver,
        "hessian": "exact",
        "iterations": int(iterations),
        "preconditioner": preconditioner,
        "solver_estimate": None if estimate is None else estimate.as_info(),
        "residual": residual,
        "damping": float(damping),
        "l2": float(prob.l2),
        "n_params": int(prob.n_params),
        "flat_direction_projected": prob.flat_direction() is not None,
        "val_loss": val_loss,
        "setup_seconds": t_setup - t0,
        "solve_seconds": t_solve - t_setup,
        "score_seconds": t_score - t_solve,
    }
    return ScoreResult(
        phi=np.array(xp.numpy(phi), dtype=np.float64),
        p_label=np.array(xp.numpy(p_label), dtype=np.float64),
        loss=np.array(xp.numpy(loss), dtype=np.float64),
        info=info,
        probs=xp.numpy(P),
    )
