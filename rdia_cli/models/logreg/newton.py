"""Fitting logistic regression: Newton's method with Armijo backtracking, each step solved
directly (Cholesky of the explicit Hessian) or by conjugate gradient with a Jacobi /
frequent-column block preconditioner."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rdia_cli.errors import InputError, RuntimeFailure
from rdia_cli.linalg import conjugate_gradient
from rdia_cli.models.logreg.design import DENSE_MAX_ELEMENTS, sparse_cpu_threads
from rdia_cli.models.logreg.preconditioner import FrequentBlockJacobi

if TYPE_CHECKING:
    from rdia_cli.models.logreg.curvature import SharedCurvature
    from rdia_cli.models.logreg.problem import LogRegProblem

DIRECT_MAX_PARAMS = 2500  # explicit Hessian + Cholesky up to this many parameters
NOT_POSITIVE_DEFINITE = "the Hessian is not positive definite (Cholesky failed)"
# What to change then (``RdiaError.fixes``: the command line keeps the flags the command has):
# in an influence solve (score, run), and in training (train, retrain, run)
INFLUENCE_FIXES = (("damping", "add `damping`"), ("l2", "train with `l2` > 0"))
TRAINING_FIXES = (("l2", "use `l2` > 0"),)


def solve_direct(H, b, *, fixes=INFLUENCE_FIXES):
    """Cholesky solve; a clear error when H is not positive definite."""
    import torch

    L, info = torch.linalg.cholesky_ex(H)
    if int(info) != 0:
        raise RuntimeFailure(NOT_POSITIVE_DEFINITE, fixes=fixes)
    return torch.cholesky_solve(b.reshape(-1, 1), L).reshape(-1)


def choose_solver(problem: LogRegProblem, solver: str) -> str:
    if solver not in ("auto", "direct", "cg"):
        raise InputError(f"`solver` must be auto, direct or cg, not {solver!r}.")
    if solver != "auto":
        return solver
    fits = not problem.design.sparse or (
        problem.design.shape[0] * problem.design.shape[1] <= DENSE_MAX_ELEMENTS
    )
    return "direct" if problem.n_params <= DIRECT_MAX_PARAMS and fits else "cg"


@dataclass
class FitResult:
    theta: object
    loss: float
    grad_norm: float
    rel_grad_norm: float
    iterations: int
    converged: bool
    solver: str
    seconds: float
    cg_iterations: int = 0  # inner CG iterations over all Newton steps


BLOCK_FORCING = 1e-2  # Newton steps solved tighter than this get the frequent-block preconditioner


def fit(
    problem: LogRegProblem,
    *,
    theta0=None,
    tol: float = 1e-8,
    max_iter: int = 100,
    solver: str = "auto",
    progress: Callable[[int, float, float], None] | None = None,
    reference: SharedCurvature | None = None,
) -> FitResult:
    """Minimize the objective by Newton's method (direct or CG inner solves) with Armijo
    backtracking. Stops when ‖∇L_D(θ)‖ ≤ tol·‖∇L_D(0)‖. With ``reference`` (and ``solver``
    auto), each step is solved by conjugate gradient preconditioned with that shared Hessian
    (solver ``pcg``), where it fits this problem."""
    from contextlib import nullcontext

    from rdia_cli.models.logreg.arrays import TORCH

    # inference mode: no autograd bookkeeping on any op (a fit of tens of rows is mostly
    # per-operation overhead: 10-25% less CPU there); the parameters it returns are inference
    # tensors, which ``theta_to_state`` copies into ordinary ones
    quiet = nullcontext()
    if problem.xp is TORCH:
        import torch

        quiet = torch.inference_mode()
    with sparse_cpu_threads(problem.design), quiet:
        return _fit(problem, theta0=theta0, tol=tol, max_iter=max_iter, solver=solver,
                    progress=progress, reference=reference)


def _fit(problem, *, theta0, tol, max_iter, solver, progress, reference=None) -> FitResult:
    start = time.perf_counter()
    shared = None
    if solver == "auto" and reference is not None:
        shared = reference.preconditioner(problem)
        if shared is not None:
            solver = "pcg"
    if solver == "auto" and problem.n_params > 200:
        # a Newton step by Cholesky costs N·P² (K² Gram blocks for softmax); by CG about
        # 4·N·P per iteration, and the forcing tolerance needs few iterations
        solver = "cg"
    if solver != "pcg":
        solver = choose_solver(problem, solver)
    xp = problem.xp
    zero = problem.zeros()
    g0 = problem.gradient_at_zero()
    g0norm = max(xp.norm(g0), 1e-300)
    theta = zero if theta0 is None else xp.copy_as(theta0, zero)
    f, G, Z = problem.value_grad(theta)
    gnorm = xp.norm(G)
    it = cg_its = 0
    block = None  # built once the inner solves get tight, then kept (its diagonal refreshed)
    while gnorm > tol * g0norm and it < max_iter:
        g = G.reshape(-1)
        if solver == "direct":
            step = -xp.solve_spd(problem.hessian(Z), g, fixes=TRAINING_FIXES)
        else:
            rel = gnorm / g0norm
            # inexact Newton (forcing √rel), but no tighter than this step needs to reach tol:
            # the last step would otherwise over-solve by orders of magnitude
            forcing = min(0.5, max(math.sqrt(rel), 0.5 * tol / rel))
            precond = shared if shared is not None else problem.hessian_diagonal(Z)
            if shared is None and forcing <= BLOCK_FORCING:
                if block is None:
                    block = problem.preconditioner(Z)
                if isinstance(block, FrequentBlockJacobi):
                    block.diag = precond
                    precond = block
            res = conjugate_gradient(
                problem.hvp_operator(Z),
                -g,
                precond=precond,
                tol=forcing,
                max_iter=250,
            )
            step = res.x
            cg_its += res.iterations
        slope = float(g @ step)
        if slope >= 0:  # not a descent direction (numerical trouble): fall back to -g
            step, slope = -g, -float(g @ g)
        t = 1.0
        accepted = False
        for _ in range(40):
            cand = theta + t * step.reshape(theta.shape)
            f_new, G_new, Z_new = problem.value_grad(cand)
            if f_new <= f + 1e-4 * t * slope or (
                f_new <= f + 1e-12 * abs(f)
                and xp.norm(G_new) < gnorm
            ):
                accepted = True
                break
            t *= 0.5
        it += 1
        if not accepted:
            break
        theta, f, G, Z = cand, f_new, G_new, Z_new
        gnorm = xp.norm(G)
        if progress is not None:
            progress(it, f, gnorm / g0norm)
    return FitResult(
        theta=theta,
        loss=f,
        grad_norm=gnorm,
        rel_grad_norm=gnorm / g0norm,
        iterations=it,
        converged=gnorm <= tol * g0norm,
        solver=solver,
        seconds=time.perf_counter() - start,
        cg_iterations=cg_its,
    )
