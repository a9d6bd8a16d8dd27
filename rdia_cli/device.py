"""Turn ``--device`` into a torch device, with a clear error when CUDA is missing."""

from __future__ import annotations

import contextlib

from rdia_cli.errors import InputError


def resolve_device(name: str = "auto"):
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(
                f"--device {name} was asked for but no CUDA device is available "
                "(torch.cuda.is_available() is False); use --device cpu or auto."
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible."
            )
        return dev
    raise InputError(f"`device` must be auto, cpu, cuda or cuda:N, not {name!r}.")


SMALL_WORK = 4_000_000  # below this many matrix elements one thread beats several


@contextlib.contextmanager
def threads_for(n_elements: int):
    """Run small problems on one CPU thread: thread start-up and barriers cost more than they
    save on tiny matrices (10× slower when the machine is busy). Large problems are untouched."""
    import torch

    if n_elements >= SMALL_WORK:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
