"""The `auto` strategy: candidates, the training set it builds, the 1-SE guard, the verdict."""

import numpy as np

from rdia_cli.autoclean import (
    Config,
    _one_standard_error_choice,
    auto_clean,
    build_training_set,
    candidates,
    verdict_lines,
)
from rdia_cli.data.protocol import inject_noise
from rdia_cli.training import predict_proba, train_logreg


def test_candidates_include_the_honest_baselines():
    cs = candidates()
    assert Config("drop", 0.0, 0.0) in cs  # clean set alone
    assert Config("drop", 0.0, 1.0) in cs  # train + clean set, nothing cleaned
    assert len(set(cs)) == len(cs)


def test_build_training_set_weights_and_parts(cancer):
    train, val, _ = cancer
    phi = np.linspace(-1, 1, train.n_samples)
    probs = np.tile([0.3, 0.7], (train.n_samples, 1))
    ds = build_training_set(train, phi, probs, val, Config("hard", 0.2, 0.5))
    assert ds.n_samples == train.n_samples + val.n_samples
    part = ds.extra["part"]
    np.testing.assert_array_equal(ds.weight[part == 0], 0.5)
    np.testing.assert_array_equal(ds.weight[part == 1], 1.0)
    relabeled = ds.extra["relabeled"]
    assert relabeled.sum() == int(np.ceil(0.2 * train.n_samples))
    # hard relabel: the target is the other class
    assert np.all(ds.target[relabeled].argmax(1) != ds.y[relabeled])
    dropped = build_training_set(train, phi, probs, val, Config("drop", 0.2, 1.0))
    assert dropped.n_samples == ds.n_samples - relabeled.sum()
    only = build_training_set(train, phi, probs, val, Config("drop", 0.0, 0.0))
    assert only.n_samples == val.n_samples


def test_one_standard_error_keeps_default_unless_clearly_better():
    configs = [Config("drop", 0.0, 0.0), Config("drop", 0.0, 1.0), Config("drop", 0.1, 1.0)]
    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 0.5, 200)
    wobble = np.where(np.arange(200) % 2 == 0, 0.05, -0.05)  # mean 0, SE 0.0035
    noise_only = np.vstack([base + 0.1, base, base - 0.001 + wobble])
    assert _one_standard_error_choice(configs, noise_only) == 1
    clearly = np.vstack([base + 0.1, base, base - 0.05])
    assert _one_standard_error_choice(configs, clearly) == 2


def test_auto_beats_erm_and_says_why(cancer):
    train, val, test = cancer
    noisy = inject_noise(train, rate=0.4, seed=0)
    erm = train_logreg(noisy)
    result = auto_clean(noisy, val, erm, seed=0)

    def loss(m):
        p = predict_proba(m, test.X)[np.arange(test.n_samples), test.y]
        return -np.log(p).mean()

    assert loss(result.model) < loss(erm)
    v = result.verdict
    assert v["cv_loss_chosen"] <= v["cv_loss_erm"]
    assert len(result.cv) == len(candidates())
    text = " ".join(verdict_lines(v))
    assert "cleaning helped" in text
