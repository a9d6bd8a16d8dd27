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
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, probs[:, 1]))


def evaluate_probs(probs: np.ndarray, labels: np.ndarray) -> dict:
    labels = np.asarray(labels, dtype=np.int64)
    return {
        "n": int(len(labels)),
        "loss": log_loss(probs, labels),
        "accuracy": accuracy(probs, labels),
        "auc": auc(probs, labels),
    }
