"""The CLI as a user runs it: the five stages, run/demo, and one test per input error."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rdia_cli.cli import app
from tests.cli_helpers import ok, rdia
from tests.conftest import noisy_linear, write_splits, write_svm


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Noisy train, clean val and test as LIBSVM files with -1/+1 labels."""
    d = tmp_path_factory.mktemp("cli")
    X, y, noisy = noisy_linear(500, 6, seed=0, n_noisy=300, labels=(-1, 1))
    write_splits(d, X, y, noisy, 300, 100)
    return d


@pytest.fixture(scope="module")
def pipeline(files):
    d = files
    ok(rdia("train", d / "train.svm", "--val", d / "val.svm", "-o", d / "lr.pt", "--device", "cpu"))
    ok(rdia("score", d / "train.svm", "--val", d / "val.svm", "--model", d / "lr.pt",
            "-o", d / "scores.parquet"))
    ok(rdia("relabel", d / "train.svm", "--scores", d / "scores.parquet", "--alpha", "auto",
            "--val", d / "val.svm", "--model", d / "lr.pt", "-o", d / "cleaned.parquet"))
    ok(rdia("retrain", d / "cleaned.parquet", "--model", d / "lr.pt", "-o", d / "lr_r.pt"))
    ok(rdia("evaluate", d / "lr.pt", d / "lr_r.pt", "--data", d / "test.svm",
            "--json", d / "metrics.json"))
    return d


def test_pipeline_outputs(pipeline):
    import pyarrow.parquet as pq

    d = pipeline
    model = torch.load(d / "lr.pt", weights_only=True)
    assert model["format"] == "rdia-model" and model["meta"]["classes"] == [-1, 1]
    scores = pq.read_table(d / "scores.parquet")
    for col in ("row_id", "label", "phi", "delta_remove", "delta_relabel", "p_label", "loss"):
        assert col in scores.column_names
    phi = scores.column("phi").to_numpy()
    np.testing.assert_allclose(scores.column("delta_remove").to_numpy(), -phi / 300)
    meta = scores.schema.metadata
    for key in ("train_fingerprint", "val_fingerprint", "model_fingerprint", "residual", "solver"):
        assert f"rdia.{key}".encode() in meta
    cleaned = pq.read_table(d / "cleaned.parquet")
    relabeled = cleaned.column("relabeled").to_numpy(zero_copy_only=False)
    assert relabeled.any()
    targets = np.array(cleaned.column("target").to_pylist())
    labels = np.array(cleaned.column("label").to_pylist())
    original = np.array(cleaned.column("original_label").to_pylist())
    # binary Eq. 12 is the flip: relabeled rows' targets put their mass on the other class,
    # and `label` holds that new class (the old one is in `original_label`)
    idx = np.where(original == 1, 1, 0)
    assert np.all(targets[relabeled, idx[relabeled]] == 0)
    assert np.all(targets[~relabeled, idx[~relabeled]] == 1)
    assert np.all(labels[relabeled] == -original[relabeled])
    assert np.all(labels[~relabeled] == original[~relabeled])
    m = json.loads((d / "metrics.json").read_text())
    assert [x["model"] for x in m["models"]] == [str(d / "lr.pt"), str(d / "lr_r.pt")]
    for x in m["models"]:
        assert set(x) >= {"model", "n", "loss", "accuracy", "auc"} and x["n"] == 100


def test_rdia_beats_erm_on_noisy_file(pipeline):
    m = json.loads((pipeline / "metrics.json").read_text())
    assert m["models"][1]["loss"] < m["models"][0]["loss"]


def test_relabel_fraction_and_strategies(pipeline):
    d = pipeline
    for strategy in ("drop", "uids", "optlr", "random", "rdia"):
        out = d / f"c-{strategy}.parquet"
        ok(rdia("relabel", d / "train.svm", "--scores", d / "scores.parquet", "--fraction", "0.1",
                "--strategy", strategy, "-o", out))
        assert out.stat().st_size > 0


