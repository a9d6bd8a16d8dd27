"""Run `rdia` in-process the way the tests do: ``rdia(*args)`` with any path-like arguments,
``ok(result)`` asserts exit code 0 and shows stdout/stderr when it is not; ``shell(cmd, cwd)``
runs a command line as a user types it, in a subprocess; ``probe(args, cwd, modules)`` runs it in
a fresh interpreter and says which of ``modules`` it imported."""

import json
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


# run the CLI in a fresh interpreter, then list which of the given modules it imported
_PROBE = """
import json, runpy, sys
modules, sys.argv = json.loads(sys.argv[1]), ["rdia", *json.loads(sys.argv[2])]
code = 0
try:
    runpy.run_module("rdia_cli", run_name="__main__")
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else 1
print(json.dumps({"code": code, "imported": sorted(m for m in modules if m in sys.modules)}),
      file=sys.stderr)
"""


def probe(args, cwd, modules=("torch", "sklearn", "scipy", "pandas"), timeout: float = 120):
    """``rdia *args`` in a fresh interpreter: ({"code": exit code, "imported": which of
    ``modules`` it imported}, stdout, the rest of stderr)."""
    res = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(list(modules)),
                          json.dumps([str(a) for a in args])],
                         capture_output=True, text=True, cwd=cwd, timeout=timeout)
    *said, last = res.stderr.strip().splitlines()
    return json.loads(last), res.stdout, "\n".join(said)
