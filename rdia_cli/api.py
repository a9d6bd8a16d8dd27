"""The five stages under their old module name: ``rdia_cli.api`` re-exports ``rdia_cli.stages``
(prefer ``import rdia_cli`` and its flat API, or ``rdia_cli.stages``)."""

from rdia_cli.stages import *  # noqa: F403
from rdia_cli.stages import __all__  # noqa: F401
