"""Linear solvers for H s = g: preconditioned conjugate gradient (matrix-free)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class CGResult:
    x: object  # torch.Tensor
    iterations: int
    residual: float  # ‖b - A x‖ / ‖b‖
    converged: bool


def conjugate_gradient(
    matvec: Callable,
    b,
    *,
    precond=None,
    x0=None,
    tol: float = 1e-10,
    max_iter: int = 1000,
    on_iter: Callable[[int, float], None] | None = None,
) -> CGResult:
    """Solve A x = b for symmetric positive definite A given as ``matvec``.

    ``precond`` is the diagonal of A (Jacobi), a callable r ↦ M⁻¹r (M symmetric positive
    definite), or None. Stops when ‖r‖ ≤ tol·‖b‖.
    Raises ``ArithmeticError`` on non-positive curvature (A not positive definite).
    """
    import torch

    bnorm = float(torch.linalg.vector_norm(b))
    if bnorm == 0.0:
        return CGResult(torch.zeros_like(b), 0, 0.0, True)
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - matvec(x) if x0 is not None else b.clone()
    if callable(precond):
        apply = precond
    elif precond is not None:
        def apply(v):
            return v / precond
    else:
        def apply(v):
            return v
    z = apply(r)
    p = z.clone()
    rz = torch.dot(r, z)
    res = float(torch.linalg.vector_norm(r)) / bnorm
    it = 0
    while res > tol and it < max_iter:
        Ap = matvec(p)
        pAp = torch.dot(p, Ap)
        if not float(pAp) > 0.0:
            raise ArithmeticError(f"non-positive curvature pᵀAp = {float(pAp):.3g} at CG step {it}")
        a = rz / pAp
        x.add_(p, alpha=float(a))
        r.sub_(Ap, alpha=float(a))
        z = apply(r)
        rz_new = torch.dot(r, z)
        p.mul_(float(rz_new / rz)).add_(z)
        rz = rz_new
        it += 1
        res = float(torch.linalg.vector_norm(r)) / bnorm
        if on_iter is not None:
            on_iter(it, res)
    return CGResult(x, it, res, res <= tol)
