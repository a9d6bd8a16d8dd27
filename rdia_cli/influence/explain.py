"""Why a row is harmful: Φ_i split over the validation rows.

Φ_i = -∇L_Q(θ̂)ᵀ H⁻¹ ∇ℓ_i(θ̂) and ∇L_Q = (1/M) Σ_j ∇ℓ_j, so with u_i = H⁻¹ ∇ℓ_i (H symmetric)

    Φ_i = Σ_j c_ij,    c_ij = -∇ℓ_j(θ̂)ᵀ u_i / M,

where validation row j "pushes" Φ_i up when c_ij > 0: training on row i raises row j's loss.
Logistic regression (exact): one solve per explained row (a batch: one Cholesky factorization
when the parameter count is small, else conjugate gradient per row), then one product with the
validation design per batch; never the M×P matrix of validation gradients.

Networks: u_i by conjugate gradient on the damped operator ``score_net`` solved with (the
Gauss-Newton or exact Hessian of the recorded ``hessian``, plus (λ+δ)I, over the same seeded
curvature rows; ``rdia_cli.influence.nets.net_problem``), ∇ℓ_i of the explained rows as
per-sample gradients (``torch.func.vmap`` of ``grad``), then every ∇ℓ_j · u_i from one
forward-mode pass over the M validation rows per explained row. The shares then sum to Φ_i up
to the two solves' tolerance (Φ_i uses s = A⁻¹∇L_Q, the split uses u_i = A⁻¹∇ℓ_i), not exactly.
Scores made with LiSSA are explained with CG on the same operator.

Sign and scale: ``rdia_cli.glossary``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError, RuntimeFailure
from rdia_cli.models.io import ModelFile

NET_SETTINGS = ("hessian", "damping", "hessian_samples", "seed", "dtype", "tol", "max_iter")


def settings_from_scores(model: ModelFile, info: dict | None) -> dict:
    """The keyword arguments of ``phi_by_val_row`` that reproduce the operator a scores file
    (its metadata, or a ScoreResult's ``info``) solved with."""
    from rdia_cli.models.kinds import kind_of

    info = info or {}
    if kind_of(model).exact_influence:
        return {"damping": float(info.get("damping") or 0.0)}
    out = {k: info[k] for k in NET_SETTINGS if info.get(k) is not None}
    out["hessian_samples"] = info.get("hessian_samples")  # None: every row (as recorded)
    return out


def phi_by_val_row(model: ModelFile, train: Dataset, val: Dataset, rows, *,
                   damping: float | None = None, solver: str = "auto", tol: float | None = None,
                   max_iter: int | None = None, device="cpu", hessian: str = "ggn",
                   hessian_samples: int | None = None, seed: int = 0,
                   dtype: str = "float32", batch_size: int = 1024) -> np.ndarray:
    """(M, B) matrix C with C[j, b] = c_{rows[b], j}: validation row j's part of Φ of training
    row ``rows[b]``; each column sums to that row's Φ.

    Logistic regression: exactly (as ``score_logreg`` computes Φ, with the same Hessian:
    ``model``'s λ, the training targets and weights, ``damping``, default 0; ``solver``,
    ``tol`` 1e-10, ``max_iter`` 1000). Networks: to the solver's tolerance, with the operator
    of ``score_net`` (``hessian``, ``damping`` default 0.01, ``hessian_samples``, ``seed``,
    ``dtype``; CG with ``tol`` 1e-6 and ``max_iter`` 200); pass the scores' settings
    (``settings_from_scores``) so that the operator is the one Φ was computed with."""
    from rdia_cli.models.kinds import kind_of

    rows = np.asarray(rows, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= train.n_samples):
        raise InputError(f"`rows` must be positions in the training data (0 to "
                         f"{train.n_samples - 1}); got {int(rows.max())}.")
    if rows.size == 0:
        return np.zeros((val.n_samples, 0))
    if not kind_of(model).exact_influence:
        return _phi_by_val_row_net(
            model, train, val, rows, hessian=hessian,
            damping=0.01 if damping is None else damping, tol=tol or 1e-6,
            max_iter=max_iter or 200, hessian_samples=hessian_samples, seed=seed,
            dtype=dtype, batch_size=batch_size, device=device)
    return _phi_by_val_row_logreg(model, train, val, rows, damping=damping or 0.0,
                                  solver=solver, tol=tol or 1e-10, max_iter=max_iter or 1000,
                                  device=device)


def _phi_by_val_row_logreg(model, train, val, rows, *, damping, solver, tol, max_iter, device):
    import torch

    from rdia_cli.influence.logreg import problem_for
    from rdia_cli.linalg import conjugate_gradient
    from rdia_cli.models.logreg.newton import choose_solver, solve_direct
    from rdia_cli.models.logreg.problem import state_to_theta

    prob = problem_for(model, train, device=device)
    theta = state_to_theta(model.state, fit_intercept=prob.fit_intercept,
                           device=prob.design.device)
    Z = prob.logits(theta)
    # ∇ℓ_i of the explained rows, Θ-shaped: x̃_i ⊗ r_i (no sample weight: Φ's ∇ℓ_i)
    sub = problem_for(model, train.subset(rows), device=device)
    R = sub.residual(sub.logits(theta))  # (B, C')
    Xs = train.subset(rows).flat_X()
    Xs = Xs.toarray() if hasattr(Xs, "toarray") else np.asarray(Xs)
    Xr = torch.as_tensor(Xs, device=R.device).to(R.dtype)  # (B, P): B ≤ a few hundred rows
    parts = [Xr[:, :, None] * R[:, None, :]]
    if prob.fit_intercept:
        parts.append(R[:, None, :])
    G = torch.cat(parts, 1).reshape(len(rows), -1).T  # (n_params, B)

    if choose_solver(prob, solver) == "direct":
        H = prob.hessian(Z, damping=damping)
        L, info = torch.linalg.cholesky_ex(H)
        if int(info) != 0:
            solve_direct(H, G[:, 0])  # raises the usual message
        U = torch.cholesky_solve(G, L)
    else:
        matvec = prob.hvp_operator(Z, damping=damping)
        precond = prob.preconditioner(Z, damping=damping)
        cols = []
        for b in range(G.shape[1]):
            try:
                cols.append(conjugate_gradient(matvec, G[:, b], precond=precond, tol=tol,
                                               max_iter=max_iter).x)
            except ArithmeticError as e:
                raise RuntimeFailure(f"CG failed: {e}; add damping or use l2 > 0.") from None
        U = torch.stack(cols, 1)

    vprob = problem_for(model, val, device=device)
    Rv = vprob.residual(vprob.logits(theta))  # (M, C')
    shape = prob.shape
    B = U.shape[1]
    V = U.T.reshape(B, *shape).permute(1, 2, 0).reshape(shape[0], shape[1] * B)
    XU = vprob.logits(V).reshape(val.n_samples, shape[1], B)  # x̃_j u_i per class
    C = -(Rv[:, :, None] * XU).sum(1) / val.n_samples
    return C.detach().cpu().numpy().astype(np.float64)


def _phi_by_val_row_net(model, train, val, rows, *, hessian, damping, tol, max_iter,
                        hessian_samples, seed, dtype, batch_size, device):
    import torch
    from torch.func import grad, vmap

    from rdia_cli.influence.nets import cg, net_problem
    from rdia_cli.models.nets.batches import Rows, ce_per_sample
    from rdia_cli.models.nets.training import target_tensor

    setup = net_problem(model, train, val, hessian=hessian, damping=damping, tol=tol,
                        max_iter=max_iter, hessian_samples=hessian_samples, seed=seed,
                        device=device, batch_size=batch_size, dtype=dtype)
    prob = setup.problem
    setup.cache_curvature(hessian)
    matvec = setup.matvec(hessian)

    def loss_one(params, x, t):  # ℓ_i, unweighted (Φ's ∇ℓ_i), with the training target
        return ce_per_sample(prob.logits(params, x.unsqueeze(0)), t.unsqueeze(0))[0]

    per_row = vmap(grad(loss_one), in_dims=(None, 0, 0))
    vrows = Rows(val.X, setup.input_shape, device=setup.device, dtype=setup.dtype)
    vtarget = target_tensor(val, setup.dtype, setup.device)
    vlabels = torch.as_tensor(val.y, dtype=torch.long, device=setup.device)
    cols = []
    for a in range(0, len(rows), 64):
        take = rows[a:a + 64]
        g = per_row(prob.params, setup.rows.get(take),
                    setup.target[torch.as_tensor(take, device=setup.target.device)])
        G = torch.cat([g[k].reshape(len(take), -1) for k in prob.names], 1)
        for b in range(len(take)):
            u = cg(matvec, G[b], tol=tol, max_iter=max_iter, what=hessian).x
            dots, _, _ = prob.directional(vrows, vtarget, vlabels, u)  # ∇ℓ_j · u_i
            cols.append(-dots.double() / val.n_samples)
    return torch.stack(cols, 1).cpu().numpy().astype(np.float64)


def top_pushers(C: np.ndarray, phi: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """For each column b of ``C`` (``phi_by_val_row``): the ``k`` validation rows with the
    largest c_jb in the direction of Φ_b's sign, and their shares c_jb / Φ_b (shares of all M
    rows sum to 1; single shares may exceed 1 where other rows pull the other way)."""
    phi = np.asarray(phi, dtype=np.float64)
    sign = np.where(phi >= 0, 1.0, -1.0)
    order = np.argsort(-(C * sign), axis=0, kind="stable")[:k]  # (k, B)
    cols = np.arange(C.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = C[order, cols] / np.where(phi == 0, np.nan, phi)
    return order.T, shares.T


@dataclass
class Why:
    """Why one training row is harmful: the validation rows pushing its Φ most (``positions``
    in the validation data, ``names`` its ID column's values or row_ids) and their shares of
    Φ (``top_pushers``)."""

    positions: list[int]
    names: list[str]
    shares: list[float]

    def text(self) -> str:
        """e.g. ``val C00265 5%, val C00237 5%, val C00233 5%``."""
        return ", ".join(f"val {n} {s:.0%}" for n, s in zip(self.names, self.shares,
                                                           strict=True))


def explain_rows(model: ModelFile, train: Dataset, val: Dataset, rows, *,
                 info: dict | None = None, k: int = 3, device="cpu") -> list[Why]:
    """``Why`` of each training row at positions ``rows``, with the operator the scores
    (metadata or ``ScoreResult.info`` ``info``) solved with."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return []
    C = phi_by_val_row(model, train, val, rows, device=device,
                       **settings_from_scores(model, info))
    order, shares = top_pushers(C, C.sum(0), k)
    ids = val.ids()
    names = (np.asarray(ids[1].to_pylist(), dtype=object) if ids is not None
             else val.row_id.astype(object))
    return [Why([int(j) for j in order[b]], [str(names[j]) for j in order[b]],
                [float(x) for x in shares[b]]) for b in range(len(rows))]
