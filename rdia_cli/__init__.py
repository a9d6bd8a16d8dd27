"""rdia: repair classification training data with influence-based relabeling.

The public API is small and flat. Importing this package does not import torch;
the functions that need it import it when called.

Sign and scale of the influence Φ (``phi``) used everywhere: see ``rdia_cli.glossary``.
"""

__version__ = "0.1.0"

from rdia_cli.errors import InputError, MismatchError, RdiaError, RuntimeFailure

__all__ = ["RdiaError", "InputError", "MismatchError", "RuntimeFailure", "__version__"]
