"""Model kinds as objects: what differs between logistic regression and the networks, behind one
small protocol, so that no layer compares ``model.arch`` with a string.

    kind = kind_of(model)              # or kind_of("mlp"); KINDS lists them by name
    model = kind.fit(ds, device="cpu", l2=..., net_options=...)
    model2 = kind.refit(cleaned, model, from_scratch=False)
    P = kind.predict_proba(model, ds)  # a Dataset, or the rows as ``kind.inputs(ds)`` gives them
    kind.save(model, path); kind.load(path)

Capabilities are attributes, not name tests:

* ``exact_influence``  Φ comes from an exact Hessian solve of a convex objective (logistic
  regression); the networks' Φ is a Gauss-Newton / damped approximation.
* ``supports_auto``    ``--strategy auto`` can tune it (it refits λ many times on a convex
  objective); ``default_strategy`` is the strategy used when none is given.
* ``shardable``        ``torchrun`` can shard its rows (``rdia_cli.distributed``).
* ``flat_input``       it reads the rows as an (N, P) matrix (images flattened).
* ``numpy_cpu``        it predicts and scores on the CPU with numpy/scipy, without importing
  torch (``device="numpy"``, ``rdia_cli.models.logreg.arrays``).

Influence sits one layer above the models: ``rdia_cli.influence.scoring.influence(model, train,
val, ...)`` picks each kind's scorer and its defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError
from rdia_cli.models.io import ModelFile, load_model, save_model

__all__ = ["KINDS", "NET_ARCHS", "LogReg", "ModelKind", "Net", "kind_of"]

NET_ARCHS = ("mlp", "lenet", "cnn")
# what retrain keeps of a network's recorded training settings (the method is not repeated)
REFIT_KEYS = ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "schedule", "seed")
FINE_TUNE_LR = 0.1  # warm-started networks: lr × 0.1 (the paper's appendix C.3)


@runtime_checkable
class ModelKind(Protocol):
    name: str
    exact_influence: bool
    supports_auto: bool
    shardable: bool
    flat_input: bool
    numpy_cpu: bool
    default_strategy: str

    def fit(self, ds: Dataset, *, device="cpu", l2: float | None = None,
            fit_intercept: bool = True, tol: float = 1e-8, max_iter: int = 100,
            net_options: dict | None = None, init: ModelFile | None = None,
            progress: Callable | None = None) -> ModelFile: ...

    def refit(self, cleaned: Dataset, model: ModelFile, *, from_scratch: bool = False,
              device="cpu", l2: float | None = None, net_options: dict | None = None,
              progress: Callable | None = None) -> ModelFile: ...

    def inputs(self, ds: Dataset) -> Any: ...

    def predict_proba(self, model: ModelFile, X, *, device="cpu") -> np.ndarray: ...

    def save(self, model: ModelFile, path: str | Path) -> None: ...

    def load(self, path: str | Path) -> ModelFile: ...


class _Kind:
    """What both kinds share: the model file goes through ``rdia_cli.models.io``."""

    name: str
    exact_influence: ClassVar[bool]
    supports_auto: ClassVar[bool]
    shardable: ClassVar[bool]
    flat_input: ClassVar[bool]
    numpy_cpu: ClassVar[bool]
    default_strategy: ClassVar[str]

    def save(self, model: ModelFile, path: str | Path) -> None:
        save_model(model, path)

    def load(self, path: str | Path) -> ModelFile:
        model = load_model(path)
        if model.arch != self.name:
            raise InputError(f"`{path}` holds a `{model.arch}` model, not a `{self.name}`.")
        return model

    def predict_proba(self, model: ModelFile, X, *, device="cpu") -> np.ndarray:
        raise NotImplementedError

    def inputs(self, ds: Dataset):
        return ds.flat_X() if self.flat_input else ds.X

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class LogReg(_Kind):
    """Multinomial logistic regression (Newton to ``tol``; ``rdia_cli.models.logreg``)."""

    name = "logreg"
    exact_influence = True
    supports_auto = True
    shardable = True
    flat_input = True
    numpy_cpu = True
    default_strategy = "auto"

    def fit(self, ds: Dataset, *, device="cpu", l2: float | None = None,
            fit_intercept: bool = True, tol: float = 1e-8, max_iter: int = 100,
            net_options: dict | None = None, init: ModelFile | None = None,
            progress: Callable | None = None) -> ModelFile:
        from rdia_cli.models.logreg.training import train_logreg

        return train_logreg(ds, l2=l2, fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                            device=device, init=init, progress=progress)

    def refit(self, cleaned: Dataset, model: ModelFile, *, from_scratch: bool = False,
              device="cpu", l2: float | None = None, net_options: dict | None = None,
              progress: Callable | None = None) -> ModelFile:
        """``model``'s λ (unless ``l2``), intercept and tolerance; at least 100 Newton steps."""
        from rdia_cli.models.logreg.training import train_logreg

        train = model.meta.get("training", {})
        return train_logreg(
            cleaned,
            l2=model.meta["l2"] if l2 is None else l2,
            fit_intercept=model.arch_args.get("fit_intercept", True),
            tol=train.get("tol", 1e-8),
            max_iter=max(train.get("max_iter", 100), 100),
            device=device, init=None if from_scratch else model, progress=progress,
        )

    def predict_proba(self, model: ModelFile, X, *, device="cpu") -> np.ndarray:
        from rdia_cli.models.logreg.problem import predict_proba as lr_proba

        if isinstance(X, Dataset):
            X = self.inputs(X)
        return lr_proba(model.state, X, n_classes=model.n_classes, device=device)


