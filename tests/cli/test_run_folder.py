"""`rdia run -o DIR` keeps DIR one run: built beside it, swapped in whole under a lock, repaired
after a kill (issue #28)."""

import fcntl
import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rdia_cli.errors import RuntimeFailure
from tests.cli_helpers import ok, rdia
from tests.conftest import write_small_noisy_splits


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """300 rows of LIBSVM, split 200/50/50."""
    return write_small_noisy_splits(tmp_path_factory.mktemp("runfolder"))


def _run(data: Path, out: Path, *more):
    return rdia("run", data / "train.svm", "--val", data / "val.svm", "--test",
                data / "test.svm", "-o", out, "--strategy", "drop", "--alpha", "0.5",
                "--device", "cpu", *more)


def _folder(path: Path) -> dict:
    return {p.name: p.read_bytes() for p in path.iterdir()}


def _beside(out: Path) -> list[str]:
    """The hidden names rdia keeps beside ``out`` (the lock file aside)."""
    return sorted(p.name for p in out.parent.iterdir()
                  if p.name.startswith(f".{out.name}.rdia-") and not p.name.endswith("-lock"))


def _old_run(out: Path) -> dict:
    out.mkdir()
    old = {"erm.pt": b"old model", "scores.parquet": b"old scores", "run.json": b"{}",
           "notes.txt": b"mine"}
    for name, content in old.items():
        (out / name).write_bytes(content)
    return old


def test_a_second_run_on_a_locked_folder_exits_2_naming_the_holder(data, tmp_path):
    out = tmp_path / "run"
    old = _old_run(out)
    with open(tmp_path / ".run.rdia-lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("4242\n")
        lock.flush()
        r = _run(data, out)
    assert r.exit_code == 2, r.stderr
    assert "4242" in r.stderr and "another `rdia run`" in r.stderr
    assert _folder(out) == old and _beside(out) == []
    ok(_run(data, out))  # the lock released, the next run goes


def test_a_stale_staging_folder_is_removed(data, tmp_path):
    out = tmp_path / "run"
    stale = tmp_path / ".run.rdia-staging-999999"
    stale.mkdir()
    (stale / "erm.pt").write_bytes(b"half a model")
    ok(_run(data, out))
    assert _beside(out) == []
    assert json.loads((out / "run.json").read_text())["settings"]["strategy"] == "drop"


@pytest.mark.parametrize("failure", [RuntimeFailure("the solver broke"), KeyboardInterrupt()])
def test_an_interrupted_run_leaves_the_old_run(data, tmp_path, monkeypatch, failure):
    import rdia_cli.pipeline as pl

    def broken(*a, **kw):  # after erm.pt was written into the staging folder
        raise failure

    monkeypatch.setattr(pl.api, "score_model", broken)
    out = tmp_path / "run"
    old = _old_run(out)
    r = _run(data, out)
    assert r.exit_code == (1 if isinstance(failure, RuntimeFailure) else 130), r.stderr
    assert _folder(out) == old and _beside(out) == []
    new = tmp_path / "new"
    assert _run(data, new).exit_code != 0
    assert not new.exists() and _beside(new) == []  # a folder the run would create: never made


def test_a_folder_left_aside_by_a_killed_swap_is_put_back(data, tmp_path, monkeypatch):
    import rdia_cli.pipeline as pl

    out = tmp_path / "run"
    old = _old_run(out)
    out.rename(tmp_path / ".run.rdia-old-999999")  # killed between the swap's two renames
    (tmp_path / ".run.rdia-staging-999999").mkdir()
    monkeypatch.setattr(pl.api, "score_model", lambda *a, **kw: 1 / 0)
    assert _run(data, out).exit_code != 0
    assert _folder(out) == old and _beside(out) == []


def test_an_old_folder_beside_a_swapped_one_is_removed(data, tmp_path):
    out = tmp_path / "run"
    _old_run(out)
    aside = tmp_path / ".run.rdia-old-999999"  # killed after the swap, before the clean-up
    aside.mkdir()
    (aside / "erm.pt").write_bytes(b"older")
    ok(_run(data, out))
    assert _beside(out) == [] and (out / "notes.txt").read_bytes() == b"mine"


def test_a_legacy_previous_run_folder_is_put_back(data, tmp_path, monkeypatch):
    import rdia_cli.pipeline as pl

    out = tmp_path / "run"
    old = _old_run(out)
    saved = out / ".rdia-previous-run.abc"  # an older rdia, killed mid-run
    saved.mkdir()
    for name in ("erm.pt", "scores.parquet", "run.json"):  # it moved every run file aside
        (out / name).rename(saved / name)
    (out / "erm.pt").write_bytes(b"half-built")
    monkeypatch.setattr(pl.api, "score_model", lambda *a, **kw: 1 / 0)
    assert _run(data, out).exit_code != 0
    assert _folder(out) == old


def test_the_swap_keeps_permissions_and_your_files(data, tmp_path):
    out = tmp_path / "run"
    _old_run(out)
    (out / "sub").mkdir()
    (out / "sub" / "a.txt").write_text("kept")
    (out / "link.txt").symlink_to("notes.txt")
    os.chmod(out / "erm.pt", 0o600)
    os.chmod(out / "notes.txt", 0o640)
    os.chmod(out, 0o750)
    ok(_run(data, out))
    mode = lambda p: stat.S_IMODE(os.lstat(p).st_mode)  # noqa: E731
    assert mode(out) == 0o750
    assert mode(out / "erm.pt") == 0o600 and mode(out / "notes.txt") == 0o640
    assert (out / "erm.pt").read_bytes()[:4] == b"PK\x03\x04"
    assert (out / "sub" / "a.txt").read_text() == "kept"
    assert os.readlink(out / "link.txt") == "notes.txt"


def test_run_into_the_working_folder(data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    _old_run(out)
    monkeypatch.chdir(out)
    ok(_run(data, Path(".")))
    assert Path("notes.txt").read_bytes() == b"mine" and Path("run.json").stat().st_size > 2


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_one_whole_run(data, tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "rdia_cli", "run", str(data / "train.svm"), "--val",
            str(data / "val.svm"), "--test", str(data / "test.svm"), "-o", str(out),
            "--strategy", "drop", "--alpha", "0.5", "--device", "cpu"]
    done = subprocess.run(args + ["--seed", "0"], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    t0 = time.perf_counter()
    subprocess.run(args + ["--seed", "1"], capture_output=True, timeout=120, check=True)
    span = time.perf_counter() - t0
    rng = random.Random(0)
    outcomes = []
    for k in range(20):  # issue #28: a loop of 20 tries
        before = (out / "run.json").read_text()
        p = subprocess.Popen(args + ["--seed", str(k + 2)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3 * span, 1.1 * span))
        p.send_signal(signal.SIGKILL)
        p.wait()
        after = (out / "run.json").read_text()
        seed = json.loads(after)["settings"]["seed"]
        assert after == before or seed == k + 2, (k, seed)
        outcomes.append("old" if after == before else "new")
        names = set(os.listdir(out))
        assert {"erm.pt", "scores.parquet", "metrics.json", "run.json"} <= names
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["models"][0]["name"] == "erm"
    ok(_run(data, out))  # the next run repairs whatever the last kill left
    assert _beside(out) == [], outcomes
