"""Neural networks: training (ERM, RDIA-LS, self-teaching), prediction and influence scores.

Public functions (all keyword options after ``*``; the library never prints, progress goes through
a callback ``progress(step, total, info_dict)``):

* ``train_net(ds, *, arch, ...) -> ModelFile``
* ``predict_proba_net(model, X, ...) -> (N, K) float64``
* ``score_net(model, train, val, ...) -> ScoreResult`` (Φ sign and scale: ``rdia_cli.glossary``)
* ``rdia_ls_loss(logits, labels, *, rho, gamma)`` — the per-batch RDIA-LS loss (paper App. F).

Training objective (mean-loss normalization, ``rdia_cli.glossary``):
(1/B) Σ_i w_i ℓ(t_i, p_i) per mini-batch of B rows, plus (λ/2)‖θ‖² through the optimizer's coupled
``weight_decay`` λ (Adam/SGD add λθ to the gradient), so the same λ goes into the Hessian.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError, MismatchError
from rdia_cli.influence import ScoreResult
from rdia_cli.models.io import ModelFile

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("none", "paper")
HESSIANS = ("exact", "ggn")
SOLVERS = ("cg", "lissa")
# Measured on the 2-core CPU for LeNet/MNIST (bench/results/deep_hvp.md): double-backward and
# torch.func forward-over-reverse exact HVPs took the same time, so the simpler double backward
# stays; for the GGN, torch.func jvp + vjp was ~1.5x faster than a dual-number forward + backward.
HVP_IMPL = "autograd"
GGN_IMPL = "func"
# GGN products use cached per-row output Jacobians when they fit in this many bytes.
JACOBIAN_CACHE_BYTES = 1 << 30


# --- helpers ------------------------------------------------------------------------------------
def _device(device):
    import torch

    from rdia_cli.device import resolve_device

    return device if isinstance(device, torch.device) else resolve_device(str(device))


def _input_shape(X) -> list[int]:
    return [int(s) for s in X.shape[1:]]


def _check_rows(X, input_shape: list[int], what: str) -> None:
    width = math.prod(input_shape)
    got = math.prod(int(s) for s in X.shape[1:])
    if got != width:
        raise MismatchError(
            f"{what} has {got} input values per row ({list(X.shape[1:])}) but the network takes "
            f"{width} ({input_shape})."
        )


def _targets(ds: Dataset, dtype, device):
    import torch

    if ds.target is not None:
        t = np.asarray(ds.target, dtype=np.float64)
        if t.ndim != 2 or t.shape[1] != ds.n_classes:
            raise InputError(
                f"`target` of {ds.source} has shape {t.shape}; expected ({ds.n_samples}, "
                f"{ds.n_classes})."
            )
        return torch.as_tensor(t, dtype=dtype, device=device)
    return torch.as_tensor(ds.y, dtype=torch.long, device=device)


def _validate_settings(name: str, value, allowed) -> None:
    if value not in allowed:
        raise InputError(f"`{name}` must be one of {', '.join(allowed)}; got {value!r}.")


# --- RDIA-LS ------------------------------------------------------------------------------------
def rho_schedule(epoch: int, noise_rate: float, tk: int) -> float:
    """ρ = 1 - min(t·τ/T_k, τ), t = the epoch counted from 1 (paper Algorithm 2, ``t ∈ [1..T]``).

    ρ is the share of each mini-batch kept as clean (smallest loss).
    """
    return 1.0 - min(epoch * noise_rate / tk, noise_rate)


def n_clean(batch: int, rho: float) -> int:
    """|D+| = the smallest count ≥ ρ·B (paper: argmin over |D+| ≥ ρ|D|)."""
    return min(batch, max(0, math.ceil(rho * batch - 1e-9)))


def _split_by_loss(ce, rho: float):
    import torch

    order = torch.argsort(ce.detach(), stable=True)
    k = n_clean(ce.shape[0], rho)
    return order[:k], order[k:]


def rdia_ls_loss(logits, labels, *, rho: float, gamma: float, target=None, weight=None):
    """The RDIA-LS mini-batch loss (paper appendix F, Algorithm 2, with Lemma 2).

    Rows are sorted by cross-entropy; the ``ceil(ρ·B)`` smallest form D+, the rest D-.
    ``L_R = (1-γ) · mean_{D+} CE + γ · mean_{D-} -log(1 - p_m)``, m = the row's given label
    (``labels``); the second term is the cross-entropy with the relabeled target R(y) (Lemma 2),
    so no target is formed. ``target`` (B, K soft labels) replaces the one-hot of ``labels`` in CE;
    ``weight`` (B,) multiplies each row's term (means still divide by the row count). An empty
    group contributes 0.
    """
    import torch
    import torch.nn.functional as F

    logp = F.log_softmax(logits, dim=1)
    labels = labels.long()
    if target is None:
        ce = -logp.gather(1, labels.unsqueeze(1)).squeeze(1)
    else:
        ce = -(target * logp).sum(1)
    # log(1 - p_m) = logsumexp_{k≠m} z_k - logsumexp_k z_k, stable for p_m → 1.
    masked = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf"))
    neg = -(torch.logsumexp(masked, dim=1) - torch.logsumexp(logits, dim=1))
    if weight is not None:
        ce, neg = ce * weight, neg * weight
    clean, noisy = _split_by_loss(ce, rho)
    zero = logits.sum() * 0.0
    loss_clean = ce[clean].mean() if len(clean) else zero
    loss_noisy = neg[noisy].mean() if len(noisy) else zero
    return (1.0 - gamma) * loss_clean + gamma * loss_noisy


def self_teaching_loss(logits, labels, *, rho: float, target=None, weight=None):
    """Self-teaching (Jiang et al. 2018; one network): mean CE over the ⌈ρB⌉ smallest-loss rows."""
    ce = _ce(logits, labels, target, weight)
    clean, _ = _split_by_loss(ce, rho)
    return ce[clean].mean()


def _ce(logits, labels, target, weight):
    import torch.nn.functional as F

    logp = F.log_softmax(logits, dim=1)
    ce = -logp.gather(1, labels.long().unsqueeze(1)).squeeze(1) if target is None \
        else -(target * logp).sum(1)
    return ce if weight is None else ce * weight


def _check_noise_opts(name: str, opts: dict, need_gamma: bool) -> dict:
    allowed = {"noise_rate", "tk"} | ({"gamma"} if need_gamma else set())
    unknown = set(opts) - allowed
    if unknown:
        raise InputError(f"`{name}` has unknown settings {sorted(unknown)}; allowed: "
                         f"{sorted(allowed)}.")
    if "noise_rate" not in opts:
        raise InputError(f"`{name}` needs `noise_rate` (τ, the expected share of wrong labels).")
    out = {"noise_rate": float(opts["noise_rate"]), "tk": int(opts.get("tk", 10))}
    if not 0.0 <= out["noise_rate"] < 1.0:
        raise InputError(f"`{name}.noise_rate` must be in [0, 1); got {out['noise_rate']}.")
    if out["tk"] < 1:
        raise InputError(f"`{name}.tk` must be ≥ 1; got {out['tk']}.")
    if need_gamma:
        out["gamma"] = float(opts.get("gamma", 0.5))
        if not 0.0 <= out["gamma"] <= 1.0:
            raise InputError(f"`{name}.gamma` must be in [0, 1]; got {out['gamma']}.")
    return out


# --- training -----------------------------------------------------------------------------------
def _lr_factor(schedule: str, epoch0: int, epochs: int) -> tuple[float, bool]:
    """(lr multiplier, in decay phase) for 0-based ``epoch0``.

    ``paper``: constant for the first 40% of the epochs (80 of 200), then linear decay reaching 0
    after the last epoch (the factor at the last epoch is 1/(epochs - start)).
    """
    if schedule == "none":
        return 1.0, False
    start = int(round(0.4 * epochs))
    if epoch0 < start:
        return 1.0, False
    return (epochs - epoch0) / (epochs - start), True


def train_net(ds: Dataset, *, arch: str, arch_args: dict | None = None, epochs: int = 10,
              batch_size: int = 128, lr: float = 1e-3, optimizer: str = "adam",
              weight_decay: float = 0.0, schedule: str = "none", seed: int = 0, device="cpu",
              init: ModelFile | None = None, rdia_ls: dict | None = None,
              self_teaching: dict | None = None,
              progress: Callable[[int, int, dict], None] | None = None) -> ModelFile:
    """Train ``arch`` on ``ds`` by mini-batch Adam/SGD; returns a ``ModelFile``.

    Honours ``ds.target`` (soft labels: CE = -Σ t_k log p_k) and ``ds.weight``. ``init`` warm-starts
    from a previous model of the same architecture (``rdia retrain``). ``rdia_ls`` =
    ``{"noise_rate": τ, "gamma": γ, "tk": 10}`` trains with the RDIA-LS loss; ``self_teaching`` =
    ``{"noise_rate": τ, "tk": 10}`` trains on the small-loss share only. Deterministic on CPU for
    a fixed ``seed`` (private generators; the global RNG is not touched).
    ``schedule="paper"`` keeps lr for 40% of the epochs then decays it linearly to 0 and, for Adam,
    sets β1 to 0.1 in the decay phase (as the paper's and Co-teaching's code do).
    """
    import torch

    from rdia_cli.models.nets import build_net, complete_arch_args

    _validate_settings("optimizer", optimizer, OPTIMIZERS)
    _validate_settings("schedule", schedule, SCHEDULES)
    if epochs < 0 or batch_size < 1 or lr <= 0 or weight_decay < 0:
        raise InputError(
            f"Need epochs ≥ 0, batch_size ≥ 1, lr > 0, weight_decay ≥ 0; got epochs={epochs}, "
            f"batch_size={batch_size}, lr={lr}, weight_decay={weight_decay}."
        )
    if rdia_ls is not None and self_teaching is not None:
        raise InputError("Use either `rdia_ls` or `self_teaching`, not both.")
    ls = _check_noise_opts("rdia_ls", rdia_ls, True) if rdia_ls is not None else None
    st = _check_noise_opts("self_teaching", self_teaching, False) \
        if self_teaching is not None else None
    if ds.n_samples == 0:
        raise InputError(f"Training data {ds.source} has no rows.")
    dev = _device(device)

    if init is not None:
        if init.arch != arch:
            raise MismatchError(f"`init` model is a `{init.arch}`, not a `{arch}`.")
        args = dict(init.arch_args)
        if arch_args:
            diff = {k: v for k, v in arch_args.items() if args.get(k) != v}
            if diff:
                raise MismatchError(
                    f"`arch_args` {diff} differ from the `init` model's {args}; leave them out "
                    "when warm-starting."
                )
        if list(init.meta.get("classes", ds.classes)) != list(ds.classes):
            raise MismatchError(
                f"`init` model has classes {init.meta.get('classes')}, the data {ds.classes}."
            )
    else:
        default_shape = _input_shape(ds.X) if arch != "mlp" else [ds.n_features]
        args = complete_arch_args(arch, arch_args, input_shape=default_shape,
                                  n_classes=ds.n_classes)
    if args["n_classes"] != ds.n_classes:
        raise MismatchError(
            f"The network has {args['n_classes']} outputs but {ds.source} has {ds.n_classes} "
            "classes."
        )
    _check_rows(ds.X, args["input_shape"], f"Training data {ds.source}")

    net = build_net(arch, args, seed=seed)
    if init is not None:
        net.load_state_dict({k: torch.as_tensor(v) for k, v in init.state.items()})
    net = net.to(dev)

    from rdia_cli.influence.nets import Rows

    rows = Rows(ds.X, args["input_shape"], device=dev, dtype=torch.float32)
    target = _targets(ds, torch.float32, dev)
    labels = torch.as_tensor(ds.y, dtype=torch.long, device=dev)
    weight = None if ds.weight is None else torch.as_tensor(
        np.asarray(ds.weight, dtype=np.float32), device=dev)
    soft = target.dim() == 2

    params = list(net.parameters())
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(int(seed))
    n = ds.n_samples
    t0 = time.perf_counter()
    history = []
    for e in range(epochs):
        factor, decaying = _lr_factor(schedule, e, epochs)
        for g in opt.param_groups:
            g["lr"] = lr * factor
            if optimizer == "adam":
                g["betas"] = (0.1 if decaying else 0.9, 0.999)
        net.train()
        perm = torch.randperm(n, generator=gen).numpy()
        rho = None
        if ls is not None:
            rho = rho_schedule(e + 1, ls["noise_rate"], ls["tk"])
        elif st is not None:
            rho = rho_schedule(e + 1, st["noise_rate"], st["tk"])
        total, count = 0.0, 0
        for a in range(0, n, batch_size):
            idx = np.sort(perm[a:a + batch_size])
            if len(idx) < 2 and any(isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d)
                                    for m in net.modules()):
                continue  # BatchNorm cannot train on a batch of one row
            tidx = torch.as_tensor(idx, device=dev)
            x = rows.get(idx)
            logits = net(x)
            t = target[tidx] if soft else None
            w = None if weight is None else weight[tidx]
            if ls is not None:
                loss = rdia_ls_loss(logits, labels[tidx], rho=rho, gamma=ls["gamma"],
                                    target=t, weight=w)
            elif st is not None:
                loss = self_teaching_loss(logits, labels[tidx], rho=rho, target=t, weight=w)
            else:
                loss = _ce(logits, labels[tidx], t, w).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        epoch_info = {"loss": total / max(count, 1), "lr": lr * factor}
        if rho is not None:
            epoch_info["rho"] = rho
        history.append(epoch_info["loss"])
        if progress is not None:
            progress(e + 1, epochs, epoch_info)
    train_seconds = time.perf_counter() - t0

    net.eval()
    train_loss = _mean_loss(net, rows, target, weight, dev)
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    training: dict[str, Any] = {
        "epochs": int(epochs), "batch_size": int(batch_size), "lr": float(lr),
        "optimizer": optimizer, "weight_decay": float(weight_decay), "schedule": schedule,
        "seed": int(seed), "rdia_ls": ls, "self_teaching": st,
        "init": None if init is None else init.path,
        "soft_targets": bool(soft), "weighted": weight is not None,
    }
    meta = {
        "classes": list(ds.classes),
        "n_features": ds.n_features,
        "input_shape": list(args["input_shape"]),
        "l2": float(weight_decay),
        "train_fingerprint": ds.fingerprint(),
        "training": training,
        "metrics": {"train_loss": train_loss, "epochs_run": int(epochs),
                    "epoch_losses": history, "train_seconds": train_seconds},
    }
    return ModelFile(arch=arch, arch_args=args, state=state, meta=meta)


def _mean_loss(net, rows, target, weight, dev, batch_size: int = 1024) -> float:
    """(1/N) Σ w_i ℓ_i over all rows, eval mode."""
    import torch

    from rdia_cli.influence.nets import ce_per_sample

    total = 0.0
    with torch.no_grad():
        for a in range(0, rows.n, batch_size):
            sl = slice(a, min(a + batch_size, rows.n))
            loss = ce_per_sample(net(rows.get(sl)), target[sl])
            if weight is not None:
                loss = loss * weight[sl]
            total += float(loss.sum())
    return total / rows.n


# --- prediction ---------------------------------------------------------------------------------
def _net_from_model(model: ModelFile, dtype, dev):
    import torch

    from rdia_cli.models.nets import NET_ARCHS, build_net

    if model.arch not in NET_ARCHS:
        raise InputError(f"Model `{model.path}` is a `{model.arch}`, not a neural network.")
    net = build_net(model.arch, model.arch_args)
    net.load_state_dict({k: torch.as_tensor(v) for k, v in model.state.items()})
    return net.to(device=dev, dtype=dtype).eval()


def predict_proba_net(model: ModelFile, X, *, device="cpu", batch_size: int = 1024) -> np.ndarray:
    """Class probabilities (N, K) float64 of a network model, eval mode, in batches.

    ``X`` is (N, C, H, W), (N, P) dense or CSR; any layout with the model's number of input values
    per row is reshaped to its ``input_shape``.
    """
    import torch

    from rdia_cli.influence.nets import Rows

    dev = _device(device)
    if isinstance(X, Dataset):
        X = X.X
    shape = list(model.arch_args["input_shape"])
    _check_rows(X, shape, "The data")
    net = _net_from_model(model, torch.float32, dev)
    rows = Rows(X, shape, device=dev, dtype=torch.float32)
    out = np.empty((rows.n, model.arch_args["n_classes"]), dtype=np.float64)
    with torch.no_grad():
        for a in range(0, rows.n, batch_size):
            sl = slice(a, min(a + batch_size, rows.n))
            out[sl] = torch.softmax(net(rows.get(sl)).double(), dim=1).cpu().numpy()
    return out


# --- influence ----------------------------------------------------------------------------------
def score_net(model: ModelFile, train: Dataset, val: Dataset, *, hessian: str = "ggn",
              solver: str = "cg", damping: float = 0.01, tol: float = 1e-6, max_iter: int = 200,
              hessian_samples: int | None = None, seed: int = 0, device="cpu",
              batch_size: int = 1024, progress: Callable[[int, int, dict], None] | None = None,
              dtype: str = "float32") -> ScoreResult:
    """Φ_i = -∇L_Q(θ̂)ᵀ (H + (λ+δ)I)⁻¹ ∇ℓ_i(θ̂) for every training row of a network model.

    Sign and scale: ``rdia_cli.glossary`` (Φ > 0 = harmful). H is the mean-normalized exact
    Hessian or Gauss-Newton matrix of the training loss over all rows (or a seeded random subset
    of ``hessian_samples`` rows), λ the model's L2 (weight decay), δ = ``damping``. One solve
    with the mean validation gradient by CG (or LiSSA), then one batched forward-mode pass for
    all ∇ℓ_i · s. Networks with BatchNorm are scored in eval mode (running statistics fixed).
    ``dtype`` "float64" for reference computations. Raises ``RuntimeFailure`` when the solver meets
    negative curvature or diverges.
    """
    import torch

    from rdia_cli.influence.nets import NetProblem, Rows, cg, lissa, power_max_eig

    _validate_settings("hessian", hessian, HESSIANS)
    _validate_settings("solver", solver, SOLVERS)
    _validate_settings("dtype", dtype, ("float32", "float64"))
    if damping < 0 or tol <= 0 or max_iter < 1 or batch_size < 1:
        raise InputError(
            f"Need damping ≥ 0, tol > 0, max_iter ≥ 1, batch_size ≥ 1; got damping={damping}, "
            f"tol={tol}, max_iter={max_iter}, batch_size={batch_size}."
        )
    for ds, what in ((train, "Training data"), (val, "Validation data")):
        if ds.n_samples == 0:
            raise InputError(f"{what} {ds.source} has no rows.")
        if ds.n_classes != model.n_classes:
            raise MismatchError(
                f"{what} {ds.source} has {ds.n_classes} classes, the model {model.n_classes}."
            )
        _check_rows(ds.X, list(model.arch_args["input_shape"]), f"{what} {ds.source}")
    dev = _device(device)
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    l2 = float(model.meta.get("l2", 0.0))
    net = _net_from_model(model, tdtype, dev)
    prob = NetProblem(net, dtype=tdtype, device=dev, batch_size=batch_size, l2=l2,
                      damping=damping, hvp_impl=HVP_IMPL, ggn_impl=GGN_IMPL)
    shape = model.arch_args["input_shape"]
    rows = Rows(train.X, shape, device=dev, dtype=tdtype)
    target = _targets(train, tdtype, dev)
    weight = None if train.weight is None else torch.as_tensor(
        np.asarray(train.weight, dtype=np.float64), dtype=tdtype, device=dev)
    idx = None
    if hessian_samples is not None and hessian_samples < train.n_samples:
        if hessian_samples < 1:
            raise InputError(f"`hessian_samples` must be ≥ 1; got {hessian_samples}.")
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(train.n_samples, size=hessian_samples, replace=False))
    prob.set_curvature_data(rows, target, weight, idx)

    t0 = time.perf_counter()
    vrows = Rows(val.X, shape, device=dev, dtype=tdtype)
    g_val, val_loss = prob.mean_grad(vrows, _targets(val, tdtype, dev))

    ggn_cache = hessian == "ggn" and prob.jacobian_bytes(model.n_classes) <= JACOBIAN_CACHE_BYTES
    if ggn_cache:
        prob.cache_jacobian()

    def matvec(v, idx=None):
        return prob.matvec(v, hessian, idx=idx)

    extra: dict[str, Any] = {}
    if solver == "cg":
        s, sinfo = cg(matvec, g_val, tol=tol, max_iter=max_iter, what=hessian, progress=progress)
    else:
        lam = power_max_eig(matvec, prob.n_params, dtype=tdtype, device=dev, seed=seed)
        scale = 1.5 * lam
        n_curv = prob.n_curvature
        sample = None
        if batch_size < n_curv:
            gen = np.random.default_rng(seed + 1)
            pool = np.arange(train.n_samples) if idx is None else idx

            def sample():
                return np.sort(gen.choice(pool, size=batch_size, replace=False))

            # mini-batch products: the curvature rows are the sampled ones (idx given per call)
            prob.set_curvature_data(rows, target, weight, None)
        s, sinfo = lissa(matvec, g_val, scale=scale, tol=tol, max_iter=max_iter, what=hessian,
                         sample=sample, progress=progress)
        extra = {"lissa_scale": scale, "lissa_max_eig": lam, "lissa_stochastic": sample is not None}
    solve_seconds = time.perf_counter() - t0

    t1 = time.perf_counter()
    labels = torch.as_tensor(train.y, dtype=torch.long, device=dev)
    dots, loss, p_label = prob.directional(rows, target, labels, s, progress=progress)
    score_seconds = time.perf_counter() - t1
    phi = -dots.double().cpu().numpy()
    info = {
        "solver": solver, "hessian": hessian, "damping": float(damping), "l2": l2,
        "iterations": int(sinfo.iterations), "residual": float(sinfo.residual),
        "converged": bool(sinfo.converged), "tol": float(tol), "max_iter": int(max_iter),
        "hessian_samples": None if idx is None else int(len(idx)),
        "n_products": int(prob.n_products),
        "solve_seconds": solve_seconds, "score_seconds": score_seconds,
        "val_loss": float(val_loss), "n_params": int(prob.n_params),
        "n_samples": int(train.n_samples), "n_val": int(val.n_samples),
        "dtype": dtype, "seed": int(seed), "eval_mode": True, "ggn_jacobian_cache": ggn_cache,
        **extra,
    }
    return ScoreResult(phi=phi, p_label=p_label.double().cpu().numpy(),
                       loss=loss.double().cpu().numpy(), info=info)
