"""The label-issues table (``cleaning.issues``) and Φ split over validation rows
(``influence.explain``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rdia_cli.cleaning.issues import cleaning_from_issues, confident_joint, find_issues
from rdia_cli.errors import InputError
from rdia_cli.influence.explain import phi_by_val_row, top_pushers
from rdia_cli.stages import score_model, train_model


def _noisy(ds, rate, seed=0):
    rng = np.random.default_rng(seed)
    y = ds.y.copy()
    flip = rng.random(len(y)) < rate
    y[flip] = (y[flip] + rng.integers(1, ds.n_classes, flip.sum())) % ds.n_classes
    return dataclasses.replace(ds, y=y), flip


@pytest.fixture(scope="module")
def cancer_scored(cancer):
    train, val, _ = cancer
    noisy, flip = _noisy(train, 0.2)
    model = train_model(noisy)
    return noisy, val, model, score_model(model, noisy, val, solver="direct"), flip


@pytest.mark.parametrize("solver", ["direct", "cg"])
def test_why_shares_sum_to_phi(digits, solver):
    train, val = digits
    noisy, _ = _noisy(train.subset(np.arange(400)), 0.2)
    val = val.subset(np.arange(120))
    model = train_model(noisy)
    phi = score_model(model, noisy, val, solver="direct").phi
    rows = np.argsort(-phi)[:6]
    C = phi_by_val_row(model, noisy, val, rows, solver=solver, tol=1e-13)
    assert C.shape == (val.n_samples, 6)
    np.testing.assert_allclose(C.sum(0), phi[rows], rtol=1e-8)
    order, shares = top_pushers(C, C.sum(0), 3)
    assert (shares[:, 0] >= shares[:, 1]).all() and (shares[:, 1] >= shares[:, 2]).all()
    np.testing.assert_allclose((C / C.sum(0)).sum(0), 1.0, rtol=1e-12)


def test_table_columns_and_cleanlab_agreement(cancer_scored):
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    from rdia_cli.cleaning.issues import quality_probs

    train, val, model, scores, _ = cancer_scored
    table = find_issues(train, scores, val=val, model=model, fraction=0.1, explain=5)
    assert list(table.columns[:9]) == [
        "row_id", "is_label_issue", "label_quality", "given_label", "predicted_label",
        "suggested_label", "action", "phi", "delta_val_loss"]
    assert list(table.row_id) == list(train.row_id)  # input order
    probs, _ = quality_probs(train, model, scores)
    mask = find_label_issues(train.y, probs, return_indices_ranked_by=None)
    assert table.is_label_issue.dtype == mask.dtype == np.bool_ and len(mask) == len(table)
    ref = get_label_quality_scores(train.y, probs, method="self_confidence")
    assert table.label_quality.dtype == ref.dtype
    np.testing.assert_allclose(table.label_quality, ref, rtol=1e-12)
    assert table.given_label.dtype == np.asarray(train.y).dtype  # integer classes stay int64
    assert set(table.action) <= {"keep", "relabel"}
    flagged = table[table.is_label_issue]
    assert (flagged.action == "relabel").all() and len(flagged) == int(np.ceil(0.1 * 341))
    n = train.n_samples
    p = scores.probs[np.arange(n), train.y]
    rel = table.action == "relabel"
    np.testing.assert_allclose(table.delta_val_loss[rel], -scores.phi[rel] / (n * (1 - p[rel])))
    assert (table.delta_val_loss[~rel] == 0).all()
    explained = table[table.why != ""]
    assert len(explained) == 5 and explained.phi.min() >= flagged.phi.nlargest(5).min()
    first = explained.iloc[0]
    assert first.why.startswith("val ") and len(first.why_rows.split(";")) == 3
    s = table.attrs["rdia"]
    assert 0.0 <= s["noise_rate"] <= 1.0 and s["n_issues"] == len(flagged)


def test_auto_default_finds_the_noise(cancer_scored):
    from sklearn.metrics import roc_auc_score

    train, val, model, scores, flip = cancer_scored
    table = find_issues(train, scores, val=val, model=model, explain=0, sort="quality", top=10)
    assert table.attrs["rdia"]["strategy"]["strategy"] == "auto"
    assert len(table) == 10 and table.label_quality.is_monotonic_increasing
    full = find_issues(train, scores, val=val, model=model, explain=0)
    assert roc_auc_score(flip, -full.label_quality) > 0.85


def test_rule_needed_without_val(cancer_scored):
    train, _, _, scores, _ = cancer_scored
    with pytest.raises(InputError, match="val"):
        find_issues(train, scores)
    with pytest.raises(InputError, match="strategy"):
        find_issues(train, scores, strategy="uids", fraction=0.1)


def test_confident_joint_recovers_flip_rate():
    rng = np.random.default_rng(0)
    true = rng.integers(0, 2, 4000)
    probs = np.where(true[:, None] == np.arange(2), 0.9, 0.1)
    given = true.copy()
    flip = rng.random(4000) < 0.2
    given[flip] = 1 - given[flip]
    joint = confident_joint(given, probs)
    assert abs(1 - np.trace(joint) - 0.2) < 0.03


def test_reviewed_table_errors(cancer_scored):
    train, _, _, scores, _ = cancer_scored
    table = find_issues(train, scores, fraction=0.05, explain=0)
    cleaning, phi = cleaning_from_issues(train, table)
    assert cleaning.n_relabeled == (table.action == "relabel").sum()
    bad = table.copy()
    bad.loc[0, "row_id"] = 10**9
    with pytest.raises(InputError, match="not a row"):
        cleaning_from_issues(train, bad)
    dup = table.iloc[[0, 0]]
    with pytest.raises(InputError, match="twice"):
        cleaning_from_issues(train, dup)
    cls = table.copy()
    cls.loc[0, "action"], cls.loc[0, "suggested_label"] = "relabel", 7
    with pytest.raises(InputError, match="not a class"):
        cleaning_from_issues(train, cls)
    act = table.copy()
    act.loc[0, "action"] = "burn"
    with pytest.raises(InputError, match="action"):
        cleaning_from_issues(train, act)
