"""`--help` reads as one tool (issue #27, item 4): flags without a `<bool>` placeholder or a
`--no-` twin, defaults shown one way (`[default: ...]`), `train`'s options in panels,
`split --val-share/--test-share` (the old `--val`/`--test` still work), `retrain --seed` and the
reader options on `retrain`; and (item 2) `rdia run` in a log says when each stage starts."""

import json
import re

import pyarrow.parquet as pq
import pytest

from rdia_cli.cli import app
from tests.cli_helpers import ok, rdia
from tests.conftest import noisy_linear, write_svm

COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)


def _help(*args) -> str:
    res = ok(rdia(*args, "--help", env={"COLUMNS": "200", "TERM": "dumb"}))
    return res.stdout


@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]],
                         ids=["rdia", *COMMANDS])
def test_help_has_no_bool_placeholder_and_no_double_negative(command):
    text = _help(*command)
    assert "<bool>" not in text
    assert "--no-no-" not in text


@pytest.mark.parametrize("command", ["train", "score", "relabel", "retrain", "evaluate", "run",
                                     "demo", "split", "noise", "convert", "synth"])
def test_defaults_are_shown_one_way(command):
    text = _help(command)
    assert "(default" not in text.replace("[default: (", "")  # only Typer's [default: ...]


def test_train_help_groups_options_in_panels():
    text = _help("train")
    for panel in ("Logistic regression", "Networks", "Noisy-label methods", "Data", "Output"):
        assert f"─ {panel}" in text, panel
    # the reader flags are under Data, -o/-q/-v/--json under Output, which comes last
    assert text.index("─ Data") < text.index("--label-col") < text.index("─ Output")
    assert text.index("─ Output") < text.index("--json")
    assert re.search(r"--no-intercept\s+Fit no intercept", text)  # a flag takes no value


def test_computed_defaults_are_shown_like_the_others():
    text = _help("train")
    assert "[default: (1/N" in text and "[default: logreg]" in text


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    d = tmp_path_factory.mktemp("help")
    X, y, noisy = noisy_linear(200, 4, seed=2, n_noisy=20, labels=(0, 1))
    write_svm(d / "all.svm", X, noisy)
    write_svm(d / "train.svm", X[:120], noisy[:120])
    write_svm(d / "val.svm", X[120:], y[120:])
    return d


def _rows(folder):
    return {p.stem: pq.read_metadata(p).num_rows for p in folder.glob("*.parquet")}


def test_split_val_share_and_the_old_val_spelling_agree(d, tmp_path):
    ok(rdia("split", d / "all.svm", "-o", tmp_path / "new", "--val-share", "0.25",
            "--test-share", "0.1"))
    ok(rdia("split", d / "all.svm", "-o", tmp_path / "old", "--val", "0.25", "--test", "0.1"))
    assert _rows(tmp_path / "new") == _rows(tmp_path / "old")
    assert _rows(tmp_path / "new")["val"] == 50
    text = _help("split")
    assert "--val-share" in text and not re.search(r"│\s+--val\s", text)  # old name: hidden


def test_split_old_and_new_name_together_is_an_error(d, tmp_path):
    res = rdia("split", d / "all.svm", "-o", tmp_path / "x", "--val", "0.1",
               "--val-share", "0.3")
    assert res.exit_code == 2 and "--val is the old name of --val-share" in res.stderr


def test_retrain_takes_seed_and_reader_options(d, tmp_path):
    text = _help("retrain")
    assert "--seed" in text and "--label-col" in text and "--n-features" in text
    ok(rdia("train", d / "train.svm", "-o", tmp_path / "lr.pt", "--device", "cpu"))
    ok(rdia("score", d / "train.svm", "--val", d / "val.svm", "--model", tmp_path / "lr.pt",
            "-o", tmp_path / "s.parquet"))
    ok(rdia("relabel", d / "train.svm", "--scores", tmp_path / "s.parquet", "--fraction",
            "0.1", "-o", tmp_path / "c.parquet"))
    res = ok(rdia("retrain", tmp_path / "c.parquet", "--model", tmp_path / "lr.pt",
                  "-o", tmp_path / "r.pt", "--seed", "3", "--format", "parquet",
                  "--json", "-"))
    assert json.loads(res.stdout)["wrote"]["model"] == str(tmp_path / "r.pt")


def test_run_in_a_log_announces_each_stage_when_it_starts(tmp_path):
    """Issue #27, item 2: stderr not a terminal, `rdia run`/`demo` say a stage has begun
    before its result line."""
    err = ok(rdia("demo", "-o", tmp_path / "demo", "--device", "cpu")).stderr
    lines = err.splitlines()
    start = next(i for i, s in enumerate(lines) if s.startswith("rdia demo: training ERM"))
    end = next(i for i, s in enumerate(lines) if s.startswith("· trained ERM"))
    assert start < end
    assert any(s.startswith("rdia demo: scoring ") and s.endswith("...") for s in lines)
    assert any(s.startswith("rdia demo: evaluating 3 models") for s in lines)


@pytest.mark.slow
def test_demo_writes_into_a_fresh_temporary_folder_and_says_where(tmp_path, monkeypatch):
    import os
    import re

    monkeypatch.chdir(tmp_path)
    import tempfile

    os.makedirs(tmp_path / "tmp")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    err = ok(rdia("demo", "--device", "cpu")).stderr
    assert not (tmp_path / "rdia-demo").exists() and list(tmp_path.iterdir()) == [tmp_path / "tmp"]
    made = list((tmp_path / "tmp").glob("rdia-demo-*"))
    assert len(made) == 1 and (made[0] / "metrics.json").exists()
    assert re.sub(r"\s+", "", made[0].name) in re.sub(r"\s+", "", err)
