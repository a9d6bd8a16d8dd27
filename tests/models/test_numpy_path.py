"""Logistic regression without torch (#27): the model file read by ``models.ptfile`` as
``torch.load(weights_only=True)`` reads it, and predictions and Φ on the numpy backend
(``device="numpy"``) equal the torch backend's to rounding; `rdia evaluate` and `rdia score` of a
small logistic regression never import torch, `--device cuda` still goes through torch."""

from __future__ import annotations

import dataclasses
import json
import re
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from rdia_cli.errors import InputError, RuntimeFailure
from rdia_cli.models.io import ModelFile, load_model, save_model
from rdia_cli.models.logreg.arrays import numpy_device
from rdia_cli.models.ptfile import UnsupportedPt, read_pt
from rdia_cli.stages import probabilities, score_model, train_model
from tests.cli_helpers import probe
from tests.conftest import make_dataset, write_svm

RTOL = 1e-12


def _data(K, *, sparse, n=80, p=7, seed=0, soft=False, weight=False, intercept=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = rng.integers(0, K, n)
    if sparse:
        X = sp.csr_matrix(np.where(rng.random(X.shape) < 0.5, X, 0).astype(np.float32))
    kw = {}
    if weight:
        kw["weight"] = rng.uniform(0.2, 1.0, n)
    ds = make_dataset(X, y, list(range(K)), **kw)
    if soft:  # paper-style soft targets that need not sum to one
        T = np.eye(K)[y] * rng.uniform(0.5, 1.0, (n, 1))
        ds = dataclasses.replace(ds, target=T.astype(np.float32))
    model = train_model(ds, fit_intercept=intercept)
    return ds, model


def _close(a, b, rtol=RTOL):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(float(np.abs(a).max()), 1e-300)
    assert float(np.abs(a - b).max()) <= rtol * scale, (np.abs(a - b).max(), scale)


@pytest.mark.parametrize("K, sparse, extra", [
    (2, True, {}), (3, True, {}), (2, False, {}), (4, False, {}),
    (2, True, {"soft": True, "weight": True}), (3, False, {"soft": True, "weight": True}),
    (2, False, {"intercept": False}), (3, True, {"intercept": False}),
])
def test_numpy_backend_equals_torch(K, sparse, extra):
    ds, model = _data(K, sparse=sparse, **extra)
    val, _ = _data(K, sparse=sparse, n=30, seed=1)
    _close(probabilities(model, ds, device="numpy"), probabilities(model, ds, device="cpu"))
    a = score_model(model, ds, val, device="cpu", solver="direct")
    b = score_model(model, ds, val, device="numpy", solver="direct")
    for name in ("phi", "p_label", "loss", "probs"):
        _close(getattr(b, name), getattr(a, name))
    assert b.info["solver"] == a.info["solver"] == "direct"
    assert b.info["val_loss"] == pytest.approx(a.info["val_loss"], rel=RTOL)
    assert b.info["residual"] < 1e-12 and b.info["n_params"] == a.info["n_params"]


def test_numpy_state_scores_as_the_torch_state(tmp_path):
    """The model file read without torch (numpy weights) gives the Φ of the torch-read one."""
    ds, model = _data(3, sparse=True)
    save_model(model, tmp_path / "m.pt")
    as_torch, as_numpy = load_model(tmp_path / "m.pt"), load_model(tmp_path / "m.pt",
                                                                  arrays="numpy")
    assert all(isinstance(v, np.ndarray) for v in as_numpy.state.values())
    a = score_model(as_torch, ds, ds, device="cpu")
    b = score_model(as_numpy, ds, ds, device="numpy")
    _close(b.phi, a.phi)
    c = score_model(as_numpy, ds, ds, device="cpu")  # torch takes numpy weights too
    np.testing.assert_array_equal(c.phi, a.phi)


def test_numpy_backend_hands_cg_to_torch():
    """Conjugate gradient runs in torch: asked for on numpy, the result is torch's CG, exactly."""
    ds, model = _data(3, sparse=True)
    a = score_model(model, ds, ds, device="cpu", solver="cg")
    b = score_model(model, ds, ds, device="numpy", solver="cg")
    np.testing.assert_array_equal(b.phi, a.phi)
    assert b.info["solver"] == "cg"


def test_numpy_backend_says_when_the_hessian_is_not_positive_definite():
    ds, model = _data(3, sparse=False)
    model.meta["l2"] = 0.0
    ds2 = dataclasses.replace(ds, X=np.c_[ds.X, ds.X[:, :1]])  # a repeated column: singular H
    model.meta["n_features"] = ds2.n_features
    model.state = {"weight": np.r_[model.state["weight"].numpy(), np.zeros((1, 3))],
                   "bias": model.state["bias"].numpy()}
    for device in ("cpu", "numpy"):
        with pytest.raises(RuntimeFailure, match="not positive definite"):
            score_model(model, ds2, ds2, device=device, solver="direct")


def test_numpy_for_small_work_on_the_cpu_only():
    assert numpy_device("cpu") and numpy_device("auto") and numpy_device(" Auto", 4_000_000)
    assert not numpy_device("cpu", 4_000_001) and not numpy_device("auto", 10**8)
    assert not numpy_device("cuda") and not numpy_device("cuda:0", 10)


# --- the model file without torch -------------------------------------------------------------
def _same_payload(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if k == "state":
            assert a[k].keys() == b[k].keys()
            for name, t in a[k].items():
                assert isinstance(b[k][name], np.ndarray)
                assert b[k][name].dtype == t.numpy().dtype
                np.testing.assert_array_equal(b[k][name], t.numpy())
        else:
            assert a[k] == b[k]


def test_read_pt_reads_what_torch_load_reads(tmp_path):
    ds, model = _data(3, sparse=True)
    save_model(model, tmp_path / "m.pt")
    _same_payload(torch.load(tmp_path / "m.pt", weights_only=True), read_pt(tmp_path / "m.pt"))
    # views into a shared storage (offsets, strides), other dtypes, nested plain data
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    payload = {"state": {"t": base.T, "row": base[2], "col": base[:, 3], "empty": base[:0],
                         "f32": torch.ones(2, 3), "i64": torch.arange(5), "b": torch.tensor(
                             [True, False]), "scalar": torch.tensor(2.5)},
               "meta": {"x": [1, 2.5, None, "a", {"b": False}]}}
    torch.save(payload, tmp_path / "v.pt")
    _same_payload(torch.load(tmp_path / "v.pt", weights_only=True), read_pt(tmp_path / "v.pt"))


class _Boom:
    def __reduce__(self):
        return (print, ("executed",))


def test_read_pt_never_runs_what_a_file_names(tmp_path, capsys):
    torch.save({"state": {}, "x": _Boom()}, tmp_path / "evil.pt")
    with pytest.raises(UnsupportedPt, match="print`"):
        read_pt(tmp_path / "evil.pt")
    assert "executed" not in capsys.readouterr().out
    with pytest.raises(InputError, match="objects other than tensors"):  # torch.load refuses too
        load_model(tmp_path / "evil.pt", arrays="numpy")
    assert "executed" not in capsys.readouterr().out


def _rewrite(src, dst, change):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(info, change(info.filename, data))


def test_read_pt_refuses_views_outside_their_storage(tmp_path):
    torch.save({"w": torch.zeros(4, dtype=torch.float64)}, tmp_path / "m.pt")
    short = tmp_path / "short.pt"  # the storage holds 2 numbers, the tensor claims 4
    _rewrite(tmp_path / "m.pt", short,
             lambda name, data: data[:16] if name.endswith("data/0") else data)
    with pytest.raises(UnsupportedPt, match="bytes"):
        read_pt(short)
    far = tmp_path / "far.pt"  # size (4,) with stride (9,): past the end of its 4 numbers
    with zipfile.ZipFile(tmp_path / "m.pt") as zf:
        pkl = zf.read(next(n for n in zf.namelist() if n.endswith("/data.pkl")))
    size_stride = rb"(K\x04\x85q.)K\x01\x85"  # BININT1 4, TUPLE1, BINPUT n, BININT1 1, TUPLE1
    assert len(re.findall(size_stride, pkl, re.S)) == 1

    def stride_9(name, data):
        if not name.endswith("data.pkl"):
            return data
        return re.sub(size_stride, lambda m: m.group(1) + b"K\x09\x85", data, flags=re.S)

    _rewrite(tmp_path / "m.pt", far, stride_9)
    with pytest.raises(UnsupportedPt, match="past the end"):
        read_pt(far)
    torch.save({"w": torch.zeros(1, dtype=torch.float64).expand(10**6)}, tmp_path / "wide.pt")
    with pytest.raises(UnsupportedPt, match="more elements than its storage"):
        read_pt(tmp_path / "wide.pt")  # a broadcast view is left to torch.load, not copied


def test_load_model_numpy_and_torch_agree_on_bad_files(tmp_path):
    ds, model = _data(2, sparse=False)
    save_model(model, tmp_path / "m.pt")
    bad = ModelFile(model.arch, dict(model.arch_args), {k: v.clone() for k, v in
                                                        model.state.items()}, dict(model.meta))
    bad.state["weight"][0, 0] = float("nan")
    save_model(bad, tmp_path / "nan.pt")
    for arrays in ("torch", "numpy"):
        with pytest.raises(InputError, match="NaN or infinite"):
            load_model(tmp_path / "nan.pt", arrays=arrays)
    (tmp_path / "cut.pt").write_bytes((tmp_path / "m.pt").read_bytes()[:200])
    for arrays in ("torch", "numpy"):
        with pytest.raises(InputError, match="not an rdia model file"):
            load_model(tmp_path / "cut.pt", arrays=arrays)


# --- the commands ---------------------------------------------------------------------------
def _run(args, cwd):
    got, out, said = probe(args, cwd, ("torch",))
    return {"code": got["code"], "torch": "torch" in got["imported"]}, out, said


def test_evaluate_and_score_of_a_logistic_regression_do_not_import_torch(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 5)), rng.integers(0, 2, 40)
    data = write_svm(tmp_path / "d.svm", X, np.where(y == 1, 1, -1))
    from rdia_cli.data.readers import read_dataset

    ds = read_dataset(str(data))
    model = train_model(ds)
    save_model(model, tmp_path / "lr.pt")
    got, out, _ = _run(["evaluate", "lr.pt", "--data", data, "--json", "-"], tmp_path)
    assert got == {"code": 0, "torch": False}
    loss = json.loads(out)["models"][0]["loss"]
    from rdia_cli.metrics import evaluate_probs

    assert loss == pytest.approx(evaluate_probs(probabilities(model, ds), ds.y)["loss"],
                                 rel=RTOL)
    for device in ("auto", "cpu"):
        got, _, _ = _run(["score", data, "--val", data, "--model", "lr.pt", "-o",
                          f"s_{device}.parquet", "--device", device, "-q"], tmp_path)
        assert got == {"code": 0, "torch": False}
    from rdia_cli.artifacts.scores import read_scores

    phi = read_scores(tmp_path / "s_auto.parquet").phi
    _close(phi, score_model(model, ds, ds, device="cpu").phi)
    # --device cuda is torch's: here (no GPU) its error, after importing torch
    if not torch.cuda.is_available():
        got, _, said = _run(["evaluate", "lr.pt", "--data", data, "--device", "cuda"], tmp_path)
        assert got == {"code": 2, "torch": True} and "no CUDA device" in said
