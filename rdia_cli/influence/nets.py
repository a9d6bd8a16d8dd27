"""Influence for neural networks: curvature products, inverse solvers, per-sample Φ.

Sign and scale of Φ: ``rdia_cli.glossary``. Everything here follows the mean-loss normalization

    A = (1/n) Σ_i w_i ∇²ℓ_i(θ̂) + (l2 + damping) I          (``hessian="exact"``)
    A = (1/n) Σ_i w_i J_iᵀ H_out,i J_i + (l2 + damping) I  (``hessian="ggn"``, Gauss-Newton)

over the n curvature rows (the training set or a seeded subsample of it), computed in batches
with sums as the only cross-batch state. ONE solve ``A s = ∇L_Q`` with the mean validation
gradient, then ``Φ_i = -∇ℓ_i · s`` for every row from one batched forward-mode pass
(``torch.func.jvp`` of the per-sample loss vector along ``s``).

The pieces are separate: ``NetProblem`` (model + data → products and gradients), ``cg`` and
``lissa`` (solvers that only see a mat-vec), ``phi_jvp`` (scoring pass).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch.func import functional_call, jvp, vjp

from rdia_cli.errors import RuntimeFailure

HVP_IMPLS = ("autograd", "func")
GGN_IMPLS = ("dual", "func")


class Rows:
    """Feeds batches of rows of X as tensors of the network's input shape.

    Dense X is wrapped once as a tensor (no copy when it is already float32/float64 numpy); sparse
    CSR rows are densified one batch at a time.
    """

    def __init__(self, X, input_shape, *, device, dtype):
        self.shape = tuple(int(s) for s in input_shape)
        self.device = device
        self.dtype = dtype
        self.sparse = sp.issparse(X)
        if self.sparse:
            self.X = X.tocsr()
        else:
            arr = np.asarray(X)
            if arr.dtype not in (np.float32, np.float64):
                arr = arr.astype(np.float32)
            self.X = torch.from_numpy(np.ascontiguousarray(arr))
        self.n = int(X.shape[0])
        width = math.prod(self.shape)
        if math.prod(X.shape[1:]) != width:
            raise ValueError(f"rows have {math.prod(X.shape[1:])} values, the network takes "
                             f"{width} ({list(self.shape)})")

    def get(self, idx) -> torch.Tensor:
        """Rows ``idx`` (a slice or an index array) as a (B, *input_shape) tensor."""
        if self.sparse:
            xb = torch.from_numpy(self.X[idx].toarray())
        else:
            xb = self.X[idx] if isinstance(idx, slice) else self.X[torch.as_tensor(idx)]
        xb = xb.reshape((xb.shape[0], *self.shape))
        return xb.to(device=self.device, dtype=self.dtype)


def ce_per_sample(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-Σ_k t_k log softmax(z)_k per row; ``target`` (B, K) float or (B,) class indices."""
    logp = F.log_softmax(logits, dim=1)
    if target.dim() == 1:
        return -logp.gather(1, target.long().unsqueeze(1)).squeeze(1)
    return -(target * logp).sum(1)


@dataclass
class SolveInfo:
    iterations: int
    residual: float
    converged: bool


