"""R (paper Eq. 12) properties, selection edge cases, strategies."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rdia_cli.cleaning.selection import select_harmful
from rdia_cli.cleaning.strategies import clean
from rdia_cli.cleaning.targets import relabel_targets
from rdia_cli.errors import InputError


def _random_probs(seed, n, k):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=rng.uniform(0.1, 6), size=(n, k))
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True), rng.integers(0, k, n)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 12))
def test_eq12_properties(seed, k):
    p, m = _random_probs(seed, 50, k)
    t = relabel_targets(p, m, kind="paper")
    rows = np.arange(50)
    assert np.all(t >= 0) and np.all(t <= 1.0 / (k - 1) + 1e-12)
    assert np.all(t[rows, m] == 0)
    ce = -(t * np.log(p)).sum(1)
    masked = p.copy()
    masked[rows, m] = 0.0
    others = masked.sum(1)  # 1 - p_m, without the cancellation when p_m ≈ 1
    np.testing.assert_allclose(ce, -np.log(others), rtol=1e-6, atol=1e-12)  # Lemma 2


def test_binary_is_the_flip():
    p, m = _random_probs(3, 100, 2)
    for kind in ("paper", "gradient", "hard"):
        t = relabel_targets(p, m, kind=kind)
        np.testing.assert_allclose(t, np.eye(2)[1 - m])


def test_gradient_target_matches_gradient_of_lemma2_loss():
    """∇_z CE(y'', softmax z) = ∇_z [-log(1 - p_m)] at the same logits."""
    p, m = _random_probs(4, 30, 5)
    t = relabel_targets(p, m, kind="gradient")
    rows = np.arange(30)
    grad_ce = t.sum(1, keepdims=True) * p - t
    pm = p[rows, m][:, None]
    onehot = np.eye(5)[m]
    grad_lemma = pm / (1 - pm) * (onehot - p)  # d/dz of -log(1 - p_m)
    np.testing.assert_allclose(grad_ce, grad_lemma, atol=1e-10)


def test_hard_target_is_most_likely_other_class():
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    t = relabel_targets(p, np.array([0, 2]), kind="hard")
    np.testing.assert_array_equal(t, [[0, 1, 0], [1, 0, 0]])


def test_select_alpha_and_fraction():
    phi = np.array([-1.0, 0.5, 2.0, 0.0, 1.0])
    np.testing.assert_array_equal(select_harmful(phi, alpha=0.0), [0, 1, 1, 0, 1])
    np.testing.assert_array_equal(select_harmful(phi, alpha=1.5), [0, 0, 1, 0, 0])
    assert not select_harmful(phi, alpha=10).any()  # nothing selected
    assert select_harmful(phi, alpha=-5).all()  # everything selected
    np.testing.assert_array_equal(select_harmful(phi, fraction=0.4), [0, 0, 1, 0, 1])
    assert select_harmful(phi, fraction=1.0).sum() == 3  # never rows with Φ ≤ 0
    assert not select_harmful(phi, fraction=0.0).any()
    with pytest.raises(InputError):
        select_harmful(phi, fraction=1.5)
    with pytest.raises(InputError):
        select_harmful(phi)


@pytest.mark.parametrize("strategy", ["rdia", "drop", "uids", "optlr", "random"])
@pytest.mark.parametrize("alpha", [100.0, -100.0])
def test_strategies_edge_cases(strategy, alpha):
    p, m = _random_probs(5, 40, 3)
    phi = np.random.default_rng(0).normal(size=40)
    c = clean(phi, p, m, strategy=strategy, alpha=alpha, grad_norm=np.ones(40))
    assert c.target.shape == (40, 3)
    if alpha > 50:  # nothing harmful: nothing changes
        assert c.n_relabeled == 0 and c.n_removed == 0
        assert c.weight is None or np.all(c.weight == 1)
    elif strategy in ("rdia", "random"):
        assert c.n_relabeled == 40
    elif strategy == "drop":
        assert c.n_removed == 40
    elif strategy == "optlr":
        assert np.all(c.weight <= 1) and np.all(c.weight > 0)


def test_random_changes_labels_and_is_seeded():
    p, m = _random_probs(6, 100, 4)
    phi = np.linspace(-1, 1, 100)
    a = clean(phi, p, m, strategy="random", alpha=0.5, seed=1)
    b = clean(phi, p, m, strategy="random", alpha=0.5, seed=1)
    np.testing.assert_array_equal(a.target, b.target)
    assert a.n_relabeled == int((phi > 0.5).sum())
    assert np.all(a.target[a.relabeled].argmax(1) != m[a.relabeled])
