"""A Hessian shared by many fits: the preconditioner of auto's cross-validation fits.

auto fits hundreds of logistic regressions on training sets that share most of their rows (the
candidates of one fold, one fold and the next, one λ and the next). A Newton step solved with
each fit's own explicit Hessian costs N·P² (P parameters); the data part of one Hessian,
Σ_i w_i ∇²ℓ_i(θ), factorized once and used as the preconditioner of conjugate gradient on each
fit's own Hessian-vector products, makes a Newton step cost a few products of N·P each. The fit
still converges to its own optimum and tolerance: the shared matrix only changes how fast.

With λ = reg / rows, the preconditioner of a fit on n rows is proportional to
Σ w_i ∇²ℓ_i + reg·I (on the weights, not the intercept): one Cholesky factor serves every fit of
the same ``reg``, whatever its row count (conjugate gradient is blind to the preconditioner's
scale)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rdia_cli.models.logreg.design import DENSE_MAX_ELEMENTS

if TYPE_CHECKING:
    from rdia_cli.data.dataset import Dataset
    from rdia_cli.models.io import ModelFile
    from rdia_cli.models.logreg.problem import LogRegProblem

MAX_PARAMS = 2500  # an explicit P × P matrix and its factor up to this many parameters
# a fit on fewer than P / FEW_ROWS rows is not preconditioned (a Hessian-vector product costs
# about 4·N·P, the triangular solves 2·P²: measured on clean sets of 27 rows with P = 650)
FEW_ROWS = 4


class SharedCurvature:
    """Σ_i w_i ∇²ℓ_i(θ) of one data set at one θ (float64, P × P, on the CPU), with a Cholesky
    factor per n·λ. ``preconditioner(problem)`` gives r ↦ M⁻¹r for a fit of that shape (on
    torch tensors, or numpy arrays for a fit on the numpy backend)."""

    def __init__(self, data_sum, shape: tuple[int, int], n_features: int, flat):
        self.data_sum, self.shape, self.n_features, self.flat = data_sum, shape, n_features, flat
        self._factors: dict[float, object] = {}

    @classmethod
    def of(cls, problem: LogRegProblem, theta) -> SharedCurvature | None:
        """At ``theta`` of ``problem``; None where an explicit Hessian does not fit (too many
        parameters, sparse X too large to densify, a device other than the CPU)."""
        from rdia_cli.models.logreg.arrays import TORCH

        design = problem.design
        if problem.n_params > MAX_PARAMS or problem.xp is not TORCH:
            return None
        if str(design.device) != "cpu":
            return None
        if design.sparse and design.shape[0] * design.shape[1] > DENSE_MAX_ELEMENTS:
            return None
        H = problem.hessian(problem.logits(theta), penalty=False, flat=False) * problem.n_total
        return cls(H, problem.shape, problem.n_features, problem.flat_direction())

    @classmethod
    def at(cls, model: ModelFile, ds: Dataset, *, l2: float = 0.0) -> SharedCurvature | None:
        """At ``model``'s parameters on ``ds`` (a logistic regression of the same shape)."""
        from rdia_cli.models.logreg.problem import LogRegProblem, state_to_theta

        fit_intercept = bool(model.arch_args.get("fit_intercept", True))
        problem = LogRegProblem.from_arrays(ds.flat_X(), ds.targets(), ds.weight,
                                            n_classes=ds.n_classes, l2=l2,
                                            fit_intercept=fit_intercept)
        return cls.of(problem, state_to_theta(model.state, fit_intercept=fit_intercept))

    def preconditioner(self, problem: LogRegProblem) -> Callable | None:
        """r ↦ M⁻¹r with M ∝ this data Hessian + n·λ·I (+ the flat direction), for a fit of
        ``problem``; None when its shape differs, it has too few rows for the solve to pay, or
        M is not positive definite."""
        import torch

        from rdia_cli.models.logreg.arrays import NUMPY_DEVICE

        if tuple(problem.shape) != tuple(self.shape) or str(problem.design.device) not in (
                "cpu", NUMPY_DEVICE):
            return None
        if problem.n_params > FEW_ROWS * problem.design.shape[0]:
            return None  # its solve (2·P²) costs more than the products it saves (4·N·P each)
        reg = float(problem.l2) * problem.n_total
        if reg not in self._factors:
            M = self.data_sum.clone()
            idx = torch.arange(self.n_features * self.shape[1])
            M[idx, idx] += reg
            if self.flat is not None:
                M += problem.n_total * torch.outer(self.flat, self.flat)
            L, info = torch.linalg.cholesky_ex(M)
            self._factors[reg] = L if int(info) == 0 else None
        L = self._factors[reg]
        if L is None:
            return None
        if str(problem.design.device) == NUMPY_DEVICE:  # a fit on the numpy backend
            from scipy.linalg import cho_solve

            factor = (L.numpy(), True)
            return lambda r: cho_solve(factor, r, check_finite=False)
        return lambda r: torch.cholesky_solve(r.reshape(-1, 1), L).reshape(-1)