class NetProblem:
    """A trained network (eval mode) plus curvature data; gives products and gradients.

    ``params`` are the trainable tensors at θ̂ (detached, in ``dtype``); buffers (BatchNorm
    running statistics) are held fixed. Flat vectors follow ``self.names`` order.
    """

    def __init__(self, net: torch.nn.Module, *, dtype=torch.float32, device="cpu",
                 batch_size: int = 1024, l2: float = 0.0, damping: float = 0.0,
                 hvp_impl: str = "autograd", ggn_impl: str = "dual"):
        self.net = net.to(device=device, dtype=dtype).eval()
        self.params = {k: v.detach() for k, v in self.net.named_parameters()}
        self.buffers = {k: v.detach() for k, v in self.net.named_buffers()}
        self.names = list(self.params)
        self.shapes = [self.params[k].shape for k in self.names]
        self.numels = [self.params[k].numel() for k in self.names]
        self.n_params = int(sum(self.numels))
        self.dtype, self.device = dtype, device
        self.batch_size = int(batch_size)
        self.shift = float(l2) + float(damping)
        if hvp_impl not in HVP_IMPLS or ggn_impl not in GGN_IMPLS:
            raise ValueError(f"hvp_impl must be one of {HVP_IMPLS}, ggn_impl one of {GGN_IMPLS}")
        self.hvp_impl, self.ggn_impl = hvp_impl, ggn_impl
        self.n_products = 0
        self._curv: tuple[Rows, torch.Tensor, torch.Tensor | None, np.ndarray | None] | None = None
        self._jac: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    # --- flat vectors -------------------------------------------------------------------------
    def flatten(self, tensors) -> torch.Tensor:
        if isinstance(tensors, dict):
            tensors = [tensors[k] for k in self.names]
        return torch.cat([t.reshape(-1) for t in tensors])

    def unflatten(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(v, self.numels)
        return {k: p.view(s) for k, p, s in zip(self.names, parts, self.shapes, strict=True)}

    def theta(self) -> torch.Tensor:
        return self.flatten(self.params)

    # --- model as a function of θ -------------------------------------------------------------
    def logits(self, params: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.net, {**params, **self.buffers}, (x,))

    def _chunks(self, n: int, idx: np.ndarray | None = None) -> Iterator[tuple[slice, object]]:
        for a in range(0, n, self.batch_size):
            sl = slice(a, min(a + self.batch_size, n))
            yield sl, (sl if idx is None else idx[sl])

    # --- curvature data -----------------------------------------------------------------------
    def set_curvature_data(self, rows: Rows, target: torch.Tensor, weight: torch.Tensor | None,
                           idx: np.ndarray | None = None) -> None:
        """Rows used for the curvature (``idx``: a subset of them; None = all)."""
        self._curv = (rows, target, weight, idx)
        self._jac = None

    def jacobian_bytes(self, n_classes: int) -> int:
        itemsize = self.params[self.names[0]].element_size()
        return self.n_curvature * n_classes * self.n_params * itemsize

    def cache_jacobian(self, chunk: int = 256) -> None:
        """Store the per-row output Jacobians J_i (n, K, P) of the curvature rows once.

        Every later GGN product is then two dense mat-vecs, (1/n) Jᵀ H_out (J v), instead of a
        forward-mode and a reverse-mode pass through the network: the same matrix, about ten
        times cheaper per product for LeNet on MNIST (bench/results/deep_speed.md). Memory:
        ``jacobian_bytes``.
        """
        from torch.func import jacrev, vmap

        def f1(p, x):
            return self.logits(p, x.unsqueeze(0))[0]

        jac_fn = vmap(jacrev(f1), in_dims=(None, 0))
        blocks, probs, scales = [], [], []
        saved = self.batch_size
        self.batch_size = chunk
        try:
            for x, t, w in self._curv_batches():
                J = jac_fn(self.params, x)
                blocks.append(torch.cat([J[k].reshape(x.shape[0], -1, n)
                                         for k, n in zip(self.names, self.numels, strict=True)],
                                        2))
                with torch.no_grad():
                    probs.append(torch.softmax(self.logits(self.params, x), dim=1))
                sc = torch.ones(x.shape[0], dtype=self.dtype, device=self.device) \
                    if t.dim() == 1 else t.sum(1)
                scales.append(sc if w is None else sc * w)
        finally:
            self.batch_size = saved
        J = torch.cat(blocks)
        self._jac = (J.reshape(-1, self.n_params), torch.cat(probs), torch.cat(scales))

    @property
    def n_curvature(self) -> int:
        rows, _, _, idx = self._curv
        return rows.n if idx is None else len(idx)

    def _curv_batches(self, idx_override: np.ndarray | None = None):
        rows, target, weight, idx = self._curv
        idx = idx if idx_override is None else idx_override
        n = rows.n if idx is None else len(idx)
        for _sl, take in self._chunks(n, idx):
            t_idx = take if isinstance(take, slice) else torch.as_tensor(take)
            w = None if weight is None else weight[t_idx]
            yield rows.get(take), target[t_idx], w

    # --- products -----------------------------------------------------------------------------
    def matvec(self, v: torch.Tensor, hessian: str, *, idx: np.ndarray | None = None
               ) -> torch.Tensor:
        """A v over the curvature rows (or the rows ``idx`` of them, for stochastic LiSSA)."""
        self.n_products += 1
        if self._jac is not None and idx is None and hessian == "ggn":
            Jf, p, scale = self._jac
            jv = (Jf @ v).view(p.shape)
            u = (p * jv - p * (p * jv).sum(1, keepdim=True)) * scale.unsqueeze(1)
            return (u.reshape(-1) @ Jf) / p.shape[0] + self.shift * v
        vd = self.unflatten(v)
        total = torch.zeros_like(v)
        n = 0
        for x, t, w in self._curv_batches(idx):
            n += x.shape[0]
            if hessian == "exact":
                part = (self._hvp_autograd if self.hvp_impl == "autograd" else self._hvp_func)(
                    vd, x, t, w)
            else:
                part = (self._gnvp_dual if self.ggn_impl == "dual" else self._gnvp_func)(
                    vd, x, t, w)
            total += self.flatten(part)
        return total / n + self.shift * v

    def _batch_loss(self, params, x, t, w):
        loss = ce_per_sample(self.logits(params, x), t)
        return (loss if w is None else w * loss).sum()

    def _hvp_autograd(self, vd, x, t, w):
        """Double backward: ∇(∇L·v)."""
        p = {k: a.detach().requires_grad_(True) for k, a in self.params.items()}
        with torch.enable_grad():
            g = torch.autograd.grad(self._batch_loss(p, x, t, w), list(p.values()),
                                    create_graph=True)
            dot = sum((gi * vd[k]).sum() for gi, k in zip(g, self.names, strict=True))
            return list(torch.autograd.grad(dot, list(p.values())))

    def _hvp_func(self, vd, x, t, w):
        """torch.func forward-over-reverse: jvp of grad."""
        grad_fn = torch.func.grad(lambda p: self._batch_loss(p, x, t, w))
        _, hv = jvp(grad_fn, (self.params,), (vd,))
        return hv

    @staticmethod
    def _out_hess(logits, jv, t, w):
        """H_out (J v) per row for softmax cross-entropy: s_i (diag p - p pᵀ) Jv, s_i = w_i Σ t."""
        p = torch.softmax(logits, dim=1)
        hjv = p * jv - p * (p * jv).sum(1, keepdim=True)
        scale = torch.ones(p.shape[0], dtype=p.dtype, device=p.device) if t.dim() == 1 \
            else t.sum(1)
        if w is not None:
            scale = scale * w
        return hjv * scale.unsqueeze(1)

    def _gnvp_dual(self, vd, x, t, w):
        """One forward with dual numbers gives z and Jv; one backward gives Jᵀ(H_out Jv)."""
        import torch.autograd.forward_ad as fwAD

        p = {k: a.detach().requires_grad_(True) for k, a in self.params.items()}
        with torch.enable_grad(), fwAD.dual_level():
            dual = {k: fwAD.make_dual(p[k], vd[k]) for k in self.names}
            out = fwAD.unpack_dual(self.logits(dual, x))
            z, jv = out.primal, out.tangent
            u = self._out_hess(z.detach(), jv.detach(), t, w)
            return list(torch.autograd.grad(z, list(p.values()), grad_outputs=u))

    def _gnvp_func(self, vd, x, t, w):
        f = lambda p: self.logits(p, x)  # noqa: E731
        z, jv = jvp(f, (self.params,), (vd,))
        _, back = vjp(f, self.params)
        (g,) = back(self._out_hess(z, jv, t, w))
        return g

    # --- gradients and scores -----------------------------------------------------------------
    def mean_grad(self, rows: Rows, target: torch.Tensor) -> tuple[torch.Tensor, float]:
        """∇ of the mean loss over ``rows`` (no regularizer) and that mean loss."""
        p = {k: a.detach().requires_grad_(True) for k, a in self.params.items()}
        total = torch.zeros(self.n_params, dtype=self.dtype, device=self.device)
        loss_sum = 0.0
        for sl, take in self._chunks(rows.n):
            with torch.enable_grad():
                loss = ce_per_sample(self.logits(p, rows.get(take)), target[sl]).sum()
                g = torch.autograd.grad(loss, list(p.values()))
            total += self.flatten(g)
            loss_sum += float(loss.detach())
        return total / rows.n, loss_sum / rows.n

    def directional(self, rows: Rows, target: torch.Tensor, labels: torch.Tensor,
                    s: torch.Tensor, progress: Callable | None = None):
        """For every row: ∇ℓ_i · s (one jvp per batch), ℓ_i and p(label_i)."""
        sd = self.unflatten(s)
        dots, losses, plab = [], [], []
        n_batches = math.ceil(rows.n / self.batch_size)
        for b, (sl, take) in enumerate(self._chunks(rows.n)):
            x, t, lab = rows.get(take), target[sl], labels[sl]

            def f(params, x=x, t=t, lab=lab):
                z = self.logits(params, x)
                logp = F.log_softmax(z, dim=1)
                loss = -(t * logp).sum(1) if t.dim() == 2 else \
                    -logp.gather(1, t.long().unsqueeze(1)).squeeze(1)
                return loss, (loss.detach(), logp.detach().gather(1, lab.unsqueeze(1))[:, 0])

            _, d, (loss, lp) = jvp(f, (self.params,), (sd,), has_aux=True)
            dots.append(d.detach())
            losses.append(loss)
            plab.append(lp.exp())
            if progress is not None:
                progress(b + 1, n_batches, {"stage": "score"})
        return torch.cat(dots), torch.cat(losses), torch.cat(plab)


# --- solvers --------------------------------------------------------------------------------
def cg(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, *, tol: float = 1e-6,
       max_iter: int = 200, what: str = "exact",
       progress: Callable | None = None) -> tuple[torch.Tensor, SolveInfo]:
    """Conjugate gradient for A x = b, A symmetric positive definite (given as ``matvec``).

    Stops when ‖r‖/‖b‖ ≤ tol (r the recursively updated residual) or after ``max_iter``
    products. Raises ``RuntimeFailure`` on non-positive curvature pᵀAp ≤ 0 or divergence.
    """
    bnorm = float(torch.linalg.vector_norm(b))
    x = torch.zeros_like(b)
    if bnorm == 0.0:
        return x, SolveInfo(0, 0.0, True)
    r = b.clone()
    p = r.clone()
    rr = float(r @ r)
    rel = 1.0
    for it in range(1, max_iter + 1):
        ap = matvec(p)
        pap = float(p @ ap)
        if not math.isfinite(pap) or pap <= 0.0:
            raise RuntimeFailure(
                f"Conjugate gradient met non-positive curvature (pᵀAp = {pap:.3g}) on the "
                f"`{what}` Hessian at iteration {it}: the damped Hessian is not positive "
                "definite; use `--hessian ggn` or a larger `--damping`."
            )
        alpha = rr / pap
        x += alpha * p
        r -= alpha * ap
        rr_new = float(r @ r)
        rel = math.sqrt(rr_new) / bnorm
        if progress is not None:
            progress(it, max_iter, {"stage": "solve", "residual": rel})
        if not math.isfinite(rel) or rel > 1e6:
            raise RuntimeFailure(
                f"Conjugate gradient diverged on the `{what}` Hessian (relative residual "
                f"{rel:.3g} at iteration {it}); use `--hessian ggn` or a larger `--damping`."
            )
        if rel <= tol:
            return x, SolveInfo(it, rel, True)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x, SolveInfo(max_iter, rel, False)


def power_max_eig(matvec: Callable[[torch.Tensor], torch.Tensor], n: int, *, dtype, device,
                  iters: int = 20, seed: int = 0) -> float:
    """Largest |eigenvalue| of a symmetric operator by power iteration (a rough estimate)."""
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(n, generator=gen, dtype=dtype).to(device)
    v /= torch.linalg.vector_norm(v)
    lam = 0.0
    for _ in range(iters):
        w = matvec(v)
        lam = float(torch.linalg.vector_norm(w))
        if lam == 0.0 or not math.isfinite(lam):
            break
        v = w / lam
    return lam


def lissa(matvec: Callable[..., torch.Tensor], b: torch.Tensor, *, scale: float,
          tol: float = 1e-6, max_iter: int = 1000, what: str = "exact",
          sample: Callable[[], np.ndarray | None] | None = None,
          progress: Callable | None = None) -> tuple[torch.Tensor, SolveInfo]:
    """LiSSA (Agarwal et al. 2017): h ← b + (I - A/scale) h, x = h / scale.

    ``scale`` must exceed the largest eigenvalue of A. With ``sample`` each step uses A on a
    random mini-batch of the curvature rows (``matvec(v, idx=sample())``), else the full A; in
    the full case ``h_{j+1} - h_j`` is exactly the residual b - A x_j, so the reported residual
    is exact; with mini-batches it is a noisy estimate.
    """
    bnorm = float(torch.linalg.vector_norm(b))
    h = b.clone()
    if bnorm == 0.0:
        return torch.zeros_like(b), SolveInfo(0, 0.0, True)
    rel = float("inf")
    for it in range(1, max_iter + 1):
        av = matvec(h) if sample is None else matvec(h, idx=sample())
        step = b - av / scale
        rel = float(torch.linalg.vector_norm(step)) / bnorm
        h += step
        if progress is not None:
            progress(it, max_iter, {"stage": "solve", "residual": rel})
        if not math.isfinite(rel) or rel > 1e6:
            raise RuntimeFailure(
                f"LiSSA diverged on the `{what}` Hessian (relative residual {rel:.3g} at "
                f"iteration {it}); use `--hessian ggn`, a larger `--damping` or `--solver cg`."
            )
        if rel <= tol:
            return h / scale, SolveInfo(it, rel, True)
    return h / scale, SolveInfo(max_iter, rel, False)
