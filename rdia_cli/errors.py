"""One exception hierarchy; the CLI turns each into a one-line message and an exit code."""

from __future__ import annotations

from collections.abc import Collection, Sequence


class RdiaError(ValueError):
    """Base class. ``exit_code`` is what the CLI exits with.

    ``fixes``: what the user may change, as (parameter, advice naming it in backticks) pairs,
    e.g. ``("damping", "raise `damping`")``. The message ends with every advice, joined by
    "or"; the command line keeps only those of parameters the command that was run has
    (:meth:`advice_for`), so that it never suggests a flag the command lacks, and says
    ``otherwise`` when none is left.
    """

    exit_code = 2

    def __init__(self, message: str, *, fixes: Sequence[tuple[str, str]] = (),
                 otherwise: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fixes = tuple(fixes)
        self.otherwise = otherwise

    def advice_for(self, parameters: Collection[str] | None = None) -> str:
        """The message with the fixes of ``parameters`` (None: all of them)."""
        kept = [advice for name, advice in self.fixes
                if parameters is None or name in parameters]
        tail = " or ".join(kept) if kept else self.otherwise
        return f"{self.message}; {tail}." if tail else self.message

    def __str__(self) -> str:
        return self.advice_for(None) if self.fixes or self.otherwise else super().__str__()


class InputError(RdiaError):
    """A file, option or value the user gave is wrong (exit code 2)."""


class MismatchError(InputError):
    """Two inputs do not belong together: scores vs data, model vs data (exit code 2)."""


class RuntimeFailure(RdiaError):
    """Valid input, but the computation failed (a solver did not converge...; exit code 1)."""

    exit_code = 1
