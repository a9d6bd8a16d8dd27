"""`rdia inspect` and `rdia report` on real run folders: files, numbers, self-containment."""

import base64
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from rdia_cli import report
from tests.cli_helpers import ok, rdia

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HINT = "pip install 'rdia-cli[report]'"




# --- fixtures: run folders made once per module --------------------------------------------------
@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """`rdia demo` (α auto, so there is a sweep) started in another folder with a relative -o,
    as a user would: run.json then records paths relative to that folder."""
    base = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        ok(rdia("demo", "-o", "runs/a", "--device", "cpu", "--strategy", "rdia"))
    return base / "runs" / "a"


def _run_on(out: Path, train, val, test, settings) -> Path:
    """``train``, ``val`` and ``test`` written as Parquet into ``out`` (their sources), then
    ``run_pipeline`` into ``out/run`` with ``settings``."""
    from rdia_cli.data.writers import write_dataset
    from rdia_cli.pipeline import run_pipeline

    for name, ds in (("train", train), ("val", val), ("test", test)):
        write_dataset(ds, str(out / f"{name}.parquet"))
        ds.source = str(out / f"{name}.parquet")
    run_pipeline(train, val, test, out / "run", settings)
    return out / "run"


@pytest.fixture(scope="module")
def drop_dir(tmp_path_factory):
    """A `drop` run with a fixed α: rows removed, none relabeled, no sweep."""
    from rdia_cli.cli.commands.run import builtin_example
    from rdia_cli.pipeline import RunSettings

    out = tmp_path_factory.mktemp("drop")
    train, val, test = builtin_example(noise_rate=0.3, seed=1)
    return _run_on(out, train, val, test, RunSettings(alpha=0.5, strategy="drop"))


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """scikit-learn's 8x8 digits 1 vs 7 as (N, 1, 8, 8) images, no `is_noisy` column."""
    from sklearn.datasets import load_digits

    from rdia_cli.data.dataset import Dataset
    from rdia_cli.data.protocol import split_dataset
    from rdia_cli.pipeline import RunSettings

    out = tmp_path_factory.mktemp("img")
    X, y = load_digits(return_X_y=True)
    keep = np.isin(y, [1, 7])
    X = (X[keep] / 16.0).reshape(-1, 1, 8, 8).astype(np.float32)
    y = np.where(y[keep] == 7, 1, 0)
    rng = np.random.default_rng(0)
    flip = rng.random(len(y)) < 0.2
    ds = Dataset(X=X, y=y, classes=[1, 7], row_id=np.arange(len(y)))
    train, val, test = split_dataset(ds, val=0.25, test=0.25, seed=0)
    train.y = np.where(flip[train.row_id], 1 - train.y, train.y)
    return _run_on(out, train, val, test, RunSettings(alpha=0.0))


@pytest.fixture(scope="module")
def auto_dir(tmp_path_factory):
    """`--strategy auto` alone on the noisy built-in example: a CV decision, no α sweep."""
    from rdia_cli.cli.commands.run import builtin_example
    from rdia_cli.pipeline import RunSettings

    out = tmp_path_factory.mktemp("auto")
    train, val, test = builtin_example(noise_rate=0.3, seed=1)
    return _run_on(out, train, val, test, RunSettings(strategy="auto"))


