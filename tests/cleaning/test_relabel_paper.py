"""Issue #18: the user's own commands, the paper's α, and a cleaned file any trainer can use."""

import dataclasses
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from tests.cli_helpers import ok, rdia, shell
from tests.conftest import noisy_linear, write_svm

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "breast-cancer-tau0.4"


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """train.svm (30% of labels flipped), val.svm, lr.pt, scores.parquet."""
    d = tmp_path_factory.mktemp("paper")
    X, y, noisy = noisy_linear(400, 5, seed=1, n_noisy=300)
    write_svm(d / "train.svm", X[:300], noisy[:300])
    write_svm(d / "val.svm", X[300:], y[300:])
    ok(rdia("train", d / "train.svm", "-o", d / "lr.pt", "--device", "cpu"))
    ok(rdia("score", d / "train.svm", "--val", d / "val.svm", "--model", d / "lr.pt",
            "-o", d / "scores.parquet"))
    return d


@pytest.mark.shared_data
@pytest.mark.skipif(not REFERENCE.exists(), reason=f"needs {REFERENCE}")
def test_alpha_is_the_papers_alpha_on_the_reference_code_output(tmp_path):
    """The authors' code relabels 210 / 229 / 237 rows at α = 0.01 / 0.002 / 0.0002 on this
    split; `rdia train --l2 0.02 --no-intercept` + score + relabel --alpha must pick the same."""
    ref = json.loads((REFERENCE / "reference.json").read_text())
    train, val = REFERENCE / "train.svm", REFERENCE / "val.svm"
    ok(rdia("train", train, "--l2", "0.02", "--no-intercept", "-o", tmp_path / "lr.pt"))
    ok(rdia("score", train, "--val", val, "--model", tmp_path / "lr.pt",
            "-o", tmp_path / "s.parquet"))
    scores = pq.read_table(tmp_path / "s.parquet")
    phi_paper = scores.column("phi_paper").to_numpy()
    # the reference solves to 1e-5: agreement to about 1e-4 of the largest score
    np.testing.assert_allclose(phi_paper, ref["phi_ref"], rtol=1e-3,
                               atol=1e-4 * np.abs(ref["phi_ref"]).max())
    for alpha, rows in ref["relabeled_at_alpha"].items():
        out = tmp_path / f"c{alpha}.parquet"
        ok(rdia("relabel", train, "--scores", tmp_path / "s.parquet", "--alpha", alpha, "-o", out))
        t = pq.read_table(out)
        relabeled = t.column("row_id").to_numpy()[t.column("relabeled").to_numpy()]
        assert sorted(relabeled.tolist()) == sorted(rows), alpha
        assert json.loads(t.schema.metadata[b"rdia.relabel"])["alpha"] == float(alpha)


def test_phi_threshold_keeps_rdias_own_scale(noisy, tmp_path):
    d = noisy
    sc = pq.read_table(d / "scores.parquet")
    phi = sc.column("phi").to_numpy()
    meta = {k.decode()[5:]: json.loads(v) for k, v in sc.schema.metadata.items()}
    factor = meta["n_val"] / (meta["l2"] * meta["n_train"] ** 2)  # C·M/N with C = 1/(λN)
    assert meta["paper_factor"] == pytest.approx(factor)
    np.testing.assert_allclose(sc.column("phi_paper").to_numpy(), phi * factor)
    cut = float(np.quantile(phi, 0.8))
    ok(rdia("relabel", d / "train.svm", "--scores", d / "scores.parquet", "--phi-threshold", cut,
            "-o", tmp_path / "t.parquet"))
    t = pq.read_table(tmp_path / "t.parquet")
    assert t.column("relabeled").to_numpy().sum() == (phi > cut).sum()
    ok(rdia("relabel", d / "train.svm", "--scores", d / "scores.parquet", "--alpha",
            cut * factor * (1 + 1e-9), "-o", tmp_path / "a.parquet"))
    a = pq.read_table(tmp_path / "a.parquet")
    want = (phi * factor > cut * factor * (1 + 1e-9)).sum()
    assert a.column("relabeled").to_numpy().sum() == want


@pytest.mark.slow
def test_the_users_pipe_runs_as_written(noisy):
    d = noisy
    res = shell("rdia score train.svm --val val.svm --model lr.pt "
                "| rdia relabel --alpha 0.002 -o cleaned.parquet", d)
    assert res.returncode == 0, res.stderr.decode()
    t = pq.read_table(d / "cleaned.parquet")
    want = pq.read_table(d / "scores.parquet").column("phi_paper").to_numpy() > 0.002
    np.testing.assert_array_equal(t.column("relabeled").to_numpy(), want)
    # the data came from the path the scores record; their fingerprint was checked
    assert json.loads(t.schema.metadata[b"rdia.relabel"])["scores"] == "<stdin>"


