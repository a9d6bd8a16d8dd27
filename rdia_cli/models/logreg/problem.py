"""Logistic regression: binary (one logit, sigmoid) and multinomial (softmax, K > 2).

Objective (see ``rdia_cli.glossary``)::

    L_D(θ) = (1/N) Σ_i w_i ℓ(t_i, p_i) + (λ/2) ‖W‖²,   ℓ(t, p) = -Σ_k t_k log p_k

with the intercept unpenalized. Targets may be soft and need not sum to one (paper Eq. 12 gives
vectors that do not); the gradient with respect to the logits is then (Σ_k t_k) p - t.

Parameters are one matrix Θ of shape (P [+1], C'): the rows of W, then the intercept row when
``fit_intercept``; C' = 1 for K = 2, else K. Everything runs in torch (float64 by default) on the
chosen device; sparse X is a CSR tensor with int32 indices, kept sparse throughout. With
``device="numpy"`` the same code runs on numpy/scipy arrays on the CPU, without torch
(``rdia_cli.models.logreg.arrays``: ``self.xp`` holds the few functions that differ).

With an intercept, the multinomial objective is flat along "add the same constant to every
class's intercept". All gradients are orthogonal to that direction, so Newton steps and
influence solves use H + uuᵀ (u the unit flat direction): the solution is exactly the one in
the range of H, with no silent damping.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from rdia_cli.models.logreg.arrays import TORCH, NumpyDesign, as_numpy, is_numpy
from rdia_cli.models.logreg.design import Design, identity, sparse_cpu_threads
from rdia_cli.models.logreg.preconditioner import BLOCK_COLUMNS, FrequentBlockJacobi

BATCHED_HESSIAN_WORK = 800_000  # N·A² up to which softmax Hessians take one batched product
SMALL_DENSE = 200_000  # N·P up to which Hessian-vector products use [X, 1] (``_with_ones``)


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
    reduce: Callable = identity  # sums across shards (all_reduce) or identity
    _softmax_of: tuple | None = field(default=None, repr=False, compare=False)  # (Z, P)

    # --- construction --------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls, X, targets, weight, *, n_classes, l2, fit_intercept=True, device="cpu",
        dtype=None, reduce=None, n_total=None,
    ):
        if is_numpy(device):
            design = NumpyDesign(X)
        else:
            import torch

            design = Design(X, device=torch.device(device), dtype=dtype or torch.float64)
        xp, device, dtype = design.xp, design.device, design.dtype
        T = xp.asarray(targets, device=device, dtype=dtype)
        n = T.shape[0]
        w = (
            xp.ones(n, device=device, dtype=dtype)
            if weight is None
            else xp.asarray(weight, device=device, dtype=dtype)
        )
        return cls(
            design, T, w, n_classes, float(l2), bool(fit_intercept),
            int(n_total if n_total is not None else n), reduce or identity,
        )

    @property
    def xp(self):
        """The array library's functions (``arrays.TORCH`` or ``arrays.NUMPY``)."""
        return self.design.xp

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
        return self.xp.zeros(self.shape, device=self.design.device, dtype=self.design.dtype)

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
        xp = self.xp
        if self.n_out == 1:
            p1 = xp.sigmoid(Z[:, 0])
            return xp.stack([1 - p1, p1], axis=1)
        return xp.softmax(Z)

    def row_losses(self, Z, T=None):
        """ℓ(t_i, p_i) for every row (numerically stable)."""
        xp = self.xp
        T = self.T if T is None else T
        if self.n_out == 1:
            z = Z[:, 0]
            return T[:, 1] * xp.softplus(-z) + T[:, 0] * xp.softplus(z)
        return -(T * xp.log_softmax(Z)).sum(1)

    def residual(self, Z, T=None):
        """∂ℓ_i/∂z_i: (Σt) p - t, shape (N, C')."""
        xp = self.xp
        T = self.T if T is None else T
        s = T.sum(axis=1, keepdims=True)
        if self.n_out == 1:
            return s * xp.sigmoid(Z) - T[:, 1:2]
        P = xp.softmax(Z)
        self._softmax_of = (Z, P)  # the Hessian products at the same logits reuse it
        return s * P - T

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

    def gradient_at_zero(self):
        """``value_grad(zeros)``'s gradient without its logits, (log-)softmax and losses: at
        Θ = 0 every probability is 1/C' (½ for one logit), so the residual is known."""
        s = self.T.sum(axis=1, keepdims=True)
        if self.n_out == 1:
            R = s * 0.5 - self.T[:, 1:2]
        else:
            R = s * (1.0 / self.n_out) - self.T
        return self._grad_from_residual(R * self.w[:, None])

    def _grad_from_residual(self, R):
        """(1/N) Σ_i ∇_Θ of the per-row terms whose logit gradients are R (no penalty)."""
        parts = [self.design.rmm(R)]
        if self.fit_intercept:
            parts.append(R.sum(axis=0, keepdims=True))
        return self.reduce(self.xp.concat(parts, 0)) / self.n_total

    def _curvature(self, Z):
        """What the Hessian product needs at logits Z: per-row d (binary) or p (multinomial)."""
        s = self.T.sum(1) * self.w
        if self.n_out == 1:
            p = self.xp.sigmoid(Z[:, 0])
            return s * p * (1 - p), None
        cached = self._softmax_of
        return s, cached[1] if cached is not None and cached[0] is Z else self.xp.softmax(Z)

    def hvp_operator(self, Z, *, damping: float = 0.0, add_flat: bool = True):
        """Return v ↦ (H + δI [+ uuᵀ]) v on flat vectors, at logits Z."""
        d, P = self._curvature(Z)
        u = self.flat_direction() if add_flat else None
        shape = self.shape
        nf = self.n_features
        dP = d[:, None] if P is None else d[:, None] * P  # per row: d_i p_i (d_i for one logit)
        Xt = self._with_ones()
        if Xt is not None:  # small dense X: [X, 1] in one product each way
            scale = 1.0 / self.n_total

            def forward(V):
                return Xt @ V

            def backward(HU):
                return (Xt.T @ HU) * scale
        else:
            def forward(V):
                return self.logits(V) if self.fit_intercept else self.design.mm(V)

            backward = self._grad_from_residual

        def matvec(v):
            V = v.reshape(shape)
            U = forward(V)
            if P is None:
                HU = dP * U
            else:  # d_i (diag(p_i) − p_i p_iᵀ) u_i = d_i p_i ∘ (u_i − p_iᵀu_i)
                HU = dP * (U - (P * U).sum(axis=1, keepdims=True))
            out = backward(HU)
            out[:nf] += self.l2 * V[:nf]
            out = out.reshape(-1)
            if damping:
                out = out + damping * v
            if u is not None:
                out = out + u * (u @ v)
            return out

        return matvec

    def _with_ones(self):
        """[X, 1] as one dense tensor where X is dense, small (N·P ≤ ``SMALL_DENSE``), on one
        process and there is an intercept; else None. Hessian-vector products of small fits
        are mostly per-operation overhead, which the split into X and 1 doubles."""
        design = self.design
        if (not self.fit_intercept or design.sparse or self.xp is not TORCH
                or self.reduce is not identity
                or design.shape[0] * design.shape[1] > SMALL_DENSE):
            return None
        return self._dense_with_ones()

    def _dense_with_ones(self):
        """[X, 1] as one dense torch tensor, built once per design."""
        design = self.design
        cached = getattr(design, "_with_ones", None)
        if cached is None:
            import torch

            X = design.dense()
            cached = torch.cat([X, torch.ones((X.shape[0], 1), dtype=X.dtype,
                                              device=X.device)], 1)
            design._with_ones = cached
        return cached

    def hessian_diagonal(self, Z, *, damping: float = 0.0):
        """diag(H + δI [+ uuᵀ]) as a flat vector (Jacobi preconditioner)."""
        d, P = self._curvature(Z)
        c = d[:, None] if P is None else d[:, None] * P * (1 - P)
        parts = [self.design.col_sq_sums(c)]
        if self.fit_intercept:
            parts.append(c.sum(axis=0, keepdims=True))
        D = self.reduce(self.xp.concat(parts, 0)) / self.n_total
        D[: self.n_features] += self.l2
        D = D.reshape(-1) + damping
        u = self.flat_direction()
        if u is not None:
            D = D + u * u
        return self.xp.clamp_min(D, 1e-12)

    def preconditioner(self, Z, *, damping: float = 0.0, block: int | None = None):
        """What CG uses for M ≈ H + δI: the diagonal (Jacobi), or for binary problems on sparse
        X a callable that also solves exactly on the intercept and the ``block`` most frequent
        columns (:class:`FrequentBlockJacobi`, default :data:`BLOCK_COLUMNS`)."""
        D = self.hessian_diagonal(Z, damping=damping)
        m = BLOCK_COLUMNS if block is None else int(block)
        if self.n_out != 1 or not self.design.sparse or m <= 0:
            return D
        return FrequentBlockJacobi.build(self, Z, D, damping=damping, m=m)

    def hessian(self, Z, *, damping: float = 0.0, penalty: bool = True, flat: bool = True):
        """The explicit (n_params × n_params) matrix H + δI [+ uuᵀ] (small problems only);
        without ``penalty`` and ``flat``, the data part (1/N) Σ_i w_i ∇²ℓ_i alone."""
        xp = self.xp
        d, P = self._curvature(Z)
        A, C = self.n_features + int(self.fit_intercept), self.n_out
        if self._batched_hessian(P):
            H = self._hessian_batched(d, P)
        else:
            H = self._hessian_blocks(d, P)
        H = H.reshape(A * C, A * C)
        reg = xp.zeros((A, C), dtype=self.design.dtype, device=self.design.device)
        reg[: self.n_features] = self.l2 if penalty else 0.0
        H += xp.diag(reg.reshape(-1) + damping)
        u = self.flat_direction() if flat else None
        if u is not None:
            H += xp.outer(u, u)
        return H

    def _batched_hessian(self, P) -> bool:
        """Whether ``_hessian_batched`` is the faster: softmax on a small dense X in torch,
        where the C(C+1)/2 Gram blocks cost more in per-call overhead than in arithmetic
        (measured on one CPU thread: 7× at N = 70, 2× at N = 1,400 with 17 columns and 10
        classes; slower from N·A² ≈ 10⁶)."""
        A = self.n_features + int(self.fit_intercept)
        small = self.design.shape[0] * A * A <= BATCHED_HESSIAN_WORK
        return (P is not None and self.xp is TORCH and not self.design.sparse
                and self.reduce is identity and small)

    def _hessian_batched(self, d, P):
        """Σ_n d_n (diag(p_n) − p_n p_nᵀ) ⊗ x̃_n x̃_nᵀ / N as (A, C, A, C), in two products."""
        import torch

        X = self._dense_with_ones() if self.fit_intercept else self.design.dense()
        N, A = X.shape
        C = P.shape[1]
        M = (X[:, :, None] * P[:, None, :]).reshape(N, A * C)  # x̃_n ⊗ p_n
        Md = M * d[:, None]
        H = -(Md.T @ M).reshape(A, C, A, C)
        diag = (X.T @ Md).reshape(A, A, C)  # Σ_n d_n p_nc x̃_n x̃_nᵀ, per class c
        idx = torch.arange(C, device=X.device)
        H[:, idx, :, idx] += diag.permute(2, 0, 1)
        return H / self.n_total

    def _hessian_blocks(self, d, P):
        """The Hessian as (A, C, A, C), one Gram matrix per pair of classes."""
        xp = self.xp
        A, C = self.n_features + int(self.fit_intercept), self.n_out
        H = xp.zeros((A, C, A, C), dtype=self.design.dtype, device=self.design.device)
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
        return H


