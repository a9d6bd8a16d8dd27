"""Blends of the training-based pick and "clean set alone": the final model averages their
parameters, and for a linear softmax model the blend's probabilities follow from the two's, so
the cross-validated loss of every share is exact and costs no fit (see ``clean``)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from rdia_cli.cleaning.auto.policy import DEFAULT_POLICY
from rdia_cli.metrics import row_losses
from rdia_cli.models.io import ModelFile


def blend_probs(p: np.ndarray, q: np.ndarray, share: float) -> np.ndarray:
    """Probabilities of the model whose parameters are (1 − share) × p's + share × q's: for a
    linear softmax model the logits, hence the log-probabilities up to a per-row constant,
    blend the same way."""
    z = (1 - share) * np.log(np.clip(p, 1e-300, None)) + share * np.log(np.clip(q, 1e-300, None))
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def blend_cv(pick: np.ndarray, alone: np.ndarray, y: np.ndarray, share: float,
             alone_shift: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold row losses of the parameter blend (1 − share) × pick + share × "clean set
    alone", whose own row losses the learning-curve correction lowers by ``alone_shift``; the
    blend's correction is taken as share × that (first order). Share 1 reproduces the corrected
    loss of the clean set alone, share 0 the pick's."""
    loss = row_losses(blend_probs(pick, alone, share), y)
    return loss if alone_shift is None else loss - share * alone_shift


def blend_share(pick: np.ndarray, alone: np.ndarray, y: np.ndarray,
                alone_shift: np.ndarray | None = None,
                grid=DEFAULT_POLICY.blend_shares) -> float:
    """The share of "clean set alone" (out-of-fold probabilities ``alone``) in a parameter blend
    with the training-based ``pick`` whose cross-validated loss (``blend_cv``) is lowest; ties
    go to the smaller share."""
    best, best_loss = 0.0, math.inf
    for share in grid:
        loss = float(blend_cv(pick, alone, y, share, alone_shift).mean())
        if loss < best_loss - 1e-12:
            best, best_loss = float(share), loss
    return best


def blend_models(a: ModelFile, b: ModelFile, share: float) -> ModelFile:
    """A logistic regression with (1 − share) × ``a``'s parameters + share × ``b``'s; its λ is
    ``a``'s. It minimizes no training loss, so it records no training fingerprint (`rdia
    score` warns that Φ assumes a minimizer)."""
    state = {k: (1 - share) * a.state[k] + share * b.state[k] for k in a.state}
    meta = dict(a.meta, train_fingerprint=None,
                blend={"share": share, "l2": [a.meta["l2"], b.meta["l2"]]})
    return replace(a, state=state, meta=meta)
