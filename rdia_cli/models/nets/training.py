"""Neural networks: training (ERM, RDIA-LS, self-teaching and the other noisy-label methods of
``rdia_cli.models.nets.noisy``) and prediction; their influence scores are
``rdia_cli.influence.nets.score_net``.

Public functions (all keyword options after ``*``; the library never prints, progress goes through
a callback ``progress(step, total, info_dict)``):

* ``train_net(ds, *, arch, ...) -> ModelFile`` (keyword form) and ``fit_net(ds, *, arch,
  settings, method, ...)`` (``NetSettings`` and a ``noisy.Method``)
* ``predict_proba_net(model, X, ...) -> (N, K) float64``
The per-batch losses (``rdia_ls_loss``, the paper's App. F, and the others) are in ``noisy``.

Training objective (mean-loss normalization, ``rdia_cli.glossary``):
(1/B) Σ_i w_i ℓ(t_i, p_i) per mini-batch of B rows, plus (λ/2)‖θ‖² through the optimizer's coupled
``weight_decay`` λ (Adam/SGD add λθ to the gradient), so the same λ goes into the Hessian.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar, NamedTuple

import numpy as np

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError, MismatchError
from rdia_cli.models.io import ModelFile
from rdia_cli.models.nets import noisy as nt

__all__ = [
    "NetSettings", "OPTIMIZERS", "SCHEDULES", "check_choice", "check_rows", "fit_net",
    "net_from_model", "predict_proba_net", "settings_from_options", "target_tensor",
    "torch_device", "train_net",
]

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


# --- settings -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class NetSettings:
    """How a network is trained, the method aside (``rdia_cli.models.nets.noisy``).

    ``schedule="paper"`` keeps ``lr`` for 40% of the epochs then decays it linearly to 0 and, for
    Adam, sets β1 to 0.1 in the decay phase (as the paper's and Co-teaching's code do).
    ``arch_args`` are the network's (``rdia_cli.models.nets.arch``); None takes the defaults.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "none"
    seed: int = 0
    arch_args: dict | None = None

    KEYS: ClassVar[tuple[str, ...]] = ("epochs", "batch_size", "lr", "optimizer",
                                       "weight_decay", "schedule", "seed")

    def __post_init__(self):
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0 or self.weight_decay < 0:
            raise InputError(
                f"Need epochs ≥ 0, batch_size ≥ 1, lr > 0, weight_decay ≥ 0; got "
                f"epochs={self.epochs}, batch_size={self.batch_size}, lr={self.lr}, "
                f"weight_decay={self.weight_decay}."
            )

    def record(self) -> dict[str, Any]:
        """The first keys of ``meta["training"]``."""
        return {"epochs": int(self.epochs), "batch_size": int(self.batch_size),
                "lr": float(self.lr), "optimizer": self.optimizer,
                "weight_decay": float(self.weight_decay), "schedule": self.schedule,
                "seed": int(self.seed)}