@pytest.mark.slow
def test_score_without_o_into_a_pipe_or_a_file_writes_parquet_to_stdout(noisy, tmp_path):
    d = noisy
    res = shell(f"rdia score train.svm --val val.svm --model lr.pt > {tmp_path / 'x.parquet'}", d)
    assert res.returncode == 0, res.stderr.decode()
    assert b"standard output" in res.stderr
    a = pq.read_table(tmp_path / "x.parquet")
    b = pq.read_table(d / "scores.parquet")
    np.testing.assert_array_equal(a.column("phi").to_numpy(), b.column("phi").to_numpy())
    # `-o -` is standard output too, and `--scores -` standard input
    res = shell("rdia score train.svm --val val.svm --model lr.pt -o - "
                "| rdia relabel train.svm --scores - --fraction 0.1 -o - > f.parquet", d)
    assert res.returncode == 0, res.stderr.decode()
    assert pq.read_table(d / "f.parquet").column("relabeled").to_numpy().sum() == 30
    assert not (d / "-").exists()


@pytest.mark.slow
def test_score_on_a_terminal_writes_beside_data(noisy, tmp_path):
    """stdout a terminal: the scores go to DATA's name + .scores.parquet, named in the summary."""
    import shutil

    for name in ("train.svm", "val.svm", "lr.pt"):
        shutil.copy(noisy / name, tmp_path / name)
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "rdia_cli", "score", "train.svm", "--val",
                               "val.svm", "--model", "lr.pt"], cwd=tmp_path, stdout=follower,
                              stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(follower)
        os.close(leader)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / "train.scores.parquet").exists()
    assert b"train.scores.parquet" in proc.stderr


def test_relabel_without_scores_says_what_to_give(noisy):
    """No --scores and nothing piped in (a terminal, or an empty stdin): exit 2, no output."""
    from rdia_cli.cli.commands.relabel import _scores_source
    from rdia_cli.errors import InputError

    class Tty:
        def isatty(self):
            return True

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stdin", Tty())
        with pytest.raises(InputError, match="--scores"):
            _scores_source(None)
    res = rdia("relabel", "--alpha", "0.002", "-o", noisy / "x.parquet", input=b"")
    assert res.exit_code == 2 and "--scores" in res.stderr
    assert not (noisy / "x.parquet").exists()


@pytest.mark.parametrize("args,fragment", [
    (("--alpha", "-1"), "--alpha"), (("--alpha", "nan"), "--alpha"),
    (("--alpha", "inf"), "--alpha"), (("--alpha", "abc"), "--alpha"),
    (("--fraction", "0"), "--fraction"), (("--fraction", "1.5"), "--fraction"),
    (("--fraction", "nan"), "--fraction"), (("--phi-threshold", "nan"), "--phi-threshold"),
    (("--alpha", "0.1", "--fraction", "0.1"), "not --alpha and --fraction"),
    (("--device", "bogus", "--alpha", "0.1"), "--device"),
])
def test_bad_relabel_values_exit_2_with_one_line_and_write_nothing(noisy, args, fragment):
    out = noisy / "bad.parquet"
    res = rdia("relabel", noisy / "train.svm", "--scores", noisy / "scores.parquet", *args,
               "-o", out)
    assert res.exit_code == 2, (res.stdout, res.stderr)
    assert fragment in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.stderr and not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_relabel_device_cuda_without_gpu_is_an_error(noisy):
    res = rdia("relabel", noisy / "train.svm", "--scores", noisy / "scores.parquet",
               "--fraction", "0.1", "--device", "cuda", "-o", noisy / "cuda.parquet")
    assert res.exit_code == 2 and "CUDA" in res.stderr
    assert not (noisy / "cuda.parquet").exists()


def test_relabeling_more_than_the_data_supports_warns(noisy, tmp_path):
    d = noisy
    res = ok(rdia("relabel", d / "train.svm", "--scores", d / "scores.parquet", "--alpha", "0",
                  "-o", tmp_path / "all.parquet"))
    assert "warning:" in res.stderr and "--strategy auto" in res.stderr
    n = pq.read_table(tmp_path / "all.parquet").column("relabeled").to_numpy().sum()
    assert f"changes {n:,} of 300 rows" in res.stderr
    res = ok(rdia("relabel", d / "train.svm", "--scores", d / "scores.parquet", "--fraction",
                  "0.05", "-o", tmp_path / "few.parquet"))
    assert "warning:" not in res.stderr


def _cleaned_view(path):
    from rdia_cli.data import ReadOptions, read_dataset

    return read_dataset(str(path), ReadOptions(format="parquet"))


