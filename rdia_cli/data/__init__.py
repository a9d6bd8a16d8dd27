"""Data layer: the Dataset type, readers (LIBSVM, CSV, Parquet, IDX, CIFAR-10 binary), the
Parquet writer, and the paper's protocol helpers (stratified splits, symmetric label noise).

Importing this package does not import torch or scikit-learn (they load when first used).
"""

from rdia_cli.data.dataset import Dataset
from rdia_cli.data.protocol import inject_noise, split_dataset
from rdia_cli.data.readers import ReadOptions, Schema, read_dataset
from rdia_cli.data.writers import write_dataset

__all__ = [
    "Dataset",
    "ReadOptions",
    "Schema",
    "read_dataset",
    "write_dataset",
    "split_dataset",
    "inject_noise",
]
