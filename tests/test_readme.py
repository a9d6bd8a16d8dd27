"""The README's library example runs as written (on breast-cancer files written here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def write_svm(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    with path.open("w") as f:
        for row, label in zip(X, y, strict=True):
            feats = " ".join(f"{j + 1}:{v:g}" for j, v in enumerate(row) if v)
            f.write(f"{1 if label else -1} {feats}\n")


@pytest.mark.slow
def test_readme_library_example_runs(tmp_path):
    blocks = python_blocks()
    assert len(blocks) == 1 and "import rdia_cli as rdia" in blocks[0]
    X, y = load_breast_cancer(return_X_y=True)
    X = X / X.max(axis=0)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    train, val = order[:400], order[400:]
    noisy = y[train].copy()
    flip = rng.random(len(noisy)) < 0.3
    noisy[flip] = 1 - noisy[flip]
    write_svm(tmp_path / "train.svm", X[train], noisy)
    write_svm(tmp_path / "val.svm", X[val], y[val])
    res = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    before, after = map(float, res.stdout.split())
    assert np.isfinite(before) and np.isfinite(after)
    assert after < before  # relabeling the top 10% by Φ lowers the validation loss here


def test_flat_api_is_lazy_and_complete():
    code = ("import sys, rdia_cli; assert 'torch' not in sys.modules; "
            "[getattr(rdia_cli, n) for n in rdia_cli.__all__]; print(len(rdia_cli.__all__))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout) >= 20
