"""The README runs as written: its library example, and its ```bash blocks of `rdia` commands on
breast-cancer files written here (train.svm, val.svm, test.svm). The commands are read from the
README each time, so a changed command is the one that runs."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
GIVEN = ("train.svm", "val.svm", "test.svm")  # the files the tests write (conftest.cancer_svm)
OUTPUT_OPTIONS = ("-o", "--json")  # options whose value is a file or folder a command writes
PATH_LIKE = re.compile(r"[\w./-]+\.(svm|parquet|pt|csv|txt|json|png|html|gz)$|.*/.*")


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def bash_commands() -> list[list[str]]:
    """The README's ```bash blocks, each as its command lines (continuations joined, comments
    dropped)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    out = []
    for block in blocks:
        lines = (re.sub(r"(^|\s)#.*$", "", line).strip()
                 for line in block.replace("\\\n", " ").splitlines())
        out.append([" ".join(line.split()) for line in lines if line])
    return out


def inputs_and_outputs(command: str) -> tuple[set[str], set[str]]:
    """The paths a command line reads and writes (`-o`/`--json` values are written)."""
    tokens = [t for t in shlex.split(command) if t != "|"]
    outputs = {tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t in OUTPUT_OPTIONS}
    inputs = {t for t in tokens if PATH_LIKE.fullmatch(t) and not t.startswith("-")} - outputs
    return inputs, outputs


def runnable_blocks() -> list[list[str]]:
    """The blocks made only of `rdia` commands whose inputs are the given files or what earlier
    runnable blocks wrote (a path inside a written folder counts)."""
    have: set[str] = set(GIVEN)
    picked = []
    for block in bash_commands():
        if not block or not all(part.strip().startswith("rdia ")
                                for c in block for part in c.split("|")):
            continue
        needed, written = set(), set()
        for c in block:
            ins, outs = inputs_and_outputs(c)
            needed |= ins - written
            written |= outs
        if all(p in have or any(p.startswith(w.rstrip("/") + "/") for w in have)
               for p in needed):
            picked.append(block)
            have |= written
    return picked


@pytest.mark.slow
def test_readme_library_example_runs(tmp_path):
    blocks = python_blocks()
    assert len(blocks) == 1 and "import rdia_cli as rdia" in blocks[0]
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    shutil.copy(fixtures / "credit.csv", tmp_path / "train.csv")
    shutil.copy(fixtures / "credit_val.csv", tmp_path / "val.csv")
    res = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "customer_id" in res.stdout  # the harmful rows, named by the user's ID
    cleaned = pd.read_csv(tmp_path / "cleaned.csv")
    given = pd.read_csv(tmp_path / "train.csv")
    assert list(cleaned.columns[:len(given.columns)]) == list(given.columns)
    assert (cleaned["good_credit"] != given["good_credit"]).sum() == cleaned["relabeled"].sum() > 0
    before, after = map(float, res.stdout.strip().splitlines()[-1].split())
    assert np.isfinite(before) and np.isfinite(after)
    assert after < before  # relabeling the top 10% by Φ lowers the validation loss here


def test_readme_bash_blocks_are_found():
    """The shell test below runs the pipeline, the pipe and `rdia run` (if the README stops
    having one of them, or the parser stops finding it, this says so)."""
    commands = [c for block in runnable_blocks() for c in block]
    assert any(c.startswith("rdia train ") for c in commands)
    assert any(c.startswith("rdia evaluate ") for c in commands)
    assert any("| rdia relabel" in c for c in commands)
    assert any(c.startswith("rdia run ") for c in commands)


@pytest.mark.slow
def test_readme_shell_commands_run(tmp_path, cancer_svm):
    """Each runnable block, in README order, in one folder as a user would, through an `rdia`
    on PATH that is this interpreter's rdia_cli."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "rdia"
    shim.write_text(f"#!{sys.executable}\nfrom rdia_cli.cli import main\nmain()\n")
    shim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    for name in GIVEN:
        shutil.copy(cancer_svm / name, work)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1"}
    for block in runnable_blocks():
        for command in block:
            res = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=work, env=env,
                                 capture_output=True, text=True, timeout=300)
            assert res.returncode == 0, (command, res.stdout, res.stderr)
            for out in inputs_and_outputs(command)[1]:
                assert (work / out).exists(), (command, out)
