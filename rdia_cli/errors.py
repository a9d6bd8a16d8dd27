"""One exception hierarchy; the CLI turns each into a one-line message and an exit code."""


class RdiaError(ValueError):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 2


class InputError(RdiaError):
    """A file, option or value the user gave is wrong (exit code 2)."""


class MismatchError(InputError):
    """Two inputs do not belong together: scores vs data, model vs data (exit code 2)."""


class RuntimeFailure(RdiaError):
    """Valid input, but the computation failed (a solver did not converge...; exit code 1)."""

    exit_code = 1