class Net(_Kind):
    """A network ``arch`` (mlp, lenet, cnn) trained by mini-batches
    (``rdia_cli.models.nets.training``; ``net_options`` is its dict form)."""

    exact_influence = False
    supports_auto = False
    shardable = False
    flat_input = False
    numpy_cpu = False
    default_strategy = "rdia"

    def __init__(self, arch: str):
        if arch not in NET_ARCHS:
            raise InputError(f"Unknown network architecture {arch!r}; choose one of "
                             f"{NET_ARCHS}.")
        self.name = arch

    def fit(self, ds: Dataset, *, device="cpu", l2: float | None = None,
            fit_intercept: bool = True, tol: float = 1e-8, max_iter: int = 100,
            net_options: dict | None = None, init: ModelFile | None = None,
            progress: Callable | None = None) -> ModelFile:
        """Trains by ``net_options`` (``l2``, ``tol``, ``max_iter`` are logistic regression's;
        a network's λ is ``weight_decay``)."""
        from rdia_cli.models.common import check_trainable, schema_meta
        from rdia_cli.models.nets.training import train_net

        check_trainable(ds)
        model = train_net(ds, arch=self.name, device=device, init=init, progress=progress,
                          **dict(net_options or {}))
        model.meta.update(schema_meta(ds))
        return model

    def refit(self, cleaned: Dataset, model: ModelFile, *, from_scratch: bool = False,
              device="cpu", l2: float | None = None, net_options: dict | None = None,
              progress: Callable | None = None) -> ModelFile:
        """``model``'s architecture and ``REFIT_KEYS`` settings (``net_options`` override),
        plain ERM; warm-started at ``FINE_TUNE_LR`` times the learning rate."""
        from rdia_cli.models.common import schema_meta
        from rdia_cli.models.nets.training import train_net

        opts = dict(model.meta.get("training", {}))
        opts = {k: v for k, v in opts.items() if k in REFIT_KEYS}
        if not from_scratch:
            opts["lr"] = opts.get("lr", 1e-3) * FINE_TUNE_LR
        opts.update(net_options or {})
        model2 = train_net(cleaned, arch=self.name, arch_args=model.arch_args, device=device,
                           init=None if from_scratch else model, progress=progress, **opts)
        model2.meta.update(schema_meta(cleaned))
        return model2

    def predict_proba(self, model: ModelFile, X, *, device="cpu") -> np.ndarray:
        from rdia_cli.models.nets.training import predict_proba_net

        return predict_proba_net(model, X, device=device)


KINDS: dict[str, ModelKind] = {"logreg": LogReg(), **{a: Net(a) for a in NET_ARCHS}}


def kind_of(model_or_name: ModelFile | str) -> ModelKind:
    """The kind of a model (its ``arch``) or of a ``--model-type`` name; else InputError."""
    name = model_or_name.arch if isinstance(model_or_name, ModelFile) else model_or_name
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise InputError(f"`model_type` must be one of {', '.join(KINDS)}, not "
                         f"{name!r}.") from None