@pytest.mark.slow
def test_run_writes_erm_then_strategy_then_baselines(files, tmp_path):
    d = files
    ok(rdia("run", d / "train.svm", "--val", d / "val.svm", "--test", d / "test.svm",
            "-o", tmp_path / "run", "--compare", "--device", "cpu"))
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    names = [x["name"] for x in m["models"]]
    assert names[:2] == ["erm", "auto"]  # the default strategy comes second
    honest = {"clean-only", "train+val"}
    assert set(names[2:]) - {"cleanlab"} == {"rdia", "drop", "uids", "optlr", "random"} | honest
    for name in names:
        assert (tmp_path / "run" / f"{name}.pt").exists()
    assert (tmp_path / "run" / "scores.parquet").exists()
    assert m["verdict"]["cv_loss_chosen"] <= m["verdict"]["cv_loss_erm"]


def test_run_keeps_a_given_l2_in_every_fit(files, tmp_path):
    from rdia_cli.models.io import load_model

    d = files
    ok(rdia("run", d / "train.svm", "--val", d / "val.svm", "--test", d / "test.svm",
            "-o", tmp_path / "run", "--l2", "0.03"))
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [x["name"] for x in m["models"]] == ["erm", "auto"]
    for name in ("erm", "auto"):  # auto tunes λ only when none is given
        assert load_model(tmp_path / "run" / f"{name}.pt").meta["l2"] == 0.03
    assert m["verdict"]["l2"] == 0.03


def test_run_with_paper_strategy(files, tmp_path):
    d = files
    res = ok(rdia("run", d / "train.svm", "--val", d / "val.svm", "--test", d / "test.svm",
                  "-o", tmp_path / "run", "--strategy", "rdia", "--alpha", "0.5"))
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [x["name"] for x in m["models"]] == ["erm", "rdia"]
    assert "rdia vs erm" in res.stderr


def test_run_refuses_bad_settings_before_any_work(files, tmp_path):
    d = files
    args = ("run", d / "train.svm", "--val", d / "val.svm", "--test", d / "test.svm")
    res = rdia(*args, "-o", tmp_path / "a", "--strategy", "bogus")
    assert res.exit_code == 2 and "auto, rdia, drop" in res.stderr
    res = rdia(*args, "-o", tmp_path / "b", "--targets", "soft")
    assert res.exit_code == 2 and "--targets" in res.stderr
    (tmp_path / "tiny.svm").write_text("".join((d / "val.svm").read_text().splitlines(True)[:3]))
    res = rdia("run", d / "train.svm", "--val", tmp_path / "tiny.svm", "--test", d / "test.svm",
               "-o", tmp_path / "c")
    assert res.exit_code == 2 and "needs at least 4" in res.stderr
    assert "trained ERM" not in res.stderr  # refused before training
    rows = (d / "val.svm").read_text().splitlines(True)
    first = rows[0].split()[0]
    (tmp_path / "one.svm").write_text("".join(r for r in rows if r.split()[0] == first))
    res = rdia("run", d / "train.svm", "--val", tmp_path / "one.svm", "--test", d / "test.svm",
               "-o", tmp_path / "d")
    assert res.exit_code == 2 and f"has one class (label {first})" in res.stderr
    assert "trained ERM" not in res.stderr
    assert not any((tmp_path / x).exists() for x in "abcd")  # no half-filled folder


