"""Model kinds as objects (rdia_cli.models.kinds) and the typed network settings."""

from __future__ import annotations

import numpy as np
import pytest

from rdia_cli.errors import InputError
from rdia_cli.influence.scoring import SCORERS
from rdia_cli.models.kinds import KINDS, LogReg, ModelKind, Net, kind_of
from rdia_cli.models.nets import noisy as nt
from rdia_cli.models.nets.training import NetSettings, settings_from_options

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_every_kind_has_the_protocol_and_a_scorer():
    assert list(KINDS) == ["logreg", "mlp", "lenet", "cnn"]
    for name, kind in KINDS.items():
        assert isinstance(kind, ModelKind) and kind.name == name
        assert type(kind) in SCORERS
    assert kind_of("logreg").exact_influence and kind_of("logreg").supports_auto
    assert kind_of("logreg").default_strategy == "auto" and kind_of("logreg").shardable
    assert all(not k.exact_influence and not k.shardable and k.default_strategy == "rdia"
               for k in KINDS.values() if isinstance(k, Net))
    with pytest.raises(InputError, match="must be one of logreg, mlp, lenet, cnn"):
        kind_of("svm")


def test_kind_fits_predicts_refits_and_round_trips(cancer, tmp_path):
    train, val, _ = cancer
    kind = kind_of("logreg")
    model = kind.fit(train)
    assert kind_of(model) is kind and isinstance(kind, LogReg)
    P = kind.predict_proba(model, val)
    np.testing.assert_allclose(P, kind.predict_proba(model, kind.inputs(val)))
    np.testing.assert_allclose(P.sum(1), 1.0)
    kind.save(model, tmp_path / "m.pt")
    np.testing.assert_allclose(kind.predict_proba(kind.load(tmp_path / "m.pt"), val), P)
    with pytest.raises(InputError, match="not a `mlp`"):
        kind_of("mlp").load(tmp_path / "m.pt")
    again = kind.refit(train, model)  # warm start at the optimum: the same model
    np.testing.assert_allclose(kind.predict_proba(again, val), P, atol=1e-6)


def test_net_kind_refit_keeps_the_settings_and_fine_tunes(digits):
    train, _ = digits
    kind = kind_of("mlp")
    opts = {"epochs": 1, "batch_size": 64, "lr": 0.01, "seed": 2, "arch_args": {"hidden": [8]},
            "self_teaching": {"noise_rate": 0.2}}
    model = kind.fit(train, net_options=opts)
    assert model.meta["training"]["method"] == "self-teaching"
    warm = kind.refit(train, model)
    assert warm.meta["training"]["method"] == "erm"  # retrain is plain ERM
    assert warm.meta["training"]["lr"] == pytest.approx(0.001)
    assert warm.arch_args == model.arch_args and warm.meta["training"]["seed"] == 2


def test_settings_from_the_dict_form():
    settings, method = settings_from_options(
        {"epochs": 3, "lr": 0.1, "rdia_ls": {"noise_rate": 0.4, "gamma": 0.3, "tk_steps": 7}},
        n_classes=10)
    assert settings == NetSettings(epochs=3, lr=0.1)
    assert isinstance(method, nt.RdiaLs) and not method.tunes_gamma
    assert method.settings == nt.RdiaLsSettings(noise_rate=0.4, tk=10, tk_steps=7, gamma=0.3)
    # the model file's record: same keys in the same order as before the settings were typed
    assert list(method.record()) == ["noise_rate", "tk", "gamma", "tk_steps", "variant"]
    assert method.legacy() == ({"noise_rate": 0.4, "tk": 10, "gamma": 0.3}, None)
    method.start_step(0, 5)
    assert method.rho == pytest.approx(nt.rho_at(5, 0.4, 7))
    _, erm = settings_from_options({}, n_classes=2)
    assert isinstance(erm, nt.Method) and erm.name == "erm" and erm.record() is None
    _, auto = settings_from_options({"rdia_ls": {"noise_rate": 0.1, "gamma": "auto"}},
                                    n_classes=2)
    assert auto.tunes_gamma and auto.settings.gamma_grid == nt.GAMMA_GRID
    assert auto.with_gamma(0.2).record()["gamma"] == 0.2


@pytest.mark.parametrize("opts, msg", [
    ({"epochs": -1}, "epochs ≥ 0"),
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"momentum": 0.9}, "Unknown network training settings"),
    ({"sigua": {"noise_rate": 0.2}, "co_teaching": {"noise_rate": 0.2}}, "one noisy-label"),
    ({"sigua": {"noise_rate": 0.2, "ascent": 2}}, "sigua.ascent"),
    ({"f_correction": {"percentile": 0}}, "percentile"),
    ({"s_model": {"init": "zeros"}}, "s_model.init"),
])
def test_settings_are_validated(opts, msg):
    with pytest.raises(InputError, match=msg):
        settings_from_options(opts, n_classes=3)
