"""rdia: repair classification training data with influence-based relabeling.

The public API is small and flat::

    import rdia_cli as rdia

    train, val = rdia.read_dataset("train.svm"), rdia.read_dataset("val.svm")
    model = rdia.train_model(train)
    result = rdia.score_model(model, train, val)          # result.phi: Φ > 0 is harmful

Importing this package does not import torch: every name below is imported from its module
the first time it is used. Sign and scale of the influence Φ (``phi``): ``rdia_cli.glossary``.

The package is layered, imports pointing down only (``tests/test_layers.py`` checks it)::

    cli → pipeline → stages (and report) → cleaning → influence → models → data → artifacts
        → errors, glossary, metrics, validate, device, linalg
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

from rdia_cli.errors import InputError, MismatchError, RdiaError, RuntimeFailure

# name -> module that defines it (imported on first use)
_LAZY = {
    # the five stages over in-memory objects
    "train_model": "rdia_cli.stages",
    "score_model": "rdia_cli.stages",
    "probabilities": "rdia_cli.stages",
    "relabel_dataset": "rdia_cli.stages",
    "auto_alpha": "rdia_cli.stages",
    "retrain_model": "rdia_cli.stages",
    "retrain_cleaned": "rdia_cli.stages",
    "evaluate_model": "rdia_cli.stages",
    "RelabelOutcome": "rdia_cli.stages",
    "ScoreResult": "rdia_cli.influence",
    # data
    "Dataset": "rdia_cli.data.dataset",
    "ReadOptions": "rdia_cli.data.readers",
    "read_dataset": "rdia_cli.data.readers",
    "write_dataset": "rdia_cli.data.writers",
    "split_dataset": "rdia_cli.data.protocol",
    "inject_noise": "rdia_cli.data.protocol",
    # model files
    "ModelFile": "rdia_cli.models.io",
    "load_model": "rdia_cli.models.io",
    "save_model": "rdia_cli.models.io",
    # scores files
    "read_scores": "rdia_cli.artifacts.scores",
    "write_scores": "rdia_cli.artifacts.scores",
    # cleaning
    "auto_clean": "rdia_cli.cleaning.auto",
    "relabel_targets": "rdia_cli.cleaning.strategies",
    "select_harmful": "rdia_cli.cleaning.strategies",
    "find_issues": "rdia_cli.cleaning.issues",
    # scikit-learn / imbalanced-learn style
    "RDIACleaner": "rdia_cli.estimator",
}

__all__ = ["RdiaError", "InputError", "MismatchError", "RuntimeFailure", "__version__",
           *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'rdia_cli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
