"""Φ for a model of any kind: one scorer per model kind (``rdia_cli.models.kinds``), each with
its own defaults, chosen by the kind's class rather than by its name.

* ``LogReg``: the exact solve of ``rdia_cli.influence.logreg`` (``solver`` auto, direct or cg;
  damping 0, tol 1e-10, at most 1000 iterations; ``device="numpy"``: without torch where the
  solve is direct).
* ``Net``:    ``rdia_cli.influence.nets`` (``solver`` cg or lissa, Gauss-Newton by default;
  damping 0.01, tol 1e-6, at most 200 iterations, curvature on ``NET_HESSIAN_SAMPLES`` rows).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError
from rdia_cli.influence import ScoreResult
from rdia_cli.models.io import ModelFile
from rdia_cli.models.kinds import LogReg, Net, kind_of

NET_HESSIAN_SAMPLES = 2000  # networks: curvature on this many rows unless --hessian-samples


def influence(model: ModelFile, train: Dataset, val: Dataset, *, device="cpu",
              solver: str = "auto", damping: float | None = None, tol: float | None = None,
              max_iter: int | None = None, hessian: str = "ggn",
              hessian_samples: int | None = None, seed: int = 0,
              on_iter: Callable | None = None) -> ScoreResult:
    """Φ of every row of ``train`` on the loss of ``val`` (``rdia_cli.glossary``); ``None``
    options take the kind's defaults. ``hessian``, ``hessian_samples`` and ``seed`` are the
    networks' (logistic regression's Hessian is exact)."""
    scorer = SCORERS[type(kind_of(model))]
    return scorer(model, train, val, device=device, solver=solver, damping=damping, tol=tol,
                  max_iter=max_iter, hessian=hessian, hessian_samples=hessian_samples, seed=seed,
                  on_iter=on_iter)


def logreg_defaults(damping: float | None, tol: float | None,
                    max_iter: int | None) -> dict[str, Any]:
    """Logistic regression's solve settings with defaults filled in (also for torchrun)."""
    return {"damping": damping or 0.0, "tol": tol or 1e-10, "max_iter": max_iter or 1000}


def _score_logreg(model, train, val, *, device, solver, damping, tol, max_iter, on_iter,
                  **_net_only) -> ScoreResult:
    from rdia_cli.influence.logreg import score_logreg
    from rdia_cli.models.logreg.arrays import is_numpy

    settings = logreg_defaults(damping, tol, max_iter)
    if is_numpy(device):  # numpy on the CPU, no torch (unless the solve is CG)
        return score_logreg(model, train, val, solver=solver, **settings, device=device,
                            on_iter=on_iter)
    from rdia_cli.device import threads_for

    with threads_for(train.n_samples * train.n_features * model.n_classes):
        return score_logreg(model, train, val, solver=solver, **settings, device=device,
                            on_iter=on_iter)


def _score_net(model, train, val, *, device, solver, damping, tol, max_iter, hessian,
               hessian_samples, seed, on_iter) -> ScoreResult:
    from rdia_cli.influence.nets import score_net

    net_solver = "cg" if solver in ("auto", "cg") else solver
    if hessian_samples is None:
        hessian_samples = min(train.n_samples, NET_HESSIAN_SAMPLES)
    elif hessian_samples <= 0 or hessian_samples >= train.n_samples:
        hessian_samples = None  # curvature on every training row
    if net_solver not in ("cg", "lissa"):
        raise InputError(f"`solver` for networks must be cg or lissa, not {solver!r}.")
    return score_net(model, train, val, hessian=hessian, solver=net_solver,
                     damping=0.01 if damping is None else damping, tol=tol or 1e-6,
                     max_iter=max_iter or 200, hessian_samples=hessian_samples, seed=seed,
                     device=device)


SCORERS: dict[type, Callable[..., ScoreResult]] = {LogReg: _score_logreg, Net: _score_net}
