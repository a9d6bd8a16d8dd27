"""The CLI speaks Unix (issue #27): `--json PATH|-` on every stage that does work (with `-`,
stdout holds the JSON alone), -q leaves nothing on success, -h is --help, and plain progress
lines when stderr is not a terminal."""

import json
import os
import subprocess
import sys

import pytest

from tests.cli_helpers import ok, rdia
from tests.conftest import noisy_linear, write_splits


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    d = tmp_path_factory.mktemp("unix")
    X, y, noisy = noisy_linear(240, 5, seed=1, n_noisy=120, labels=(-1, 1))
    write_splits(d, X, y, noisy, 120, 60)
    ok(rdia("train", d / "train.svm", "-o", d / "lr.pt", "--device", "cpu"))
    ok(rdia("score", d / "train.svm", "--val", d / "val.svm", "--model", d / "lr.pt",
            "-o", d / "scores.parquet"))
    ok(rdia("relabel", d / "train.svm", "--scores", d / "scores.parquet", "--fraction", "0.1",
            "-o", d / "cleaned.parquet"))
    return d


def _json_stage(args):
    res = ok(rdia(*args, "--json", "-"))
    doc = json.loads(res.stdout)  # nothing else on stdout
    assert doc["command"] == args[0] and doc["seconds"] >= 0 and "timings" in doc
    return doc, res


def test_json_train(d, tmp_path):
    doc, res = _json_stage(["train", d / "train.svm", "--val", d / "val.svm",
                            "-o", tmp_path / "m.pt"])
    assert doc["wrote"] == {"model": str(tmp_path / "m.pt")}
    assert doc["data"]["rows"] == 120 and doc["data"]["classes"] == [-1, 1]
    assert doc["metrics"]["converged"] and 0 <= doc["val_metrics"]["accuracy"] <= 1
    assert "train" in doc["timings"] and "read" in doc["timings"]
    assert "rdia train" in res.stderr  # the summary table went to stderr


def test_json_score_keeps_stdout_for_the_json(d, tmp_path):
    """Without -o and stdout not a terminal, scores would go to stdout; --json - takes it, so
    they go beside DATA."""
    data = tmp_path / "train.svm"
    data.write_bytes((d / "train.svm").read_bytes())
    doc, _ = _json_stage(["score", data, "--val", d / "val.svm", "--model", d / "lr.pt"])
    assert doc["wrote"] == {"scores": str(tmp_path / "train.scores.parquet")}
    assert doc["rows"] == 120 and doc["harmful"] >= 0 and doc["iterations"] >= 0


def test_json_relabel(d, tmp_path):
    doc, _ = _json_stage(["relabel", d / "train.svm", "--scores", d / "scores.parquet",
                          "--fraction", "0.2", "-o", tmp_path / "c.parquet"])
    assert doc["wrote"] == {"cleaned": str(tmp_path / "c.parquet")}
    assert doc["rows"] == 120 and doc["relabeled"] + doc["removed"] > 0
    assert doc["strategy"] == "rdia"


def test_json_retrain_and_evaluate(d, tmp_path):
    doc, _ = _json_stage(["retrain", d / "cleaned.parquet", "--model", d / "lr.pt",
                          "-o", tmp_path / "r.pt"])
    assert doc["wrote"] == {"model": str(tmp_path / "r.pt")} and doc["rows"] == 120
    doc, res = _json_stage(["evaluate", d / "lr.pt", tmp_path / "r.pt", "--data",
                            d / "test.svm"])
    assert [m["model"] for m in doc["models"]] == [str(d / "lr.pt"), str(tmp_path / "r.pt")]
    assert all(0 <= m["accuracy"] <= 1 and m["n"] == 60 for m in doc["models"])
    assert "rdia evaluate on" in res.stderr  # the table, on stderr


def test_json_to_a_file_leaves_the_table_on_stdout(d, tmp_path):
    res = ok(rdia("evaluate", d / "lr.pt", "--data", d / "test.svm", "--json",
                  tmp_path / "m.json"))
    assert "rdia evaluate on" in res.stdout
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["data"] == str(d / "test.svm") and len(doc["models"]) == 1


def test_json_split_noise_convert(d, tmp_path):
    doc, _ = _json_stage(["split", d / "train.svm", "-o", tmp_path / "parts", "--test", "0"])
    assert set(doc["wrote"]) == {"train", "val"} and sum(doc["rows"].values()) == 120
    doc, _ = _json_stage(["noise", d / "train.svm", "--rate", "0.2", "-o",
                          tmp_path / "n.parquet"])
    assert doc["rows"] == 120 and doc["changed"] >= 0 and doc["noise"]["kind"] == "symmetric"
    doc, _ = _json_stage(["convert", d / "train.svm", "-o", tmp_path / "c.csv"])
    assert doc["wrote"] == {"data": str(tmp_path / "c.csv")} and doc["features"] == 5


