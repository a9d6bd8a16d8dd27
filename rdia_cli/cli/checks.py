"""Option checks made before any work, and the device option."""

from __future__ import annotations

from rdia_cli.errors import InputError


def device_of(name: str):
    from rdia_cli.device import resolve_device

    return resolve_device(name)


def parse_alpha(alpha: str | None) -> float | str | None:
    """--alpha: a number ≥ 0 on the paper's scale, or `auto`."""
    import math

    if alpha is None or alpha == "auto":
        return alpha
    try:
        value = float(alpha)
    except ValueError:
        raise InputError(f"--alpha must be a number ≥ 0 or `auto`, not {alpha!r}.") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"--alpha must be a finite number ≥ 0 (the paper's α, e.g. 0.002) or "
                         f"`auto`, not {alpha}.")
    return value


def check_train_options(*, l2=None, tol=None, max_iter=None, epochs=None, batch_size=None,
                         lr=None, weight_decay=None, noise_rate=None,
                         n_features=None) -> None:
    """The options of `train` (and `retrain`, `run`) checked before any work; None: not given."""
    from rdia_cli import validate as v

    v.non_negative("--l2", l2)
    v.positive("--tol", tol)
    v.positive_int("--max-iter", max_iter)
    v.positive_int("--epochs", epochs)
    v.positive_int("--batch-size", batch_size)
    v.positive("--lr", lr)
    v.non_negative("--weight-decay", weight_decay)
    v.share("--noise-rate", noise_rate)
    v.positive_int("--n-features", n_features)