def theta_to_state(theta, *, fit_intercept: bool) -> dict:
    """Model-file state: ``weight`` (P, C') and ``bias`` (C',) float64 CPU tensors (from a
    torch tensor or a numpy array)."""
    import torch

    if isinstance(theta, np.ndarray):  # a fit on the numpy backend
        theta = torch.from_numpy(theta)
    theta = theta.detach().cpu().to(torch.float64)
    if fit_intercept:
        return {"weight": theta[:-1].clone(), "bias": theta[-1].clone()}
    return {"weight": theta.clone(), "bias": torch.zeros(theta.shape[1], dtype=torch.float64)}


def state_to_theta(state: dict, *, fit_intercept: bool, device="cpu", dtype=None):
    """Θ from a model file's state (torch tensors or numpy arrays); ``device="numpy"``: a
    float64 numpy array."""
    if is_numpy(device):
        W = as_numpy(state["weight"])
        if fit_intercept:
            return np.concatenate([W, as_numpy(state["bias"])[None, :]], 0)
        return W.copy()
    import torch

    dtype = dtype or torch.float64
    W = torch.as_tensor(state["weight"]).to(device=device, dtype=dtype)
    if fit_intercept:
        bias = torch.as_tensor(state["bias"]).to(device=device, dtype=dtype)
        return torch.cat([W, bias[None, :]], 0)
    return W.clone()


