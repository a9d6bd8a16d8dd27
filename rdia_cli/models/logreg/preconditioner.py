"""The CG preconditioner of logistic regression's Newton steps and influence solves: Jacobi,
with the most frequent columns' block solved exactly (for sparse data with a few dense
columns)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rdia_cli.models.logreg.problem import LogRegProblem

BLOCK_COLUMNS = 2000  # frequent columns solved exactly inside the CG preconditioner
BLOCK_ROWS = 1 << 18  # rows (per process) that estimate that block; more are sampled evenly


class FrequentBlockJacobi:
    """M⁻¹r for M = (H + δI) restricted to blocks: one dense block over S = the m most
    frequent columns plus the intercept, solved by Cholesky, and the diagonal elsewhere.

    Why: with one-hot categorical fields (CTR data) every field's columns sum to the intercept
    column, so H has near-null directions "raise one field, lower the intercept" damped only by
    λ; plain Jacobi leaves a dozen tiny outlying eigenvalues that CG must find one by one. The
    small fields behind them are exactly the frequent columns. Measured on 1M Avazu-shaped
    rows (influence solve to 1e-10): 139 CG iterations with Jacobi, 53 with m = 1000, 49 with
    m = 2000, 46 with m = 3000; estimating the block from 10% of the rows changed 49 to 48.
    Building it costs a column count over X (cached), a pass over BLOCK_ROWS sampled rows
    (O(Σ_i k_i²), k_i the row's nonzeros in S) and an (m+1)² Cholesky. Any symmetric
    positive definite M leaves CG's answer unchanged; only the iteration count depends on it.
    Under torch.distributed the column counts and the block are all-reduced, so every rank
    builds the same M.
    """

    def __init__(self, diag, idx, chol):
        self.diag = diag
        self.idx = idx
        self.chol = chol

    @classmethod
    def build(cls, prob: LogRegProblem, Z, diag, *, damping: float, m: int):
        import torch

        design = prob.design
        dev, dt = diag.device, diag.dtype
        counts = torch.as_tensor(design.column_counts(), dtype=torch.float64, device=dev)
        counts = prob.reduce(counts).cpu().numpy()
        m = min(m, int((counts > 0).sum()))
        if m <= 0:
            return diag
        cols = np.sort(np.argsort(-counts, kind="stable")[:m])
        d, _ = prob._curvature(Z)
        G, col, dsum = design.frequent_gram(cols, d.detach().cpu().numpy(), max_rows=BLOCK_ROWS)
        k = m + int(prob.fit_intercept)
        H = torch.zeros(k, k, dtype=torch.float64, device=dev)
        H[:m, :m] = torch.as_tensor(G, device=dev)
        if prob.fit_intercept:
            colt = torch.as_tensor(col, device=dev)
            H[:m, m] = colt
            H[m, :m] = colt
            H[m, m] = dsum
        H = prob.reduce(H) / prob.n_total
        H.diagonal()[:m] += prob.l2
        H.diagonal().add_(damping)
        L, info = torch.linalg.cholesky_ex(H.to(dt))
        if int(info) != 0:  # numerically not positive definite: plain Jacobi
            return diag
        idx = torch.as_tensor(cols, dtype=torch.int64)
        if prob.fit_intercept:
            idx = torch.cat([idx, torch.tensor([prob.n_features])])
        return cls(diag, idx.to(dev), L)

    def __call__(self, r):
        import torch

        z = r / self.diag
        z[self.idx] = torch.cholesky_solve(r[self.idx][:, None], self.chol)[:, 0]
        return z
