"""Which solver the influence solve s = H⁻¹∇L_Q uses under ``solver="auto"``: by estimated cost.

- **direct**: form H = X̃ᵀDX̃/N (+ λ, δ) — K'(K'+1)/2 Gram blocks of 2·N·A² flops each (A = features
  + intercept, K' = logits), or Σ_i nnz_i² per block for sparse X on the CPU (scipy's sparse
  product) — then Cholesky, (A·K')³/3 flops. Dense Gram products run at GEMM speed.
- **cg**: k̂ iterations, each one Hessian-vector product = two mat-vecs over X (4·nnz·K' flops),
  which are memory-bound: one mat-vec flop costs :data:`MATVEC_SLOWDOWN` GEMM flops.

k̂ comes from the condition number of the Jacobi-preconditioned Hessian (CG needs about
√κ·ln(2/tol)/2 steps): κ̂ = λ̂_max · max_j(H_jj) / (λ + δ), with λ̂_max of D^{-1/2}HD^{-1/2} from
:data:`POWER_STEPS` power iterations (each one Hessian-vector product, started from D^{1/2}·1, so
the choice is deterministic), then k̂ = :data:`CG_STEPS_PER_SQRT_KAPPA`·√κ̂·ln(2/tol)/ln(2e10),
capped at the parameter count. The estimate is only computed when the choice depends on it.

Constants, measured on the 2-core AMD EPYC this project is developed on (``bench/dense_scoring.py``,
``bench/results/dense_scoring.md``):

- :data:`MATVEC_SLOWDOWN` (CPU): on MNIST 1-vs-7 (13,007 × 785) the explicit Hessian (16 GFLOP)
  took 0.17-0.20 s (81-98 GFLOP/s) and one Hessian-vector product (41 MFLOP) 7.2-7.9 ms
  (5.2-5.7 GFLOP/s): ratio 17 on the idle machine (5.5 at load average 4 on its 2 cores, where the
  threaded GEMM suffers most), taken as 15. On a GPU, fp64 GEMM runs at tens of TFLOP/s while
  mat-vecs are bound by memory bandwidth (under 1 TFLOP/s) and each CG step syncs with the host:
  50 there is an estimate from those peak numbers, not a measurement.
- :data:`CG_STEPS_PER_SQRT_KAPPA`: measured CG iterations / √κ̂ at tol 1e-10 were 2.7-4.4 on MNIST
  1-vs-7 (λ from 1/N to 0.1), 1.1-3.2 on
  breast-cancer, 1.3-4.3 on digits. 4, near the top of that range, so CG is chosen only where it
  is clearly cheaper (at λ = 0.01 on MNIST 1-vs-7, 3 predicted 26 iterations for 35 measured and
  picked CG at the break-even point). Any error only moves the choice near the break-even point,
  where both solvers cost about the same; both solve to the same tolerance.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from rdia_cli.errors import InputError

if TYPE_CHECKING:
    from rdia_cli.models.logreg.problem import LogRegProblem

DIRECT_MAX_PARAMS = 4000  # memory bound of the explicit Hessian (128 MB in float64)
MATVEC_SLOWDOWN = {"cpu": 15.0, "cuda": 50.0}  # cost of a mat-vec flop in dense-GEMM flops
CG_STEPS_PER_SQRT_KAPPA = 4.0
POWER_STEPS = 4
_REF_LOG_TOL = math.log(2e10)  # ln(2/tol) at the default tol 1e-10


@dataclass(frozen=True)
class SolverEstimate:
    """The estimated cost of each solver, in GEMM-flop equivalents, and the choice made."""

    choice: str
    direct_cost: float | None  # None: direct not possible (memory, or sparse X too large)
    cg_cost_per_iteration: float
    cg_iterations: float | None  # None: not estimated (the choice did not depend on it)

    def as_info(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _slowdown(problem: LogRegProblem) -> float:
    kind = getattr(problem.design.device, "type", "cpu")  # the numpy backend: "numpy", the CPU
    return MATVEC_SLOWDOWN.get(kind, MATVEC_SLOWDOWN["cuda"])


def _nnz(problem: LogRegProblem) -> float:
    d = problem.design
    if not d.sparse:
        return float(d.shape[0]) * d.shape[1]
    host = d._host if d._host is not None else d._scipy
    return float(host.nnz)


def direct_cost(problem: LogRegProblem) -> float | None:
    """GEMM-flop equivalents of forming and factoring H, or None when it is not done."""
    from rdia_cli.models.logreg.design import DENSE_MAX_ELEMENTS

    d = problem.design
    n, p = d.shape
    if problem.n_params > DIRECT_MAX_PARAMS:
        return None
    if d.sparse and n * p > DENSE_MAX_ELEMENTS:
        return None
    a, c = problem.shape
    blocks = c * (c + 1) / 2
    if d.sparse and d._scipy is not None:  # scipy's sparse Xᵀ(cX): Σ_i nnz_i² multiply-adds
        import numpy as np

        row_nnz = np.diff(d._scipy.indptr).astype(np.float64)
        gram = 2.0 * float(row_nnz @ row_nnz) * blocks * _slowdown(problem)
    else:
        gram = 2.0 * n * a * a * blocks
    return gram + (a * c) ** 3 / 3.0


def cg_cost_per_iteration(problem: LogRegProblem) -> float:
    """GEMM-flop equivalents of one CG iteration (one Hessian-vector product)."""
    return 4.0 * _nnz(problem) * problem.n_out * _slowdown(problem)


def estimate_cg_iterations(problem: LogRegProblem, Z, *, damping: float = 0.0,
                           tol: float = 1e-10) -> float:
    """k̂ from a few power iterations on the Jacobi-preconditioned Hessian (module docstring)."""
    xp = problem.xp
    reg = problem.l2 + damping
    if reg <= 0:
        return float(problem.n_params)
    diag = problem.hessian_diagonal(Z, damping=damping)
    root = xp.sqrt(diag)
    matvec = problem.hvp_operator(Z, damping=damping)
    v = root / xp.norm(root)
    lam = 1.0
    for _ in range(POWER_STEPS):
        w = matvec(v / root) / root
        lam = float(w @ v)
        v = w / xp.norm(w)
    kappa = max(1.0, lam * float(diag.max()) / reg)
    steps = CG_STEPS_PER_SQRT_KAPPA * math.sqrt(kappa) * math.log(2.0 / tol) / _REF_LOG_TOL
    return float(min(problem.n_params, max(1.0, steps)))


def choose_influence_solver(problem: LogRegProblem, Z, solver: str = "auto", *,
                            damping: float = 0.0, tol: float = 1e-10) -> SolverEstimate:
    """``solver`` itself unless it is "auto"; then the cheaper of direct and CG by estimate."""
    if solver not in ("auto", "direct", "cg"):
        raise InputError(f"`solver` must be auto, direct or cg, not {solver!r}.")
    per_it = cg_cost_per_iteration(problem)
    direct = direct_cost(problem)
    if solver != "auto":
        return SolverEstimate(solver, direct, per_it, None)
    if direct is None:
        return SolverEstimate("cg", None, per_it, None)
    if direct <= per_it * (POWER_STEPS + 2):  # cheaper than estimating: no estimate
        return SolverEstimate("direct", direct, per_it, None)
    steps = estimate_cg_iterations(problem, Z, damping=damping, tol=tol)
    choice = "direct" if direct <= per_it * steps else "cg"
    return SolverEstimate(choice, direct, per_it, steps)