def settings_from_options(options: dict | None, *, n_classes: int
                          ) -> tuple[NetSettings, nt.Method]:
    """(settings, method) from the dict form of ``rdia train``'s options
    (``rdia_cli.cli.options.net_options``) and of ``train_net``'s keyword arguments:
    ``NetSettings.KEYS``, ``arch_args`` and at most one method key (``noisy.OPTION_KEYS``)."""
    opts = dict(options or {})
    unknown = set(opts) - set(NetSettings.KEYS) - {"arch_args"} - set(nt.OPTION_KEYS)
    if unknown:
        raise InputError(f"Unknown network training settings {sorted(unknown)}; allowed: "
                         f"{sorted([*NetSettings.KEYS, 'arch_args', *nt.OPTION_KEYS])}.")
    settings = NetSettings(**{k: opts[k] for k in (*NetSettings.KEYS, "arch_args") if k in opts})
    method = nt.method_from_options({k: opts.get(k) for k in nt.OPTION_KEYS},
                                    n_classes=n_classes, epochs=settings.epochs)
    return settings, method


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
    """Train ``arch`` on ``ds`` by mini-batch Adam/SGD; returns a ``ModelFile``. The keyword
    form of ``fit_net``: the settings are ``NetSettings``', the method dicts are
    ``rdia_cli.models.nets.noisy``'s (at most one; none is ERM):

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

    ρ = 1 - min(t·τ/T_k, τ) (``noisy.rho_at``). ``tk`` counts epochs of the data at hand
    (t = epoch from 1; ρ fixed per epoch). ``tk_steps`` counts optimizer steps instead (t = step
    from 1; ρ updated every step), so a subset and the full set get the same schedule per step;
    the paper's T_k = 10 epochs of 60,000 rows at batch 128 is ``tk_steps`` = 4690
    (``noisy.PAPER_TK_STEPS``).
    """
    options = {"arch_args": arch_args, "epochs": epochs, "batch_size": batch_size, "lr": lr,
               "optimizer": optimizer, "weight_decay": weight_decay, "schedule": schedule,
               "seed": seed, "rdia_ls": rdia_ls, "self_teaching": self_teaching,
               "co_teaching": co_teaching, "sigua": sigua, "f_correction": f_correction,
               "s_model": s_model}
    settings, method = settings_from_options(options, n_classes=ds.n_classes)
    return fit_net(ds, arch=arch, settings=settings, method=method, device=device, init=init,
                   monitor=monitor, progress=progress)


def fit_net(ds: Dataset, *, arch: str, settings: NetSettings = NetSettings(),
            method: nt.Method | None = None, device="cpu", init: ModelFile | None = None,
            monitor: Dataset | None = None,
            progress: Callable[[int, int, dict], None] | None = None) -> ModelFile:
    """Train ``arch`` on ``ds`` with ``method`` (default ERM) under ``settings``.

    Honours ``ds.target`` (soft labels: CE = -Σ t_k log p_k) and ``ds.weight``. ``init``
    warm-starts from a previous model of the same architecture (``rdia retrain``). Deterministic
    on CPU for a fixed seed (private generators; the global RNG is not touched). ``monitor``: a
    labelled Dataset scored after every epoch (accuracy in the progress info and in
    ``meta["metrics"]["monitor_accuracy"]``), e.g. the test set for the paper's metric.
    """
    import torch

    from rdia_cli.models.nets.arch import build_net

    method = nt.Erm() if method is None else method
    if ds.n_samples == 0:
        raise InputError(f"Training data {ds.source} has no rows.")
    method.check(ds, init)
    if monitor is not None and (monitor.n_samples == 0 or monitor.n_classes != ds.n_classes):
        raise InputError(f"`monitor` data {monitor.source} must have rows and the training "
                         f"data's {ds.n_classes} classes.")
    if method.tunes_gamma:
        return _tune_gamma(ds, method, arch=arch, settings=settings, device=device, init=init,
                           monitor=monitor, progress=progress)
    dev = torch_device(device)
    args = _net_args(ds, arch, settings.arch_args, init)
    run = nt.NetRun(
        ds=ds, dev=dev, seed=settings.seed,
        build=lambda s: build_net(arch, args, seed=s).to(dev),
        fit_erm=lambda e, s: fit_net(ds, arch=arch, device=device, init=init, settings=replace(
            settings, epochs=e, schedule="none", seed=s)),
        predict=lambda m: predict_proba_net(m, ds.X, device=dev))
    method.prepare(run)
    net = build_net(arch, args, seed=settings.seed)
    if init is not None:
        net.load_state_dict({k: torch.as_tensor(v) for k, v in init.state.items()})
    nets = [net.to(dev), *method.peers(run)]
    data = _Tensors.of(ds, monitor, args["input_shape"], dev)
    t0 = time.perf_counter()
    steps, history, mon_acc = _epochs(nets, method, settings, data, progress)
    train_seconds = time.perf_counter() - t0
    net.eval()
    metrics = {"train_loss": _mean_loss(net, data.rows, data.target, data.weight, dev),
               "epochs_run": int(settings.epochs), "epoch_losses": history,
               "train_seconds": train_seconds}
    if data.monitor is not None:
        metrics["monitor_accuracy"] = mon_acc
    ls, st = method.legacy()
    training: dict[str, Any] = {
        **settings.record(), "rdia_ls": ls, "self_teaching": st, "method": method.name,
        "method_settings": method.record(), "steps": int(steps),
        "init": None if init is None else init.path,
        "soft_targets": data.target.dim() == 2, "weighted": data.weight is not None,
    }
    meta = {"classes": list(ds.classes), "n_features": ds.n_features,
            "input_shape": list(args["input_shape"]), "l2": float(settings.weight_decay),
            "train_fingerprint": ds.fingerprint(), "training": training, "metrics": metrics}
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    return ModelFile(arch=arch, arch_args=args, state=state, meta=meta)


