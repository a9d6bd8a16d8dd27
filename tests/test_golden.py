"""bench/golden.sh (the behaviour snapshot of issue #20) runs on this tree: every step it records
exits as expected, and it writes its file list. About 4 minutes on 2 cores, so it runs only with
`python -m pytest -m golden`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cuda() -> bool:
    res = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                         capture_output=True, text=True)
    return res.stdout.strip() == "True"


@pytest.mark.slow
@pytest.mark.golden
def test_golden_script_runs(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    res = subprocess.run(["bash", str(ROOT / "bench" / "golden.sh"), str(ROOT), str(out)],
                         env={**os.environ, "RDIA_GOLDEN_WORK": str(work)},
                         capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (out / "zz-files.txt").read_text().strip()
    rcs = {p.name[:-3]: int(p.read_text()) for p in out.glob("*.rc")}
    assert len(rcs) > 40, sorted(rcs)
    for f in out.glob("*.out"):  # every step that wrote output recorded its exit code
        assert f.with_suffix(".rc").exists(), f.name
    expected = {name: 2 if name.split("-", 1)[1].startswith("err-") else 0 for name in rcs}
    if _cuda():  # `--device cuda` works here
        expected = {n: 0 if n.endswith("-err-cuda") else rc for n, rc in expected.items()}
    wrong = {name: (rcs[name], rc) for name, rc in expected.items() if rcs[name] != rc}
    assert not wrong, {n: (got, want, (out / f"{n}.err").read_text()[-500:])
                       for n, (got, want) in wrong.items()}
