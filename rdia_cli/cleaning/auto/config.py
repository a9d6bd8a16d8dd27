"""A candidate of the auto strategy (``Config``) and the training set it builds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from rdia_cli.cleaning.selection import select_harmful
from rdia_cli.cleaning.targets import relabel_targets
from rdia_cli.data.dataset import Dataset

# what a configuration trains on (``Config.kind``)
CLEAN_ONLY = "clean set alone"  # ω = 0: every training row dropped
UNCLEANED = "train + clean set"  # nothing cleaned
CLEANED = "cleaned train + clean set"


@dataclass(frozen=True)
class Config:
    action: str  # drop | hard (relabel to the most likely other class)
    fraction: float  # top fraction of training rows by the ranking score (only score > 0)
    weight: float  # ω: weight of each kept training row; validation rows weigh 1
    ranker: str = "phi"  # phi: influence Φ | clean: -log p(label) under a clean-set model
    #                      oof: -log p(label) under out-of-fold models on the training rows
    reg: float = 1.0  # λ = reg / rows

    @property
    def label(self) -> str:
        lam = "" if self.reg == 1 else f", λ×{self.reg:g}"
        if self.weight == 0:
            return "clean set only" + lam
        if self.fraction == 0:
            return f"train+val, ω={self.weight:g}" + lam
        by = {"phi": "Φ", "clean": "clean-model loss", "oof": "out-of-fold loss"}[self.ranker]
        return f"{self.action} top {self.fraction:.0%} by {by}, ω={self.weight:g}" + lam

    @property
    def kind(self) -> str:
        """``CLEAN_ONLY``, ``UNCLEANED`` or ``CLEANED``: the three shapes ``label`` tells apart."""
        if self.weight == 0:
            return CLEAN_ONLY
        return UNCLEANED if self.fraction == 0 else CLEANED


def _stack(blocks):
    return sp.vstack(blocks, format="csr") if any(sp.issparse(b) for b in blocks) else np.vstack(
        blocks
    )


def harmful_rows(phi: np.ndarray, config: Config) -> np.ndarray:
    """The training rows ``config`` cleans: the top ``fraction`` by ``phi`` with ``phi`` > 0."""
    if config.fraction > 0:
        return select_harmful(phi, fraction=config.fraction)
    return np.zeros(len(phi), dtype=bool)


def build_training_set(train: Dataset, phi: np.ndarray, probs: np.ndarray, val: Dataset,
                       config: Config, harmful: np.ndarray | None = None) -> Dataset:
    """Cleaned ``train`` rows (weight ω) followed by the ``val`` rows (weight 1); ``harmful``:
    ``harmful_rows(phi, config)`` where the caller has it.

    The result carries ``extra['part']`` (0 = training row, 1 = validation row),
    ``extra['relabeled']`` and ``extra['phi']`` (NaN for validation rows)."""
    k = train.n_classes
    harmful = harmful_rows(phi, config) if harmful is None else harmful
    t_targets = np.eye(k)[train.y]
    keep = np.ones(train.n_samples, dtype=bool)
    relabeled = np.zeros(train.n_samples, dtype=bool)
    if config.action == "drop":
        keep = ~harmful
    elif harmful.any():
        t_targets[harmful] = relabel_targets(probs[harmful], train.y[harmful], kind="hard")
        relabeled = harmful
    if config.weight == 0:
        keep = np.zeros(train.n_samples, dtype=bool)
    tr = np.flatnonzero(keep)
    X = _stack([train.flat_X()[tr], val.flat_X()]) if len(tr) else val.flat_X()
    n_t, n_v = len(tr), val.n_samples
    target = np.vstack([t_targets[tr], np.eye(k)[val.y]])
    weight = np.concatenate([np.full(n_t, config.weight), np.ones(n_v)])
    extra = {
        "part": np.concatenate([np.zeros(n_t, np.int8), np.ones(n_v, np.int8)]),
        "relabeled": np.concatenate([relabeled[tr], np.zeros(n_v, bool)]),
        "phi": np.concatenate([np.asarray(phi, np.float64)[tr], np.full(n_v, np.nan)]),
    }
    for name, col in train.extra.items():
        if name in val.extra:
            extra[name] = np.concatenate([col[tr], val.extra[name]])
    return Dataset(
        X=X, y=np.concatenate([train.y[tr], val.y]), classes=list(train.classes),
        row_id=np.concatenate([train.row_id[tr], val.row_id]), target=target.astype(np.float32),
        weight=weight, feature_names=train.feature_names, extra=extra, source=train.source,
    )
