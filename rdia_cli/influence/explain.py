"""Why a row is harmful: Φ_i split over the validation rows (logistic regression, exact).

Φ_i = -∇L_Q(θ̂)ᵀ H⁻¹ ∇ℓ_i(θ̂) and ∇L_Q = (1/M) Σ_j ∇ℓ_j, so with u_i = H⁻¹ ∇ℓ_i (H symmetric)

    Φ_i = Σ_j c_ij,    c_ij = -∇ℓ_j(θ̂)ᵀ u_i / M,

where validation row j "pushes" Φ_i up when c_ij > 0: training on row i raises row j's loss.
One solve per explained row (a batch: one Cholesky factorization when the parameter count is
small, else conjugate gradient per row), then one product with the validation design per
batch; never the M×P matrix of validation gradients. Sign and scale: ``rdia_cli.glossary``.
"""

from __future__ import annotations

import numpy as np

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError, RuntimeFailure
from rdia_cli.models.io import ModelFile


def phi_by_val_row(model: ModelFile, train: Dataset, val: Dataset, rows, *,
                   damping: float = 0.0, solver: str = "auto", tol: float = 1e-10,
                   max_iter: int = 1000, device="cpu") -> np.ndarray:
    """(M, B) matrix C with C[j, b] = c_{rows[b], j}: validation row j's part of Φ of training
    row ``rows[b]``; each column sums to that row's Φ (as ``score_logreg`` computes it, with
    the same Hessian: ``model``'s λ, the training targets and weights, ``damping``)."""
    import torch

    from rdia_cli.influence.logreg import problem_for
    from rdia_cli.linalg import conjugate_gradient
    from rdia_cli.models.kinds import kind_of
    from rdia_cli.models.logreg.newton import choose_solver, solve_direct
    from rdia_cli.models.logreg.problem import state_to_theta

    if not kind_of(model).exact_influence:
        raise InputError("explaining Φ by validation rows needs a logistic regression model; "
                         "networks are not supported yet (`explain` 0).")
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return np.zeros((val.n_samples, 0))
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
