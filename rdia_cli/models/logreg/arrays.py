"""The two array libraries logistic regression runs on: torch (any device; what training, CG and
the GPU use) and numpy/scipy (CPU only, no torch: `rdia evaluate` and `rdia score` of small
problems start in a fraction of torch's import time, issue #27).

The math lives once, in ``rdia_cli.models.logreg.problem`` (``LogRegProblem``) and
``rdia_cli.influence.logreg``, written against the operators both libraries share (``@``, ``*``,
``.sum(axis=..., keepdims=...)``, ``.reshape``, indexing) plus the few functions below, which
each backend maps to its own: ``TORCH`` calls exactly the torch functions the code called before
(results bit for bit as before), ``NUMPY`` the same formulas in numpy (the same as torch's to
rounding: tests compare them to 1e-12).

Pseudo-device ``"numpy"``: the logistic-regression code (``predict_proba``, ``problem_for``,
``score_logreg``) takes ``device="numpy"`` for "the CPU, with numpy and scipy"; commands choose
it with :func:`numpy_device` (``--device cpu`` or ``auto``, on small problems: on large ones
start-up does not matter, and torch's CPU kernels are threaded).
"""

from __future__ import annotations

import numpy as np

NUMPY_DEVICE = "numpy"
# Solves with numpy up to this many elements of X times outputs (N·P·K'): there a GPU cannot pay
# back its start-up (CUDA context, transfers), torch's threads do not help (one thread is
# faster: ``rdia_cli.device.SMALL_WORK``, measured there), and importing torch is most of the
# time. Above it, torch as before (a CG solve, which numpy hands to torch, would redo its set-up).
NUMPY_MAX_WORK = 4_000_000


def numpy_device(device: str, n_elements: int | None = None) -> bool:
    """Whether logistic regression with ``--device device`` (a name, not yet resolved) runs on
    numpy: ``cpu`` or ``auto`` when the work (``n_elements``, N·P·K'; None: a pass of
    predictions, which never pays a GPU or threads back) is at most :data:`NUMPY_MAX_WORK`;
    ``cuda`` never."""
    name = (device or "auto").strip().lower()
    return name in ("cpu", "auto") and (n_elements is None or n_elements <= NUMPY_MAX_WORK)


def is_numpy(device) -> bool:
    return isinstance(device, str) and device == NUMPY_DEVICE


def as_numpy(v) -> np.ndarray:
    """A model file's weight (numpy array or torch tensor) as a float64 numpy array."""
    if hasattr(v, "detach"):  # a torch tensor, without importing torch
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=np.float64)


class NumpyOps:
    """Backend functions in numpy (float64, CPU)."""

    name = "numpy"

    @staticmethod
    def asarray(x, *, dtype=None, device=None):
        return np.asarray(x, dtype=np.float64 if dtype is None else dtype)

    @staticmethod
    def zeros(shape, *, dtype, device=None):
        return np.zeros(shape, dtype=dtype)

    @staticmethod
    def ones(n, *, dtype, device=None):
        return np.ones(n, dtype=dtype)

    @staticmethod
    def sigmoid(z):
        with np.errstate(over="ignore"):  # exp(-z) = inf for z < -709: 1/inf = 0, as torch
            return 1.0 / (1.0 + np.exp(-z))

    @staticmethod
    def softmax(Z):
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)

    @staticmethod
    def log_softmax(Z):
        S = Z - Z.max(axis=1, keepdims=True)
        return S - np.log(np.exp(S).sum(axis=1, keepdims=True))

    @staticmethod
    def softplus(z):
        """log(1 + eˣ) with torch's threshold: x itself above 20."""
        with np.errstate(over="ignore"):
            return np.where(z > 20.0, z, np.log1p(np.exp(np.minimum(z, 20.0))))

    @staticmethod
    def concat(parts, axis=0):
        return np.concatenate(parts, axis=axis)

    @staticmethod
    def stack(parts, axis=0):
        return np.stack(parts, axis=axis)

    @staticmethod
    def diag(v):
        return np.diag(v)

    @staticmethod
    def outer(u, v):
        return np.outer(u, v)

    @staticmethod
    def clamp_min(x, low):
        return np.maximum(x, low)

    @staticmethod
    def norm(x) -> float:
        return float(np.linalg.norm(x))

    @staticmethod
    def sqrt(x):
        return np.sqrt(x)

    @staticmethod
    def take_labels(P, y):
        """P[i, y_i] for every row."""
        return P[np.arange(len(y)), np.asarray(y)]

    @staticmethod
    def numpy(x) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)

    @staticmethod
    def solve_spd(H, b, *, fixes=None):
        """H⁻¹b by Cholesky (LAPACK potrf/potrs, as torch); RuntimeFailure when H is not
        positive definite (the message of ``newton.solve_direct``; ``fixes`` its, by default
        an influence solve's)."""
        from scipy.linalg import LinAlgError, cho_factor, cho_solve

        from rdia_cli.errors import RuntimeFailure
        from rdia_cli.models.logreg.newton import INFLUENCE_FIXES, NOT_POSITIVE_DEFINITE

        try:
            factor = cho_factor(H, lower=True, check_finite=False)
        except LinAlgError:
            raise RuntimeFailure(NOT_POSITIVE_DEFINITE,
                                 fixes=INFLUENCE_FIXES if fixes is None else fixes) from None
        return cho_solve(factor, b.reshape(-1, 1), check_finite=False).reshape(-1)

    @staticmethod
    def copy_as(x, like):
        """A copy of ``x`` (a numpy array or torch tensor) as an array of ``like``'s dtype."""
        return as_numpy(x).astype(like.dtype, copy=True)


