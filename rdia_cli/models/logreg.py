"""Logistic regression: binary (one logit, sigmoid) and multinomial (softmax, K > 2).

Objective (see ``rdia_cli.glossary``)::

    L_D(θ) = (1/N) Σ_i w_i ℓ(t_i, p_i) + (λ/2) ‖W‖²,   ℓ(t, p) = -Σ_k t_k log p_k

with the intercept unpenalized. Targets may be soft and need not sum to one (paper Eq. 12 gives
vectors that do not); the gradient with respect to the logits is then (Σ_k t_k) p - t.

Parameters are one matrix Θ of shape (P [+1], C'): the rows of W, then the intercept row when
``fit_intercept``; C' = 1 for K = 2, else K. Everything runs in torch (float64 by default) on the
chosen device; sparse X is a CSR tensor with int32 indices, kept sparse throughout.

With an intercept, the multinomial objective is flat along "add the same constant to every
class's intercept". All gradients are orthogonal to that direction, so Newton steps and
influence solves use H + uuᵀ (u the unit flat direction): the solution is exactly the one in
the range of H, with no silent damping.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from rdia_cli.errors import InputError, RuntimeFailure

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")

DIRECT_MAX_PARAMS = 2500  # explicit Hessian + Cholesky up to this many parameters
DENSE_MAX_ELEMENTS = 50_000_000  # sparse X densified for the explicit Hessian below this size


def _identity(t):
    return t


class Design:
    """The design matrix X on a device: ``X @ W`` and ``Xᵀ @ G`` for dense or CSR data."""

    def __init__(self, X, *, device, dtype):
        import torch

        self.device = device
        self.dtype = dtype
        self.shape = tuple(X.shape)
        self.sparse = sp.issparse(X)
        self._scipy = None
        if self.sparse:
            X = X.tocsr()
            if device.type == "cpu":
                self._scipy = X  # for the explicit Hessian's sparse Gram matrix
            small = X.nnz < 2**31 - 1
            idx = torch.int32 if small else torch.int64
            self._X = self._csr(X, idx, device, dtype)
            self._XT = self._csr(X.T.tocsr(), idx, device, dtype)
        else:
            X = np.asarray(X)
            if X.ndim > 2:
                X = X.reshape(X.shape[0], -1)
            self._X = torch.as_tensor(X, device=device).to(dtype)
            self._XT = None

    @staticmethod
    def _csr(A, idx, device, dtype):
        import torch

        return torch.sparse_csr_tensor(
            torch.from_numpy(A.indptr).to(idx),
            torch.from_numpy(A.indices).to(idx),
            torch.from_numpy(A.data).to(dtype),
            size=A.shape,
            device=device,
            check_invariants=False,
        )

    def mm(self, W):
        return self._X @ W

    def rmm(self, G):
        return (self._XT @ G) if self.sparse else self._X.T @ G

    def col_sq_sums(self, c):
        """Σ_i c_i x_ia² for every column a (Jacobi preconditioner)."""
        import torch

        if self.sparse:
            XT = self._XT
            X2T = torch.sparse_csr_tensor(
                XT.crow_indices(), XT.col_indices(), XT.values() ** 2, size=XT.shape,
                check_invariants=False,
            )
            return X2T @ c
        return (self._X**2).T @ c

    def gram(self, coef, *, intercept: bool):
        """X̃ᵀ diag(coef) X̃ with X̃ = [X, 1] when ``intercept`` (explicit Hessian blocks)."""
        import torch

        if self._scipy is not None:
            c = coef.detach().cpu().numpy()
            Xc = self._scipy.multiply(c[:, None]).tocsr()
            G = np.asarray((self._scipy.T @ Xc).todense())
            if intercept:
                col = np.asarray(Xc.sum(0)).ravel()
                G = np.block([[G, col[:, None]], [col[None, :], np.array([[c.sum()]])]])
            return torch.as_tensor(G, dtype=coef.dtype, device=coef.device)
        X = self.dense()
        Xc = X * coef[:, None]
        G = X.T @ Xc
        if intercept:
            col = Xc.sum(0)
            top = torch.cat([G, col[:, None]], 1)
            bottom = torch.cat([col, coef.sum().reshape(1)])[None, :]
            G = torch.cat([top, bottom], 0)
        return G

    def dense(self):
        """X as a dense tensor (only for the explicit Hessian of small problems; cached)."""
        if not self.sparse:
            return self._X
        if self.shape[0] * self.shape[1] > DENSE_MAX_ELEMENTS:
            raise InputError(
                f"the explicit Hessian needs X dense ({self.shape[0]}×{self.shape[1]}), "
                "which is too large; use --solver cg."
            )
        if getattr(self, "_dense", None) is None:
            self._dense = self._X.to_dense()
        return self._dense


@dataclass
class LogRegProblem:
    """Objective, gradient, Hessian products and per-row quantities on one dataset."""

    design: Design
    T: object  # (N, K) target tensor
    w: object  # (N,) weights tensor
    n_classes: int
    l2: float
    fit_intercept: bool
    n_total: int  # N over all shards (== N without torch.distributed)
    reduce: Callable = _identity  # sums across shards (all_reduce) or identity

    # --- construction --------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls, X, targets, weight, *, n_classes, l2, fit_intercept=True, device="cpu",
        dtype=None, reduce=None, n_total=None,
    ):
        import torch

        dtype = dtype or torch.float64
        device = torch.device(device)
        design = Design(X, device=device, dtype=dtype)
        T = torch.as_tensor(np.asarray(targets), device=device).to(dtype)
        n = T.shape[0]
        w = (
            torch.ones(n, device=device, dtype=dtype)
            if weight is None
            else torch.as_tensor(np.asarray(weight), device=device).to(dtype)
        )
        return cls(
            design, T, w, n_classes, float(l2), bool(fit_intercept),
            int(n_total if n_total is not None else n), reduce or _identity,
        )

    # --- parameter layout -------------------------------------------------------------------
    @property
    def n_out(self) -> int:
        return 1 if self.n_classes == 2 else self.n_classes

    @property
    def n_features(self) -> int:
        return self.design.shape[1]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_features + int(self.fit_intercept), self.n_out)

    @property
    def n_params(self) -> int:
        return self.shape[0] * self.shape[1]

    def zeros(self):
        import torch

        return torch.zeros(self.shape, device=self.design.device, dtype=self.design.dtype)

    def _split(self, theta):
        if self.fit_intercept:
            return theta[:-1], theta[-1]
        return theta, None

    def flat_direction(self):
        """Unit vector along which the multinomial objective is flat, or None."""
        if self.n_out == 1 or not self.fit_intercept:
            return None
        u = self.zeros()
        u[-1] = 1.0 / math.sqrt(self.n_out)
        return u.reshape(-1)

    # --- per-row quantities -------------------------------------------------------------------
    def logits(self, theta):
        W, b = self._split(theta)
        Z = self.design.mm(W)
        return Z + b if b is not None else Z

    def probs(self, Z):
        """(N, K) class probabilities from logits."""
        import torch

        if self.n_out == 1:
            p1 = torch.sigmoid(Z[:, 0])
            return torch.stack([1 - p1, p1], dim=1)
        return torch.softmax(Z, dim=1)

    def row_losses(self, Z, T=None):
        """ℓ(t_i, p_i) for every row (numerically stable)."""
        import torch.nn.functional as F

        T = self.T if T is None else T
        if self.n_out == 1:
            z = Z[:, 0]
            return T[:, 1] * F.softplus(-z) + T[:, 0] * F.softplus(z)
        return -(T * F.log_softmax(Z, dim=1)).sum(1)

    def residual(self, Z, T=None):
        """∂ℓ_i/∂z_i: (Σt) p - t, shape (N, C')."""
        import torch

        T = self.T if T is None else T
        s = T.sum(1, keepdim=True)
        if self.n_out == 1:
            return s * torch.sigmoid(Z) - T[:, 1:2]
        return s * torch.softmax(Z, dim=1) - T

    # --- objective ------------------------------------------------------------------------------
    def _penalty(self, theta):
        W, _ = self._split(theta)
        return 0.5 * self.l2 * float((W * W).sum())

    def value(self, theta) -> float:
        Z = self.logits(theta)
        return float(self.reduce((self.w * self.row_losses(Z)).sum())) / self.n_total + (
            self._penalty(theta)
        )

    def value_grad(self, theta):
        """(objective, gradient Θ-shaped, cache for Hessian products)."""
        Z = self.logits(theta)
        R = self.residual(Z) * self.w[:, None]
        f = float(self.reduce((self.w * self.row_losses(Z)).sum())) / self.n_total
        f += self._penalty(theta)
        G = self._grad_from_residual(R)
        W, _ = self._split(theta)
        G[: self.n_features] += self.l2 * W
        return f, G, Z

    def _grad_from_residual(self, R):
        """(1/N) Σ_i ∇_Θ of the per-row terms whose logit gradients are R (no penalty)."""
        import torch

        parts = [self.design.rmm(R)]
        if self.fit_intercept:
            parts.append(R.sum(0, keepdim=True))
        return self.reduce(torch.cat(parts, 0)) / self.n_total

    def _curvature(self, Z):
        """What the Hessian product needs at logits Z: per-row d (binary) or p (multinomial)."""
        import torch

        s = self.T.sum(1) * self.w
        if self.n_out == 1:
            p = torch.sigmoid(Z[:, 0])
            return s * p * (1 - p), None
        return s, torch.softmax(Z, dim=1)

    def hvp_operator(self, Z, *, damping: float = 0.0, add_flat: bool = True):
        """Return v ↦ (H + δI [+ uuᵀ]) v on flat vectors, at logits Z."""
        d, P = self._curvature(Z)
        u = self.flat_direction() if add_flat else None
        shape = self.shape
        nf = self.n_features

        def matvec(v):
            V = v.reshape(shape)
            U = self.logits(V) if self.fit_intercept else self.design.mm(V)
            if P is None:
                HU = d[:, None] * U
            else:
                HU = d[:, None] * (P * U - P * (P * U).sum(1, keepdim=True))
            out = self._grad_from_residual(HU)
            out[:nf] += self.l2 * V[:nf]
            out = out.reshape(-1)
            if damping:
                out = out + damping * v
            if u is not None:
                out = out + u * (u @ v)
            return out

        return matvec

    def hessian_diagonal(self, Z, *, damping: float = 0.0):
        """diag(H + δI [+ uuᵀ]) as a flat vector (Jacobi preconditioner)."""
        import torch

        d, P = self._curvature(Z)
        c = d[:, None] if P is None else d[:, None] * P * (1 - P)
        parts = [self.design.col_sq_sums(c)]
        if self.fit_intercept:
            parts.append(c.sum(0, keepdim=True))
        D = self.reduce(torch.cat(parts, 0)) / self.n_total
        D[: self.n_features] += self.l2
        D = D.reshape(-1) + damping
        u = self.flat_direction()
        if u is not None:
            D = D + u * u
        return torch.clamp(D, min=1e-12)

    def hessian(self, Z, *, damping: float = 0.0):
        """The explicit (n_params × n_params) matrix H + δI [+ uuᵀ] (small problems only)."""
        import torch

        d, P = self._curvature(Z)
        A, C = self.n_features + int(self.fit_intercept), self.n_out
        H = torch.zeros(A, C, A, C, dtype=d.dtype, device=d.device)
        for c in range(C):
            for e in range(c, C):
                if P is None:
                    coef = d
                else:
                    coef = d * (P[:, c] * ((1.0 if c == e else 0.0) - P[:, e]))
                G = self.reduce(self.design.gram(coef, intercept=self.fit_intercept))
                G = G / self.n_total
                H[:, c, :, e] = G
                if e != c:
                    H[:, e, :, c] = G
        H = H.reshape(A * C, A * C)
        reg = torch.zeros(A, C, dtype=d.dtype, device=d.device)
        reg[: self.n_features] = self.l2
        H += torch.diag(reg.reshape(-1) + damping)
        u = self.flat_direction()
        if u is not None:
            H += torch.outer(u, u)
        return H


def solve_direct(H, b):
    """Cholesky solve; a clear error when H is not positive definite."""
    import torch

    L, info = torch.linalg.cholesky_ex(H)
    if int(info) != 0:
        raise RuntimeFailure(
            "the Hessian is not positive definite (Cholesky failed); "
            "use --l2 > 0 or add --damping."
        )
    return torch.cholesky_solve(b.reshape(-1, 1), L).reshape(-1)


def choose_solver(problem: LogRegProblem, solver: str) -> str:
    if solver not in ("auto", "direct", "cg"):
        raise InputError(f"--solver must be auto, direct or cg, not {solver!r}.")
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


def fit(
    problem: LogRegProblem,
    *,
    theta0=None,
    tol: float = 1e-8,
    max_iter: int = 100,
    solver: str = "auto",
    progress: Callable[[int, float, float], None] | None = None,
) -> FitResult:
    """Minimize the objective by Newton's method (direct or CG inner solves) with Armijo
    backtracking. Stops when ‖∇L_D(θ)‖ ≤ tol·‖∇L_D(0)‖."""
    import torch

    from rdia_cli.influence.solvers import conjugate_gradient

    start = time.perf_counter()
    solver = choose_solver(problem, solver)
    zero = problem.zeros()
    _, g0, _ = problem.value_grad(zero)
    g0norm = max(float(torch.linalg.vector_norm(g0)), 1e-300)
    theta = zero if theta0 is None else theta0.to(zero).clone()
    f, G, Z = problem.value_grad(theta)
    gnorm = float(torch.linalg.vector_norm(G))
    it = 0
    while gnorm > tol * g0norm and it < max_iter:
        g = G.reshape(-1)
        if solver == "direct":
            step = -solve_direct(problem.hessian(Z), g)
        else:
            forcing = min(0.5, math.sqrt(gnorm / g0norm))
            res = conjugate_gradient(
                problem.hvp_operator(Z),
                -g,
                precond=problem.hessian_diagonal(Z),
                tol=forcing,
                max_iter=250,
            )
            step = res.x
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
                and float(torch.linalg.vector_norm(G_new)) < gnorm
            ):
                accepted = True
                break
            t *= 0.5
        it += 1
        if not accepted:
            break
        theta, f, G, Z = cand, f_new, G_new, Z_new
        gnorm = float(torch.linalg.vector_norm(G))
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
    )


