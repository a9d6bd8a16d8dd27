"""#26 as a user runs it: a raw CSV (an ID, text categories, blanks, labels yes/no) through the
five stages and `rdia run` with no preprocessing by hand, and the user's own table back out."""

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.cli_helpers import ok, rdia

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """train (options given once) → score → relabel -o cleaned.csv, in one folder."""
    d = tmp_path_factory.mktemp("tables")
    for name in ("credit.csv", "credit_val.csv"):
        shutil.copy(FIXTURES / name, d / name)
    res = ok(rdia("train", d / "credit.csv", "--val", d / "credit_val.csv", "--label-col",
                  "good_credit", "--id-col", "customer_id", "-o", d / "lr.pt", "--device", "cpu"))
    assert "categorical" in res.stderr and "imputed" in res.stderr  # the typing is printed
    ok(rdia("score", d / "credit.csv", "--val", d / "credit_val.csv", "--model", d / "lr.pt",
            "-o", d / "scores.parquet", "--device", "cpu"))
    ok(rdia("relabel", d / "credit.csv", "--scores", d / "scores.parquet", "--fraction", "0.1",
            "-o", d / "cleaned.csv"))
    return d


def test_cleaned_csv_gives_the_users_columns_back_with_new_labels(staged):
    given = pd.read_csv(staged / "credit.csv")
    cleaned = pd.read_csv(staged / "cleaned.csv")
    assert list(cleaned.columns[:len(given.columns)]) == list(given.columns)
    unchanged = [c for c in given.columns if c != "good_credit"]
    pd.testing.assert_frame_equal(cleaned[unchanged], given[unchanged])  # IDs, text, blanks
    flipped = cleaned["good_credit"] != given["good_credit"]
    assert flipped.sum() == cleaned["relabeled"].sum() == 6
    assert (cleaned.loc[flipped, "original_label"] == given.loc[flipped, "good_credit"]).all()
    assert set(cleaned["good_credit"]) <= {"yes", "no"}
    assert {"target_no", "target_yes", "phi"} <= set(cleaned.columns)


def test_scores_carry_the_id_and_the_model_remembers_the_options(staged):
    scores = pd.read_parquet(staged / "scores.parquet")
    assert scores["customer_id"].tolist() == pd.read_csv(staged / "credit.csv")[
        "customer_id"].tolist()
    payload = torch.load(staged / "lr.pt", weights_only=True)  # no pickle, prep included
    assert payload["meta"]["read_options"]["id_col"] == "customer_id"
    assert payload["meta"]["prep"]


def test_retrain_and_evaluate_on_the_cleaned_csv(staged, tmp_path):
    ok(rdia("retrain", staged / "cleaned.csv", "--model", staged / "lr.pt", "-o",
            tmp_path / "r.pt", "--device", "cpu"))
    import json

    ok(rdia("evaluate", staged / "lr.pt", tmp_path / "r.pt", "--data",
            staged / "credit_val.csv", "--device", "cpu", "--json", tmp_path / "m.json"))
    models = json.loads((tmp_path / "m.json").read_text())["models"]
    assert [m["n"] for m in models] == [12, 12]  # the val file: reordered, a new category


@pytest.mark.parametrize("ext", [".parquet", ".tsv", ".csv.gz"])
def test_relabel_writes_the_format_its_extension_names(staged, tmp_path, ext):
    out = tmp_path / f"cleaned{ext}"
    ok(rdia("relabel", "--scores", staged / "scores.parquet", "--fraction", "0.1", "-o", out))
    got = (pd.read_parquet(out) if ext == ".parquet"
           else pd.read_csv(out, sep="\t" if ext == ".tsv" else ","))
    assert got["customer_id"].tolist()[:3] == ["C00001", "C00002", "C00003"]
    assert got["relabeled"].sum() == 6


@pytest.mark.parametrize("name,fragment", [
    ("cleaned.json", ".parquet, .csv"),   # an extension rdia cannot write: exit 2, no file
    ("cleaned.svm", "yes"),                # LIBSVM labels are numbers; these are yes/no
])
def test_relabel_refuses_outputs_it_cannot_write(staged, tmp_path, name, fragment):
    res = rdia("relabel", "--scores", staged / "scores.parquet", "--fraction", "0.1",
               "-o", tmp_path / name)
    assert res.exit_code == 2 and fragment in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / name).exists()


