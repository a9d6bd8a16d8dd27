"""Rows of a design matrix as batches of network inputs, and the per-row cross-entropy that
training and influence share."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F


class Rows:
    """Feeds batches of rows of X as tensors of the network's input shape.

    Dense X is wrapped once as a tensor (no copy when it is already float32/float64 numpy); sparse
    CSR rows are densified one batch at a time.
    """

    def __init__(self, X, input_shape, *, device, dtype):
        self.shape = tuple(int(s) for s in input_shape)
        self.device = device
        self.dtype = dtype
        self.sparse = sp.issparse(X)
        if self.sparse:
            self.X = X.tocsr()
        else:
            arr = np.asarray(X)
            if arr.dtype not in (np.float32, np.float64):
                arr = arr.astype(np.float32)
            self.X = torch.from_numpy(np.ascontiguousarray(arr))
        self.n = int(X.shape[0])
        width = math.prod(self.shape)
        if math.prod(X.shape[1:]) != width:
            raise ValueError(f"rows have {math.prod(X.shape[1:])} values, the network takes "
                             f"{width} ({list(self.shape)})")

    def get(self, idx) -> torch.Tensor:
        """Rows ``idx`` (a slice or an index array) as a (B, *input_shape) tensor."""
        if self.sparse:
            xb = torch.from_numpy(self.X[idx].toarray())
        else:
            xb = self.X[idx] if isinstance(idx, slice) else self.X[torch.as_tensor(idx)]
        xb = xb.reshape((xb.shape[0], *self.shape))
        return xb.to(device=self.device, dtype=self.dtype)


def ce_per_sample(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-Σ_k t_k log softmax(z)_k per row; ``target`` (B, K) float or (B,) class indices."""
    logp = F.log_softmax(logits, dim=1)
    if target.dim() == 1:
        return -logp.gather(1, target.long().unsqueeze(1)).squeeze(1)
    return -(target * logp).sum(1)
