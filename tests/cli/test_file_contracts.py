"""One owner per file contract (#25): the cleaned file `rdia run` writes is the one `rdia relabel`
writes, so `rdia retrain` on it gives back the run's own model; α means the paper's α in the
library as on the command line."""

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from sklearn.datasets import load_breast_cancer

from tests.cli_helpers import ok, rdia


def _state(path):
    return torch.load(path, weights_only=True, map_location="cpu")["state"]


@pytest.fixture(scope="module")
def blended_run(tmp_path_factory):
    """breast-cancer, 35% symmetric noise: `rdia run`'s auto blends with the clean set alone."""
    d = tmp_path_factory.mktemp("blend")
    X, y = load_breast_cancer(return_X_y=True)
    with open(d / "bc.csv", "w") as f:
        f.write(",".join(f"x{j}" for j in range(X.shape[1])) + ",label\n")
        for row, lab in zip(X, y, strict=True):
            f.write(",".join(f"{v:g}" for v in row) + f",{lab}\n")
    ok(rdia("split", d / "bc.csv", "-o", d / "sp", "--val", "0.1", "--seed", "3"))
    ok(rdia("noise", d / "sp" / "train.parquet", "--rate", "0.35", "--seed", "1",
            "-o", d / "noisy.parquet"))
    ok(rdia("run", d / "noisy.parquet", "--val", d / "sp" / "val.parquet", "--test",
            d / "sp" / "test.parquet", "-o", d / "run", "--device", "cpu"))
    return d


@pytest.mark.slow
def test_retraining_the_runs_cleaned_file_gives_the_runs_auto_model(blended_run, tmp_path):
    d = blended_run
    record = pq.read_schema(d / "run" / "cleaned.parquet").metadata[b"rdia.relabel"]
    assert b'"blend"' in record  # the case the bug hid: auto blended with the clean set alone
    res = ok(rdia("retrain", d / "run" / "cleaned.parquet", "--model", d / "run" / "erm.pt",
                  "-o", tmp_path / "again.pt", "--device", "cpu"))
    assert "blend" in res.stderr
    want, got = _state(d / "run" / "auto.pt"), _state(tmp_path / "again.pt")
    assert want.keys() == got.keys()
    for k in want:
        assert torch.equal(want[k], got[k]), k


@pytest.mark.slow
def test_run_and_relabel_write_the_same_auto_record(blended_run, tmp_path):
    import json

    d = blended_run
    ok(rdia("relabel", d / "noisy.parquet", "--scores", d / "run" / "scores.parquet",
            "--strategy", "auto",
            "--val", d / "sp" / "val.parquet", "--model", d / "run" / "erm.pt",
            "-o", tmp_path / "c.parquet", "--device", "cpu"))

    def record(path):
        return json.loads(pq.read_schema(path).metadata[b"rdia.relabel"])

    run, rel = record(d / "run" / "cleaned.parquet"), record(tmp_path / "c.parquet")
    assert list(run) == list(rel)
    for key in ("strategy", "action", "ranker", "fraction", "weight", "l2", "blend",
                "clean_rows", "n_clean", "clean_fingerprint", "clean_path",
                "source_fingerprint", "n_relabeled"):
        assert run[key] == rel[key], key


def test_library_alpha_is_the_papers_alpha(cancer):
    """`relabel_dataset(alpha=A)` cuts C·(M/N)·Φ at A, as `rdia relabel --alpha A` does;
    `phi_threshold` cuts Φ; the outcome names both."""
    import rdia_cli as rdia_lib

    train, val, _ = cancer
    model = rdia_lib.train_model(train)
    result = rdia_lib.score_model(model, train, val)
    probs = rdia_lib.probabilities(model, train)
    factor = result.paper_factor
    assert factor == pytest.approx(val.n_samples * train.n_samples / model.meta["l2"]
                                   / train.n_samples ** 3)
    out = rdia_lib.relabel_dataset(train, result, probs=probs, alpha=0.002)
    assert out.cleaning.n_relabeled == int((result.phi * factor > 0.002).sum()) > 0
    assert out.alpha == 0.002 and out.phi_threshold == pytest.approx(0.002 / factor)
    same = rdia_lib.relabel_dataset(train, result, probs=probs, phi_threshold=0.002 / factor)
    assert np.array_equal(same.cleaning.relabeled, out.cleaning.relabeled)
    with pytest.raises(rdia_lib.InputError, match="exactly one of `alpha`"):
        rdia_lib.relabel_dataset(train, result, probs=probs, alpha=0.002, fraction=0.1)


def test_library_errors_name_parameters_and_the_cli_names_flags(cancer, tmp_path):
    import rdia_cli as rdia_lib
    from rdia_cli.cli.commands.relabel import relabel
    from rdia_cli.cli.core import as_flags

    train, val, _ = cancer
    result = rdia_lib.score_model(rdia_lib.train_model(train), train, val)
    with pytest.raises(rdia_lib.InputError) as e:
        rdia_lib.relabel_dataset(train, result, probs=result.probs, fraction=0.1,
                                 strategy="nope")
    assert str(e.value).startswith("`strategy` must be one of")
    assert as_flags(str(e.value), relabel).startswith("--strategy must be one of")
    assert as_flags("file `strategy.csv`", relabel) == "file `strategy.csv`"


def test_run_refuses_inputs_it_would_replace(tmp_path):
    """#28's high-severity case: a run's own files given as its inputs are refused before any
    work, and nothing is changed."""
    from tests.conftest import noisy_linear, write_svm

    X, y, noisy = noisy_linear(120, 4, seed=3, n_noisy=10)
    run = tmp_path / "run"
    run.mkdir()
    write_svm(tmp_path / "train.svm", X[:80], noisy[:80])
    write_svm(run / "scores.parquet", X[80:100], y[80:100])  # a LIBSVM file under that name
    write_svm(tmp_path / "test.svm", X[100:], y[100:])
    before = (run / "scores.parquet").read_bytes()
    res = rdia("run", tmp_path / "train.svm", "--val", run / "scores.parquet", "--test",
               tmp_path / "test.svm", "-o", run, "--format", "libsvm")
    assert res.exit_code == 2 and "would replace its own input" in res.stderr
    assert (run / "scores.parquet").read_bytes() == before
    assert sorted(p.name for p in run.iterdir()) == ["scores.parquet"]