def theta_to_state(theta, *, fit_intercept: bool) -> dict:
    """Model-file state: ``weight`` (P, C') and ``bias`` (C',) float64 CPU tensors."""
    import torch

    theta = theta.detach().cpu().to(torch.float64)
    if fit_intercept:
        return {"weight": theta[:-1].clone(), "bias": theta[-1].clone()}
    return {"weight": theta.clone(), "bias": torch.zeros(theta.shape[1], dtype=torch.float64)}


def state_to_theta(state: dict, *, fit_intercept: bool, device="cpu", dtype=None):
    import torch

    dtype = dtype or torch.float64
    W = state["weight"].to(device=device, dtype=dtype)
    if fit_intercept:
        return torch.cat([W, state["bias"].to(device=device, dtype=dtype)[None, :]], 0)
    return W.clone()


def predict_proba(state: dict, X, *, n_classes: int, device="cpu", batch_rows: int = 1 << 20):
    """(N, K) float64 numpy probabilities of a logistic-regression state on X (dense/CSR)."""
    import torch

    W = state["weight"].to(device=device, dtype=torch.float64)
    b = state["bias"].to(device=device, dtype=torch.float64)
    if not sp.issparse(X):
        X = np.asarray(X)
        if X.ndim > 2:
            X = X.reshape(X.shape[0], -1)
    out = []
    for start in range(0, X.shape[0], batch_rows):
        design = Design(X[start : start + batch_rows], device=device, dtype=torch.float64)
        Z = design.mm(W) + b
        if n_classes == 2:
            p1 = torch.sigmoid(Z[:, 0])
            P = torch.stack([1 - p1, p1], 1)
        else:
            P = torch.softmax(Z, 1)
        out.append(P.cpu().numpy())
    return np.concatenate(out, 0) if out else np.zeros((0, n_classes))
