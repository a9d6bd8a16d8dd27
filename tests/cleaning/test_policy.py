"""``AutoPolicy``: validation, JSON round trip, digest, a custom choice rule, and the default
policy reproducing ``auto_clean``'s choice."""

import json
from dataclasses import FrozenInstanceError, fields, replace

import numpy as np
import pytest

from rdia_cli.cleaning.auto import (
    CHOICE_RULES,
    DEFAULT_POLICY,
    AutoPolicy,
    Config,
    auto_clean,
    candidates,
    parsimonious_choice,
)
from rdia_cli.data.protocol import inject_noise
from rdia_cli.errors import InputError
from rdia_cli.models.logreg.training import train_logreg


@pytest.mark.parametrize("name, value", [
    ("fractions", ()), ("fractions", (0.1, 1.5)), ("weights", (-1.0,)), ("actions", ("soft",)),
    ("rankers", ("gradient",)), ("blend_shares", (0.5, 0.0)), ("folds", 1), ("folds", 2.5),
    ("oof_folds", True), ("union_folds", 0), ("noise_z", 0.0), ("noise_z_low", float("nan")),
    ("noise_p_labels", 1.0), ("noise_p_pairs", 0.0), ("guard_se", -1.0), ("tie_se", -0.5),
    ("blend_se", float("nan")), ("clean_only_se", -0.1), ("reg_step", 1.0),
    ("reg_max_steps", -1), ("reg_se", -1.0), ("reg_down_se", -2.0), ("race_first_folds", 0.0),
    ("race_keep", 1.5), ("race_keep_min", 0), ("race_drop_se", 0.0), ("cv_tol", 0.0),
    ("union_tol", -1e-6),
    ("fit_tol", -1e-8),
    ("max_iter", 0), ("clean_model_tol", float("inf")), ("curve_share", 1.0),
    ("curve_repeats", -1), ("curve_min_rows", 1), ("small_clean_warning", -5),
    ("clean_only_close", -1e-3), ("choose", "guarded_choice"),
])
def test_a_bad_value_is_an_input_error_naming_the_field(name, value):
    with pytest.raises(InputError, match=f"`{name}`"):
        replace(DEFAULT_POLICY, **{name: value})


def test_the_policy_is_frozen_and_holds_the_default_grid():
    with pytest.raises(FrozenInstanceError):
        DEFAULT_POLICY.guard_se = 1.0
    assert DEFAULT_POLICY == AutoPolicy()
    assert DEFAULT_POLICY.choose is parsimonious_choice
    assert len(candidates()) == 1 + 1 + 8 * 2 * 3  # clean alone, train + clean, the cleanings
    assert candidates(replace(DEFAULT_POLICY, fractions=(0.1,), rankers=("oof",))) == [
        Config("drop", 0.0, 0.0), Config("drop", 0.0, 1.0), Config("drop", 0.1, 1.0, "oof"),
        Config("hard", 0.1, 1.0, "oof")]
    assert replace(DEFAULT_POLICY, fractions=[0.1, 0.2]).fractions == (0.1, 0.2)  # a tuple
    assert DEFAULT_POLICY.folds_for(99) == 10 and DEFAULT_POLICY.folds_for(100) == 5
    assert [DEFAULT_POLICY.race_kept(n) for n in (5, 36, 50, 99)] == [5, 12, 16, 33]


def test_json_round_trip_names_the_choice_rule():
    data = DEFAULT_POLICY.to_json()
    assert data["choose"] == "parsimonious_choice"
    assert set(data) == {f.name for f in fields(AutoPolicy)}
    assert AutoPolicy.from_json(json.loads(json.dumps(data))) == DEFAULT_POLICY
    other = replace(DEFAULT_POLICY, guard_se=2.0, reg_down_se=None,
                    choose=CHOICE_RULES["lowest_mean"], blend_shares=(0.0, 0.5, 1.0))
    assert AutoPolicy.from_json(json.loads(json.dumps(other.to_json()))) == other
    assert AutoPolicy.from_json({"noise_z": 2.0}).noise_z == 2.0  # the rest: defaults
    with pytest.raises(InputError, match="`choose`.*not a registered"):
        AutoPolicy.from_json(dict(data, choose="my_rule"))
    with pytest.raises(InputError, match="no field `guard`"):
        AutoPolicy.from_json({"guard": 2.0})


