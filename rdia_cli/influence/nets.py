"""Influence for neural networks: curvature products, inverse solvers, per-sample Φ.

Sign and scale of Φ: ``rdia_cli.glossary``. Everything here follows the mean-loss normalization

    A = (1/n) Σ_i w_i ∇²ℓ_i(θ̂) + (l2 + damping) I          (``hessian="exact"``)
    A = (1/n) Σ_i w_i J_iᵀ H_out,i J_i + (l2 + damping) I  (``hessian="ggn"``, Gauss-Newton)

over the n curvature rows (the training set or a seeded subsample of it), computed in batches
with sums as the only cross-batch state. ONE solve ``A s = ∇L_Q`` with the mean validation
gradient, then ``Φ_i = -∇ℓ_i · s`` for every row from one batched forward-mode pass
(``torch.func.jvp`` of the per-sample loss vector along ``s``).

The pieces are separate: ``NetProblem`` (model + data → products and gradients), ``cg`` (the
shared ``rdia_cli.linalg.conjugate_gradient`` with this module's options and messages) and
``lissa`` (solvers that only see a mat-vec), ``phi_jvp`` (scoring pass).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, jvp, vjp

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError, MismatchError, RuntimeFailure
from rdia_cli.influence import ScoreResult
from rdia_cli.linalg import CGBreakdown, SolveResult, conjugate_gradient
from rdia_cli.models.io import ModelFile
from rdia_cli.models.nets.batches import Rows, ce_per_sample
from rdia_cli.models.nets.training import (
    check_choice,
    check_rows,
    net_from_model,
    target_tensor,
    torch_device,
)

HVP_IMPLS = ("autograd", "func")
GGN_IMPLS = ("dual", "func")


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
# What to change when a solve fails (``RdiaError.fixes``: the command line keeps the advice of
# the flags the command has)
SOLVE_FIXES = (("hessian", "use `hessian` ggn"), ("damping", "raise `damping`"))


def cg(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, *, tol: float = 1e-6,
       max_iter: int = 200, what: str = "exact",
       progress: Callable | None = None) -> SolveResult:
    """Conjugate gradient for A x = b, A symmetric positive definite (given as ``matvec``).

    ``rdia_cli.linalg.conjugate_gradient`` with the network options: at least one step, ‖r‖ as
    √(rᵀr), unfused vector updates, divergence above 1e6. Stops when ‖r‖/‖b‖ ≤ tol (r the
    recursively updated residual) or after ``max_iter`` products. Raises ``RuntimeFailure`` on
    non-positive curvature pᵀAp ≤ 0 or divergence, naming the ``what`` Hessian.
    """
    def on_iter(it, rel):
        progress(it, max_iter, {"stage": "solve", "residual": rel})

    try:
        return conjugate_gradient(matvec, b, tol=tol, max_iter=max_iter, min_iter=1,
                                  residual_norm="dot", fused_updates=False, diverge=1e6,
                                  on_iter=None if progress is None else on_iter)
    except CGBreakdown as e:
        if e.kind == "curvature":
            msg = (f"Conjugate gradient met non-positive curvature (pᵀAp = {e.value:.3g}) on the "
                   f"{what} Hessian at iteration {e.iteration}: the damped Hessian is not "
                   "positive definite")
        else:
            msg = (f"Conjugate gradient diverged on the {what} Hessian (relative residual "
                   f"{e.value:.3g} at iteration {e.iteration})")
        raise RuntimeFailure(msg, fixes=SOLVE_FIXES) from None


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
          progress: Callable | None = None) -> SolveResult:
    """LiSSA (Agarwal et al. 2017): h ← b + (I - A/scale) h, x = h / scale.

    ``scale`` must exceed the largest eigenvalue of A. With ``sample`` each step uses A on a
    random mini-batch of the curvature rows (``matvec(v, idx=sample())``), else the full A; in
    the full case ``h_{j+1} - h_j`` is exactly the residual b - A x_j, so the reported residual
    is exact; with mini-batches it is a noisy estimate.
    """
    bnorm = float(torch.linalg.vector_norm(b))
    h = b.clone()
    if bnorm == 0.0:
        return SolveResult(torch.zeros_like(b), 0, 0.0, True)
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
                f"LiSSA diverged on the {what} Hessian (relative residual {rel:.3g} at "
                f"iteration {it})", fixes=[*SOLVE_FIXES, ("solver", "use `solver` cg")],
            )
        if rel <= tol:
            return SolveResult(h / scale, it, rel, True)
    return SolveResult(h / scale, max_iter, rel, False)


HESSIANS = ("exact", "ggn")
SOLVERS = ("cg", "lissa")
# Measured on the 2-core CPU for LeNet/MNIST (bench/results/deep_hvp.md): double-backward and
# torch.func forward-over-reverse exact HVPs took the same time, so the simpler double backward
# stays; for the GGN, torch.func jvp + vjp was ~1.5x faster than a dual-number forward + backward.
HVP_IMPL = "autograd"
GGN_IMPL = "func"
# GGN products use cached per-row output Jacobians when they fit in this many bytes.
JACOBIAN_CACHE_BYTES = 1 << 30


@dataclass
class NetSetup:
    """What ``score_net`` solves with, for others that must use the very same operator
    (``rdia_cli.influence.explain``): the problem with its curvature rows set, the training
    rows, targets, weights and the curvature subsample ``idx`` (None = all rows)."""

    problem: NetProblem
    rows: Rows
    target: torch.Tensor
    weight: torch.Tensor | None
    idx: np.ndarray | None
    device: Any
    dtype: Any
    input_shape: Any
    l2: float
    n_classes: int

    def cache_curvature(self, hessian: str) -> bool:
        """Cache the GGN's per-row Jacobians when they fit ``JACOBIAN_CACHE_BYTES``; whether
        it did."""
        ok = (hessian == "ggn"
              and self.problem.jacobian_bytes(self.n_classes) <= JACOBIAN_CACHE_BYTES)
        if ok:
            self.problem.cache_jacobian()
        return ok

    def matvec(self, hessian: str) -> Callable[..., torch.Tensor]:
        return lambda v, idx=None: self.problem.matvec(v, hessian, idx=idx)


def net_problem(model: ModelFile, train: Dataset, val: Dataset, *, hessian: str = "ggn",
                solver: str = "cg", damping: float = 0.01, tol: float = 1e-6,
                max_iter: int = 200, hessian_samples: int | None = None, seed: int = 0,
                device="cpu", batch_size: int = 1024, dtype: str = "float32") -> NetSetup:
    """Check the options and data of ``score_net`` and build its curvature operator: the
    damped (G or H) + (λ+δ)I over the same rows (the same seeded subsample)."""
    import torch

    check_choice("hessian", hessian, HESSIANS)
    check_choice("solver", solver, SOLVERS)
    check_choice("dtype", dtype, ("float32", "float64"))
    if damping < 0 or tol <= 0 or max_iter < 1 or batch_size < 1:
        raise InputError(
            f"Need damping ≥ 0, tol > 0, max_iter ≥ 1, batch_size ≥ 1; got damping={damping}, "
            f"tol={tol}, max_iter={max_iter}, batch_size={batch_size}."
        )
    for ds, what in ((train, "Training data"), (val, "Validation data")):
        if ds.n_samples == 0:
            raise InputError(f"{what} {ds.source} has no rows.")
        if ds.n_classes != model.n_classes:
            raise MismatchError(
                f"{what} {ds.source} has {ds.n_classes} classes, the model {model.n_classes}."
            )
        check_rows(ds.X, list(model.arch_args["input_shape"]), f"{what} {ds.source}")
    dev = torch_device(device)
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    l2 = float(model.meta.get("l2", 0.0))
    net = net_from_model(model, tdtype, dev)
    prob = NetProblem(net, dtype=tdtype, device=dev, batch_size=batch_size, l2=l2,
                      damping=damping, hvp_impl=HVP_IMPL, ggn_impl=GGN_IMPL)
    shape = model.arch_args["input_shape"]
    rows = Rows(train.X, shape, device=dev, dtype=tdtype)
    target = target_tensor(train, tdtype, dev)
    weight = None if train.weight is None else torch.as_tensor(
        np.asarray(train.weight, dtype=np.float64), dtype=tdtype, device=dev)
    idx = None
    if hessian_samples is not None and hessian_samples < train.n_samples:
        if hessian_samples < 1:
            raise InputError(f"`hessian_samples` must be ≥ 1; got {hessian_samples}.")
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(train.n_samples, size=hessian_samples, replace=False))
    prob.set_curvature_data(rows, target, weight, idx)
    return NetSetup(prob, rows, target, weight, idx, dev, tdtype, shape, l2, model.n_classes)


# --- Φ of a network model -------------------------------------------------------------------------
def score_net(model: ModelFile, train: Dataset, val: Dataset, *, hessian: str = "ggn",
              solver: str = "cg", damping: float = 0.01, tol: float = 1e-6, max_iter: int = 200,
              hessian_samples: int | None = None, seed: int = 0, device="cpu",
              batch_size: int = 1024, progress: Callable[[int, int, dict], None] | None = None,
              dtype: str = "float32") -> ScoreResult:
    """Φ_i = -∇L_Q(θ̂)ᵀ (H + (λ+δ)I)⁻¹ ∇ℓ_i(θ̂) for every training row of a network model.

    Sign and scale: ``rdia_cli.glossary`` (Φ > 0 = harmful). H is the mean-normalized exact
    Hessian or Gauss-Newton matrix of the training loss over all rows (or a seeded random subset
    of ``hessian_samples`` rows), λ the model's L2 (weight decay), δ = ``damping``. One solve
    with the mean validation gradient by CG (or LiSSA), then one batched forward-mode pass for
    all ∇ℓ_i · s. Networks with BatchNorm are scored in eval mode (running statistics fixed).
    ``dtype`` "float64" for reference computations. Raises ``RuntimeFailure`` when the solver meets
    negative curvature or diverges.
    """
    setup = net_problem(model, train, val, hessian=hessian, solver=solver, damping=damping,
                        tol=tol, max_iter=max_iter, hessian_samples=hessian_samples, seed=seed,
                        device=device, batch_size=batch_size, dtype=dtype)
    prob, rows, target, weight, idx = (setup.problem, setup.rows, setup.target, setup.weight,
                                       setup.idx)
    dev, tdtype, shape, l2 = setup.device, setup.dtype, setup.input_shape, setup.l2

    t0 = time.perf_counter()
    vrows = Rows(val.X, shape, device=dev, dtype=tdtype)
    g_val, val_loss = prob.mean_grad(vrows, target_tensor(val, tdtype, dev))

    ggn_cache = setup.cache_curvature(hessian)

    def matvec(v, idx=None):
        return prob.matvec(v, hessian, idx=idx)

    extra: dict[str, Any] = {}
    if solver == "cg":
        sol = cg(matvec, g_val, tol=tol, max_iter=max_iter, what=hessian, progress=progress)
    else:
        lam = power_max_eig(matvec, prob.n_params, dtype=tdtype, device=dev, seed=seed)
        scale = 1.5 * lam
        n_curv = prob.n_curvature
        sample = None
        if batch_size < n_curv:
            gen = np.random.default_rng(seed + 1)
            pool = np.arange(train.n_samples) if idx is None else idx

            def sample():
                return np.sort(gen.choice(pool, size=batch_size, replace=False))

            # mini-batch products: the curvature rows are the sampled ones (idx given per call)
            prob.set_curvature_data(rows, target, weight, None)
        sol = lissa(matvec, g_val, scale=scale, tol=tol, max_iter=max_iter, what=hessian,
                    sample=sample, progress=progress)
        extra = {"lissa_scale": scale, "lissa_max_eig": lam, "lissa_stochastic": sample is not None}
    s = sol.x
    solve_seconds = time.perf_counter() - t0

    t1 = time.perf_counter()
    labels = torch.as_tensor(train.y, dtype=torch.long, device=dev)
    dots, loss, p_label = prob.directional(rows, target, labels, s, progress=progress)
    score_seconds = time.perf_counter() - t1
    phi = -dots.double().cpu().numpy()
    info = {
        "solver": solver, "hessian": hessian, "damping": float(damping), "l2": l2,
        "iterations": int(sol.iterations), "residual": float(sol.residual),
        "converged": bool(sol.converged), "tol": float(tol), "max_iter": int(max_iter),
        "hessian_samples": None if idx is None else int(len(idx)),
        "n_products": int(prob.n_products),
        "solve_seconds": solve_seconds, "score_seconds": score_seconds,
        "val_loss": float(val_loss), "n_params": int(prob.n_params),
        "n_samples": int(train.n_samples), "n_val": int(val.n_samples),
        "dtype": dtype, "seed": int(seed), "eval_mode": True, "ggn_jacobian_cache": ggn_cache,
        **extra,
    }
    return ScoreResult(phi=phi, p_label=p_label.double().cpu().numpy(),
                       loss=loss.double().cpu().numpy(), info=info)
