"""Every benchmark script has a `--quick` smoke run, and it runs: tiny data, one seed, results in
a scratch folder ($RDIA_BENCH_RESULTS), never in bench/results/. The runs take minutes in all:
`python -m pytest -m bench` (they are skipped otherwise)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if p.name != "benchlib.py")
# extra arguments of the quick run (a positional action, a narrower part of a long quick run)
ARGS = {"bench_deep.py": ["all"], "table6.py": ["run"]}
# scripts whose quick run reads ../shared/data (MNIST, the LIBSVM files)
SHARED = {"bench_deep.py", "table6.py", "paper_tables.py", "tables.py", "dense_scoring.py",
          "detection.py"}


def _is_main_script(path: Path) -> bool:
    return bool(re.search(r'^if __name__ == "__main__":', path.read_text(), flags=re.M))


def test_every_bench_script_has_a_quick_mode():
    missing = [p.name for p in SCRIPTS if _is_main_script(p) and '"--quick"' not in p.read_text()]
    assert not missing, f"bench scripts without --quick: {missing} (see bench/README.md)"


@pytest.mark.slow
@pytest.mark.bench
@pytest.mark.parametrize("script", [
    pytest.param(p, id=p.stem, marks=[pytest.mark.shared_data] if p.name in SHARED else [])
    for p in SCRIPTS if _is_main_script(p)])
def test_quick_run(script, tmp_path):
    env = {**os.environ, "RDIA_BENCH_RESULTS": str(tmp_path / "results"), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, str(script), *ARGS.get(script.name, []), "--quick"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-3000:])
    if "results_dir(" in script.read_text():  # benchlib's results folder: the scratch one here
        assert any((tmp_path / "results").rglob("*")), "the quick run wrote nothing"
