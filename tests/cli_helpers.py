"""Run `rdia` in-process the way the tests do: ``rdia(*args)`` with any path-like arguments,
``ok(result)`` asserts exit code 0 and shows stdout/stderr when it is not."""

from typer.testing import CliRunner

from rdia_cli.cli import app

runner = CliRunner()


def rdia(*args, **kw):
    return runner.invoke(app, [str(a) for a in args], **kw)


def ok(result):
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result