def _tune_gamma(ds: Dataset, method: nt.RdiaLs, *, arch: str, settings: NetSettings, device,
                init, monitor, progress) -> ModelFile:
    """RDIA-LS with ``gamma="auto"``: γ chosen on held-out rows (see ``train_net``), then all
    rows trained with it; the choice is recorded in ``method_settings``."""
    s = method.settings
    fit_rows, held = nt.holdout_split(ds.n_samples, s.gamma_holdout, settings.seed)
    fit_ds, held_ds = ds.subset(fit_rows), ds.subset(held)

    def fit(g):
        return fit_net(fit_ds, arch=arch, settings=settings, method=method.with_gamma(g),
                       device=device, init=init)

    def score(m):
        return float((predict_proba_net(m, held_ds.X, device=device).argmax(1)
                      == held_ds.y).mean())

    best, table = nt.tune_gamma(fit, score, s.gamma_grid)
    model = fit_net(ds, arch=arch, settings=settings, method=method.with_gamma(best),
                    device=device, init=init, monitor=monitor, progress=progress)
    tr = model.meta["training"]
    tr["rdia_ls"]["gamma_auto"] = True
    tr["method_settings"].update(gamma="auto", gamma_chosen=best, gamma_grid=list(s.gamma_grid),
                                 gamma_holdout=s.gamma_holdout, gamma_scores=table,
                                 gamma_score="accuracy on the held-out rows' given labels")
    return model


def _net_args(ds: Dataset, arch: str, arch_args: dict | None, init: ModelFile | None) -> dict:
    """The network's complete ``arch_args``: ``init``'s when warm-starting (``arch_args`` may
    only repeat them), else ``arch_args`` completed for ``ds``; checked against ``ds``."""
    from rdia_cli.models.nets.arch import IMAGE_INPUT, complete_arch_args

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
        default_shape = _input_shape(ds.X) if IMAGE_INPUT.get(arch, True) else [ds.n_features]
        args = complete_arch_args(arch, arch_args, input_shape=default_shape,
                                  n_classes=ds.n_classes)
    if args["n_classes"] != ds.n_classes:
        raise MismatchError(
            f"The network has {args['n_classes']} outputs but {ds.source} has {ds.n_classes} "
            "classes."
        )
    check_rows(ds.X, args["input_shape"], f"Training data {ds.source}")
    return args


