"""The network options of `train`, `retrain` and `run` as the dict the library takes."""

from __future__ import annotations

from pathlib import Path

from rdia_cli.errors import InputError


def _read_transition(path: Path):
    """A K×K matrix from .npy, or text/CSV with K rows of K numbers (comma or blank separated)."""
    import numpy as np

    if not path.exists():
        raise InputError(f"--transition file {path} does not exist.")
    try:
        if path.suffix == ".npy":
            T = np.load(path, allow_pickle=False)
        else:
            text = path.read_text().replace(",", " ")
            T = np.array([[float(v) for v in line.split()] for line in text.splitlines()
                          if line.strip() and not line.lstrip().startswith("#")])
    except (ValueError, OSError) as e:
        raise InputError(f"--transition file {path} is not a numeric K×K matrix ({e}).") from None
    if T.ndim != 2 or T.shape[0] != T.shape[1]:
        raise InputError(f"--transition file {path} holds a {T.shape} array; it must be K×K "
                         "(row i = P(given label | true class i)).")
    return T.tolist()


MAX_HIDDEN = 1_000_000  # units in one hidden layer


def hidden_sizes(hidden: str) -> list[int]:
    """--hidden's comma-separated layer sizes, each 1 to ``MAX_HIDDEN``."""
    try:
        sizes = [int(h) for h in hidden.split(",") if h.strip()]
    except ValueError:
        raise InputError(f"--hidden must be comma-separated integers, not {hidden!r}.") from None
    bad = [h for h in sizes if not 1 <= h <= MAX_HIDDEN]
    if bad or not sizes:
        raise InputError(f"--hidden {hidden!r}: each layer size must be 1 to {MAX_HIDDEN:,}"
                         + (f", not {bad[0]:,}" if bad else "") + " (e.g. --hidden 256,128).")
    return sizes


def net_options(epochs, batch_size, lr, optimizer, weight_decay, schedule, seed, hidden,
                 rdia_ls, self_teaching, noise_rate, gamma, tk, method=None,
                 rdia_ls_variant="paper", tk_steps=None, transition=None, sigua_ascent=0.01,
                 estimate_epochs=None) -> dict:
    from rdia_cli.models.nets.noisy import METHODS, RDIA_LS_VARIANTS

    if epochs is None:  # the paper's preset: 200 epochs with --schedule paper
        epochs = 200 if schedule == "paper" else 10
    opts = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": optimizer,
            "weight_decay": weight_decay, "schedule": schedule, "seed": seed}
    if hidden:
        opts["arch_args"] = {"hidden": hidden_sizes(hidden)}
    if rdia_ls and self_teaching:
        raise InputError("--rdia-ls and --self-teaching are alternatives; give one.")
    flag = "rdia-ls" if rdia_ls else "self-teaching" if self_teaching else None
    if method is not None:
        if method not in METHODS:
            raise InputError(f"--method must be one of {', '.join(METHODS)}; got {method!r}.")
        if flag is not None and flag != method:
            raise InputError(f"--{flag} and --method {method} disagree; give one of them.")
    method = method or flag or "erm"
    if isinstance(gamma, str) and gamma.strip().lower() == "auto":
        gamma = "auto"
    else:
        try:
            gamma = float(gamma)
        except (TypeError, ValueError):
            raise InputError(f"--gamma must be a number in [0, 1] or 'auto'; got {gamma!r}.") from None
        if not 0.0 <= gamma <= 1.0:
            raise InputError(f"--gamma must be in [0, 1] or 'auto'; got {gamma}.")
    if rdia_ls_variant not in RDIA_LS_VARIANTS:
        raise InputError(f"--rdia-ls-variant must be one of {', '.join(RDIA_LS_VARIANTS)}; got "
                         f"{rdia_ls_variant!r}.")
    if rdia_ls_variant != "paper" and method != "rdia-ls":
        raise InputError("--rdia-ls-variant applies to RDIA-LS only; add --rdia-ls.")
    if tk < 1 or (tk_steps is not None and tk_steps < 1):
        raise InputError(f"--tk and --tk-steps must be ≥ 1; got {tk} and {tk_steps}.")
    if not 0.0 <= sigua_ascent <= 1.0:
        raise InputError(f"--sigua-ascent must be in [0, 1]; got {sigua_ascent}.")
    if estimate_epochs is not None and estimate_epochs < 1:
        raise InputError(f"--estimate-epochs must be ≥ 1; got {estimate_epochs}.")
    if transition is not None and method not in ("f-correction", "s-model"):
        raise InputError("--transition is for --method f-correction (the known T) or s-model "
                         "(the channel's start).")
    selects = ("rdia-ls", "self-teaching", "co-teaching", "sigua")
    if method in selects:
        if noise_rate is None:
            if method in ("rdia-ls", "self-teaching"):
                raise InputError("--rdia-ls and --self-teaching need --noise-rate τ (the "
                                 "expected noise).")
            raise InputError(f"--method {method} needs --noise-rate τ (the expected noise).")
        sel = {"noise_rate": noise_rate, "tk": tk}
        if tk_steps is not None:
            sel["tk_steps"] = tk_steps
        if method == "rdia-ls":
            sel["gamma"] = gamma
            if rdia_ls_variant != "paper":
                sel["variant"] = rdia_ls_variant
        if method == "sigua":
            sel["ascent"] = sigua_ascent
        opts[method.replace("-", "_")] = sel
    elif method in ("f-correction", "s-model"):
        cfg = {} if estimate_epochs is None else {"estimate_epochs": estimate_epochs}
        if transition is not None:
            cfg["transition" if method == "f-correction" else "init"] = _read_transition(transition)
        opts[method.replace("-", "_")] = cfg
    return opts
