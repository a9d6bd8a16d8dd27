"""Noisy-label training methods (rdia_cli.models.nets.noisy) and their `rdia train` options.

Known-answer tests: each method's piece on a case whose result is fixed by hand or by theory.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from typer.testing import CliRunner

from rdia_cli.cli import app
from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError
from rdia_cli.models.nets import noisy as nt
from rdia_cli.models.nets.training import predict_proba_net, train_net

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()

LOGITS = [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0], [5.0, -1.0, 0.0]]
LABELS = [0, 1, 0, 2, 1]


def _ce_rows(z, y):
    return [-(zi[m] - math.log(sum(math.exp(v) for v in zi))) for zi, m in zip(z, y, strict=True)]


# --- Co-teaching --------------------------------------------------------------------------------
def test_co_teaching_exchange_picks_the_peers_small_loss_rows():
    ce1 = torch.tensor([0.1, 0.9, 0.3, 0.8, 0.2])   # net 1 finds rows 0, 4, 2 smallest
    ce2 = torch.tensor([0.7, 0.1, 0.9, 0.2, 0.3])   # net 2 finds rows 1, 3, 4 smallest
    for1, for2 = nt.co_teaching_split(ce1, ce2, rho=0.6)
    assert sorted(for1.tolist()) == [1, 3, 4]   # net 1 learns from net 2's choice
    assert sorted(for2.tolist()) == [0, 2, 4]   # and vice versa


def test_co_teaching_loss_by_hand():
    z1 = torch.tensor(LOGITS, dtype=torch.float64)
    z2 = torch.tensor(LOGITS[::-1], dtype=torch.float64)
    y = torch.tensor(LABELS)
    ce1, ce2 = _ce_rows(LOGITS, LABELS), _ce_rows(LOGITS[::-1], LABELS)
    k = 3  # ceil(0.6 * 5)
    by2 = sorted(range(5), key=lambda i: ce2[i])[:k]
    by1 = sorted(range(5), key=lambda i: ce1[i])[:k]
    l1, l2 = nt.co_teaching_loss(z1, z2, y, rho=0.6)
    assert float(l1) == pytest.approx(sum(ce1[i] for i in by2) / k, rel=1e-12)
    assert float(l2) == pytest.approx(sum(ce2[i] for i in by1) / k, rel=1e-12)


# --- SIGUA --------------------------------------------------------------------------------------
def test_sigua_large_loss_term_has_the_opposite_gradient_sign():
    z = torch.tensor(LOGITS, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(LABELS)
    nt.sigua_loss(z, y, rho=0.6, ascent=0.1).backward()
    ce = _ce_rows(LOGITS, LABELS)
    order = sorted(range(5), key=lambda i: ce[i])
    good, bad = order[:3], order[3:]
    # per-row CE gradient w.r.t. the logits: softmax - onehot
    p = torch.softmax(z.detach(), 1)
    g_ce = p - torch.nn.functional.one_hot(y, 3).double()
    assert torch.allclose(z.grad[good], g_ce[good] / 3)            # descent on D+
    assert torch.allclose(z.grad[bad], -0.1 * g_ce[bad] / 2)        # ascent on D-
    assert (torch.sign(z.grad[bad]) == -torch.sign(g_ce[bad])).all()


def test_sigua_without_ascent_is_self_teaching():
    z, y = torch.tensor(LOGITS, dtype=torch.float64), torch.tensor(LABELS)
    assert float(nt.sigua_loss(z, y, rho=0.6, ascent=0.0)) == pytest.approx(
        float(nt.self_teaching_loss(z, y, rho=0.6)), rel=1e-12)


# --- F-correction -------------------------------------------------------------------------------
def _blobs(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.8]])
    return centers[y] + rng.standard_normal((n, 2)), y


T_PAIR = np.array([[0.6, 0.4, 0.0], [0.0, 0.6, 0.4], [0.4, 0.0, 0.6]])


def _fit_linear(X, y, loss_fn):
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    W = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=100, tolerance_grad=1e-10,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = loss_fn(Xt @ W + b, yt)
        loss.backward()
        return loss

    opt.step(closure)
    return lambda Xn: torch.softmax(torch.as_tensor(Xn) @ W + b, 1).detach().numpy()


def test_f_correction_with_true_T_recovers_the_clean_optimum():
    X, y = _blobs(3000, 0)
    rng = np.random.default_rng(1)
    noisy = (y + (rng.random(len(y)) < 0.4)) % 3  # class i -> i + 1 w.p. 0.4: T_PAIR
    Xte, yte = _blobs(2000, 2)
    ce = torch.nn.functional.cross_entropy
    T = torch.as_tensor(T_PAIR)
    p_clean = _fit_linear(X, y, ce)(Xte)
    p_plain = _fit_linear(X, noisy, ce)(Xte)
    p_corr = _fit_linear(X, noisy, lambda z, t: nt.forward_corrected_loss(z, t, T))(Xte)
    gap_corr = np.abs(p_corr - p_clean).mean()
    gap_plain = np.abs(p_plain - p_clean).mean()
    assert gap_corr < 0.03 and gap_plain > 4 * gap_corr

    def nll(p):
        return -np.log(p[np.arange(len(yte)), yte]).mean()

    assert nll(p_corr) < nll(p_clean) + 0.05 < nll(p_plain)
    assert (p_corr.argmax(1) == yte).mean() > (p_plain.argmax(1) == yte).mean() - 0.005


def test_forward_correction_with_identity_is_cross_entropy():
    z, y = torch.tensor(LOGITS, dtype=torch.float64), torch.tensor(LABELS)
    got = nt.forward_corrected_loss(z, y, torch.eye(3, dtype=torch.float64))
    assert float(got) == pytest.approx(np.mean(_ce_rows(LOGITS, LABELS)), rel=1e-9)


def test_estimate_transition_finds_the_anchor_rows():
    rng = np.random.default_rng(0)
    clean = rng.dirichlet(np.ones(3) * 0.5, 400)
    clean[:3] = np.eye(3)      # one perfect anchor per class
    noisy = clean @ T_PAIR     # p(given | x) of a model fitted to the noisy labels
    assert np.allclose(nt.estimate_transition(noisy, percentile=100), T_PAIR)
    # with Patrini's 97th-percentile filter: a near-anchor row is picked, still close to T
    clean[3:60] = 0.97 * np.eye(3)[rng.integers(0, 3, 57)] + 0.01
    est = nt.estimate_transition(clean @ T_PAIR)
    assert np.abs(est - T_PAIR).max() < 0.05
    with pytest.raises(InputError):
        nt.estimate_transition(noisy, percentile=0)


def test_check_transition_rules():
    assert nt.check_transition(T_PAIR, 3).shape == (3, 3)
    for bad, msg in ((np.eye(2), "shape"), (T_PAIR * 2, "sums to"), (-np.eye(3), "non-negative")):
        with pytest.raises(InputError, match=msg):
            nt.check_transition(bad, 3)


# --- S-model ------------------------------------------------------------------------------------
def test_s_model_with_identity_channel_is_plain_softmax():
    z, y = torch.tensor(LOGITS, dtype=torch.float64), torch.tensor(LABELS)
    W = torch.as_tensor(nt.channel_init(np.eye(3)))
    assert torch.allclose(torch.softmax(W, 1), torch.eye(3, dtype=torch.float64), atol=1e-11)
    assert float(nt.s_model_loss(z, y, W)) == pytest.approx(np.mean(_ce_rows(LOGITS, LABELS)),
                                                            rel=1e-9)
    # with the channel at T it is F-correction with T
    Wt = torch.as_tensor(nt.channel_init(T_PAIR))
    assert float(nt.s_model_loss(z, y, Wt)) == pytest.approx(
        float(nt.forward_corrected_loss(z, y, torch.as_tensor(T_PAIR))), rel=1e-9)


def test_confusion_init_is_goldbergers_estimate():
    probs = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    labels = np.array([0, 1, 1, 0])
    theta = nt.confusion_init(probs, labels, 2)
    # class 0 mass 2.5: 1.5 went to label 0, 1.0 to label 1; class 1 mass 1.5: 0.5 / 1.0
    assert np.allclose(theta, [[0.6, 0.4], [1 / 3, 2 / 3]])


# --- RDIA-LS, the authors' code -----------------------------------------------------------------
def test_reference_counts():
    assert nt.reference_counts(128, 0.6, 0.4) == (76, 25)   # int(76.8), int(25.6)
    assert nt.reference_counts(10, 0.0, 0.4) == (10, 2)     # int(0) -> every row is clean
    assert nt.reference_counts(10, 0.9, 0.1) == (9, 0)      # no drop -> empty band


def test_rdia_ls_reference_pieces_on_a_hand_made_batch():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((10, 3)) * 2
    y = rng.integers(0, 3, 10)
    gamma, rho, tau = 0.3, 0.6, 0.4
    ce = _ce_rows(z.tolist(), y.tolist())
    order = sorted(range(10), key=lambda i: ce[i])
    clean, band = order[:6], order[6:8]  # int(0.6·10) clean, int(0.2·10) dropped
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    ce_on_p = [-(p[i, y[i]] - math.log(np.exp(p[i]).sum())) for i in range(10)]
    relabeled = [-math.log(1 - p[i, y[i]]) for i in range(10)]
    want = (gamma * np.mean([ce_on_p[i] for i in clean])
            + (1 - gamma) * np.mean([relabeled[i] for i in band]) / 10)
    got = nt.rdia_ls_reference_loss(torch.as_tensor(z), torch.as_tensor(y), rho=rho,
                                    noise_rate=tau, gamma=gamma)
    assert float(got) == pytest.approx(want, rel=1e-12)
    # the dropped rows (the 2 largest losses) get no gradient
    zt = torch.as_tensor(z).requires_grad_()
    nt.rdia_ls_reference_loss(zt, torch.as_tensor(y), rho=rho, noise_rate=tau,
                              gamma=gamma).backward()
    assert (zt.grad[order[8:]] == 0).all() and (zt.grad[order[:8]] != 0).any(1).all()
    warm = nt.reference_warmup_loss(torch.as_tensor(z), torch.as_tensor(y), rho=rho)
    assert float(warm) == pytest.approx(np.mean([ce[i] for i in clean]), rel=1e-12)


# --- γ tuning and T_k in steps ------------------------------------------------------------------
def test_tune_gamma_picks_the_best_held_out_score():
    calls = []

    def fit(g):
        calls.append(g)
        return {"gamma": g}

    best, table = nt.tune_gamma(fit, lambda m: -(m["gamma"] - 0.35) ** 2, nt.GAMMA_GRID)
    assert best == pytest.approx(0.35) and len(table) == 19 and len(calls) == 19
    best, _ = nt.tune_gamma(fit, lambda m: 1.0, [0.5, 0.1])  # ties: the smaller γ
    assert best == 0.1
    with pytest.raises(InputError):
        nt.tune_gamma(fit, lambda m: 1.0, [1.5])


def _digits(n, tau=0.3, seed=0, offset=0):
    d = load_digits()
    X = (d.data[offset:offset + n] / 16.0).astype(np.float32)
    y = d.target[offset:offset + n].copy()
    rng = np.random.default_rng(seed)
    flip = rng.random(n) < tau
    y[flip] = (y[flip] + rng.integers(1, 10, flip.sum())) % 10
    return Dataset(X=X, y=y, classes=list(range(10)), row_id=np.arange(n))


KW = dict(arch="mlp", arch_args={"hidden": [32]}, batch_size=20, lr=3e-3, seed=0)


def test_tk_steps_gives_the_same_rho_schedule_on_a_subset_and_the_full_set(monkeypatch):
    seen: list[list] = []
    real = nt.rho_at
    monkeypatch.setattr(nt, "rho_at", lambda t, tau, tk: seen[-1].append(real(t, tau, tk))
                        or seen[-1][-1])
    full, sub = _digits(400), _digits(200)
    for ds, epochs in ((full, 3), (sub, 6)):  # 60 steps either way (20 and 10 per epoch)
        for sel in ({"noise_rate": 0.4, "tk_steps": 40}, {"noise_rate": 0.4, "tk": 2}):
            seen.append([])
            train_net(ds, epochs=epochs, self_teaching=sel, **KW)
    full_steps, full_epochs, sub_steps, sub_epochs = seen
    assert len(full_steps) == len(sub_steps) == 60
    assert full_steps == pytest.approx(sub_steps)          # same ρ at every step
    assert full_steps[:3] == pytest.approx([0.99, 0.98, 0.97]) and full_steps[-1] == 0.6
    assert full_epochs != pytest.approx(sub_epochs)        # T_k in epochs: not the same


def test_gamma_auto_trains_once_per_candidate_and_keeps_the_best():
    ds = _digits(300)
    m = train_net(ds, epochs=4, rdia_ls={"noise_rate": 0.3, "gamma": "auto", "tk": 2,
                                         "gamma_grid": [0.05, 0.5, 0.95]}, **KW)
    s = m.meta["training"]["method_settings"]
    scores = {r["gamma"]: r["score"] for r in s["gamma_scores"]}
    assert set(scores) == {0.05, 0.5, 0.95}
    assert s["gamma_chosen"] == max(scores, key=lambda g: (scores[g], -g))
    assert m.meta["training"]["rdia_ls"]["gamma"] == s["gamma_chosen"]
    with pytest.raises(InputError, match="gamma_grid"):
        train_net(ds, epochs=1, rdia_ls={"noise_rate": 0.3, "gamma": 0.5, "gamma_grid": [0.1]},
                  **KW)


# --- train_net with every method ----------------------------------------------------------------
@pytest.mark.parametrize("setting", [
    {"co_teaching": {"noise_rate": 0.3, "tk": 2}},
    {"sigua": {"noise_rate": 0.3, "tk": 2, "ascent": 0.05}},
    {"f_correction": {"estimate_epochs": 4}},
    {"f_correction": {"transition": (0.7 * np.eye(10) + 0.3 / 9 * (1 - np.eye(10))).tolist()}},
    {"s_model": {"init": "identity"}},
    {"s_model": {"estimate_epochs": 4}},
    # warm-up (small-loss rows only) until T_k; CE on softmax outputs learns slowly after it
    {"rdia_ls": {"noise_rate": 0.3, "gamma": 0.5, "tk": 6, "variant": "reference"}},
])
def test_train_net_with_each_method(setting):
    tr, te = _digits(600), _digits(400, tau=0.0, offset=1000)
    m = train_net(tr, epochs=8, monitor=te, **KW, **setting)
    name = next(iter(setting))
    tr_meta = m.meta["training"]
    assert tr_meta["method"] == name.replace("_", "-")
    assert len(m.meta["metrics"]["monitor_accuracy"]) == 8
    acc = (predict_proba_net(m, te.X).argmax(1) == te.y).mean()
    assert acc > 0.6  # chance is 0.1
    assert m.meta["metrics"]["monitor_accuracy"][-1] == pytest.approx(acc)
    s = tr_meta["method_settings"]
    if name == "co_teaching":
        assert "first" in s["saved_network"]
    if name == "s_model":
        assert np.allclose(np.sum(s["channel"], 1), 1)
    if name in ("f_correction", "s_model") and "estimated" in s:
        assert np.array(s["estimated"]).shape == (10, 10)


def test_train_net_rejects_bad_method_settings():
    ds = _digits(100)
    bad = [
        ({"rdia_ls": {"noise_rate": 0.3, "variant": "other"}}, "variant"),
        ({"rdia_ls": {"noise_rate": 0.3, "gamma": "best"}}, "gamma"),
        ({"sigua": {"noise_rate": 0.3, "ascent": 2.0}}, "ascent"),
        ({"co_teaching": {"noise_rate": 0.3, "tk_steps": 0}}, "tk_steps"),
        ({"f_correction": {"transition": np.eye(3).tolist()}}, "shape"),
        ({"s_model": {"init": "random"}}, "init"),
        ({"sigua": {"noise_rate": 0.3}, "co_teaching": {"noise_rate": 0.3}}, "one"),
        ({"co_teaching": {"rate": 0.3}}, "unknown"),
    ]
    for setting, msg in bad:
        with pytest.raises(InputError, match=msg):
            train_net(ds, epochs=1, **KW, **setting)
    soft = Dataset(X=ds.X, y=ds.y, classes=ds.classes, row_id=ds.row_id,
                   weight=np.ones(ds.n_samples))
    with pytest.raises(InputError, match="hard labels"):
        train_net(soft, epochs=1, sigua={"noise_rate": 0.3}, **KW)


# --- the CLI ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def csvs(tmp_path_factory):
    d = tmp_path_factory.mktemp("noisy_cli")
    rng = np.random.default_rng(0)
    for name, n, tau in (("train", 240, 0.3), ("test", 120, 0.0)):
        y = rng.integers(0, 3, n)
        X = rng.standard_normal((n, 6)) + 2.0 * np.eye(3, 6)[y]
        flip = rng.random(n) < tau
        y[flip] = (y[flip] + 1) % 3
        rows = ["label," + ",".join(f"f{j}" for j in range(6))]
        rows += [f"{c}," + ",".join(f"{v:.5f}" for v in x) for c, x in zip(y, X, strict=True)]
        (d / f"{name}.csv").write_text("\n".join(rows) + "\n")
    np.savetxt(d / "T.csv", [[0.7, 0.3, 0.0], [0.0, 0.7, 0.3], [0.3, 0.0, 0.7]], delimiter=",")
    return d


def _train(csvs, tmp_path, *opts):
    out = tmp_path / "m.pt"
    r = runner.invoke(app, ["train", str(csvs / "train.csv"), "--model-type", "mlp",
                            "--hidden", "16", "--device", "cpu", "-o", str(out),
                            *[str(o) for o in opts]])
    return r, out


def _meta(path):
    return torch.load(path, weights_only=True)["meta"]["training"]


@pytest.mark.parametrize("opts, method, check", [
    (["--method", "co-teaching", "--noise-rate", "0.3", "--epochs", "3"], "co-teaching",
     lambda s: "first" in s["saved_network"]),
    (["--method", "sigua", "--noise-rate", "0.3", "--sigua-ascent", "0.05", "--epochs", "3"],
     "sigua", lambda s: s["ascent"] == 0.05),
    (["--method", "f-correction", "--transition", "T.csv", "--epochs", "3"], "f-correction",
     lambda s: np.allclose(s["transition"][0], [0.7, 0.3, 0.0])),
    (["--method", "f-correction", "--estimate-epochs", "2", "--epochs", "3"], "f-correction",
     lambda s: s["estimate_epochs"] == 2 and len(s["estimated"]) == 3),
    (["--method", "s-model", "--epochs", "3"], "s-model", lambda s: len(s["channel"]) == 3),
    (["--rdia-ls", "--rdia-ls-variant", "reference", "--noise-rate", "0.3", "--epochs", "3"],
     "rdia-ls", lambda s: s["variant"] == "reference"),
    (["--method", "rdia-ls", "--gamma", "auto", "--noise-rate", "0.3", "--epochs", "1"],
     "rdia-ls", lambda s: len(s["gamma_scores"]) == 19 and s["gamma_chosen"] in nt.GAMMA_GRID),
    (["--self-teaching", "--noise-rate", "0.3", "--tk-steps", "5", "--epochs", "2"],
     "self-teaching", lambda s: s["tk_steps"] == 5),
    (["--schedule", "paper", "--batch-size", "240"], "erm", lambda s: s is None),
])
def test_cli_train_new_options(csvs, tmp_path, opts, method, check):
    opts = [str(csvs / o) if o == "T.csv" else o for o in opts]
    r, out = _train(csvs, tmp_path, *opts)
    assert r.exit_code == 0, (r.stdout, r.stderr)
    meta = _meta(out)
    assert meta["method"] == method and check(meta["method_settings"])
    if "--schedule" in opts:
        assert meta["epochs"] == 200 and meta["schedule"] == "paper"
    ev = runner.invoke(app, ["evaluate", str(out), "--data", str(csvs / "test.csv")])
    assert ev.exit_code == 0, ev.stderr


def test_cli_old_flags_keep_their_meaning(csvs, tmp_path):
    r, out = _train(csvs, tmp_path, "--rdia-ls", "--noise-rate", "0.3", "--gamma", "0.3",
                    "--tk", "2", "--epochs", "2")
    assert r.exit_code == 0, r.stderr
    meta = _meta(out)
    assert meta["rdia_ls"] == {"noise_rate": 0.3, "gamma": 0.3, "tk": 2}
    assert meta["epochs"] == 2 and meta["method_settings"]["variant"] == "paper"


@pytest.mark.parametrize("opts, fragment", [
    (["--method", "mixup"], "--method"),
    (["--rdia-ls", "--noise-rate", "0.3", "--gamma", "1.5"], "--gamma"),
    (["--rdia-ls", "--noise-rate", "0.3", "--gamma", "best"], "--gamma"),
    (["--rdia-ls", "--noise-rate", "0.3", "--rdia-ls-variant", "mine"], "--rdia-ls-variant"),
    (["--rdia-ls-variant", "reference"], "RDIA-LS only"),
    (["--method", "sigua"], "--noise-rate"),
    (["--rdia-ls", "--method", "co-teaching", "--noise-rate", "0.3"], "disagree"),
    (["--self-teaching", "--noise-rate", "0.3", "--tk-steps", "0"], "--tk-steps"),
    (["--method", "sigua", "--noise-rate", "0.3", "--sigua-ascent", "-1"], "--sigua-ascent"),
    (["--method", "f-correction", "--estimate-epochs", "0"], "--estimate-epochs"),
    (["--method", "f-correction", "--transition", "missing.csv"], "does not exist"),
    (["--method", "erm", "--transition", "T.csv"], "--transition"),
    (["--method", "f-correction", "--transition", "bad.csv"], "K×K"),
    (["--method", "f-correction", "--transition", "T4.csv"], "shape"),
])
def test_cli_bad_values_exit_2(csvs, tmp_path, opts, fragment):
    (tmp_path / "bad.csv").write_text("0.5,0.5\n1.0,0.0,0.0\n")
    np.savetxt(tmp_path / "T4.csv", np.eye(4), delimiter=",")
    opts = [str(csvs / o) if o == "T.csv" else str(tmp_path / o) if o.endswith(".csv") else o
            for o in opts]
    r, out = _train(csvs, tmp_path, "--epochs", "1", *opts)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert fragment in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert not out.exists()


def test_cli_train_help_explains_the_new_options():
    r = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    for opt in ("--method", "--rdia-ls-variant", "--tk-steps", "--transition", "--sigua-ascent",
                "--estimate-epochs", "co-teaching", "auto", "4690"):
        assert opt in r.stdout, opt


def test_cli_score_works_on_a_co_teaching_model(csvs, tmp_path):
    r, out = _train(csvs, tmp_path, "--method", "co-teaching", "--noise-rate", "0.3",
                    "--epochs", "3")
    assert r.exit_code == 0, r.stderr
    sc = runner.invoke(app, ["score", str(csvs / "train.csv"), "--val", str(csvs / "test.csv"),
                             "--model", str(out), "-o", str(tmp_path / "s.parquet"),
                             "--device", "cpu"])
    assert sc.exit_code == 0, sc.stderr
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "s.parquet").num_rows == 240