class _Tensors(NamedTuple):
    """The training rows, targets (class ids, or (N, K) soft), labels, weights and the
    optional monitor rows and labels, on the device."""

    rows: Any
    target: Any
    labels: Any
    weight: Any
    monitor: tuple | None

    @classmethod
    def of(cls, ds: Dataset, monitor: Dataset | None, input_shape, dev) -> _Tensors:
        import torch

        from rdia_cli.models.nets.batches import Rows

        rows = Rows(ds.X, input_shape, device=dev, dtype=torch.float32)
        target = target_tensor(ds, torch.float32, dev)
        labels = torch.as_tensor(ds.y, dtype=torch.long, device=dev)
        weight = None if ds.weight is None else torch.as_tensor(
            np.asarray(ds.weight, dtype=np.float32), device=dev)
        mon = None
        if monitor is not None:
            check_rows(monitor.X, input_shape, f"Monitor data {monitor.source}")
            mon = (Rows(monitor.X, input_shape, device=dev, dtype=torch.float32),
                   torch.as_tensor(monitor.y, dtype=torch.long, device=dev))
        return cls(rows, target, labels, weight, mon)


def _optimizers(nets: list, method: nt.Method, s: NetSettings) -> list:
    """One optimizer per network; the first also takes the method's extra parameters (without
    weight decay)."""
    import torch

    def make(params, extra=()):
        groups = [{"params": params}] + [{"params": list(extra), "weight_decay": 0.0}] \
            if extra else [{"params": params}]
        if s.optimizer == "adam":
            return torch.optim.Adam(groups, lr=s.lr, weight_decay=s.weight_decay)
        return torch.optim.SGD(groups, lr=s.lr, momentum=0.9, weight_decay=s.weight_decay)

    return [make(list(nets[0].parameters()), method.extra_params()),
            *(make(list(m.parameters())) for m in nets[1:])]


def _epochs(nets: list, method: nt.Method, s: NetSettings, data: _Tensors,
            progress) -> tuple[int, list, list]:
    """The training loop; returns (optimizer steps, loss per epoch, monitor accuracy per
    epoch)."""
    import torch

    opts = _optimizers(nets, method, s)
    has_bn = any(isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d)
                 for m in nets[0].modules())
    gen = torch.Generator().manual_seed(int(s.seed))
    n, dev = data.rows.n, data.labels.device
    soft = data.target.dim() == 2
    history, mon_acc = [], []
    step = 0
    for e in range(s.epochs):
        factor, decaying = _lr_factor(s.schedule, e, s.epochs)
        for o in opts:
            for g in o.param_groups:
                g["lr"] = s.lr * factor
                if s.optimizer == "adam":
                    g["betas"] = (0.1 if decaying else 0.9, 0.999)
        for m in nets:
            m.train()
        perm = torch.randperm(n, generator=gen).numpy()
        method.rho = None
        total, count = 0.0, 0
        for a in range(0, n, s.batch_size):
            idx = np.sort(perm[a:a + s.batch_size])
            if len(idx) < 2 and has_bn:
                continue  # BatchNorm cannot train on a batch of one row
            step += 1
            method.start_step(e, step)
            tidx = torch.as_tensor(idx, device=dev)
            x = data.rows.get(idx)
            labels = data.labels[tidx]
            logits = nets[0](x)
            losses = method.loss(nt.Batch(
                x, logits, labels, data.target[tidx] if soft else None,
                None if data.weight is None else data.weight[tidx]))
            for o in opts:
                o.zero_grad(set_to_none=True)
            sum(losses).backward()  # the nets share no parameters: one backward for all
            for o in opts:
                o.step()
            total += float(losses[0].detach()) * len(idx)
            count += len(idx)
        info = {"loss": total / max(count, 1), "lr": s.lr * factor}
        if method.rho is not None:
            info["rho"] = method.rho
        if data.monitor is not None:
            nets[0].eval()
            mon_acc.append(_accuracy(nets[0], *data.monitor))
            info["monitor_accuracy"] = mon_acc[-1]
        history.append(info["loss"])
        if progress is not None:
            progress(e + 1, s.epochs, info)
    return step, history, mon_acc


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

    from rdia_cli.models.kinds import KINDS, Net
    from rdia_cli.models.nets.arch import build_net

    if not isinstance(KINDS.get(model.arch), Net):
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