def test_run_failing_midway_leaves_no_folder(files, tmp_path, monkeypatch):
    from rdia_cli import stages as api
    from rdia_cli.errors import RuntimeFailure

    def broken(*args, **kwargs):
        raise RuntimeFailure("the solver gave up")

    monkeypatch.setattr(api, "score_model", broken)
    d = files
    res = rdia("run", d / "train.svm", "--val", d / "val.svm", "--test", d / "test.svm",
               "-o", tmp_path / "run")
    assert res.exit_code == 1 and "the solver gave up" in res.stderr
    assert not (tmp_path / "run").exists()  # erm.pt was written, then the folder removed
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    res = rdia("run", d / "train.svm", "--val", d / "val.svm", "--test", d / "test.svm",
               "-o", tmp_path / "mine")
    assert res.exit_code == 1 and (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_demo_rdia_beats_erm(tmp_path):
    res = ok(rdia("demo", "-o", tmp_path / "demo", "--device", "cpu"))
    m = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    by_name = {x["name"]: x for x in m["models"]}
    assert [x["name"] for x in m["models"]] == ["erm", "auto", "rdia"]
    assert by_name["rdia"]["loss"] < by_name["erm"]["loss"]
    assert by_name["auto"]["loss"] < by_name["erm"]["loss"]
    assert "erm" in res.stdout and "verdict" in res.stderr


def test_split_and_noise(files, tmp_path):
    d = files
    ok(rdia("split", d / "test.svm", "-o", tmp_path / "s", "--val", "0.2", "--test", "0.2"))
    for name in ("train", "val", "test"):
        assert (tmp_path / "s" / f"{name}.parquet").exists()
    ok(rdia("noise", tmp_path / "s" / "train.parquet", "--rate", "0.5",
            "-o", tmp_path / "n.parquet"))
    import pyarrow.parquet as pq

    t = pq.read_table(tmp_path / "n.parquet")
    assert "is_noisy" in t.column_names and "clean_label" in t.column_names


# --- errors: one line, exit code 2, no output, inputs untouched --------------------------------
def _fails(result, code, *fragments):
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    for f in fragments:
        assert f in result.stderr, result.stderr


def test_error_missing_file(tmp_path):
    _fails(rdia("train", tmp_path / "nope.svm", "-o", tmp_path / "m.pt"), 2, "nope.svm",
           "not exist")
    assert not (tmp_path / "m.pt").exists()


def test_error_empty_file(tmp_path):
    (tmp_path / "empty.svm").write_text("")
    _fails(rdia("train", tmp_path / "empty.svm", "-o", tmp_path / "m.pt"), 2, "empty")
    assert not (tmp_path / "m.pt").exists()


def test_error_malformed_libsvm_line(tmp_path):
    (tmp_path / "bad.svm").write_text("1 1:0.5 2:1\n-1 1:0.2 2:x\n")
    _fails(rdia("train", tmp_path / "bad.svm", "-o", tmp_path / "m.pt"), 2, "line 2")


def test_error_non_numeric_csv(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b,label\n1,2,0\n3,oops,1\n")
    _fails(rdia("train", tmp_path / "bad.csv", "-o", tmp_path / "m.pt"), 2, "oops")
    res = rdia("train", tmp_path / "bad.csv", "-o", tmp_path / "m.pt")
    assert "b" in res.stderr and "3" in res.stderr


def test_error_missing_label_column(tmp_path):
    (tmp_path / "x.csv").write_text("a,b,y\n1,2,0\n3,4,1\n")
    _fails(rdia("train", tmp_path / "x.csv", "-o", tmp_path / "m.pt"), 2, "label")


def test_error_infinite_features(tmp_path):
    """A blank or `nan` cell is a missing value (imputed, #26); infinity is an error."""
    (tmp_path / "inf.csv").write_text("a,b,label\n1,2,0\n3,inf,1\n")
    _fails(rdia("train", tmp_path / "inf.csv", "-o", tmp_path / "m.pt"), 2, "b")


def test_error_unseen_test_labels(pipeline, tmp_path):
    write_svm(tmp_path / "t.svm", np.ones((3, 6)), [1, -1, 5])
    _fails(rdia("evaluate", pipeline / "lr.pt", "--data", tmp_path / "t.svm"), 2, "5")


def test_error_not_a_model(files, tmp_path):
    (tmp_path / "fake.pt").write_bytes(b"not a model")
    _fails(rdia("evaluate", tmp_path / "fake.pt", "--data", files / "test.svm"), 2,
           "not an rdia model")


def test_error_feature_count_mismatch(pipeline, tmp_path):
    write_svm(tmp_path / "wide.svm", np.ones((3, 9)), [1, -1, 1])
    _fails(rdia("evaluate", pipeline / "lr.pt", "--data", tmp_path / "wide.svm"), 2, "features")


def test_error_output_equals_input(files):
    before = (files / "train.svm").read_bytes()
    _fails(rdia("train", files / "train.svm", "-o", files / "train.svm"), 2, "also an input")
    assert (files / "train.svm").read_bytes() == before


def test_error_cuda_without_gpu(files, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    _fails(rdia("train", files / "train.svm", "-o", tmp_path / "m.pt", "--device", "cuda"), 2,
           "CUDA")
    assert not (tmp_path / "m.pt").exists()


def test_error_mismatched_scores(pipeline, tmp_path):
    write_svm(tmp_path / "other.svm", np.ones((5, 6)), [1, -1, 1, -1, 1])
    _fails(rdia("relabel", tmp_path / "other.svm", "--scores", pipeline / "scores.parquet",
                "--alpha", "0", "-o", tmp_path / "c.parquet"), 2, "other training data")
    assert not (tmp_path / "c.parquet").exists()


def test_error_alpha_and_fraction(pipeline, tmp_path):
    d = pipeline
    _fails(rdia("relabel", d / "train.svm", "--scores", d / "scores.parquet", "--strategy",
                "drop", "-o", tmp_path / "c.parquet"), 2, "--alpha")
    # no rule at all: relabel's default is auto, as `rdia run`'s (val and model from the scores)
    import pyarrow.parquet as pq

    ok(rdia("relabel", d / "train.svm", "--scores", d / "scores.parquet", "-o",
            tmp_path / "auto.parquet"))
    meta = json.loads(pq.read_table(tmp_path / "auto.parquet").schema.metadata[b"rdia.relabel"])
    assert meta["strategy"] == "auto"
    _fails(rdia("relabel", d / "train.svm", "--scores", d / "scores.parquet", "--alpha", "x",
                "-o", tmp_path / "c.parquet"), 2, "--alpha")


def test_idx_images_with_gzip_labels(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    imgs = rng.integers(0, 255, (n, 4, 4), dtype=np.uint8)
    labels = np.where(imgs[:, 0, 0] > 127, 7, 1).astype(np.uint8)
    with gzip.open(tmp_path / "img-idx3-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x03" + np.array([n, 4, 4], ">i4").tobytes() + imgs.tobytes())
    with gzip.open(tmp_path / "lab-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x01" + np.array([n], ">i4").tobytes() + labels.tobytes())
    ok(rdia("train", tmp_path / "img-idx3-ubyte.gz", "--labels", tmp_path / "lab-idx1-ubyte.gz",
            "-o", tmp_path / "m.pt"))
    res = ok(rdia("evaluate", tmp_path / "m.pt", "--data", tmp_path / "img-idx3-ubyte.gz",
                  "--labels", tmp_path / "lab-idx1-ubyte.gz", "--json", tmp_path / "e.json"))
    assert json.loads((tmp_path / "e.json").read_text())["models"][0]["accuracy"] > 0.9, res


def test_import_and_help_do_not_import_torch():
    code = ("import sys, rdia_cli, rdia_cli.cli; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(rdia_cli.cli.app, ['--help']); assert r.exit_code == 0; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
    out = subprocess.run([sys.executable, "-m", "rdia_cli", "--help"], capture_output=True,
                         text=True, check=True)
    assert "relabel" in out.stdout


def test_readme_commands_are_real():
    """Every `rdia X` the README shows is a command that exists."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    import re

    used = set(re.findall(r"^rdia (\w+)", readme, flags=re.M))
    names = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert used and used <= names, used - names


@pytest.mark.slow
def test_relabel_strategy_auto_then_retrain(pipeline, tmp_path):
    import pyarrow.parquet as pq

    d = pipeline
    res = ok(rdia("relabel", d / "train.svm", "--scores", d / "scores.parquet", "--strategy",
                  "auto", "--val", d / "val.svm", "--model", d / "lr.pt", "--include-clean",
                  "-o", tmp_path / "auto.parquet"))
    assert "cross-validation" in res.stderr
    t = pq.read_table(tmp_path / "auto.parquet")
    part = t.column("part").to_numpy()
    assert (part == 1).sum() == 100  # the validation rows are training data too
    res = ok(rdia("retrain", tmp_path / "auto.parquet", "--model", d / "lr.pt",
                  "-o", tmp_path / "auto.pt"))
    # by default the clean rows are left out of the file; retrain adds them back from the
    # recorded clean set and fits the very same model
    ok(rdia("relabel", d / "train.svm", "--scores", d / "scores.parquet", "--strategy",
            "auto", "--val", d / "val.svm", "--model", d / "lr.pt",
            "-o", tmp_path / "auto_only.parquet"))
    only = pq.read_table(tmp_path / "auto_only.parquet")
    assert only.num_rows == (part == 0).sum() and "part" not in only.column_names
    ok(rdia("retrain", tmp_path / "auto_only.parquet", "--model", d / "lr.pt",
            "-o", tmp_path / "auto_only.pt"))
    a = torch.load(tmp_path / "auto.pt", weights_only=True)["state"]
    b = torch.load(tmp_path / "auto_only.pt", weights_only=True)["state"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # retrain keeps the λ that the cross-validation chose
    import json

    from rdia_cli.models.io import load_model

    chosen = json.loads(t.schema.metadata[b"rdia.relabel"])
    assert chosen["l2"] >= 1.0 / len(part)
    retrained = load_model(tmp_path / "auto.pt")
    assert retrained.meta["l2"] == chosen["l2"]
    # the scores record the training data, the clean set and the model: nothing else needed
    ok(rdia("relabel", "--scores", d / "scores.parquet", "--strategy", "auto",
            "-o", tmp_path / "x.parquet"))
    assert pq.read_table(tmp_path / "x.parquet").equals(only)


@pytest.mark.slow  # auto's cross-validation through the CLI, 3-5 s
def test_retraining_an_auto_blend_refits_both_parts(cancer, tmp_path):
    """auto's blend with the clean set alone (breast-cancer, 40% of the labels flipped: a blend
    is chosen): `retrain` refits both parts and averages them by the same share."""
    import json

    import pyarrow.parquet as pq

    from rdia_cli.data import ReadOptions, inject_noise, read_dataset
    from rdia_cli.models.common import predict_proba
    from rdia_cli.models.io import load_model
    from rdia_cli.models.logreg.training import train_logreg

    train, val, _ = cancer
    noisy = inject_noise(train, rate=0.4, seed=0)
    write_svm(tmp_path / "train.svm", noisy.X, np.where(noisy.y == 1, 1, -1))
    write_svm(tmp_path / "val.svm", val.X, np.where(val.y == 1, 1, -1))
    ok(rdia("train", tmp_path / "train.svm", "-o", tmp_path / "lr.pt", "-q"))
    ok(rdia("score", tmp_path / "train.svm", "--val", tmp_path / "val.svm", "--model",
            tmp_path / "lr.pt", "-o", tmp_path / "scores.parquet", "-q"))
    ok(rdia("relabel", tmp_path / "train.svm", "--scores", tmp_path / "scores.parquet",
            "--strategy", "auto", "--val",
            tmp_path / "val.svm", "--model", tmp_path / "lr.pt", "--include-clean",
            "-o", tmp_path / "auto.parquet"))
    res = ok(rdia("retrain", tmp_path / "auto.parquet", "--model", tmp_path / "lr.pt",
                  "-o", tmp_path / "auto.pt"))
    assert "of a fit on the clean rows alone" in res.stderr
    t = pq.read_table(tmp_path / "auto.parquet")
    part = t.column("part").to_numpy()
    chosen = json.loads(t.schema.metadata[b"rdia.relabel"])
    retrained = load_model(tmp_path / "auto.pt")
    blend = chosen["blend"]
    assert 0 < blend["clean_only_share"] < 1
    assert retrained.meta["blend"]["share"] == blend["clean_only_share"]
    rows = read_dataset(str(tmp_path / "auto.parquet"), ReadOptions(format="parquet"))
    whole = train_logreg(rows, l2=chosen["l2"])
    alone = train_logreg(rows.subset(np.flatnonzero(part == 1)), l2=blend["clean_only_l2"])
    share = blend["clean_only_share"]
    want = (1 - share) * np.log(predict_proba(whole, rows.X)) + share * np.log(
        predict_proba(alone, rows.X))
    want = np.exp(want) / np.exp(want).sum(1, keepdims=True)
    np.testing.assert_allclose(predict_proba(retrained, rows.X), want, atol=1e-5)


def _write_idx(folder, name, n, seed, size=16):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n).astype(np.uint8)
    imgs = rng.integers(0, 60, (n, size, size)).astype(np.uint8)
    for k in range(3):  # class k lights up its own band of rows
        imgs[labels == k, 4 * k: 4 * k + 3, :] += 150
    with gzip.open(folder / f"{name}-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x03" + np.array([n, size, size], ">i4").tobytes() + imgs.tobytes())
    with gzip.open(folder / f"{name}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x01" + np.array([n], ">i4").tobytes() + labels.tobytes())
    return folder / f"{name}-images-idx3-ubyte.gz", folder / f"{name}-labels-idx1-ubyte.gz"


@pytest.mark.slow
def test_lenet_pipeline_on_a_few_hundred_images(tmp_path):
    tr, trl = _write_idx(tmp_path, "train", 300, 0)
    va, val = _write_idx(tmp_path, "val", 100, 1)
    ok(rdia("noise", tr, "--labels", trl, "--rate", "0.3", "-o", tmp_path / "noisy.parquet"))
    noisy = tmp_path / "noisy.parquet"
    ok(rdia("train", noisy, "--model-type", "lenet", "--epochs", "3", "--batch-size", "32",
            "--lr", "0.01", "-o", tmp_path / "lenet.pt", "--device", "cpu"))
    res = ok(rdia("score", noisy, "--val", va, "--val-labels", val, "--model",
                  tmp_path / "lenet.pt", "-o", tmp_path / "scores.parquet",
                  "--hessian-samples", "100", "--max-iter", "50"))
    assert "ggn" in res.stderr
    ok(rdia("relabel", noisy, "--scores", tmp_path / "scores.parquet", "--fraction", "0.1",
            "-o", tmp_path / "cleaned.parquet"))
    ok(rdia("retrain", tmp_path / "cleaned.parquet", "--model", tmp_path / "lenet.pt",
            "--epochs", "1", "-o", tmp_path / "lenet_r.pt"))
    ok(rdia("evaluate", tmp_path / "lenet.pt", tmp_path / "lenet_r.pt", "--data", va,
            "--labels", val, "--json", tmp_path / "m.json"))
    m = json.loads((tmp_path / "m.json").read_text())
    assert all(x["accuracy"] > 0.5 for x in m["models"])  # chance is 1/3
    model = torch.load(tmp_path / "lenet_r.pt", weights_only=True)
    assert model["arch"] == "lenet" and model["meta"]["retrained_from"].endswith("lenet.pt")


def test_rdia_beats_erm_on_breast_cancer_with_40_percent_noise():
    """The paper's method (α chosen on the validation set), averaged over 3 seeds."""
    from rdia_cli import stages as api
    from rdia_cli.cli.commands.run import builtin_example

    erm_losses, rdia_losses = [], []
    for seed in range(3):
        train, val, test = builtin_example(noise_rate=0.4, seed=seed)
        erm = api.train_model(train)
        result = api.score_model(erm, train, val)
        probs = api.probabilities(erm, train)
        outcome = api.auto_alpha(train, result, erm, val, probs=probs, strategy="rdia", seed=seed)
        model = api.retrain_model(outcome.dataset, erm)
        erm_losses.append(api.evaluate_model(erm, test)["loss"])
        rdia_losses.append(api.evaluate_model(model, test)["loss"])
    assert np.mean(rdia_losses) < np.mean(erm_losses), (rdia_losses, erm_losses)


def test_train_names_the_one_class_it_found(files, tmp_path):
    rows = (files / "train.svm").read_text().splitlines(True)
    first = rows[0].split()[0]
    (tmp_path / "one.svm").write_text("".join(r for r in rows if r.split()[0] == first))
    res = rdia("train", tmp_path / "one.svm", "-o", tmp_path / "m.pt")
    assert res.exit_code == 2 and f"has a single class (label {first})" in res.stderr
    assert not (tmp_path / "m.pt").exists()