def test_json_run(d, tmp_path):
    doc, _ = _json_stage(["run", d / "train.svm", "--val", d / "val.svm", "--test",
                          d / "test.svm", "-o", tmp_path / "run", "--strategy", "rdia",
                          "--alpha", "0.002"])
    assert [m["name"] for m in doc["models"]] == ["erm", "rdia"]
    assert doc["rows"] == {"train": 120, "val": 60, "test": 60}
    assert str(tmp_path / "run" / "metrics.json") in doc["wrote"]["files"]
    assert "pipeline" in doc["timings"]


def test_json_dash_with_output_dash_is_refused(d):
    res = rdia("convert", d / "train.svm", "-o", "-", "--json", "-")
    assert res.exit_code == 2 and "standard output" in res.stderr


def test_json_never_overwrites_an_input(d):
    before = (d / "test.svm").read_bytes()
    res = rdia("evaluate", d / "lr.pt", "--data", d / "test.svm", "--json", d / "test.svm")
    assert res.exit_code == 2 and (d / "test.svm").read_bytes() == before


def test_quiet_prints_nothing_on_success(d, tmp_path):
    for args in (["train", d / "train.svm", "-o", tmp_path / "m.pt"],
                 ["evaluate", d / "lr.pt", "--data", d / "test.svm"],
                 ["relabel", d / "train.svm", "--scores", d / "scores.parquet", "--fraction",
                  "0.1", "-o", tmp_path / "c.parquet"],
                 ["convert", d / "train.svm", "-o", tmp_path / "c.csv"]):
        res = ok(rdia(*args, "-q"))
        assert res.stdout == "" and res.stderr == "", args


def test_quiet_still_prints_errors(d, tmp_path):
    res = rdia("train", tmp_path / "nope.svm", "-o", tmp_path / "m.pt", "--quiet")
    assert res.exit_code == 2 and "nope.svm" in res.stderr


def test_quiet_and_json(d, tmp_path):
    res = ok(rdia("convert", d / "train.svm", "-o", tmp_path / "c.csv", "-q", "--json", "-"))
    assert json.loads(res.stdout)["rows"] == 120 and res.stderr == ""


def test_verbose_adds_phase_times(d, tmp_path):
    res = ok(rdia("train", d / "train.svm", "-o", tmp_path / "m.pt"))
    assert "reading training data" not in res.stderr  # short: not said without -v
    res = ok(rdia("train", d / "train.svm", "-o", tmp_path / "m.pt", "-v"))
    assert f"rdia train: reading training data {d / 'train.svm'}: done in" in res.stderr
    assert "rdia train: training logreg: done in" in res.stderr


@pytest.mark.parametrize("command", ["train", "score", "relabel", "retrain", "evaluate", "run",
                                     "split", "noise", "convert", "inspect", "report", "demo",
                                     "synth"])
def test_dash_h_is_help(command):
    res = ok(rdia(command, "-h"))
    assert "Usage" in res.stdout and "--quiet" in res.stdout


def test_plain_progress_lines_when_stderr_is_not_a_terminal(d, tmp_path, monkeypatch):
    """A stage says when it starts and ends; with RDIA_PROGRESS_SECONDS=0 every step is a line
    (10 s apart by default)."""
    monkeypatch.setenv("RDIA_PROGRESS_SECONDS", "0")
    res = ok(rdia("train", d / "train.svm", "-o", tmp_path / "m.pt"))
    lines = res.stderr.splitlines()
    assert "rdia train: training logreg ..." in lines
    assert any(line.startswith("rdia train: training logreg: step") and "Newton step" in line
               and "loss" in line for line in lines), lines
    assert any(line.startswith("rdia train: training logreg: done in") for line in lines)
    res = ok(rdia("score", d / "train.svm", "--val", d / "val.svm", "--model", d / "lr.pt",
                  "-o", tmp_path / "s.parquet", "--solver", "cg"))
    assert any("CG iteration" in line and "residual" in line for line in res.stderr.splitlines())


def test_a_heartbeat_while_the_library_reports_nothing(monkeypatch, capsys):
    """Long work that reports no step still prints a line every interval."""
    import time

    from rdia_cli.cli import render

    monkeypatch.setenv("RDIA_PROGRESS_SECONDS", "0.05")
    with render.activity("waiting"):
        time.sleep(0.3)
    err = capsys.readouterr().err
    assert err.count("waiting: still running") >= 2 and "waiting: done in" in err


@pytest.mark.slow
def test_progress_lines_in_a_subprocess_with_stderr_a_pipe(d, tmp_path):
    env = dict(os.environ, RDIA_PROGRESS_SECONDS="0")
    res = subprocess.run([sys.executable, "-m", "rdia_cli", "train", str(d / "train.svm"),
                          "-o", str(tmp_path / "m.pt")], capture_output=True, text=True,
                         env=env, timeout=120)  # stderr a pipe
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert "rdia train: training logreg ..." in lines
    assert any("Newton step" in line for line in lines)
    assert any(line.startswith("rdia train: training logreg: done in") for line in lines)
