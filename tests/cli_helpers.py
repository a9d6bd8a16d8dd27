"""Run `rdia` in-process the way the tests do: ``rdia(*args)`` with any path-like arguments,
``ok(result)`` asserts exit code 0 and shows stdout/stderr when it is not; ``shell(cmd, cwd)``
runs a command line as a user types it, in a subprocess."""

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from rdia_cli.cli import app

runner = CliRunner()


def rdia(*args, **kw):
    return runner.invoke(app, [str(a) for a in args], **kw)


def ok(result):
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def shell(cmd: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """A command line as a user types it, with `rdia` as this interpreter's module."""
    exe = f"{sys.executable} -m rdia_cli"
    return subprocess.run(cmd.replace("rdia ", exe + " "), shell=True, cwd=cwd,
                          capture_output=True, timeout=timeout)
