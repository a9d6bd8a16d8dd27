"""Architectures and network training: shapes, determinism, soft targets, warm start, file I/O."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError, MismatchError
from rdia_cli.models.io import load_model, save_model
from rdia_cli.models.nets.arch import build_net, complete_arch_args
from rdia_cli.models.nets.training import predict_proba_net, train_net

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _digits(n: int, size: int = 8, offset: int = 0) -> Dataset:
    d = load_digits()
    X = (d.data[offset:offset + n] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    if size == 28:  # 8x8 -> 24x24 by pixel repetition, padded to 28x28 like MNIST
        X = np.pad(np.kron(X, np.ones((1, 1, 3, 3), np.float32)), ((0, 0), (0, 0), (2, 2), (2, 2)))
    return Dataset(X=X, y=d.target[offset:offset + n], classes=list(range(10)),
                   row_id=np.arange(n))


@pytest.fixture(scope="module")
def digits():
    return _digits(300)


@pytest.mark.parametrize(
    "arch, shape, args",
    [
        ("mlp", [1, 8, 8], {"hidden": [16, 8]}),
        ("mlp", [20], {"hidden": []}),
        ("lenet", [1, 28, 28], {}),
        ("lenet", [3, 32, 32], {}),
        ("lenet", [1, 20, 24], {"channels": [4, 8]}),
        ("lenet", [1, 8, 8], {"kernel_size": 2}),
        ("cnn", [3, 32, 32], {"channels": [4, 8, 8], "fc": 16}),
        ("cnn", [1, 28, 28], {"channels": [4, 8, 8], "fc": 16, "batch_norm": False}),
    ],
)
def test_build_net_shapes(arch, shape, args):
    a = complete_arch_args(arch, args, input_shape=shape, n_classes=7)
    net = build_net(arch, a, seed=0).eval()
    out = net(torch.zeros(3, *shape))
    assert out.shape == (3, 7)
    import json

    json.dumps(a)  # JSON-able for the model file


def test_cnn_is_the_paper_network():
    a = complete_arch_args("cnn", None, input_shape=[3, 32, 32], n_classes=10)
    net = build_net("cnn", a, seed=0)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    fcs = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 196, 196]
    assert [f.in_features for f in fcs] == [3136, 256]  # Wang et al. 2019's 196·4·4 flatten


def test_lenet_is_two_conv_one_fc():
    net = build_net("lenet", complete_arch_args("lenet", None, input_shape=[1, 28, 28],
                                                n_classes=10), seed=0)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) == 2
    assert sum(isinstance(m, torch.nn.Linear) for m in net.modules()) == 1
    assert not any(isinstance(m, torch.nn.BatchNorm2d | torch.nn.Dropout) for m in net.modules())


def test_mlp_can_be_the_authors_mnist_network():
    from rdia_cli.models.nets.arch import PAPER_MNIST_MLP

    a = complete_arch_args("mlp", PAPER_MNIST_MLP, input_shape=[1, 28, 28], n_classes=10)
    net = build_net("mlp", a, seed=0)
    fcs = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(f.in_features, f.out_features) for f in fcs] == [(784, 256), (256, 10)]
    assert sum(p.numel() for p in net.parameters()) == 784 * 256 + 256 + 256 * 10 + 10
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_build_net_errors():
    with pytest.raises(InputError, match="image input"):
        complete_arch_args("lenet", None, input_shape=[64], n_classes=3)
    with pytest.raises(InputError, match="Unknown"):
        complete_arch_args("resnet", None, input_shape=[64], n_classes=3)
    with pytest.raises(InputError, match="at least"):
        build_net("lenet", {"input_shape": [1, 6, 6], "n_classes": 2}, seed=0)


def test_build_net_seeded_and_global_rng_untouched():
    a = complete_arch_args("lenet", None, input_shape=[1, 28, 28], n_classes=10)
    state = torch.random.get_rng_state()
    n1, n2, n3 = (build_net("lenet", a, seed=s) for s in (1, 1, 2))
    assert torch.equal(state, torch.random.get_rng_state())
    for (k, v1), v2, v3 in zip(n1.state_dict().items(), n2.state_dict().values(),
                               n3.state_dict().values(), strict=True):
        assert torch.equal(v1, v2), k
        assert not torch.equal(v1, v3), k


def test_train_deterministic(digits):
    kw = dict(arch="mlp", arch_args={"hidden": [16]}, epochs=2, batch_size=64, seed=3)
    m1, m2 = train_net(digits, **kw), train_net(digits, **kw)
    m3 = train_net(digits, **{**kw, "seed": 4})
    for k in m1.state:
        assert torch.equal(m1.state[k], m2.state[k])
    assert any(not torch.equal(m1.state[k], m3.state[k]) for k in m1.state)


def test_train_meta_and_roundtrip(tmp_path, digits):
    seen = []
    m = train_net(digits, arch="mlp", arch_args={"hidden": [16]}, epochs=3, batch_size=64,
                  weight_decay=1e-4, schedule="paper",
                  progress=lambda e, n, info: seen.append((e, n, info["lr"])))
    assert [s[:2] for s in seen] == [(1, 3), (2, 3), (3, 3)]
    assert seen[0][2] == pytest.approx(1e-3) and seen[-1][2] < seen[0][2]  # paper decay
    meta = m.meta
    assert m.arch == "mlp" and m.arch_args["input_shape"] == [64]
    assert meta["classes"] == list(range(10)) and meta["n_features"] == 64
    assert meta["l2"] == 1e-4 and meta["train_fingerprint"] == digits.fingerprint()
    assert meta["training"]["epochs"] == 3 and meta["training"]["schedule"] == "paper"
    assert meta["metrics"]["epochs_run"] == 3
    p = predict_proba_net(m, digits.X)
    assert p.dtype == np.float64 and p.shape == (300, 10)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-12)
    ce = -np.log(p[np.arange(300), digits.y]).mean()
    assert meta["metrics"]["train_loss"] == pytest.approx(ce, rel=1e-4)

    save_model(m, tmp_path / "m.pt")
    m2 = load_model(tmp_path / "m.pt")
    # timings are not stored, so that the same model gives the same bytes (#18)
    from rdia_cli.artifacts.atomic import without_timings

    assert m2.arch == m.arch and m2.arch_args == m.arch_args
    assert m2.meta == without_timings(m.meta) and "train_seconds" not in m2.meta["metrics"]
    np.testing.assert_array_equal(predict_proba_net(m2, digits.X), p)
    # flat (N, P) input and CSR input are reshaped to the network's input shape
    import scipy.sparse as sp

    flat = digits.X.reshape(300, -1)
    np.testing.assert_allclose(predict_proba_net(m2, flat), p, atol=1e-6)
    np.testing.assert_allclose(predict_proba_net(m2, sp.csr_matrix(flat)), p, atol=1e-6)
    with pytest.raises(MismatchError, match="input values"):
        predict_proba_net(m2, flat[:, :10])


def test_soft_targets_honoured(digits):
    rng = np.random.default_rng(0)
    t = rng.dirichlet(np.ones(10), size=300)
    soft = Dataset(X=digits.X, y=digits.y, classes=digits.classes, row_id=digits.row_id,
                   target=t)
    kw = dict(arch="mlp", arch_args={"hidden": [16]}, epochs=2, batch_size=64)
    m_hard, m_soft = train_net(digits, **kw), train_net(soft, **kw)
    assert any(not torch.equal(m_hard.state[k], m_soft.state[k]) for k in m_hard.state)
    p = predict_proba_net(m_soft, digits.X)
    want = -(t * np.log(p)).sum(1).mean()
    assert m_soft.meta["metrics"]["train_loss"] == pytest.approx(want, rel=1e-4)
    assert m_soft.meta["training"]["soft_targets"] is True


def test_sample_weights_honoured(digits):
    w = np.ones(300)
    kw = dict(arch="mlp", arch_args={"hidden": [16]}, epochs=1, batch_size=64)
    base = train_net(digits, **kw)
    same = train_net(Dataset(X=digits.X, y=digits.y, classes=digits.classes,
                             row_id=digits.row_id, weight=w), **kw)
    for k in base.state:  # unit weights change nothing
        torch.testing.assert_close(base.state[k], same.state[k])
    w[:150] = 0.0  # zero weight = row ignored
    half = train_net(Dataset(X=digits.X, y=digits.y, classes=digits.classes,
                             row_id=digits.row_id, weight=w), **kw)
    assert any(not torch.equal(base.state[k], half.state[k]) for k in base.state)


def test_warm_start(digits):
    kw = dict(arch="mlp", arch_args={"hidden": [16]}, batch_size=64)
    m1 = train_net(digits, epochs=5, **kw)
    m0 = train_net(digits, epochs=0, init=m1, arch="mlp")
    for k in m1.state:  # zero epochs from init = init
        assert torch.equal(m1.state[k], m0.state[k])
    m2 = train_net(digits, epochs=1, init=m1, arch="mlp", lr=1e-4)
    assert m2.meta["metrics"]["train_loss"] < train_net(digits, epochs=1, **kw).meta[
        "metrics"]["train_loss"]
    with pytest.raises(MismatchError):
        train_net(digits, epochs=1, init=m1, arch="lenet")
    with pytest.raises(MismatchError):
        train_net(digits, epochs=1, init=m1, arch="mlp", arch_args={"hidden": [8]})


def test_lenet_learns_28x28():
    tr, te = _digits(400, size=28), _digits(300, size=28, offset=1000)
    m = train_net(tr, arch="lenet", epochs=8, batch_size=32, lr=3e-3, seed=0)
    acc = (predict_proba_net(m, te.X).argmax(1) == te.y).mean()
    assert acc > 0.5  # chance is 0.1


def test_cnn_trains_with_batchnorm():
    tr = _digits(64, size=28)
    m = train_net(tr, arch="cnn", arch_args={"channels": [4, 4, 8], "fc": 8}, epochs=1,
                  batch_size=16)
    assert any("running_mean" in k for k in m.state)
    p = predict_proba_net(m, tr.X[:5])
    np.testing.assert_array_equal(p, predict_proba_net(m, tr.X[:5]))  # eval mode


def test_train_errors(digits):
    with pytest.raises(InputError, match="optimizer"):
        train_net(digits, arch="mlp", optimizer="rmsprop")
    with pytest.raises(InputError, match="image input"):
        flat = Dataset(X=digits.X.reshape(300, -1), y=digits.y, classes=digits.classes,
                       row_id=digits.row_id)
        train_net(flat, arch="lenet")
    with pytest.raises(InputError, match="noise_rate"):
        train_net(digits, arch="mlp", rdia_ls={"gamma": 0.5})
