"""`rdia issues` and `rdia apply`: the table, the review round trip, and bad review files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.cli_helpers import ok, rdia


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A customer table (ID column cid, labels yes/no, 30% flipped), its clean set, a model and
    scores, in one folder."""
    from sklearn.datasets import load_breast_cancer

    d = tmp_path_factory.mktemp("issues")
    X, y = load_breast_cancer(return_X_y=True)
    X = X / X.max(0)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))

    def table(idx, rate):
        lab = np.where(y[idx] == 1, "yes", "no")
        flip = rng.random(len(idx)) < rate
        lab[flip] = np.where(lab[flip] == "yes", "no", "yes")
        df = pd.DataFrame(X[idx], columns=[f"f{j}" for j in range(X.shape[1])])
        df.insert(0, "cid", [f"C{i:05d}" for i in idx])
        df["good"] = lab
        return df

    table(order[:400], 0.3).to_csv(d / "train.csv", index=False)
    table(order[400:485], 0.0).to_csv(d / "val.csv", index=False)
    ok(rdia("train", str(d / "train.csv"), "--label-col", "good", "--id-col", "cid",
            "-o", str(d / "lr.pt")))
    ok(rdia("score", str(d / "train.csv"), "--val", str(d / "val.csv"), "--model",
            str(d / "lr.pt"), "-o", str(d / "s.parquet")))
    return d


def test_issues_table_and_summary(scored):
    d = scored
    r = rdia("issues", "--scores", str(d / "s.parquet"), "--fraction", "0.1",
             "--explain", "3", "-o", str(d / "i.csv"))
    ok(r)
    assert "label issues" in r.stderr and "given → suggested" in r.stderr
    t = pd.read_csv(d / "i.csv")
    assert list(t.columns[:3]) == ["row_id", "cid", "is_label_issue"]
    assert len(t) == 400 and t.is_label_issue.sum() == 40
    why = t[t.why.notna()]
    assert len(why) == 3 and why.why.str.match(r"val C\d{5} -?\d+%").all()


def test_apply_unedited_equals_relabel(scored):
    d = scored
    ok(rdia("issues", "--scores", str(d / "s.parquet"), "--fraction", "0.1", "--explain", "0",
            "-o", str(d / "i10.csv")))
    ok(rdia("relabel", "--scores", str(d / "s.parquet"), "--fraction", "0.1",
            "-o", str(d / "r10.csv")))
    r = rdia("apply", str(d / "train.csv"), "--label-col", "good", "--id-col", "cid",
             "--issues", str(d / "i10.csv"), "-o", str(d / "a10.csv"))
    ok(r)
    assert (d / "a10.csv").read_bytes() == (d / "r10.csv").read_bytes()


def test_apply_reviewed_edits(scored):
    d = scored
    ok(rdia("issues", "--scores", str(d / "s.parquet"), "--fraction", "0.1", "--explain", "0",
            "-o", str(d / "i.parquet")))
    t = pd.read_parquet(d / "i.parquet")
    flagged = t.index[t.is_label_issue]
    t.loc[flagged[0], "action"] = "keep"  # rejected
    t.loc[flagged[1], "action"] = "drop"
    t.to_csv(d / "reviewed.csv", index=False)
    ok(rdia("apply", str(d / "train.csv"), "--label-col", "good", "--id-col", "cid",
            "--issues", str(d / "reviewed.csv"), "-o", str(d / "fixed.csv")))
    out = pd.read_csv(d / "fixed.csv")
    assert len(out) == 399 and out.relabeled.sum() == 38
    assert t.cid[flagged[1]] not in set(out.cid)
    kept = out.set_index("cid").loc[t.cid[flagged[0]]]
    assert kept.good == kept.original_label


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.assign(cid=t.cid.where(t.index != 0, "NOPE")), "not a row"),
    (lambda t: pd.concat([t, t.iloc[[3]]]), "twice"),
    (lambda t: t.assign(action=t.action.where(t.index != 0, "relabel"),
                        suggested_label=t.suggested_label.where(t.index != 0, "maybe")),
     "not a class"),
    (lambda t: t.assign(action=t.action.where(t.index != 0, "delete")), "action"),
])
def test_bad_review_files_exit_2(scored, edit, message):
    d = scored
    ok(rdia("issues", "--scores", str(d / "s.parquet"), "--fraction", "0.05", "--explain", "0",
            "-o", str(d / "i5.csv")))
    edit(pd.read_csv(d / "i5.csv")).to_csv(d / "bad.csv", index=False)
    r = rdia("apply", str(d / "train.csv"), "--label-col", "good", "--id-col", "cid",
             "--issues", str(d / "bad.csv"), "-o", str(d / "x.csv"))
    assert r.exit_code == 2 and message in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.startswith("error")]) == 1
    assert not (d / "x.csv").exists()


def test_issues_json_and_quiet(scored):
    import json

    d = scored
    r = rdia("issues", "--scores", str(d / "s.parquet"), "--fraction", "0.1", "--explain", "0",
             "-q", "--json", "-", "-o", str(d / "iq.csv"))
    ok(r)
    assert r.stderr.strip() == ""
    doc = json.loads(r.stdout)
    assert doc["command"] == "issues" and doc["n_issues"] == 40 and doc["n_rows"] == 400
    assert doc["n_written"] == 400 and doc["output"].endswith("iq.csv")
    assert 0.0 <= doc["noise_rate"] <= 1.0 and len(doc["transition"]["given_by_true"]) == 2
    assert sum(p["rows"] for p in doc["pairs"]) == 40 and doc["noise_estimated_by"]
    assert doc["train_read_options"]["label_col"] == "good"


def test_apply_reads_as_the_scores_did(scored):
    """A .parquet issues table records the data and its reader options: `apply` needs neither
    DATA nor --label-col/--id-col, and names the data's own label column."""
    import json

    d = scored
    ok(rdia("issues", "--scores", str(d / "s.parquet"), "--fraction", "0.1", "--explain", "0",
            "-o", str(d / "ip.parquet")))
    r = rdia("apply", "--issues", str(d / "ip.parquet"), "-o", str(d / "fp.csv"),
             "--json", str(d / "apply.json"))
    ok(r)
    assert "`good` holds the new labels" in r.stderr
    out = pd.read_csv(d / "fp.csv")
    assert "good" in out.columns and out.relabeled.sum() == 40
    doc = json.loads((d / "apply.json").read_text())
    assert doc["n_relabeled"] == 40 and doc["label_column"] == "good"
    assert rdia("apply", "--issues", str(d / "ip.parquet"), "-q", "-o",
                str(d / "fq.csv")).stderr.strip() == ""


def test_apply_csv_table_without_data_says_what_to_give(scored):
    d = scored
    ok(rdia("issues", "--scores", str(d / "s.parquet"), "--fraction", "0.1", "--explain", "0",
            "-o", str(d / "ic.csv")))
    r = rdia("apply", "--issues", str(d / "ic.csv"), "-o", str(d / "x.csv"))
    assert r.exit_code == 2 and "give DATA" in r.stderr
    r = rdia("apply", str(d / "train.csv"), "--issues", str(d / "ic.csv"), "-o", str(d / "x.csv"))
    assert r.exit_code == 2 and "--label-col" in r.stderr