class TorchOps:
    """Backend functions in torch: the calls the logistic-regression code always made."""

    name = "torch"

    @staticmethod
    def asarray(x, *, dtype, device):
        import torch

        return torch.as_tensor(np.asarray(x), device=device).to(dtype)

    @staticmethod
    def zeros(shape, *, dtype, device):
        import torch

        return torch.zeros(shape, device=device, dtype=dtype)

    @staticmethod
    def ones(n, *, dtype, device):
        import torch

        return torch.ones(n, device=device, dtype=dtype)

    @staticmethod
    def sigmoid(z):
        import torch

        return torch.sigmoid(z)

    @staticmethod
    def softmax(Z):
        import torch

        if _few_classes_on_cpu(Z):
            E = torch.exp(Z - Z.amax(dim=1, keepdim=True))
            return E / E.sum(dim=1, keepdim=True)
        return torch.softmax(Z, dim=1)

    @staticmethod
    def log_softmax(Z):
        import torch
        import torch.nn.functional as F

        if _few_classes_on_cpu(Z):
            S = Z - Z.amax(dim=1, keepdim=True)
            return S - torch.log(torch.exp(S).sum(dim=1, keepdim=True))
        return F.log_softmax(Z, dim=1)

    @staticmethod
    def softplus(z):
        import torch.nn.functional as F

        return F.softplus(z)

    @staticmethod
    def concat(parts, axis=0):
        import torch

        return torch.cat(parts, axis)

    @staticmethod
    def stack(parts, axis=0):
        import torch

        return torch.stack(parts, dim=axis)

    @staticmethod
    def diag(v):
        import torch

        return torch.diag(v)

    @staticmethod
    def outer(u, v):
        import torch

        return torch.outer(u, v)

    @staticmethod
    def clamp_min(x, low):
        import torch

        return torch.clamp(x, min=low)

    @staticmethod
    def norm(x) -> float:
        import torch

        return float(torch.linalg.vector_norm(x))

    @staticmethod
    def sqrt(x):
        return x.sqrt()

    @staticmethod
    def take_labels(P, y):
        import torch

        y = torch.as_tensor(y, device=P.device)
        return P.gather(1, y[:, None])[:, 0]

    @staticmethod
    def numpy(x) -> np.ndarray:
        return x.detach().cpu().numpy().astype(np.float64, copy=False)

    @staticmethod
    def solve_spd(H, b, *, fixes=None):
        from rdia_cli.models.logreg.newton import solve_direct

        return solve_direct(H, b) if fixes is None else solve_direct(H, b, fixes=fixes)

    @staticmethod
    def copy_as(x, like):
        """A copy of ``x`` on ``like``'s device and dtype."""
        return x.to(like).clone()


# torch's CPU (log-)softmax over the class axis is about 3× slower than the same formula in
# elementwise ops up to a few dozen classes (float64, one thread: 155 against 47 µs for
# 1,400 × 10, 11.6 against 3.7 ms for 100,000 × 10) and faster from a few hundred
FEW_CLASSES = 64


def _few_classes_on_cpu(Z) -> bool:
    return Z.shape[1] <= FEW_CLASSES and Z.device.type == "cpu"


NUMPY, TORCH = NumpyOps(), TorchOps()


class NumpyDesign:
    """X for the numpy backend: a scipy CSR matrix or a dense float64 array, with the products
    ``LogRegProblem`` needs (``Design``'s interface; single-threaded scipy/numpy kernels: the
    numpy backend serves small problems)."""

    xp = NUMPY
    dtype = np.float64
    device = NUMPY_DEVICE

    def __init__(self, X):
        import scipy.sparse as sp

        self.sparse = sp.issparse(X)
        if self.sparse:
            X = X.tocsr()
            if X.dtype != np.float64:
                X = X.astype(np.float64)
        else:
            X = np.asarray(X, dtype=np.float64)
            if X.ndim > 2:
                X = X.reshape(X.shape[0], -1)
        self._X = X
        self.shape = tuple(X.shape)
        # what solver_choice reads of a CPU Design: the host CSR (sparse) for its row counts
        self._scipy = self._host = X if self.sparse else None

    def mm(self, W):
        return np.asarray(self._X @ W)

    def rmm(self, G):
        return np.asarray(self._X.T @ G)

    def col_sq_sums(self, c):
        X2 = self._X.multiply(self._X) if self.sparse else self._X * self._X
        return np.asarray(X2.T @ c)

    def gram(self, coef, *, intercept: bool):
        """X̃ᵀ diag(coef) X̃ with X̃ = [X, 1] when ``intercept`` (as ``Design.gram``)."""
        X = self._X
        if self.sparse:
            Xc = X.multiply(coef[:, None]).tocsr()
            G = np.asarray((X.T @ Xc).todense())
            col = np.asarray(Xc.sum(0)).ravel()
        else:
            Xc = X * coef[:, None]
            G = X.T @ Xc
            col = Xc.sum(0)
        if intercept:
            G = np.block([[G, col[:, None]], [col[None, :], np.array([[coef.sum()]])]])
        return G