# --- helpers -----------------------------------------------------------------------------------
class _Cells(HTMLParser):
    """Every element with a data-value, as a dict of its data-* attributes; every img src and
    href."""

    def __init__(self):
        super().__init__()
        self.cells, self.srcs, self.hrefs, self.tags = [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "data-value" in a:
            self.cells.append({k[5:]: v for k, v in a.items() if k.startswith("data-")})
        if tag == "img":
            self.srcs.append(a.get("src", ""))
        if "href" in a:
            self.hrefs.append(a["href"])


def parse(html: str) -> _Cells:
    p = _Cells()
    p.feed(html)
    return p


def _value(text):
    if text == "None":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def values(cells, **match):
    """{key: value as float (or str, None)} of the cells whose data-* attributes include
    ``match``."""
    return {c["key"]: _value(c["value"])
            for c in cells if all(c.get(k) == str(v) for k, v in match.items())}


@pytest.fixture(scope="module")
def demo_html(demo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("html") / "report.html"
    res = ok(rdia("report", demo_dir, "-o", out))
    assert "self-contained" in res.stderr
    return out.read_text(encoding="utf-8")


# --- report ------------------------------------------------------------------------------------
def test_report_is_one_self_contained_html_file(demo_html):
    assert demo_html.startswith("<!DOCTYPE html>") and demo_html.rstrip().endswith("</html>")
    lower = demo_html.lower()
    for bad in ('src="http', "href=\"http", "<link", "<script", "url(", "@import", "//cdn",
                "src='http"):
        assert bad not in lower, bad
    p = parse(demo_html)
    assert len(p.srcs) >= 2  # Φ histogram and α sweep
    for src in p.srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    assert all(h.startswith("#") for h in p.hrefs), p.hrefs
    assert "script" not in p.tags and "iframe" not in p.tags


def test_report_metrics_equal_metrics_json(demo_dir, demo_html):
    metrics = json.loads((demo_dir / "metrics.json").read_text())
    run = json.loads((demo_dir / "run.json").read_text())
    cells = parse(demo_html).cells
    assert [m["name"] for m in metrics["models"]] == ["erm", "rdia"]
    for m in metrics["models"]:
        got = values(cells, model=m["name"])
        for key in ("loss", "accuracy", "auc", "val_loss"):
            assert got[key] == m[key], (m["name"], key)
    rdia_info = run["strategies"]["rdia"]
    got = values(cells, model="rdia")
    assert got["alpha"] == rdia_info["alpha"]
    assert got["n_relabeled"] == rdia_info["n_relabeled"] and got["n_removed"] == 0


def test_report_sweep_and_timings_equal_run_json(demo_dir, demo_html):
    run = json.loads((demo_dir / "run.json").read_text())
    cells = parse(demo_html).cells
    sweep = run["strategies"]["rdia"]["sweep"]
    assert len(sweep) > 2
    for i, row in enumerate(sweep):
        got = values(cells, sweep=i)
        for key in ("alpha", "n_selected", "n_relabeled", "n_removed", "predicted_val_loss",
                    "val_loss"):
            assert got[key] == row[key], (i, key)
    timings = {c["stage"]: float(c["value"]) for c in cells if c.get("key") == "timing"}
    assert timings == run["timings"]
    assert values(cells, section="score_info")["val_loss"] == run["score_info"]["val_loss"]


def test_report_phi_summary_and_relabel_matrix_equal_the_parquet_files(demo_dir, demo_html):
    from rdia_cli.artifacts.scores import read_scores

    cells = parse(demo_html).cells
    sc = read_scores(demo_dir / "scores.parquet")
    alpha = json.loads((demo_dir / "run.json").read_text())["strategies"]["rdia"]["phi_threshold"]
    summary = {c["key"]: float(c["value"]) for c in cells if "model" not in c and "sweep" not in c
               and c["key"] in ("n_scored", "n_positive", "n_above_alpha", "phi_max")}
    assert summary == {"n_scored": sc.n_samples, "n_positive": (sc.phi > 0).sum(),
                       "n_above_alpha": (sc.phi > alpha).sum(), "phi_max": sc.phi.max()}

    t = pq.read_table(demo_dir / "cleaned.parquet").to_pydict()
    want = {}
    for label, target, relabeled in zip(t["original_label"], t["target"], t["relabeled"],
                                        strict=True):
        if relabeled:
            key = (str(label), str([0, 1][int(np.argmax(target))]))
            want[key] = want.get(key, 0) + 1
    got = {(c["from"], c["to"]): int(c["value"]) for c in cells if c.get("key") == "matrix"}
    assert sum(got.values()) == sum(t["relabeled"]) > 0
    assert {k: v for k, v in got.items() if v} == want
    assert got[("0", "0")] == got[("1", "1")] == 0  # binary Eq. 12 flips the label


def _by_hand(run_dir: Path, train: Path, cleaned_name: str):
    tr = pq.read_table(train, columns=["row_id", "is_noisy"]).to_pydict()
    cl = pq.read_table(run_dir / cleaned_name, columns=["row_id", "relabeled"]).to_pydict()
    kept = set(cl["row_id"])
    relabeled = {r for r, f in zip(cl["row_id"], cl["relabeled"], strict=True) if f}
    flagged = {r for r in tr["row_id"] if r not in kept} | relabeled
    noisy = {r for r, f in zip(tr["row_id"], tr["is_noisy"], strict=True) if f}
    hit = len(flagged & noisy)
    return len(flagged), len(noisy), hit / len(flagged), hit / len(noisy)


def test_report_noise_precision_recall_by_hand(demo_dir, demo_html):
    n_flagged, n_noisy, precision, recall = _by_hand(demo_dir, demo_dir / "train.parquet",
                                                     "cleaned.parquet")
    got = values(parse(demo_html).cells, strategy="rdia")
    assert (got["n_flagged"], got["n_noisy"]) == (n_flagged, n_noisy)
    assert got["precision"] == pytest.approx(precision, abs=0, rel=1e-15)
    assert got["recall"] == pytest.approx(recall, abs=0, rel=1e-15)
    assert 0.5 < precision <= 1 and 0.5 < recall <= 1


def test_report_counts_removed_rows_as_flagged(drop_dir, tmp_path):
    ok(rdia("report", drop_dir, "-o", tmp_path / "r.html"))
    html = (tmp_path / "r.html").read_text()
    run = json.loads((drop_dir / "run.json").read_text())
    n_flagged, _, precision, recall = _by_hand(drop_dir, Path(run["train"]),
                                               "cleaned.parquet")
    assert n_flagged == run["strategies"]["drop"]["n_removed"] > 0
    got = values(parse(html).cells, strategy="drop")
    assert (got["n_flagged"], got["precision"], got["recall"]) == (n_flagged, precision, recall)
    assert "relabeled no rows" in html
    assert 'id="sweep"' not in html and 'href="#sweep"' not in html  # no sweep: no section
    assert 'id="decision"' not in html  # not an auto run


def test_report_without_is_noisy_says_so(image_dir, tmp_path):
    ok(rdia("report", image_dir, "-o", tmp_path / "r.html"))
    html = (tmp_path / "r.html").read_text()
    assert "has no <code>is_noisy</code> column" in html
    assert 'data-key="precision"' not in html


def test_report_train_moved_is_reported_and_train_option_finds_it(drop_dir, tmp_path):
    run = json.loads((drop_dir / "run.json").read_text())
    moved = tmp_path / "moved-run"
    moved.mkdir()
    for f in drop_dir.iterdir():
        (moved / f.name).write_bytes(f.read_bytes())
    ok(rdia("report", moved, "-o", tmp_path / "a.html"))
    # the training data is still where run.json says, so it is found
    assert 'data-key="precision"' in (tmp_path / "a.html").read_text()
    copy = tmp_path / "train-copy.parquet"
    copy.write_bytes(Path(run["train"]).read_bytes())
    ok(rdia("report", moved, "-o", tmp_path / "b.html", "--train", copy))
    assert f"<code>{copy}</code>" in (tmp_path / "b.html").read_text()


def test_report_default_output_is_in_the_run_folder(image_dir):
    ok(rdia("report", image_dir))
    assert (image_dir / "report.html").read_bytes().startswith(b"<!DOCTYPE html>")


@pytest.mark.parametrize("name", ["metrics.json", "scores.parquet", "cleaned.parquet"])
def test_report_never_overwrites_an_input(demo_dir, name):
    before = (demo_dir / name).read_bytes()
    res = rdia("report", demo_dir, "-o", demo_dir / name)
    assert res.exit_code == 2 and "also an input" in res.stderr
    assert (demo_dir / name).read_bytes() == before


def test_report_on_a_folder_that_is_not_a_run(tmp_path):
    res = rdia("report", tmp_path, "-o", tmp_path / "r.html")
    assert res.exit_code == 2 and "lacks metrics.json" in res.stderr
    res = rdia("report", tmp_path / "nope", "-o", tmp_path / "r.html")
    assert res.exit_code == 2 and "does not exist" in res.stderr


def test_report_without_matplotlib_exits_2_with_the_install_hint(demo_dir, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    res = rdia("report", demo_dir, "-o", tmp_path / "r.html")
    assert res.exit_code == 2
    assert HINT in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()


# --- inspect -----------------------------------------------------------------------------------
def test_inspect_table_lists_the_most_harmful_rows(demo_dir, monkeypatch):
    from rdia_cli.artifacts.scores import read_scores
    from rdia_cli.cleaning.targets import relabel_targets

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the table needs no matplotlib
    res = ok(rdia("inspect", demo_dir / "scores.parquet", "--data", demo_dir / "train.parquet",
                  "--top", 3))
    sc = read_scores(demo_dir / "scores.parquet")
    order = np.argsort(-sc.phi)[:3]
    new = relabel_targets(sc.probs[order], sc.label[order]).argmax(1)
    lines = [ln for ln in res.stdout.splitlines() if re.match(r"^│\s+\d", ln)]
    assert len(lines) == 3
    for line, i, k in zip(lines, order, new, strict=True):
        cells = [c.strip() for c in line.strip("│").split("│")]
        assert cells[0] == str(sc.row_id[i]) and cells[1] == str(sc.label[i])
        assert float(cells[3]) == pytest.approx(sc.phi[i], rel=1e-3)
        n = sc.meta["n_train"]
        assert float(cells[4]) == pytest.approx(-sc.phi[i] / (n * (1 - sc.p_label[i])), rel=1e-2)
        assert cells[5] == str([0, 1][k])


def test_harmful_rows_follow_eq12_or_the_cleaned_target(demo_dir):
    from rdia_cli.artifacts.scores import read_scores
    from rdia_cli.cleaning.targets import relabel_targets
    from rdia_cli.data.readers import read_dataset

    sc = read_scores(demo_dir / "scores.parquet")
    raw = read_dataset(str(demo_dir / "train.parquet"))
    rows = report.harmful_rows(sc, raw, top=sc.n_samples)
    assert [r.phi for r in rows] == sorted(sc.phi, reverse=True)
    idx = np.array([r.index for r in rows])
    eq12 = relabel_targets(sc.probs[idx], sc.label[idx]).argmax(1)
    assert [r.new_label for r in rows] == [sc.meta["classes"][k] for k in eq12]
    assert {r.status for r in rows} == {"proposed"}
    np.testing.assert_allclose([r.delta_relabel for r in rows],
                               -sc.phi[idx] / (sc.meta["n_train"] * (1 - sc.p_label[idx])))

    cleaned = read_dataset(str(demo_dir / "cleaned.parquet"))
    report.check_inspect_match(sc, cleaned, "cleaned.parquet")
    run = json.loads((demo_dir / "run.json").read_text())
    assert report.default_alpha(cleaned) == run["strategies"]["rdia"]["phi_threshold"]
    assert report.default_alpha(raw) == 0.0
    rows = report.harmful_rows(sc, cleaned, top=sc.n_samples)
    n_relabeled = run["strategies"]["rdia"]["n_relabeled"]
    assert [r.status for r in rows[:n_relabeled]] == ["relabeled"] * n_relabeled
    assert {r.status for r in rows[n_relabeled:]} == {"kept"}
    for r in rows[:n_relabeled]:
        assert r.new_label == sc.meta["classes"][int(np.argmax(cleaned.target[r.position]))]
        assert r.new_label != r.label


def test_inspect_png_histogram_for_tabular_data(demo_dir, tmp_path):
    out = tmp_path / "phi.png"
    res = ok(rdia("inspect", demo_dir / "scores.parquet", "--data",
                  demo_dir / "cleaned.parquet", "-o", out))
    assert out.read_bytes().startswith(PNG_MAGIC) and out.stat().st_size > 5000
    run = json.loads((demo_dir / "run.json").read_text())
    assert f"α = {run['strategies']['rdia']['phi_threshold']:.4g}" in res.stderr


def test_inspect_png_grid_for_image_data(image_dir, tmp_path):
    out = tmp_path / "grid.png"
    res = ok(rdia("inspect", image_dir / "scores.parquet", "--data",
                  image_dir.parent / "train.parquet", "--top", 6, "-o", out))
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    # the run folder records the validation data and the model: each harmful image, then the
    # 3 validation images pushing its Φ most (4 columns, 6 rows)
    assert height > width > 100
    assert "6 images, each with the 3 validation images" in res.stderr
    assert "why" in res.stdout and "val " in res.stdout


def test_inspect_png_grid_without_validation_data(image_dir, tmp_path):
    """Scores away from their run folder (no validation data recorded): the plain grid."""
    import shutil

    shutil.copy(image_dir / "scores.parquet", tmp_path / "scores.parquet")
    out = tmp_path / "grid.png"
    res = ok(rdia("inspect", tmp_path / "scores.parquet", "--data",
                  image_dir.parent / "train.parquet", "--top", 6, "-o", out))
    data = out.read_bytes()
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > height > 100  # 5 columns, 2 rows
    assert "6 images" in res.stderr and "why" not in res.stdout
    res = ok(rdia("inspect", tmp_path / "scores.parquet", "--data",  # the recorded model
                  image_dir.parent / "train.parquet", "--val", image_dir.parent / "val.parquet"))
    assert "why" in res.stdout


def test_inspect_why_is_phi_split_with_the_scores_operator(demo_dir):
    """The why `inspect` shows: shares of Φ as the scores computed it, top 3 first."""
    from rdia_cli.artifacts.scores import read_scores
    from rdia_cli.data.readers import read_dataset
    from rdia_cli.influence.explain import phi_by_val_row, settings_from_scores
    from rdia_cli.models.io import load_model

    sc = read_scores(demo_dir / "scores.parquet")
    train = read_dataset(str(demo_dir.parents[1] / json.loads(
        (demo_dir / "run.json").read_text())["train"]))
    val = read_dataset(str(demo_dir.parents[1] / json.loads(
        (demo_dir / "run.json").read_text())["val"]))
    model = load_model(demo_dir / "erm.pt")
    rows = report.harmful_rows(sc, train, top=3)
    whys = report.explain_harmful(rows, sc, train, val, model)
    C = phi_by_val_row(model, train, val, [r.position for r in rows],
                       **settings_from_scores(model, sc.meta))
    np.testing.assert_allclose(C.sum(0), [r.phi for r in rows], rtol=1e-6)
    for b, w in enumerate(whys):
        assert w.shares == sorted(w.shares, reverse=True) and len(w.positions) == 3
        np.testing.assert_allclose(w.shares, C[w.positions, b] / C[:, b].sum())
    res = ok(rdia("inspect", demo_dir / "scores.parquet", "--data",
                  demo_dir.parent.parent / json.loads((demo_dir / "run.json").read_text())[
                      "train"], "--top", 3))
    assert f"val {whys[0].names[0]} {whys[0].shares[0]:.0%}" in res.stdout.replace("\n", " ")


def test_inspect_refuses_scores_of_other_data(demo_dir, image_dir):
    res = rdia("inspect", image_dir / "scores.parquet", "--data", demo_dir / "train.parquet")
    assert res.exit_code == 2 and "other training data" in res.stderr


def test_inspect_matches_a_cleaned_file_with_rows_removed_by_its_source(drop_dir):
    """`rdia run` records the fingerprint of the data a cleaned file came from."""
    run = json.loads((drop_dir / "run.json").read_text())
    res = rdia("inspect", drop_dir / "scores.parquet", "--data", drop_dir / "cleaned.parquet")
    assert run["strategies"]["drop"]["n_removed"] > 0
    assert res.exit_code == 0, res.stderr


def test_inspect_output_checks(demo_dir, tmp_path, monkeypatch):
    scores, train = demo_dir / "scores.parquet", demo_dir / "train.parquet"
    res = rdia("inspect", scores, "--data", train, "-o", tmp_path / "x.pdf")
    assert res.exit_code == 2 and ".png" in res.stderr
    res = rdia("inspect", scores, "--data", train, "-o", scores)
    assert res.exit_code == 2 and "also an input" in res.stderr
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    res = rdia("inspect", scores, "--data", train, "-o", tmp_path / "x.png")
    assert res.exit_code == 2 and HINT in res.stderr
    assert not (tmp_path / "x.png").exists()


def test_importing_the_cli_does_not_import_matplotlib():
    code = ("import sys, rdia_cli.cli; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(rdia_cli.cli.app, ['report', '--help']); "
            "assert r.exit_code == 0, r.output; assert 'matplotlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- an `auto` run: its decision drawn, no sweep section -----------------------------------------
def test_report_of_an_auto_run_draws_its_decision(auto_dir, tmp_path):
    ok(rdia("report", auto_dir, "-o", tmp_path / "r.html"))
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    run = json.loads((auto_dir / "run.json").read_text())
    cv, verdict = run["strategies"]["auto"]["cv"], run["verdict"]
    p = parse(html)
    assert 'id="decision"' in html and 'href="#decision"' in html
    assert 'alt="cross-validated loss of every auto candidate' in html
    assert 'alt="test loss and accuracy of every model' in html
    assert len(p.srcs) == 3  # before/after, the decision, Φ; no sweep
    for src in p.srcs:
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    assert "<script" not in html.lower() and 'src="http' not in html.lower()
    # every candidate with its CV loss and standard error, as run.json has them
    assert all(c["cv_se"] is None or c["cv_se"] > 0 for c in cv)
    for i, c in enumerate(cv):
        got = values(p.cells, cv=i)
        assert got["cv_loss"] == c["cv_loss"] and got["cv_se"] == c["cv_se"], i
    got = values(p.cells, section="verdict")
    assert got["cv loss of the pick"] == verdict["cv_loss_chosen"]
    assert got["cv loss of ERM"] == verdict["cv_loss_erm"]
    assert got["cv loss of the clean set alone"] == verdict["cv_loss_clean_only"]
    assert got["chosen"] == verdict["chosen"]
    # auto alone runs no α sweep: no section, no link
    assert 'id="sweep"' not in html and 'href="#sweep"' not in html


def test_report_without_figures_has_the_decision_table(auto_dir):
    rep = report.collect_run(auto_dir)
    html = report.render_html(rep, figures=False)
    assert rep.cv and rep.verdict is not None
    assert 'id="cv-table"' in html and "<img" not in html


def test_decision_figure_draws_runs_without_standard_errors():
    """Runs written before `cv_se` existed still draw (no error bars)."""
    from rdia_cli.report.figures import cv_decision_png

    cv = [{"label": f"drop top {f:.0%} by Φ, ω=1", "fraction": f, "weight": 1.0,
           "cv_loss": 0.3 - f / 10, "all_folds": f < 0.3} for f in (0.05, 0.1, 0.2, 0.4)]
    png = cv_decision_png(cv, {"cv_loss_erm": 0.5, "cv_loss_chosen": 0.26, "chosen": "x"},
                          chosen_fraction=0.4)
    assert png.startswith(PNG_MAGIC)


def test_report_explains_the_most_harmful_rows(demo_dir, demo_html):
    """"Why these rows": the largest Φ first, with given → suggested, Φ, the predicted change
    of the validation loss and the clean rows pushing Φ, as `rdia inspect` finds them."""
    from rdia_cli.artifacts.scores import read_scores

    sc = read_scores(demo_dir / "scores.parquet")
    rep = report.collect_run(demo_dir)
    assert rep.examples_note is None and 3 <= len(rep.examples) <= 5
    order = np.argsort(-sc.phi, kind="stable")[:len(rep.examples)]
    for ex, i in zip(rep.examples, order, strict=True):
        assert ex["phi"] == sc.phi[i] and ex["row_id"] == sc.row_id[i]
        assert ex["delta_val_loss"] == pytest.approx(sc.delta_relabel[i])
        assert len(ex["why"]) == 3 and ex["why"][0]["share"] >= ex["why"][2]["share"]
    assert '<section id="why"><h2>Why these rows</h2>' in demo_html
    first = rep.examples[0]
    assert f'data-row="{first["row"]}"' in demo_html
    assert f"{first['why'][0]['share']:.0%}" in demo_html


def test_report_without_validation_data_says_why_there_are_no_examples(drop_dir, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(drop_dir, run)
    (run / "erm.pt").unlink()
    rep = report.collect_run(run, train=drop_dir.parent / "train.parquet")
    assert rep.examples == [] and "model erm.pt" in rep.examples_note
    assert rep.examples_note in report.render_html(rep, figures=False).replace("&#x27;", "'")
