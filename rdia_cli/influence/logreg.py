"""Exact influence for logistic regression: one solve s = H⁻¹∇L_Q, then one pass over X.

Φ_i = -∇ℓ_i·s with ∇ℓ_i = x̃_i ⊗ r_i (r_i = (Σt) p_i - t_i), so Φ = -rowsum(R ∘ (X̃ S)): one
matrix product, never the N×P matrix of per-sample gradients. Sign and scale:
``rdia_cli.glossary``.
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
from rdia_cli.models.logreg.newton import solve_direct
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
) -> ScoreResult:
    """Φ for every row of ``train`` (this shard's rows under torch.distributed)."""
    from rdia_cli.models.logreg.design import sparse_cpu_threads

    t0 = time.perf_counter()
    prob = problem_for(model, train, device=device, reduce=reduce, n_total=n_total)
    with sparse_cpu_threads(prob.design):
        return _score(prob, model, train, val, solver=solver, damping=damping, tol=tol,
                      max_iter=max_iter, device=device, on_iter=on_iter, t0=t0)


def _score(prob, model, train, val, *, solver, damping, tol, max_iter, device, on_iter, t0):
    import torch

    theta = state_to_theta(model.state, fit_intercept=prob.fit_intercept, device=prob.design.device)
    Z = prob.logits(theta)
    # mean validation gradient (validation rows are the same on every shard: no reduce)
    vprob = problem_for(model, val, device=device)
    vprob.w = torch.ones_like(vprob.w)
    Zv = vprob.logits(theta)
    val_loss = float(vprob.row_losses(Zv).mean())
    g = vprob._grad_from_residual(vprob.residual(Zv)).reshape(-1)
    t_setup = time.perf_counter()

    # "auto": direct or CG by estimated cost (rdia_cli.models.logreg.solver_choice)
    estimate = choose_influence_solver(prob, Z, solver, damping=damping, tol=tol)
    solver = estimate.choice
    matvec = prob.hvp_operator(Z, damping=damping)
    preconditioner = None
    if solver == "direct":
        s = solve_direct(prob.hessian(Z, damping=damping), g)
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
            raise RuntimeFailure(f"CG failed: {e}; the Hessian is not positive definite, "
                                 "add --damping or use --l2 > 0.") from None
        s, iterations = res.x, res.iterations
    gnorm = float(torch.linalg.vector_norm(g))
    residual = float(torch.linalg.vector_norm(matvec(s) - g)) / max(gnorm, 1e-300)
    if not residual <= max(tol, 1e-8) * 100:
        raise RuntimeFailure(
            f"the influence solve did not converge (relative residual {residual:.2e} after "
            f"{iterations} iterations); raise --max-iter or --tol, or add --damping."
        )
    t_solve = time.perf_counter()

    # one pass: Φ_i = -r_i · (x̃_i S)
    S = s.reshape(prob.shape)
    XS = prob.logits(S)
    R = prob.residual(Z)
    phi = -(R * XS).sum(1)
    P = prob.probs(Z)
    y = torch.as_tensor(train.y, device=P.device)
    p_label = P.gather(1, y[:, None])[:, 0]
    loss = prob.row_losses(Z)
    t_score = time.perf_counter()
    info = {
        "solver": solver,
        "hessian": "exact",
        "iterations": int(iterations),
        "preconditioner": preconditioner,
        "solver_estimate": estimate.as_info(),
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
        phi=phi.detach().cpu().numpy().astype(np.float64),
        p_label=p_label.detach().cpu().numpy().astype(np.float64),
        loss=loss.detach().cpu().numpy().astype(np.float64),
        info=info,
        probs=P.detach().cpu().numpy().astype(np.float64, copy=False),
    )
