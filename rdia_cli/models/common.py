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
    """(N, K) float64 probabilities for any rdia model (``kind_of(model).predict_proba``)."""
    from rdia_cli.models.kinds import kind_of

    return kind_of(model).predict_proba(model, X, device=device)


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
    """(N, K) float64 probabilities of ``model`` on the rows of ``ds``."""
    from rdia_cli.models.kinds import kind_of

    kind = kind_of(model)
    return kind.predict_proba(model, kind.inputs(ds), device=device)