@pytest.mark.slow
def test_cleaned_file_is_downstream_ready_for_ten_classes(digits, tmp_path):
    """K = 10: `target` rows are probability vectors, `label` the new hard label, the raw
    Eq. 12 values in `target_raw`, which is what `rdia retrain` trains on; no `weight`."""
    from rdia_cli.cleaning.targets import relabel_targets
    from rdia_cli.data.writers import write_dataset
    from rdia_cli.models.io import load_model
    from rdia_cli.models.logreg.training import train_logreg

    train, val = digits
    write_dataset(train, str(tmp_path / "train.parquet"))
    write_dataset(val, str(tmp_path / "val.parquet"))
    ok(rdia("train", tmp_path / "train.parquet", "-o", tmp_path / "lr.pt"))
    ok(rdia("score", tmp_path / "train.parquet", "--val", tmp_path / "val.parquet", "--model",
            tmp_path / "lr.pt", "-o", tmp_path / "s.parquet"))
    ok(rdia("relabel", tmp_path / "train.parquet", "--scores", tmp_path / "s.parquet",
            "--fraction", "0.1", "-o", tmp_path / "c.parquet"))
    t = pq.read_table(tmp_path / "c.parquet")
    assert "weight" not in t.column_names
    target = np.array(t.column("target").to_pylist())
    np.testing.assert_allclose(target.sum(1), 1.0, atol=1e-6)
    relabeled = t.column("relabeled").to_numpy()
    label, original = t.column("label").to_numpy(), t.column("original_label").to_numpy()
    assert relabeled.sum() == 120
    np.testing.assert_array_equal(label[relabeled], target[relabeled].argmax(1))
    assert np.all(label[relabeled] != original[relabeled])
    np.testing.assert_array_equal(label[~relabeled], original[~relabeled])
    np.testing.assert_array_equal(original, train.y)
    # the raw Eq. 12 targets (summing to less than 1) are kept, and retrain trains on them
    raw = np.array(t.column("target_raw").to_pylist())
    sc = pq.read_table(tmp_path / "s.parquet")
    probs = np.array(sc.column("probs").to_pylist())
    want = relabel_targets(probs[relabeled], train.y[relabeled])
    np.testing.assert_allclose(raw[relabeled], want, rtol=1e-6, atol=1e-7)
    assert raw[relabeled].sum(1).max() < 1
    ok(rdia("retrain", tmp_path / "c.parquet", "--model", tmp_path / "lr.pt", "--from-scratch",
            "-o", tmp_path / "r.pt"))
    onehot = np.eye(10)[train.y]
    onehot[relabeled] = raw[relabeled]
    soft = dataclasses.replace(train, target=onehot.astype(np.float32))  # `digits` is shared
    direct = train_logreg(soft, l2=load_model(tmp_path / "lr.pt").meta["l2"])
    got = load_model(tmp_path / "r.pt")
    for k in direct.state:
        torch.testing.assert_close(got.state[k], direct.state[k], rtol=1e-6, atol=1e-8)
    # the cleaned file keeps the fingerprint of its source: `rdia inspect` matches it
    ok(rdia("inspect", tmp_path / "s.parquet", "--data", tmp_path / "c.parquet"))


def test_weight_column_only_when_some_weight_is_not_one(noisy, tmp_path):
    d = noisy
    ok(rdia("relabel", d / "train.svm", "--scores", d / "scores.parquet", "--strategy", "optlr",
            "--fraction", "0.2", "-o", tmp_path / "w.parquet"))
    w = pq.read_table(tmp_path / "w.parquet").column("weight").to_numpy()
    assert (w < 1).sum() > 0 and (w == 1).sum() > 0


@pytest.mark.slow
def test_auto_file_leaves_clean_rows_out_and_says_how_to_train(noisy, tmp_path):
    d = noisy
    res = ok(rdia("relabel", "--scores", d / "scores.parquet", "--strategy", "auto",
                  "-o", tmp_path / "auto.parquet"))
    t = pq.read_table(tmp_path / "auto.parquet")
    meta = json.loads(t.schema.metadata[b"rdia.relabel"])
    assert meta["clean_rows"] == "excluded" and meta["n_clean"] == 100
    assert "part" not in t.column_names and t.num_rows <= 300
    assert meta["clean_path"] == str((d / "val.svm").absolute())
    assert "for your own trainer" in res.stderr and f"λ = {meta['l2']:.4g}" in res.stderr
    assert "without the 100 clean rows" in res.stderr
    res = ok(rdia("relabel", "--scores", d / "scores.parquet", "--strategy", "auto",
                  "--include-clean", "-o", tmp_path / "with.parquet"))
    w = pq.read_table(tmp_path / "with.parquet")
    assert w.num_rows == t.num_rows + 100 and (w.column("part").to_numpy() == 1).sum() == 100
    assert json.loads(w.schema.metadata[b"rdia.relabel"])["clean_rows"] == "included"


def test_retrain_of_an_auto_file_refuses_another_clean_set(noisy, tmp_path):
    d = noisy
    ok(rdia("relabel", "--scores", d / "scores.parquet", "--strategy", "auto",
            "-o", tmp_path / "auto.parquet"))
    res = rdia("retrain", tmp_path / "auto.parquet", "--model", d / "lr.pt",
               "--val", d / "train.svm", "-o", tmp_path / "r.pt")
    assert res.exit_code == 2 and "not the clean set" in res.stderr
    assert not (tmp_path / "r.pt").exists()


def test_auto_keeping_no_training_row_writes_the_clean_rows():
    from rdia_cli.cleaning.files import split_clean_rows
    from tests.conftest import make_dataset

    ds = make_dataset(np.zeros((4, 2)), [0, 1, 0, 1],
                      extra={"part": np.ones(4, np.int8), "relabeled": np.zeros(4, bool)})
    rows, info = split_clean_rows(ds, include_clean=False)
    assert rows.n_samples == 4 and info["clean_rows"] == "included"
    assert "no training row" in info["clean_rows_why"]
