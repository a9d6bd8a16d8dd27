"""The `rdia` command line (the top layer): options, files, printing and exit codes, no math.

``app`` is the Typer application and ``main`` its entry point. Each command lives in
``rdia_cli.cli.commands``; importing them below registers them on ``app`` in the order that
``rdia --help`` lists them (so the imports are not sorted).
"""
# ruff: noqa: I001, F401

from rdia_cli.cli.core import app, main
from rdia_cli.cli.commands import train
from rdia_cli.cli.commands import score
from rdia_cli.cli.commands import relabel
from rdia_cli.cli.commands import issues
from rdia_cli.cli.commands import apply
from rdia_cli.cli.commands import retrain
from rdia_cli.cli.commands import evaluate
from rdia_cli.cli.commands import protocol
from rdia_cli.cli.commands import report
from rdia_cli.cli.commands import run
from rdia_cli.cli.commands import synth

__all__ = ["app", "main"]
