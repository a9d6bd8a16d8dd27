"""Numerical kernels that models and influence both need: matrix-free conjugate gradient.

Base layer: imports torch lazily (inside functions) and nothing else of the package, so
``import rdia_cli.linalg`` stays cheap and both the Newton fit (``models.logreg``) and the
influence solves (``influence.logreg``, ``influence.nets``) can use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass
class SolveResult:
    """Outcome of an iterative solve of A x = b."""

    x: torch.Tensor
    iterations: int
    residual: float  # relative residual ‖r‖/‖b‖ of the recursively updated r
    converged: bool  # residual ≤ tol (after at least ``min_iter`` steps)


class CGBreakdown(ArithmeticError):
    """Conjugate gradient cannot go on: non-positive (or non-finite) curvature pᵀAp, or a
    diverging residual. ``kind`` is "curvature" or "divergence", ``value`` the offending pᵀAp
    or relative residual, ``iteration`` the 1-based step in which it happened."""

    def __init__(self, message: str, *, kind: str, value: float, iteration: int):
        super().__init__(message)
        self.kind, self.value, self.iteration = kind, value, iteration


def conjugate_gradient(
    matvec: Callable[[Any], Any],
    b,
    *,
    tol: float,
    max_iter: int,
    precond=None,
    min_iter: int = 0,
    residual_norm: str = "norm",
    fused_updates: bool = True,
    diverge: float | None = None,
    on_iter: Callable[[int, float], None] | None = None,
) -> SolveResult:
    """Solve A x = b for symmetric positive definite A given as ``matvec``, from x₀ = 0;
    ``b`` a torch tensor, or a numpy array (then every vector operation is numpy's).

    ``precond`` is the diagonal of A (Jacobi), a callable r ↦ M⁻¹r (M symmetric positive
    definite), or None. Stops when ‖r‖/‖b‖ ≤ tol (r the recursively updated residual, the
    test skipped before ``min_iter`` steps) or after ``max_iter`` steps; ``on_iter(k, ‖r‖/‖b‖)``
    after each step k. The options below choose between equivalent formulas, each kept because
    callers' results must not change by a bit:

    - ``residual_norm``: ‖r‖ as ``torch.linalg.vector_norm(r)`` ("norm") or as √(rᵀr) ("dot",
      reusing rᵀz when there is no preconditioner);
    - ``fused_updates``: x += αp and r -= αAp as one multiply-add per element
      (``Tensor.add_(alpha=)``, True) or as a scaled copy then an add (False);
    - ``diverge``: None, or a bound on ‖r‖/‖b‖; when set, a non-finite pᵀAp or residual or a
      residual above the bound also breaks down.

    Scalars (rᵀz, pᵀAp, α, β) are Python floats; α and β are rounded to ``b``'s dtype where
    they scale a vector, which gives the same bits as dividing in that dtype.
    Raises ``CGBreakdown`` (an ``ArithmeticError``) on non-positive curvature pᵀAp ≤ 0 (A not
    positive definite) or, with ``diverge``, on divergence.
    """
    if residual_norm not in ("norm", "dot"):
        raise ValueError(f"residual_norm must be 'norm' or 'dot', not {residual_norm!r}")
    ops = _NumpyVectors if isinstance(b, np.ndarray) else _TorchVectors
    bnorm = ops.norm(b)
    x = ops.zeros_like(b)
    if bnorm == 0.0:
        return SolveResult(x, 0, 0.0, True)
    if callable(precond):
        apply = precond
    elif precond is not None:
        def apply(v):
            return v / precond
    else:
        def apply(v):
            return v
    r = ops.copy(b)
    z = apply(r)
    rz = ops.dot(r, z)
    res = 1.0 if math.isfinite(bnorm) else math.nan  # ‖r₀‖/‖b‖ with r₀ = b
    it = 0
    p = rz_prev = None
    while it < max_iter and (it < min_iter or res > tol):
        p = ops.copy(z) if p is None else z + (rz / rz_prev) * p
        Ap = matvec(p)
        pAp = ops.dot(p, Ap)
        if not pAp > 0.0 or (diverge is not None and not math.isfinite(pAp)):
            raise CGBreakdown(f"non-positive curvature pᵀAp = {pAp:.3g} at CG step {it}",
                              kind="curvature", value=pAp, iteration=it + 1)
        alpha = rz / pAp
        if fused_updates and ops is _TorchVectors:
            x.add_(p, alpha=alpha)
            r.sub_(Ap, alpha=alpha)
        else:
            x += alpha * p
            r -= alpha * Ap
        z = apply(r)
        rz_prev, rz = rz, ops.dot(r, z)
        it += 1
        if residual_norm == "norm":
            res = ops.norm(r) / bnorm
        else:
            res = math.sqrt(rz if precond is None else ops.dot(r, r)) / bnorm
        if on_iter is not None:
            on_iter(it, res)
        if diverge is not None and (not math.isfinite(res) or res > diverge):
            raise CGBreakdown(f"relative residual {res:.3g} at CG step {it - 1}",
                              kind="divergence", value=res, iteration=it)
    return SolveResult(x, it, res, it >= min_iter and res <= tol)


class _TorchVectors:
    """The vector operations of ``conjugate_gradient`` on torch tensors (the calls it always
    made: the same results bit for bit)."""

    @staticmethod
    def norm(v) -> float:
        import torch

        return float(torch.linalg.vector_norm(v))

    @staticmethod
    def dot(u, v) -> float:
        import torch

        return float(torch.dot(u, v))

    @staticmethod
    def zeros_like(v):
        import torch

        return torch.zeros_like(v)

    @staticmethod
    def copy(v):
        return v.clone()


class _NumpyVectors:
    """… on numpy arrays: the Newton fits of tens of rows (``models.logreg.newton``), whose
    torch ops cost more in per-call overhead than in arithmetic."""

    @staticmethod
    def norm(v) -> float:
        return math.sqrt(float(v @ v))

    @staticmethod
    def dot(u, v) -> float:
        return float(u @ v)

    @staticmethod
    def zeros_like(v):
        return np.zeros_like(v)

    @staticmethod
    def copy(v):
        return v.copy()
