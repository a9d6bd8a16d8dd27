"""Neural networks: training (ERM, RDIA-LS, self-teaching and the other noisy-label methods of
``rdia_cli.models.nets.noisy``) and prediction; their influence scores are
``rdia_cli.influence.nets.score_net``.

Public functions (all keyword options after ``*``; the library never prints, progress goes through
a callback ``progress(step, total, info_dict)``):

* ``train_net(ds, *, arch, ...) -> ModelFile``
* ``predict_proba_net(model, X, ...) -> (N, K) float64``
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
from rdia_cli.models.io import ModelFile

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("none", "paper")


# --- helpers ------------------------------------------------------------------------------------
def torch_device(device):
    import torch

    from rdia_cli.device import resolve_device

    return device if isinstance(device, torch.device) else resolve_device(str(device))


def _input_shape(X) -> list[int]:
    return [int(s) for s in X.shape[1:]]


def check_rows(X, input_shape: list[int], what: str) -> None:
    width = math.prod(input_shape)
    got = math.prod(int(s) for s in X.shape[1:])
    if got != width:
        raise MismatchError(
            f"{what} has {got} input values per row ({list(X.shape[1:])}) but the network takes "
            f"{width} ({input_shape})."
        )


def target_tensor(ds: Dataset, dtype, device):
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


def check_choice(name: str, value, allowed) -> None:
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


_NOISE_KEYS = {
    "rdia_ls": {"noise_rate", "tk", "tk_steps", "gamma", "variant", "gamma_grid",
                "gamma_holdout"},
    "self_teaching": {"noise_rate", "tk", "tk_steps"},
    "co_teaching": {"noise_rate", "tk", "tk_steps"},
    "sigua": {"noise_rate", "tk", "tk_steps", "ascent"},
    "f_correction": {"transition", "estimate_epochs", "percentile"},
    "s_model": {"init", "estimate_epochs"},
}


def _unknown(name: str, opts: dict) -> None:
    if not isinstance(opts, dict):
        raise InputError(f"`{name}` must be a dict of settings; got {type(opts).__name__}.")
    unknown = set(opts) - _NOISE_KEYS[name]
    if unknown:
        raise InputError(f"`{name}` has unknown settings {sorted(unknown)}; allowed: "
                         f"{sorted(_NOISE_KEYS[name])}.")


def _check_noise_opts(name: str, opts: dict, need_gamma: bool) -> dict:
    """The settings the old flags had (``noise_rate``, ``tk``, ``gamma``), validated; the newer
    ones are checked by ``_check_method_opts``."""
    _unknown(name, opts)
    if "noise_rate" not in opts:
        raise InputError(f"`{name}` needs `noise_rate` (τ, the expected share of wrong labels).")
    out = {"noise_rate": float(opts["noise_rate"]), "tk": int(opts.get("tk", 10))}
    if not 0.0 <= out["noise_rate"] < 1.0:
        raise InputError(f"`{name}.noise_rate` must be in [0, 1); got {out['noise_rate']}.")
    if out["tk"] < 1:
        raise InputError(f"`{name}.tk` must be ≥ 1; got {out['tk']}.")
    if need_gamma:
        g = opts.get("gamma", 0.5)
        if g == "auto":
            out["gamma"] = "auto"
        else:
            try:
                out["gamma"] = float(g)
            except (TypeError, ValueError):
                raise InputError(f"`{name}.gamma` must be a number in [0, 1] or 'auto'; got "
                                 f"{g!r}.") from None
            if not 0.0 <= out["gamma"] <= 1.0:
                raise InputError(f"`{name}.gamma` must be in [0, 1] or 'auto'; got "
                                 f"{out['gamma']}.")
    return out


def _check_method_opts(name: str, opts: dict, n_classes: int, epochs: int) -> dict:
    """All settings of method ``name`` with defaults filled in (what the model file records)."""
    from rdia_cli.models.nets import noisy as nt

    _unknown(name, opts)
    if name in ("f_correction", "s_model"):
        out: dict[str, Any] = {"estimate_epochs": opts.get("estimate_epochs")}
        if out["estimate_epochs"] is None:
            out["estimate_epochs"] = max(1, int(round(0.1 * epochs)))
        if int(out["estimate_epochs"]) < 1:
            raise InputError(f"`{name}.estimate_epochs` must be ≥ 1; got "
                             f"{out['estimate_epochs']}.")
        out["estimate_epochs"] = int(out["estimate_epochs"])
        if name == "f_correction":
            T = opts.get("transition")
            out["transition"] = None if T is None else nt.check_transition(
                T, n_classes, "`f_correction.transition`").tolist()
            out["percentile"] = float(opts.get("percentile", 97.0))
            if not 0.0 < out["percentile"] <= 100.0:
                raise InputError(f"`f_correction.percentile` must be in (0, 100]; got "
                                 f"{out['percentile']}.")
        else:
            init = opts.get("init", "estimate")
            if isinstance(init, str):
                if init not in ("estimate", "identity"):
                    raise InputError("`s_model.init` must be 'estimate', 'identity' or a K×K "
                                     f"transition matrix; got {init!r}.")
                out["init"] = init
            else:
                out["init"] = nt.check_transition(init, n_classes, "`s_model.init`").tolist()
        return out
    out = _check_noise_opts(name, opts, name == "rdia_ls")
    tks = opts.get("tk_steps")
    if tks is not None:
        if int(tks) != tks or int(tks) < 1:
            raise InputError(f"`{name}.tk_steps` must be an integer ≥ 1; got {tks!r}.")
        tks = int(tks)
    out["tk_steps"] = tks
    if name == "sigua":
        out["ascent"] = float(opts.get("ascent", 0.01))
        if not 0.0 <= out["ascent"] <= 1.0:
            raise InputError(f"`sigua.ascent` must be in [0, 1]; got {out['ascent']}.")
    if name == "rdia_ls":
        out["variant"] = opts.get("variant", "paper")
        check_choice("rdia_ls.variant", out["variant"], nt.RDIA_LS_VARIANTS)
        if out["gamma"] == "auto":
            out["gamma_grid"] = [float(g) for g in opts.get("gamma_grid", nt.GAMMA_GRID)]
            if not out["gamma_grid"] or any(not 0.0 <= g <= 1.0 for g in out["gamma_grid"]):
                raise InputError("`rdia_ls.gamma_grid` must list γ values in [0, 1]; got "
                                 f"{out['gamma_grid']}.")
            out["gamma_holdout"] = float(opts.get("gamma_holdout", 0.1))
            if not 0.0 < out["gamma_holdout"] < 1.0:
                raise InputError(f"`rdia_ls.gamma_holdout` must be in (0, 1); got "
                                 f"{out['gamma_holdout']}.")
        elif "gamma_grid" in opts or "gamma_holdout" in opts:
            raise InputError("`rdia_ls.gamma_grid` and `gamma_holdout` need `gamma='auto'`.")
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
              self_teaching: dict | None = None, co_teaching: dict | None = None,
              sigua: dict | None = None, f_correction: dict | None = None,
              s_model: dict | None = None, monitor: Dataset | None = None,
              progress: Callable[[int, int, dict], None] | None = None) -> ModelFile:
    """Train ``arch`` on ``ds`` by mini-batch Adam/SGD; returns a ``ModelFile``.

    Honours ``ds.target`` (soft labels: CE = -Σ t_k log p_k) and ``ds.weight``. ``init`` warm-starts
    from a previous model of the same architecture (``rdia retrain``). Deterministic on CPU for
    a fixed ``seed`` (private generators; the global RNG is not touched).
    ``schedule="paper"`` keeps lr for 40% of the epochs then decays it linearly to 0 and, for Adam,
    sets β1 to 0.1 in the decay phase (as the paper's and Co-teaching's code do).

    At most one noisy-label method (pieces in ``rdia_cli.models.nets.noisy``), each a dict:

    * ``rdia_ls`` = ``{"noise_rate": τ, "gamma": γ | "auto", "tk": 10, "tk_steps": None,
      "variant": "paper" | "reference"}``: RDIA-LS; ``variant="reference"`` is the authors' code
      (``noisy.rdia_ls_reference_loss``, with its warm-up: small-loss rows only while
      t < T_k). ``gamma="auto"`` holds out a seeded ``gamma_holdout`` share (0.1) of the rows,
      trains once per γ in ``gamma_grid`` (the paper's 0.05, ..., 0.95) on the rest, keeps the γ
      with the highest accuracy on the held-out rows' given (noisy) labels, i.e. the lowest
      held-out 0-1 loss — under symmetric noise that ranks models as clean accuracy would — then
      trains on all rows with it.
    * ``self_teaching`` / ``co_teaching`` = ``{"noise_rate": τ, "tk": 10, "tk_steps": None}``;
      ``sigua`` adds ``"ascent"`` (0.01). Co-teaching trains two networks (seeds ``seed`` and
      ``seed + 1``) and returns the first.
    * ``f_correction`` = ``{"transition": K×K | None, "estimate_epochs": 10% of epochs,
      "percentile": 97}``: without a transition it is estimated (Patrini et al.) from an ERM
      network trained ``estimate_epochs`` epochs (seed ``seed + 7919``).
    * ``s_model`` = ``{"init": "estimate" | "identity" | K×K, "estimate_epochs"}``: the channel
      starts from a baseline's confusion matrix ("estimate", Goldberger & Ben-Reuven), from I or
      from a given matrix; it is saved in the metadata, the file holds the base network.

    ρ = 1 - min(t·τ/T_k, τ). ``tk`` counts epochs of the data at hand (t = epoch from 1; ρ fixed
    per epoch; the old behaviour). ``tk_steps`` counts optimizer steps instead (t = step from 1;
    ρ updated every step), so a subset and the full set get the same schedule per step; the
    paper's T_k = 10 epochs of 60,000 rows at batch 128 is ``tk_steps`` = 4690
    (``noisy.PAPER_TK_STEPS``).

    ``monitor``: a labelled Dataset scored after every epoch (accuracy in the progress info and
    in ``meta["metrics"]["monitor_accuracy"]``), e.g. the test set for the paper's metric.
    """
    import torch

    from rdia_cli.models.nets import noisy as nt
    from rdia_cli.models.nets.arch import build_net, complete_arch_args

    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("schedule", schedule, SCHEDULES)
    if epochs < 0 or batch_size < 1 or lr <= 0 or weight_decay < 0:
        raise InputError(
            f"Need epochs ≥ 0, batch_size ≥ 1, lr > 0, weight_decay ≥ 0; got epochs={epochs}, "
            f"batch_size={batch_size}, lr={lr}, weight_decay={weight_decay}."
        )
    given = {"rdia_ls": rdia_ls, "self_teaching": self_teaching, "co_teaching": co_teaching,
             "sigua": sigua, "f_correction": f_correction, "s_model": s_model}
    given = {k: v for k, v in given.items() if v is not None}
    if len(given) > 1:
        if set(given) == {"rdia_ls", "self_teaching"}:
            raise InputError("Use either `rdia_ls` or `self_teaching`, not both.")
        raise InputError(f"Use either one noisy-label method, not {sorted(given)}.")
    name = next(iter(given), None)
    ls = _check_noise_opts("rdia_ls", rdia_ls, True) if rdia_ls is not None else None
    st = _check_noise_opts("self_teaching", self_teaching, False) \
        if self_teaching is not None else None
    if ds.n_samples == 0:
        raise InputError(f"Training data {ds.source} has no rows.")
    cfg = _check_method_opts(name, given[name], ds.n_classes, epochs) if name else None
    hard_only = name in ("co_teaching", "sigua", "f_correction", "s_model") or (
        name == "rdia_ls" and cfg["variant"] == "reference")
    if hard_only and (ds.target is not None or ds.weight is not None):
        raise InputError(f"`{name}` trains on hard labels without row weights; {ds.source} has "
                         "soft targets or weights (use ERM, self_teaching or rdia_ls).")
    if name == "co_teaching" and init is not None:
        raise InputError("`co_teaching` trains two networks from scratch; it cannot warm-start "
                         "from `init`.")
    if monitor is not None and (monitor.n_samples == 0 or monitor.n_classes != ds.n_classes):
        raise InputError(f"`monitor` data {monitor.source} must have rows and the training "
                         f"data's {ds.n_classes} classes.")
    common = dict(arch=arch, arch_args=arch_args, epochs=epochs, batch_size=batch_size, lr=lr,
                  optimizer=optimizer, weight_decay=weight_decay, schedule=schedule, seed=seed,
                  device=device, init=init)

    if name == "rdia_ls" and cfg["gamma"] == "auto":
        fit_rows, held = nt.holdout_split(ds.n_samples, cfg["gamma_holdout"], seed)
        fit_ds, held_ds = ds.subset(fit_rows), ds.subset(held)
        base = {k: v for k, v in cfg.items() if k not in ("gamma_grid", "gamma_holdout")}

        def fit(g):
            return train_net(fit_ds, **common, rdia_ls={**base, "gamma": g})

        def score(m):
            return float((predict_proba_net(m, held_ds.X, device=device).argmax(1)
                          == held_ds.y).mean())

        best, table = nt.tune_gamma(fit, score, cfg["gamma_grid"])
        model = train_net(ds, **common, rdia_ls={**base, "gamma": best}, monitor=monitor,
                          progress=progress)
        tr = model.meta["training"]
        tr["rdia_ls"]["gamma_auto"] = True
        tr["method_settings"].update(gamma="auto", gamma_chosen=best,
                                     gamma_grid=cfg["gamma_grid"],
                                     gamma_holdout=cfg["gamma_holdout"],
                                     gamma_scores=table,
                                     gamma_score="accuracy on the held-out rows' given labels")
        return model

    dev = torch_device(device)
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
    check_rows(ds.X, args["input_shape"], f"Training data {ds.source}")

    # F-correction's T / S-model's initial channel from a baseline trained on the noisy rows
    K = ds.n_classes
    transition = channel = None
    probe_info: dict[str, Any] = {}
    if name in ("f_correction", "s_model"):
        fixed = cfg.get("transition") if name == "f_correction" else (
            cfg["init"] if not isinstance(cfg["init"], str) else
            (np.eye(K).tolist() if cfg["init"] == "identity" else None))
        if fixed is None:
            probe = train_net(ds, **{**common, "epochs": cfg["estimate_epochs"],
                                     "schedule": "none", "seed": seed + 7919})
            probs = predict_proba_net(probe, ds.X, device=dev)
            est = nt.estimate_transition(probs, percentile=cfg["percentile"]) \
                if name == "f_correction" else nt.confusion_init(probs, ds.y, K)
            probe_info = {"estimated": est.tolist(), "estimate_epochs": cfg["estimate_epochs"],
                          "estimate_seed": seed + 7919}
            fixed = est
        if name == "f_correction":
            transition = torch.as_tensor(np.asarray(fixed), dtype=torch.float32, device=dev)
        else:
            channel = torch.nn.Parameter(torch.as_tensor(
                nt.channel_init(fixed), dtype=torch.float32, device=dev))

    net = build_net(arch, args, seed=seed)
    if init is not None:
        net.load_state_dict({k: torch.as_tensor(v) for k, v in init.state.items()})
    net = net.to(dev)
    nets = [net]
    if name == "co_teaching":
        nets.append(build_net(arch, args, seed=seed + 1).to(dev))

    from rdia_cli.models.nets.batches import Rows

    rows = Rows(ds.X, args["input_shape"], device=dev, dtype=torch.float32)
    target = target_tensor(ds, torch.float32, dev)
    labels = torch.as_tensor(ds.y, dtype=torch.long, device=dev)
    weight = None if ds.weight is None else torch.as_tensor(
        np.asarray(ds.weight, dtype=np.float32), device=dev)
    soft = target.dim() == 2
    mon = None
    if monitor is not None:
        check_rows(monitor.X, args["input_shape"], f"Monitor data {monitor.source}")
        mon = (Rows(monitor.X, args["input_shape"], device=dev, dtype=torch.float32),
               torch.as_tensor(monitor.y, dtype=torch.long, device=dev))

    def make_opt(params, extra=()):
        groups = [{"params": params}] + [{"params": list(extra), "weight_decay": 0.0}] \
            if extra else [{"params": params}]
        if optimizer == "adam":
            return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=weight_decay)

    opts = [make_opt(list(nets[0].parameters()), [channel] if channel is not None else ())]
    if len(nets) > 1:
        opts.append(make_opt(list(nets[1].parameters())))
    has_bn = any(isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d)
                 for m in net.modules())
    sel = cfg if name in ("rdia_ls", "self_teaching", "co_teaching", "sigua") else None
    gen = torch.Generator().manual_seed(int(seed))
    n = ds.n_samples
    t0 = time.perf_counter()
    history, mon_acc = [], []
    step = 0
    for e in range(epochs):
        factor, decaying = _lr_factor(schedule, e, epochs)
        for o in opts:
            for g in o.param_groups:
                g["lr"] = lr * factor
                if optimizer == "adam":
                    g["betas"] = (0.1 if decaying else 0.9, 0.999)
        for m in nets:
            m.train()
        perm = torch.randperm(n, generator=gen).numpy()
        rho = None
        total, count = 0.0, 0
        for a in range(0, n, batch_size):
            idx = np.sort(perm[a:a + batch_size])
            if len(idx) < 2 and has_bn:
                continue  # BatchNorm cannot train on a batch of one row
            step += 1
            if sel is not None:  # ρ and the time t on T_k's scale (epochs or steps)
                t_k = (step, sel["tk_steps"]) if sel["tk_steps"] else (e + 1, sel["tk"])
                rho = nt.rho_at(t_k[0], sel["noise_rate"], t_k[1])
            tidx = torch.as_tensor(idx, device=dev)
            x = rows.get(idx)
            yb = labels[tidx]
            logits = nets[0](x)
            t = target[tidx] if soft else None
            w = None if weight is None else weight[tidx]
            losses = [None]
            if name == "rdia_ls" and cfg["variant"] == "reference":
                if t_k[0] < t_k[1]:  # the authors' warm-up: small-loss rows only
                    losses[0] = nt.reference_warmup_loss(logits, yb, rho=rho)
                else:
                    losses[0] = nt.rdia_ls_reference_loss(
                        logits, yb, rho=rho, noise_rate=cfg["noise_rate"], gamma=cfg["gamma"])
            elif name == "rdia_ls":
                losses[0] = rdia_ls_loss(logits, yb, rho=rho, gamma=cfg["gamma"], target=t,
                                         weight=w)
            elif name == "self_teaching":
                losses[0] = self_teaching_loss(logits, yb, rho=rho, target=t, weight=w)
            elif name == "co_teaching":
                losses = list(nt.co_teaching_loss(logits, nets[1](x), yb, rho=rho))
            elif name == "sigua":
                losses[0] = nt.sigua_loss(logits, yb, rho=rho, ascent=cfg["ascent"])
            elif name == "f_correction":
                losses[0] = nt.forward_corrected_loss(logits, yb, transition)
            elif name == "s_model":
                losses[0] = nt.s_model_loss(logits, yb, channel)
            else:
                losses[0] = _ce(logits, yb, t, w).mean()
            for o in opts:
                o.zero_grad(set_to_none=True)
            sum(losses).backward()  # the nets share no parameters: one backward for both
            for o in opts:
                o.step()
            total += float(losses[0].detach()) * len(idx)
            count += len(idx)
        epoch_info = {"loss": total / max(count, 1), "lr": lr * factor}
        if rho is not None:
            epoch_info["rho"] = rho
        if mon is not None:
            nets[0].eval()
            mon_acc.append(_accuracy(nets[0], *mon))
            epoch_info["monitor_accuracy"] = mon_acc[-1]
        history.append(epoch_info["loss"])
        if progress is not None:
            progress(e + 1, epochs, epoch_info)
    train_seconds = time.perf_counter() - t0

    net.eval()
    train_loss = _mean_loss(net, rows, target, weight, dev)
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    settings = dict(cfg) if cfg is not None else None
    if settings is not None:
        settings.update(probe_info)
        if channel is not None:
            settings["channel"] = torch.softmax(channel.detach().double(), 1).cpu().tolist()
        if name == "co_teaching":
            settings["saved_network"] = "the first of the two (seed `seed`; the peer had seed+1)"
    training: dict[str, Any] = {
        "epochs": int(epochs), "batch_size": int(batch_size), "lr": float(lr),
        "optimizer": optimizer, "weight_decay": float(weight_decay), "schedule": schedule,
        "seed": int(seed), "rdia_ls": ls, "self_teaching": st,
        "method": "erm" if name is None else name.replace("_", "-"),
        "method_settings": settings, "steps": int(step),
        "init": None if init is None else init.path,
        "soft_targets": bool(soft), "weighted": weight is not None,
    }
    metrics = {"train_loss": train_loss, "epochs_run": int(epochs), "epoch_losses": history,
               "train_seconds": train_seconds}
    if mon is not None:
        metrics["monitor_accuracy"] = mon_acc
    meta = {
        "classes": list(ds.classes),
        "n_features": ds.n_features,
        "input_shape": list(args["input_shape"]),
        "l2": float(weight_decay),
        "train_fingerprint": ds.fingerprint(),
        "training": training,
        "metrics": metrics,
    }
    return ModelFile(arch=arch, arch_args=args, state=state, meta=meta)


def _accuracy(net, rows, y, batch_size: int = 2048) -> float:
    import torch

    right = 0
    with torch.no_grad():
        for a in range(0, rows.n, batch_size):
            sl = slice(a, min(a + batch_size, rows.n))
            right += int((net(rows.get(sl)).argmax(1) == y[sl]).sum())
    return right / rows.n


def _mean_loss(net, rows, target, weight, dev, batch_size: int = 1024) -> float:
    """(1/N) Σ w_i ℓ_i over all rows, eval mode."""
    import torch

    from rdia_cli.models.nets.batches import ce_per_sample

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
def net_from_model(model: ModelFile, dtype, dev):
    import torch

    from rdia_cli.models.nets.arch import NET_ARCHS, build_net

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

    from rdia_cli.models.nets.batches import Rows

    dev = torch_device(device)
    if isinstance(X, Dataset):
        X = X.X
    shape = list(model.arch_args["input_shape"])
    check_rows(X, shape, "The data")
    net = net_from_model(model, torch.float32, dev)
    rows = Rows(X, shape, device=dev, dtype=torch.float32)
    out = np.empty((rows.n, model.arch_args["n_classes"]), dtype=np.float64)
    with torch.no_grad():
        for a in range(0, rows.n, batch_size):
            sl = slice(a, min(a + batch_size, rows.n))
            out[sl] = torch.softmax(net(rows.get(sl)).double(), dim=1).cpu().numpy()
    return out