def test_a_missing_feature_column_at_score_time_is_one_line(staged, tmp_path):
    val = pd.read_csv(staged / "credit_val.csv").drop(columns=["credit_amount"])
    val.to_csv(tmp_path / "val.csv", index=False)
    res = rdia("evaluate", staged / "lr.pt", "--data", tmp_path / "val.csv")
    assert res.exit_code == 2 and "credit_amount" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_a_non_unique_id_is_refused(tmp_path):
    df = pd.read_csv(FIXTURES / "credit.csv")
    df.loc[5, "customer_id"] = df.loc[2, "customer_id"]
    df.to_csv(tmp_path / "dup.csv", index=False)
    res = rdia("train", tmp_path / "dup.csv", "--label-col", "good_credit", "--id-col",
               "customer_id", "-o", tmp_path / "m.pt")
    assert res.exit_code == 2 and "C00003" in res.stderr
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.slow
def test_rdia_run_on_the_raw_table(tmp_path):
    res = ok(rdia("run", FIXTURES / "credit.csv", "--val", FIXTURES / "credit_val.csv",
                  "--test", FIXTURES / "credit_val.csv", "--label-col", "good_credit",
                  "--id-col", "customer_id", "-o", tmp_path / "run", "--device", "cpu"))
    assert "columns of" in res.stderr
    cleaned = pd.read_parquet(tmp_path / "run" / "cleaned.parquet")
    assert list(cleaned.columns[:8]) == list(pd.read_csv(FIXTURES / "credit.csv").columns)
    # the run's scores record where the data are and how they were read, as `rdia score`'s do
    ok(rdia("relabel", "--scores", tmp_path / "run" / "scores.parquet", "--fraction", "0.1",
            "-o", tmp_path / "c.csv"))
    assert pd.read_csv(tmp_path / "c.csv")["customer_id"].iloc[0] == "C00001"


def test_a_cleaned_parquet_trains_on_the_users_features_only(staged, tmp_path):
    """rdia's added columns (original_label, relabeled, phi, target) are never features."""
    ok(rdia("relabel", "--scores", staged / "scores.parquet", "--fraction", "0.1",
            "-o", tmp_path / "c.parquet"))
    ok(rdia("train", tmp_path / "c.parquet", "-o", tmp_path / "m.pt", "--device", "cpu"))
    meta = torch.load(tmp_path / "m.pt", weights_only=True)["meta"]
    first = torch.load(staged / "lr.pt", weights_only=True)["meta"]
    assert meta["feature_names"] == first["feature_names"]


def test_noise_on_a_users_table_keeps_its_columns(tmp_path):
    ok(rdia("noise", FIXTURES / "credit.csv", "--label-col", "good_credit", "--id-col",
            "customer_id", "--rate", "0.3", "--seed", "1", "-o", tmp_path / "noisy.csv"))
    given, noisy = pd.read_csv(FIXTURES / "credit.csv"), pd.read_csv(tmp_path / "noisy.csv")
    assert list(noisy.columns[:len(given.columns)]) == list(given.columns)
    changed = noisy["good_credit"] != given["good_credit"]
    assert changed.sum() == noisy["is_noisy"].sum() > 0


def test_auto_files_keep_the_users_table_for_clean_rows_too():
    """The clean rows an auto file holds (the clean set alone chosen, or --include-clean) come
    out in the clean set's own columns, not in rdia's encoding."""
    import numpy as np
    import pyarrow as pa

    from rdia_cli.cleaning.files import split_clean_rows
    from rdia_cli.data.dataset import Dataset

    def table_ds(ids, row_id):
        t = pa.table({"id": ids, "color": ["red"] * len(ids), "label": ["yes"] * len(ids)})
        return Dataset(X=np.zeros((len(ids), 2)), y=np.zeros(len(ids)), classes=["yes"],
                       row_id=row_id, table=t, meta={"columns": {"label": "label", "id": "id"}})

    train = table_ds(["a", "b", "c"], [0, 1, 2])
    clean = table_ds(["v1", "v2"], [0, 1])
    auto = Dataset(X=np.zeros((4, 2)), y=np.zeros(4), classes=["yes"], row_id=[0, 2, 0, 1],
                   extra={"part": np.array([0, 0, 1, 1], np.int8)})
    rows, info = split_clean_rows(auto, include_clean=True, source=train, clean=clean)
    assert info["clean_rows"] == "included"
    assert rows.table.column("id").to_pylist() == ["a", "c", "v1", "v2"]
    only = auto.subset([2, 3])
    rows, info = split_clean_rows(only, include_clean=False, source=train, clean=clean)
    assert "clean_rows_why" in info and rows.table.column("id").to_pylist() == ["v1", "v2"]
    rows, info = split_clean_rows(auto, include_clean=False, source=train, clean=clean)
    assert rows.table.column("id").to_pylist() == ["a", "c"]