def test_digest_is_stable_and_follows_every_field():
    digest = DEFAULT_POLICY.digest()
    again = AutoPolicy.from_json(DEFAULT_POLICY.to_json())
    assert digest == AutoPolicy().digest() == again.digest()
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert digest == "a7ee4395caac"  # a change of the default policy changes this
    changed = {replace(DEFAULT_POLICY, guard_se=2.5).digest(),
               replace(DEFAULT_POLICY, fractions=(0.1, 0.2)).digest(),
               replace(DEFAULT_POLICY, choose=CHOICE_RULES["lowest_mean"]).digest(),
               replace(DEFAULT_POLICY, reg_down_se=None).digest()}
    assert len(changed) == 4 and digest not in changed


@pytest.fixture(scope="module")
def noisy_cancer(cancer):
    train, val, test = cancer
    train = inject_noise(train, rate=0.3, seed=1)
    return train, val, train_logreg(train)


def test_a_custom_choice_rule_is_honoured_and_recorded(noisy_cancer):
    train, val, erm = noisy_cancer
    seen = []

    def worst(configs, row_loss, policy):
        seen.append((list(configs), row_loss.shape, policy))
        return int(np.argmax(row_loss.mean(1)))

    grid = dict(fractions=(0.1, 0.3), rankers=("oof",), actions=("drop",))
    # no share of "clean set alone": the final model is the pick itself
    policy = replace(DEFAULT_POLICY, choose=worst, blend_shares=(0.0,), clean_only_se=1e9, **grid)
    result = auto_clean(train, val, erm, policy=policy)
    (configs, shape, given), = seen
    assert given is policy and shape[0] == len(configs) and all(c.weight > 0 for c in configs)
    finished = {(c["action"], c["fraction"], c["weight"]): c["cv_loss"]
                for c in result.cv if c["all_folds"] and c["weight"] > 0 and c["reg"] == 1}
    worst_key = max(finished, key=finished.get)
    assert (result.config.action, result.config.fraction, result.config.weight) == worst_key
    assert result.verdict["policy"]["choose"].endswith("worst")
    assert result.verdict["policy_digest"] == policy.digest() != DEFAULT_POLICY.digest()
    assert result.verdict.fields.policy is policy


def test_the_verdict_records_the_policy(noisy_cancer):
    train, val, erm = noisy_cancer
    policy = replace(DEFAULT_POLICY, fractions=(0.2,), rankers=("clean",))
    result = auto_clean(train, val, erm, policy=policy)
    record = json.loads(json.dumps(dict(result.verdict)))
    assert AutoPolicy.from_json(record["policy"]) == policy
    assert record["policy_digest"] == policy.digest()
    assert list(record)[-2:] == ["policy", "policy_digest"]
    assert {c["fraction"] for c in result.cv} <= {0.0, 0.2}


def test_the_default_policy_is_the_default(noisy_cancer):
    train, val, erm = noisy_cancer
    grid = [Config("drop", 0.0, 0.0), Config("drop", 0.0, 1.0), Config("hard", 0.2, 1.0, "oof"),
            Config("drop", 0.2, 1.0, "clean")]
    a = auto_clean(train, val, erm, configs=grid)
    b = auto_clean(train, val, erm, configs=grid, policy=AutoPolicy.from_json(
        DEFAULT_POLICY.to_json()))
    assert a.config == b.config and a.cv == b.cv and dict(a.verdict) == dict(b.verdict)
    for k in a.model.state:
        np.testing.assert_array_equal(np.asarray(a.model.state[k]), np.asarray(b.model.state[k]))
