"""Selection of the harmful set D⁻ from Φ (``rdia_cli.glossary``: Φ > 0 is harmful): by a
threshold α or by a fraction of the rows."""

from __future__ import annotations

import math

import numpy as np

from rdia_cli.errors import InputError


def select_harmful(
    phi: np.ndarray, *, alpha: float | None = None, fraction: float | None = None
) -> np.ndarray:
    """Boolean mask of the harmful set D⁻.

    ``alpha``: Φ > α (the paper's rule, in this normalization).
    ``fraction``: the ⌈Q·N⌉ rows with the largest Φ, never a row with Φ ≤ 0 (such a row does not
    hurt the validation loss by definition).
    """
    phi = np.asarray(phi, dtype=np.float64)
    if (alpha is None) == (fraction is None):
        raise InputError("give exactly one of `alpha` and `fraction`.")
    if alpha is not None:
        if not math.isfinite(alpha):
            raise InputError(f"`alpha` must be a finite number, not {alpha}.")
        return phi > alpha
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"`fraction` must be between 0 and 1, not {fraction}.")
    count = int(math.ceil(fraction * len(phi)))
    mask = np.zeros(len(phi), dtype=bool)
    if count:
        order = np.argsort(-phi, kind="stable")[:count]
        mask[order] = True
    return mask & (phi > 0)
