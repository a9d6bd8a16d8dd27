"""Option values checked before any work: NaN, ±inf, negative and out-of-range values are an
``InputError`` (exit code 2) naming the option, the rule and the value given.

Every check lets ``None`` through (an option left at its default of "choose for me").
"""

from __future__ import annotations

import math

from rdia_cli.errors import InputError


def finite(name: str, value: float | None) -> None:
    """Refuse NaN and ±inf."""
    if value is not None and not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, not {value}.")


def check_number(name: str, value: float | None, *, low: float | None = None,
                 high: float | None = None, open_low: bool = False,
                 open_high: bool = False) -> None:
    """Refuse NaN, ±inf and values outside [low, high] (``open_low``/``open_high``: exclude
    that end)."""
    if value is None:
        return
    finite(name, value)
    if low is not None and (value < low or (open_low and value == low)):
        raise InputError(f"{name} must be {'above' if open_low else 'at least'} {low:g}, "
                         f"not {value:g}.")
    if high is not None and (value > high or (open_high and value == high)):
        raise InputError(f"{name} must be {'below' if open_high else 'at most'} {high:g}, "
                         f"not {value:g}.")


def check_int(name: str, value: int | None, *, low: int, high: int | None = None) -> None:
    """Refuse integers below ``low`` (or above ``high``)."""
    if value is None:
        return
    if value < low:
        raise InputError(f"{name} must be at least {low}, not {value}.")
    if high is not None and value > high:
        raise InputError(f"{name} must be at most {high}, not {value}.")


def positive(name: str, value: float | None) -> None:
    """A finite number > 0 (a learning rate, a tolerance)."""
    check_number(name, value, low=0.0, open_low=True)


def non_negative(name: str, value: float | None) -> None:
    """A finite number ≥ 0 (λ, damping, weight decay)."""
    check_number(name, value, low=0.0)


def positive_int(name: str, value: int | None) -> None:
    """An integer ≥ 1 (iterations, epochs, a batch size)."""
    check_int(name, value, low=1)


def share(name: str, value: float | None, *, open_low: bool = False) -> None:
    """A share in [0, 1) (``open_low``: (0, 1))."""
    check_number(name, value, low=0.0, high=1.0, open_low=open_low, open_high=True)
