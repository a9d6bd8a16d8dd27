"""RDIA-LS (paper appendix F, Algorithm 2) and self-teaching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from rdia_cli.data.dataset import Dataset
from rdia_cli.models.nets.noisy import n_keep, rdia_ls_loss, rho_at, self_teaching_loss
from rdia_cli.models.nets.training import predict_proba_net, train_net

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# 5 rows, 3 classes, hand-made
LOGITS = [[2.0, 0.0, 0.0],    # label 0: p_m large -> small CE
          [0.0, 1.0, 0.0],    # label 1
          [0.0, 0.0, 3.0],    # label 0: wrong-looking, large CE
          [1.0, 1.0, 1.0],    # label 2: uniform
          [5.0, -1.0, 0.0]]   # label 1: very wrong, largest CE
LABELS = [0, 1, 0, 2, 1]


def _by_hand(rho, gamma, weight=None):
    w = weight or [1.0] * 5
    ce, neg = [], []
    for z, m, wi in zip(LOGITS, LABELS, w, strict=True):
        e = [math.exp(v) for v in z]
        p = [v / sum(e) for v in e]
        ce.append(-math.log(p[m]) * wi)
        neg.append(-math.log(1.0 - p[m]) * wi)
    order = sorted(range(5), key=lambda i: ce[i])
    k = math.ceil(rho * 5 - 1e-9)
    clean, noisy = order[:k], order[k:]
    lc = sum(ce[i] for i in clean) / len(clean) if clean else 0.0
    ln = sum(neg[i] for i in noisy) / len(noisy) if noisy else 0.0
    return (1 - gamma) * lc + gamma * ln, clean


@pytest.mark.parametrize("rho, gamma", [(0.6, 0.3), (0.8, 0.5), (1.0, 0.4), (0.0, 0.7),
                                        (0.5, 0.0), (0.5, 1.0)])
def test_rdia_ls_loss_by_hand(rho, gamma):
    z = torch.tensor(LOGITS, dtype=torch.float64)
    want, _ = _by_hand(rho, gamma)
    got = rdia_ls_loss(z, torch.tensor(LABELS), rho=rho, gamma=gamma)
    assert float(got) == pytest.approx(want, rel=1e-12)


def test_rdia_ls_loss_worked_example():
    """ρ = 0.6: the 3 smallest-CE rows (0, 1, 3) are clean, rows 2 and 4 get -log(1 - p_m)."""
    _, clean = _by_hand(0.6, 0.3)
    assert sorted(clean) == [0, 1, 3]
    z = torch.tensor(LOGITS, dtype=torch.float64)
    p = torch.softmax(z, 1)
    ce = -torch.log(p[torch.arange(5), torch.tensor(LABELS)])
    want = 0.7 * ce[[0, 1, 3]].mean() - 0.3 * torch.log(1 - p[[2, 4], [0, 1]]).mean()
    got = rdia_ls_loss(z, torch.tensor(LABELS), rho=0.6, gamma=0.3)
    assert float(got) == pytest.approx(float(want), rel=1e-12)


def test_rdia_ls_loss_weighted_and_gradient():
    w = [1.0, 2.0, 0.5, 1.0, 3.0]
    z = torch.tensor(LOGITS, dtype=torch.float64, requires_grad=True)
    got = rdia_ls_loss(z, torch.tensor(LABELS), rho=0.6, gamma=0.3,
                       weight=torch.tensor(w, dtype=torch.float64))
    assert float(got.detach()) == pytest.approx(_by_hand(0.6, 0.3, w)[0], rel=1e-12)
    got.backward()
    assert torch.isfinite(z.grad).all()


def test_rdia_ls_loss_stable_when_p_label_is_one():
    z = torch.tensor([[60.0, 0.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    loss = rdia_ls_loss(z, torch.tensor([0, 0]), rho=0.0, gamma=1.0)
    assert torch.isfinite(loss) and float(loss.detach()) == pytest.approx((60 - math.log(2) +
                                                                  math.log(1.5)) / 2, rel=1e-4)
    loss.backward()
    assert torch.isfinite(z.grad).all()


def test_rdia_ls_noisy_term_is_relabeled_cross_entropy():
    """Lemma 2: -log(1 - p_m) = CE with the relabeled target R(y) of paper Eq. 12."""
    z = torch.tensor(LOGITS, dtype=torch.float64)
    p = torch.softmax(z, 1)
    K = 3
    for i, m in enumerate(LABELS):
        y_new = torch.log(1 - p[i, m]) / ((K - 1) * torch.log(p[i]))
        y_new[m] = 0.0
        ce_relabeled = -(y_new * torch.log(p[i])).sum()
        single = rdia_ls_loss(z[i:i + 1], torch.tensor([m]), rho=0.0, gamma=1.0)
        assert float(single) == pytest.approx(float(ce_relabeled), rel=1e-12)


def test_self_teaching_loss():
    z = torch.tensor(LOGITS, dtype=torch.float64)
    _, clean = _by_hand(0.6, 0.0)
    p = torch.softmax(z, 1)
    ce = -torch.log(p[torch.arange(5), torch.tensor(LABELS)])
    got = self_teaching_loss(z, torch.tensor(LABELS), rho=0.6)
    assert float(got) == pytest.approx(float(ce[clean].mean()), rel=1e-12)


def test_rho_at_and_counts():
    # ρ = 1 - min(t·τ/T_k, τ) with t counted from 1 (Algorithm 2: t ∈ [1..T])
    assert rho_at(1, 0.4, 10) == pytest.approx(0.96)
    assert rho_at(5, 0.4, 10) == pytest.approx(0.8)
    assert rho_at(10, 0.4, 10) == pytest.approx(0.6)
    assert rho_at(200, 0.4, 10) == pytest.approx(0.6)
    assert rho_at(2345, 0.4, 4690) == pytest.approx(0.8)  # t and T_k in optimizer steps
    assert n_keep(128, 0.6) == 77  # ceil(76.8)
    assert n_keep(10, 0.6) == 6    # no float round-up past an exact count
    assert n_keep(10, 1.0) == 10 and n_keep(10, 0.0) == 0


def _noisy_digits(tau, n=600, seed=0):
    d = load_digits()
    X = (d.data[:n] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = d.target[:n].copy()
    rng = np.random.default_rng(seed)
    flip = rng.random(n) < tau
    y[flip] = (y[flip] + rng.integers(1, 10, flip.sum())) % 10
    return Dataset(X=X, y=y, classes=list(range(10)), row_id=np.arange(n),
                   extra={"is_noisy": flip})


def test_train_with_rdia_ls_and_self_teaching():
    tr = _noisy_digits(0.4)
    d = load_digits()
    Xte = (d.data[1000:1400] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    yte = d.target[1000:1400]
    kw = dict(arch="mlp", arch_args={"hidden": [32]}, epochs=12, batch_size=32, lr=3e-3, seed=0)
    seen = []
    m_ls = train_net(tr, rdia_ls={"noise_rate": 0.4, "gamma": 0.3, "tk": 4},
                     progress=lambda e, n, info: seen.append(info["rho"]), **kw)
    m_st = train_net(tr, self_teaching={"noise_rate": 0.4, "tk": 4}, **kw)
    assert seen[:4] == pytest.approx([0.9, 0.8, 0.7, 0.6]) and seen[-1] == pytest.approx(0.6)
    assert m_ls.meta["training"]["rdia_ls"] == {"noise_rate": 0.4, "gamma": 0.3, "tk": 4}
    assert m_st.meta["training"]["self_teaching"] == {"noise_rate": 0.4, "tk": 4}
    for m in (m_ls, m_st):
        acc = (predict_proba_net(m, Xte).argmax(1) == yte).mean()
        assert acc > 0.6  # chance is 0.1
    with pytest.raises(ValueError, match="either"):
        train_net(tr, rdia_ls={"noise_rate": 0.4}, self_teaching={"noise_rate": 0.4}, **kw)
