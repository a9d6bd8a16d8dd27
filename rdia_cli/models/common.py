"""What every model shares: the schema a model records, the trainability check, the check that
a data file fits a model, and class probabilities for either kind of model."""

from __future__ import annotations

import numpy as np

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError, MismatchError
from rdia_cli.models.io import ModelFile


def schema_meta(ds: Dataset) -> dict:
    """The feature and label space a model is trained on (stored in its metadata)."""
    from rdia_cli.data.readers import Schema

    meta = Schema.of(ds).to_json()
    meta["input_shape"] = list(ds.X.shape[1:])
    return meta


def check_trainable(ds: Dataset) -> None:
    if ds.n_samples == 0:
        raise InputError(f"`{ds.source}` has no rows to train on.")
    present = len(set(ds.y.tolist())) if ds.target is None else ds.n_classes
    if ds.n_classes < 2 or present < 2:
        seen = ds.classes if ds.n_classes < 2 or ds.target is not None else ds.label_values()
        raise InputError(f"`{ds.source}` has a single class (label {seen[0]}); classification "
                         "needs at least two.")


def predict_proba(model: ModelFile, X, *, device="cpu"):
    """(N, K) float64 probabilities for any rdia model."""
    if model.arch == "logreg":
        from rdia_cli.models.logreg.problem import predict_proba as lr_proba

        return lr_proba(model.state, X, n_classes=model.n_classes, device=device)
    from rdia_cli.models.nets.training import predict_proba_net

    return predict_proba_net(model, X, device=device)


def schema_of_model(model: ModelFile):
    from rdia_cli.data.readers import Schema

    return Schema.from_json(model.meta)


def check_model_data(model: ModelFile, ds: Dataset, what: str = "data") -> None:
    if ds.n_features != model.n_features:
        raise MismatchError(
            f"{what} `{ds.source}` has {ds.n_features} features but model `{model.path}` "
            f"was trained on {model.n_features}."
        )
    if [str(c) for c in ds.classes] != [str(c) for c in model.classes]:
        raise MismatchError(
            f"{what} `{ds.source}` has classes {ds.classes} but model `{model.path}` "
            f"has {model.classes}."
        )


def probabilities(model: ModelFile, ds: Dataset, *, device="cpu") -> np.ndarray:
    from rdia_cli.models.common import predict_proba

    return predict_proba(model, ds.X if model.arch != "logreg" else ds.flat_X(), device=device)
