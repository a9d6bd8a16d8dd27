"""`rdia` starts fast (issue #27): --help, -h, --version and every usage or missing-file error
answer without importing torch, scikit-learn, scipy or pandas; reading LIBSVM and computing
the metrics do not import scikit-learn."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli_helpers import probe

HEAVY = ("torch", "sklearn", "scipy", "pandas")


def _probe(args, cwd):
    return probe(args, cwd, HEAVY, timeout=60)


@pytest.mark.parametrize("args", [
    ["--help"], ["-h"], ["train", "--help"], ["score", "-h"], ["relabel", "-h"],
    ["retrain", "-h"], ["evaluate", "-h"], ["run", "-h"], ["split", "-h"], ["noise", "-h"],
    ["convert", "-h"], ["inspect", "-h"], ["report", "-h"], ["demo", "-h"], ["synth", "-h"],
])
def test_help_imports_nothing_heavy(tmp_path, args):
    got, stdout, _ = _probe(args, tmp_path)
    assert got == {"code": 0, "imported": []}
    assert "Usage" in stdout


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_imports_nothing_heavy(tmp_path, flag):
    from rdia_cli import __version__

    got, stdout, _ = _probe([flag], tmp_path)
    assert got == {"code": 0, "imported": []}
    assert stdout.strip() == f"rdia {__version__}"


@pytest.mark.parametrize("args, fragment", [
    (["train", "nosuch.svm", "-o", "m.pt"], "nosuch.svm"),
    (["score", "nosuch.svm", "--val", "v.svm", "--model", "m.pt"], "nosuch.svm"),
    (["relabel", "--scores", "nosuch.parquet", "--alpha", "0.1", "-o", "c.parquet"],
     "nosuch.parquet"),
    (["retrain", "nosuch.parquet", "--model", "m.pt", "-o", "r.pt"], "nosuch.parquet"),
    (["evaluate", "nosuch.pt", "--data", "t.svm"], "nosuch.pt"),
    (["run", "nosuch.svm", "--val", "v.svm", "--test", "t.svm", "-o", "out"], "nosuch.svm"),
    (["split", "nosuch.svm", "-o", "parts"], "nosuch.svm"),
    (["noise", "nosuch.svm", "--rate", "0.1", "-o", "n.parquet"], "nosuch.svm"),
    (["convert", "nosuch.svm", "-o", "c.csv"], "nosuch.svm"),
    (["inspect", "nosuch.parquet", "--data", "t.svm"], "nosuch.parquet"),
])
def test_a_missing_input_is_one_line_before_any_heavy_import(tmp_path, args, fragment):
    got, stdout, said = _probe(args, tmp_path)
    assert got == {"code": 2, "imported": []}
    assert said.count("\n") == 0 and fragment in said and "does not exist" in said
    assert stdout == ""


@pytest.mark.parametrize("args", [
    ["train"], ["train", "x.svm", "--no-such-option"], ["nosuchcommand"],
    ["train", "x.svm", "-o", "m.pt", "-q", "-v"],
])
def test_usage_errors_import_nothing_heavy(tmp_path, args):
    (tmp_path / "x.svm").write_text("1 1:1\n")
    got, _, _ = _probe(args, tmp_path)
    assert got == {"code": 2, "imported": []}


def test_reading_libsvm_and_the_metrics_do_not_import_sklearn(tmp_path):
    """LIBSVM's line parser (comments, qid) and AUC are rdia's own; scikit-learn costs seconds."""
    path = tmp_path / "c.svm"
    path.write_text("# a comment\n1 qid:2 1:0.5 3:1\n0 2:1 # more\n\n1 1:2\n")
    code = f"""
import sys
import numpy as np
from rdia_cli.data.readers import read_dataset
from rdia_cli.metrics import evaluate_probs
ds = read_dataset({str(path)!r})
m = evaluate_probs(np.array([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]), ds.y)
assert ds.X.shape == (3, 3) and m["auc"] == 1.0, (ds.X.shape, m)
print(sorted(x for x in ("sklearn", "pandas") if x in sys.modules))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"  # neither scikit-learn nor pandas


def test_the_line_parser_agrees_with_sklearn(tmp_path):
    """The files the fast parser leaves to the line parser read as scikit-learn reads them."""
    np = pytest.importorskip("numpy")
    from sklearn.datasets import load_svmlight_file

    from rdia_cli.data.formats.common import Source
    from rdia_cli.data.formats.libsvm import libsvm_lines_parse

    texts = [b"1 1:1 # a comment\n0 2:1\n", b"1 qid:3 1:1\n0 qid:3 2:1.5e-3\n",
             b"   \n1 1:1\n# only a comment\n-1 0:2 5:1e3\n", b"+1 1:inf 3:.25\r\n2.5 7:3\n"]
    for k, text in enumerate(texts):
        path = tmp_path / f"{k}.svm"
        path.write_bytes(text)
        X, y = libsvm_lines_parse(Source(str(path), "data"))
        X2, y2 = load_svmlight_file(str(path), dtype=np.float32, zero_based=True)
        np.testing.assert_array_equal(X.toarray(), X2.toarray()[:, : X.shape[1]])
        np.testing.assert_array_equal(y, y2)
    for bad in (b"1 3:1 2:1\n", b"1 1:1 1:2\n", b"1 1:x\n", b"1 1\n", b"x 1:1\n", b"1 -1:1\n"):
        path = tmp_path / "bad.svm"
        path.write_bytes(bad)
        with pytest.raises(ValueError):
            libsvm_lines_parse(Source(str(path), "data"))
        with pytest.raises(ValueError):
            load_svmlight_file(str(path), dtype=np.float32, zero_based=True)


def test_auc_matches_sklearn():
    np = pytest.importorskip("numpy")
    from sklearn.metrics import roc_auc_score

    from rdia_cli.metrics import auc

    rng = np.random.default_rng(0)
    for k in range(50):
        y = rng.integers(0, 2, 60)
        p = rng.random(60)
        if k % 2:
            p = np.round(p, 1)  # ties
        assert auc(np.c_[1 - p, p], y) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


@pytest.mark.slow
def test_evaluate_and_score_import_neither_sklearn_nor_pandas(tmp_path):
    """A tiny logistic regression evaluated and scored: no torch (numpy on the CPU), scikit-learn,
    pandas or scipy.stats (bench/startup.py times it against `python -c "import torch"`)."""
    data = tmp_path / "tiny.svm"
    data.write_text("+1 1:0.5 3:1\n-1 2:1.5 4:0.25\n+1 1:1 4:-1\n-1 3:0.5\n")
    subprocess.run([sys.executable, "-m", "rdia_cli", "train", str(data), "-o",
                    str(tmp_path / "lr.pt"), "-q"], check=True, timeout=120)
    for args in (["evaluate", tmp_path / "lr.pt", "--data", data],
                 ["score", data, "--val", data, "--model", tmp_path / "lr.pt", "-o",
                  tmp_path / "s.parquet"]):
        got, _, said = probe(args, tmp_path, ("torch", "sklearn", "pandas", "scipy.stats"))
        assert got == {"code": 0, "imported": []}, (args, said[-2000:])