def predict_proba(state: dict, X, *, n_classes: int, device="cpu", batch_rows: int = 1 << 20):
    """(N, K) float64 numpy probabilities of a logistic-regression state on X (dense/CSR);
    ``device="numpy"``: computed with numpy/scipy, without torch."""
    if not sp.issparse(X):
        X = np.asarray(X)
        if X.ndim > 2:
            X = X.reshape(X.shape[0], -1)
    out = np.empty((X.shape[0], n_classes))
    if is_numpy(device):
        from rdia_cli.models.logreg.arrays import NUMPY

        W, b = as_numpy(state["weight"]), as_numpy(state["bias"])
        for start in range(0, X.shape[0], batch_rows):
            rows = X[start : start + batch_rows]
            Z = np.asarray(rows @ W) + b
            P = _probs(NUMPY, Z, n_classes)
            out[start : start + len(P)] = P
        return out
    import torch

    W = torch.as_tensor(state["weight"]).to(device=device, dtype=torch.float64)
    b = torch.as_tensor(state["bias"]).to(device=device, dtype=torch.float64)
    for start in range(0, X.shape[0], batch_rows):
        design = Design(X[start : start + batch_rows], device=device, dtype=torch.float64,
                        transpose=False)
        with sparse_cpu_threads(design):
            Z = design.mm(W) + b
            P = _probs(TORCH, Z, n_classes)
            out[start : start + len(P)] = P.cpu().numpy()
    return out


def _probs(xp, Z, n_classes: int):
    """Class probabilities from the logits of a state (as ``LogRegProblem.probs``)."""
    if n_classes == 2:
        p1 = xp.sigmoid(Z[:, 0])
        return xp.stack([1 - p1, p1], axis=1)
    return xp.softmax(Z)
