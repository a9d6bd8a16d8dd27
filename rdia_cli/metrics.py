"""Loss, accuracy and AUC of predicted probabilities."""

from __future__ import annotations

import numpy as np


def row_losses(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row cross-entropy -log p_label, probabilities clipped to [1e-15, 1] (the one place)."""
    return -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-15, 1.0))


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of the true labels (probabilities clipped at 1e-15)."""
    p = np.asarray(probs, dtype=np.float64)
    return float(row_losses(p, labels).mean()) if len(labels) else float("nan")


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(probs).argmax(1) == labels).mean()) if len(labels) else float("nan")


def auc(probs: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC of class 1 for binary tasks; None for K > 2 or a single class present."""
    probs = np.asarray(probs)
    if probs.shape[1] != 2 or len(np.unique(labels)) < 2:
        return None
    return _rank_auc(probs[:, 1], np.asarray(labels) == 1)


def _rank_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (tied scores count one half): what
    ``sklearn.metrics.roc_auc_score`` gives, without importing scikit-learn (seconds at start)."""
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # 1-based, ties averaged
    n_pos = int(positive.sum())
    n_neg = len(score) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def evaluate_probs(probs: np.ndarray, labels: np.ndarray) -> dict:
    labels = np.asarray(labels, dtype=np.int64)
    return {
        "n": int(len(labels)),
        "loss": log_loss(probs, labels),
        "accuracy": accuracy(probs, labels),
        "auc": auc(probs, labels),
    }
