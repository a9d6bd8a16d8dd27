"""Influence of training samples on the validation loss (sign and scale: ``rdia_cli.glossary``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ScoreResult:
    """Φ for every training row plus what the scores file needs.

    phi     float64 (N,): Φ_i = -∇L_Q(θ̂)ᵀ H⁻¹ ∇ℓ_i(θ̂); > 0 means harmful.
    p_label float64 (N,): the model's probability of the row's current label (p_m).
    loss    float64 (N,): the row's cross-entropy at θ̂ (with its target if soft).
    info    JSON-able: solver, iterations, residual, damping, l2, val_loss, timings...
    probs   float64 (N, K) class probabilities at θ̂ when the scorer has them (saves the
            caller a pass over X), else None.
    n_val   M, the number of validation rows (for the paper's scale).
    """

    phi: np.ndarray
    p_label: np.ndarray
    loss: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    probs: np.ndarray | None = None
    n_val: int | None = None

    @property
    def paper_factor(self) -> float:
        """C·(M/N): ``phi_paper`` = paper_factor·Φ, the scale of the paper's α (NaN where
        there is none; ``rdia_cli.glossary``)."""
        from rdia_cli.glossary import paper_factor

        return paper_factor(self.info.get("l2"), self.info.get("damping"), len(self.phi),
                            self.n_val if self.n_val is not None else self.info.get("n_val"))

    def to_frame(self, data=None):
        """One row per training row as a pandas DataFrame: ``phi``, ``phi_paper``,
        ``delta_remove``, ``delta_relabel``, ``p_label``, ``loss``; with ``data`` (the scored
        Dataset) first ``row_id``, its ID column and ``label`` (the class value)."""
        import pandas as pd

        from rdia_cli.glossary import relabel_effect

        n = len(self.phi)
        cols = {}
        if data is not None:
            cols["row_id"] = data.row_id
            ids = data.ids()
            if ids is not None:
                cols[ids[0]] = ids[1].to_pandas()
            cols["label"] = data.label_values()
        cols.update(phi=self.phi, phi_paper=self.phi * self.paper_factor,
                    delta_remove=-self.phi / n,
                    delta_relabel=relabel_effect(self.phi, self.p_label, n),
                    p_label=self.p_label, loss=self.loss)
        return pd.DataFrame(cols)

