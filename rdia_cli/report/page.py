"""Figures and the one-file HTML report behind `rdia inspect` and `rdia report`. Never prints.

Plotting needs the optional extra ``pip install 'rdia-cli[report]'`` (matplotlib); it is imported
only inside the functions that draw, always with the Agg canvas (no display, no global pyplot
state). Φ, its sign and its scale: ``rdia_cli.glossary`` (Φ > 0 harmful; relabeling row i changes
the validation loss by about -Φ_i / (N (1 - p_label))).

The HTML report is self-contained: CSS inline, figures as ``data:image/png;base64`` URIs, no
script, no link to anything outside the file. Every number in it that comes from a file also sits
in a ``data-value`` attribute at full precision (``data-key`` names it), so it can be checked.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rdia_cli.artifacts import metadata
from rdia_cli.artifacts.atomic import atomic_path
from rdia_cli.errors import InputError, MismatchError

INSTALL_HINT = "pip install 'rdia-cli[report]'"
RUN_FILES = ("metrics.json", "run.json", "scores.parquet")


# --------------------------------------------------------------------------------------------
# matplotlib, lazily
# --------------------------------------------------------------------------------------------
def require_matplotlib() -> None:
    """Raise an InputError that says what to install when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError:
        raise InputError(
            f"plotting needs matplotlib, which is not installed; install it with `{INSTALL_HINT}`."
        ) from None


def _figure(width: float, height: float):
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def write_png(data: bytes, path: str | Path) -> None:
    """Write PNG bytes to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------
def phi_histogram_png(phi: np.ndarray, *, alpha: float | None = None, title: str = "") -> bytes:
    """Histogram of Φ (log-scaled counts) with the rows above α in red and α marked."""
    phi = np.asarray(phi, dtype=np.float64)
    phi = phi[np.isfinite(phi)]
    fig = _figure(9.6, 3.2)
    ax = fig.add_subplot()
    if phi.size:
        lo, hi = float(phi.min()), float(phi.max())
        if alpha is not None:
            lo, hi = min(lo, alpha), max(hi, alpha)
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        cut = 0.0 if alpha is None else alpha
        width = (hi - lo) / 60
        start = cut - width * math.ceil((cut - lo) / width - 1e-9)  # α falls on a bin edge
        edges = start + width * np.arange(math.ceil((hi - start) / width - 1e-9) + 2)
        counts, edges = np.histogram(phi, bins=edges)
        centers = (edges[:-1] + edges[1:]) / 2
        colors = np.where(centers > cut, "#c0392b", "#95a5a6")
        ax.bar(centers, counts, width=np.diff(edges), color=colors, edgecolor="white",
               linewidth=0.3)
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.8)
    ax.axvline(0.0, color="#555", linewidth=0.8)
    if alpha is not None:
        n_above = int((phi > alpha).sum())
        ax.axvline(alpha, color="#c0392b", linestyle="--", linewidth=1.2,
                   label=f"α = {alpha:.4g}: {n_above:,} rows above")
        ax.legend(loc="upper right", frameon=False, fontsize=9)
    ax.set_xlabel("Φ  (> 0: harmful; removing a row changes the validation loss by -Φ/N)",
                  fontsize=9)
    ax.set_ylabel("rows (log scale)", fontsize=9)
    ax.tick_params(labelsize=8)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def sweep_png(sweep: list[dict], *, chosen_alpha: float | None, strategy: str) -> bytes:
    """Predicted (first-order) and measured validation loss against the rows selected."""
    fig = _figure(9.6, 3.4)
    ax = fig.add_subplot()
    n = [r["n_selected"] for r in sweep]
    ax.plot(n, [r["predicted_val_loss"] for r in sweep], "o--", color="#7f8c8d", markersize=4,
            label="predicted (first order)")
    ax.plot(n, [r["val_loss"] for r in sweep], "o-", color="#2c6fbb", markersize=4,
            label="measured after retraining")
    for r in sweep:
        if r["alpha"] == chosen_alpha:
            ax.plot([r["n_selected"]], [r["val_loss"]], "*", color="#c0392b", markersize=14,
                    label=f"chosen α = {_num(chosen_alpha)}", zorder=5)
            break
    ax.set_xlabel(f"rows selected (Φ > α) for {strategy}", fontsize=9)
    ax.set_ylabel("validation loss", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.legend(frameon=False, fontsize=9)
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def image_grid_png(images: np.ndarray, captions: list[str], *, ncols: int = 5) -> bytes:
    """A grid of (C, H, W) images in [0, 1] with a caption under each (paper Figure 3 style)."""
    images = np.asarray(images)
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig = _figure(1.6 * ncols, 1.95 * nrows)
    for i in range(nrows * ncols):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.set_axis_off()
        if i >= n:
            continue
        img = images[i]
        if img.shape[0] == 1:
            ax.imshow(img[0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(np.clip(np.transpose(img, (1, 2, 0)), 0.0, 1.0), interpolation="nearest")
        ax.set_title(captions[i], fontsize=9, y=-0.3)
    return _png(fig)


# --------------------------------------------------------------------------------------------
# inspect: the most harmful rows
# --------------------------------------------------------------------------------------------
@dataclass
class HarmfulRow:
    """One row of `rdia inspect`'s table. ``status``: proposed (paper Eq. 12 on the scores),
    relabeled / kept (per the cleaned file's ``target``), or removed (absent from it)."""

    index: int  # position in the scores file
    position: int | None  # position in the dataset (None when the row was removed)
    row_id: int
    label: Any  # class value
    p_label: float
    phi: float
    delta_relabel: float
    new_label: Any  # class value of the new target's top class (None when removed)
    new_weight: float  # the new target's value at that class
    status: str


def is_cleaned(ds) -> bool:
    """Whether the dataset is a cleaned file written by `rdia relabel` / `rdia run`."""
    return isinstance(ds.meta.get("relabel"), dict) and ds.target is not None


def check_inspect_match(scores, ds, source: str) -> None:
    """Refuse scores made from other data (a cleaned file with rows removed is checked by the
    fingerprint of the data it came from, when it records one)."""
    from rdia_cli.cleaning.files import from_file

    ds = from_file(ds)  # a cleaned file's `label` holds the new labels: compare the original
    from rdia_cli.artifacts.scores import check_scores_match

    if is_cleaned(ds) and ds.n_samples < scores.n_samples:
        relabel = ds.meta["relabel"]
        want = scores.meta.get("train_fingerprint")
        have = relabel.get("source_fingerprint") or relabel.get("scores_fingerprint")
        if have is None:
            raise MismatchError(
                f"`{source}` is a cleaned file with {scores.n_samples - ds.n_samples} rows "
                "removed that records no fingerprint of its source, so it cannot be matched "
                f"to scores `{scores.path}`; inspect the training data the scores came from."
            )
        if have != want or not np.isin(ds.row_id, scores.row_id).all():
            raise MismatchError(
                f"scores `{scores.path}` were computed on other training data (fingerprint "
                f"{want}) than the source of `{source}` (fingerprint {have}); rerun `rdia score`."
            )
        return
    check_scores_match(scores, ds.fingerprint(), ds.row_id, source)


def harmful_rows(scores, ds, *, top: int) -> list[HarmfulRow]:
    """The ``top`` rows with the largest Φ, with the label each would get.

    For a raw training set the new label is the top class of paper Eq. 12's target
    (``rdia_cli.cleaning.strategies.relabel_targets``); for a cleaned file it is the file's ``target``.
    """
    from rdia_cli.cleaning.files import from_file

    ds = from_file(ds)
    from rdia_cli.cleaning.strategies import relabel_targets

    if top < 0:
        raise InputError(f"--top must be 0 or more, not {top}.")
    order = np.argsort(-scores.phi, kind="stable")[:top]
    classes = list(scores.meta["classes"])
    where = {int(r): j for j, r in enumerate(ds.row_id)}
    delta = scores.delta_relabel
    cleaned = is_cleaned(ds)
    if cleaned:
        relabeled = ds.extra.get("relabeled")
        relabeled = (np.zeros(ds.n_samples, bool) if relabeled is None
                     else np.asarray(relabeled, dtype=bool))
    else:
        proposed = relabel_targets(scores.probs[order], scores.label[order])
    rows = []
    for rank, i in enumerate(order):
        j = where.get(int(scores.row_id[i]))
        new_label, weight, status = None, float("nan"), "removed"
        if cleaned and j is not None:
            t = np.asarray(ds.target[j], dtype=np.float64)
            k = int(t.argmax())
            new_label, weight = classes[k], float(t[k])
            status = "relabeled" if relabeled[j] else "kept"
        elif not cleaned:
            k = int(proposed[rank].argmax())
            new_label, weight, status = classes[k], float(proposed[rank, k]), "proposed"
        rows.append(HarmfulRow(
            index=int(i), position=j, row_id=int(scores.row_id[i]),
            label=classes[int(scores.label[i])], p_label=float(scores.p_label[i]),
            phi=float(scores.phi[i]), delta_relabel=float(delta[i]), new_label=new_label,
            new_weight=weight, status=status,
        ))
    return rows


def _cut(info: dict):
    """The cut on Φ a strategy used: ``phi_threshold`` (``alpha`` is the paper's scale), or
    ``alpha`` in run folders from before that split."""
    return info.get("phi_threshold", info.get("alpha"))


def default_alpha(ds) -> float:
    """α recorded in a cleaned file's metadata, else 0."""
    if is_cleaned(ds):
        rel = ds.meta["relabel"]  # phi_threshold: the cut on Φ (alpha is the paper's scale)
        a = rel.get("phi_threshold", rel.get("alpha") if "paper_factor" not in rel else None)
        if isinstance(a, int | float) and math.isfinite(a):
            return float(a)
    return 0.0


def harmful_grid_png(ds, rows: list[HarmfulRow]) -> bytes:
    """Images of the harmful rows captioned `label → new label` and Φ (removed rows skipped)."""
    shown = [r for r in rows if r.position is not None]
    if not shown:
        raise InputError("none of the rows to show is in the data (all were removed).")
    images = np.stack([np.asarray(ds.X[r.position], dtype=np.float32) for r in shown])
    captions = [f"{r.label} → {r.new_label if r.status != 'kept' else r.label}\nΦ = {r.phi:.3g}"
                for r in shown]
    return image_grid_png(images, captions)


# --------------------------------------------------------------------------------------------
# report: collecting a run folder
# --------------------------------------------------------------------------------------------
@dataclass
class NoiseStats:
    """Flagged rows (relabeled or removed) against the rows `rdia noise` corrupted."""

    strategy: str
    n_flagged: int
    n_noisy: int
    n_true_positive: int
    source: str

    @property
    def precision(self) -> float | None:
        return self.n_true_positive / self.n_flagged if self.n_flagged else None

    @property
    def recall(self) -> float | None:
        return self.n_true_positive / self.n_noisy if self.n_noisy else None


@dataclass
class RunReport:
    """Everything the HTML shows, read from one `rdia run` folder."""

    run_dir: str
    run: dict
    metrics: dict
    phi: np.ndarray
    classes: list
    strategy: str
    alpha: float | None
    sweep: list[dict]
    matrix: np.ndarray  # (K, K): original label index × new target argmax, relabeled rows only
    noise: list[NoiseStats] = field(default_factory=list)
    noise_note: str | None = None
    noise_meta: dict | None = None
    train_path: str | None = None
    sweep_strategy: str | None = None  # whose α sweep is shown (the main strategy's, if any)
    sweep_alpha: float | None = None


def _read_json(path: Path) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"`{path}` is not valid JSON ({e}); rerun `rdia run`.") from None


def _parquet_columns(path: Path, wanted: tuple[str, ...]) -> tuple[dict[str, np.ndarray], dict]:
    """The columns of ``wanted`` that exist in the Parquet file, and its rdia.* metadata."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        names = [c for c in wanted if c in schema.names]
        table = pq.read_table(path, columns=names)
    except Exception as e:  # noqa: BLE001 - pyarrow raises many kinds
        raise InputError(f"`{path}` is not a Parquet file ({str(e).splitlines()[0]}).") from None
    meta = metadata.decode(schema.metadata, raw_on=json.JSONDecodeError)
    cols = {}
    for name in names:
        col = table.column(name).combine_chunks()
        if name == "target":
            n = len(col)
            flat = np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=np.float64)
            cols[name] = flat.reshape(n, -1) if n else flat.reshape(0, 0)
        else:
            cols[name] = np.asarray(col.to_numpy(zero_copy_only=False))
    return cols, meta


def _run_cwd(run_dir: Path, run: dict) -> Path | None:
    """The folder `rdia run` was started in, inferred from the relative paths it recorded
    (run.json says e.g. `runs/a/cleaned.parquet` for the folder `runs/a`)."""
    base = run_dir.resolve()
    for info in (run.get("strategies") or {}).values():
        rel = Path(str(info.get("cleaned", ""))).parent
        if not str(info.get("cleaned")) or rel.is_absolute():
            continue
        parts = rel.parts if str(rel) != "." else ()
        if len(parts) <= len(base.parts) and base.parts[len(base.parts) - len(parts):] == parts:
            return Path(*base.parts[: len(base.parts) - len(parts)]) if parts else base
    return None


def resolve_recorded(run_dir: Path, run: dict, recorded: str | None) -> Path | None:
    """A path recorded in run.json, found from here: as written, from the folder the run was
    started in, or by its name inside the run folder. None when not found."""
    if not recorded:
        return None
    p = Path(recorded)
    candidates = [p]
    if not p.is_absolute():
        cwd = _run_cwd(run_dir, run)
        if cwd is not None:
            candidates.append(cwd / p)
    candidates.append(run_dir / p.name)
    for c in candidates:
        if c.is_file():
            return c
    return None


def _label_indices(values: np.ndarray, classes: list, path: Path) -> np.ndarray:
    index = {str(c): i for i, c in enumerate(classes)}
    keys = [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in values]
    bad = [k for k in keys if k not in index]
    if bad:
        raise MismatchError(
            f"`{path}` has label {bad[0]!r}, which is not one of the scored classes {classes}; "
            "is it from another run?"
        )
    return np.array([index[k] for k in keys], dtype=np.int64)


def collect_run(run_dir: str | Path, *, train: str | Path | None = None) -> RunReport:
    """Read the files `rdia run` left in ``run_dir`` into a :class:`RunReport`.

    ``train`` overrides the training data path recorded in run.json (needed only for the
    label-noise precision/recall, from its ``is_noisy`` column).
    """
    from rdia_cli.artifacts.scores import read_scores

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"Run folder `{run_dir}` does not exist or is not a folder; give the "
                         "-o folder of `rdia run`.")
    missing = [f for f in RUN_FILES if not (run_dir / f).is_file()]
    if missing:
        raise InputError(f"Run folder `{run_dir}` lacks {', '.join(missing)}; give the -o folder "
                         "of a finished `rdia run`.")
    run = _read_json(run_dir / "run.json")
    metrics = _read_json(run_dir / "metrics.json")
    for key, where in (("strategies", "run.json"), ("models", "metrics.json")):
        if key not in (run if where == "run.json" else metrics):
            raise InputError(f"`{run_dir / where}` has no `{key}`; is it from `rdia run`?")
    scores = read_scores(run_dir / "scores.parquet")
    classes = list(scores.meta["classes"])
    strategy = run.get("settings", {}).get("strategy") or next(iter(run["strategies"]))
    if strategy not in run["strategies"]:
        raise InputError(f"`{run_dir / 'run.json'}` has no results for its strategy `{strategy}`.")
    info = run["strategies"][strategy]

    k = len(classes)
    matrix = np.zeros((k, k), dtype=np.int64)
    cleaned_path = run_dir / Path(str(info.get("cleaned", "cleaned.parquet"))).name
    if not cleaned_path.is_file():
        raise InputError(f"Run folder `{run_dir}` lacks `{cleaned_path.name}`; rerun `rdia run`.")
    cols, _ = _parquet_columns(cleaned_path, ("row_id", "label", "original_label", "target",
                                              "relabeled"))
    if "relabeled" in cols and "target" in cols and cols["relabeled"].any():
        sel = np.asarray(cols["relabeled"], dtype=bool)
        frm = _label_indices(cols.get("original_label", cols["label"])[sel], classes,
                             cleaned_path)
        to = cols["target"][sel].argmax(1)
        np.add.at(matrix, (frm, to), 1)

    train_path = Path(train) if train is not None else resolve_recorded(run_dir, run,
                                                                        run.get("train"))
    if train is not None and not Path(train).is_file():
        raise InputError(f"Training data `{train}` does not exist; check the path.")
    noise, note, noise_meta = _noise_stats(run_dir, run, scores, train_path)
    sweep_name = strategy
    if not info.get("sweep"):  # e.g. `auto` cross-validates instead: show another's sweep
        sweep_name = next((n for n, d in run["strategies"].items() if d.get("sweep")), strategy)
    sweep_info = run["strategies"][sweep_name]
    return RunReport(
        run_dir=str(run_dir), run=run, metrics=metrics, phi=scores.phi, classes=classes,
        strategy=strategy, alpha=_cut(info), sweep=list(sweep_info.get("sweep") or []),
        matrix=matrix, noise=noise, noise_note=note, noise_meta=noise_meta,
        train_path=None if train_path is None else str(train_path),
        sweep_strategy=sweep_name, sweep_alpha=_cut(sweep_info),
    )


def _noise_stats(run_dir: Path, run: dict, scores, train_path: Path | None):
    """Precision/recall of each strategy's flagged rows against the training data's is_noisy."""
    if train_path is None:
        return [], (f"training data `{run.get('train')}` was not found, so the flagged rows "
                    "cannot be compared with the corrupted ones (give --train PATH)."), None
    import pyarrow.parquet as pq

    try:
        pq.read_schema(train_path)
    except Exception:  # noqa: BLE001 - not Parquet: `rdia noise` output is always Parquet
        return [], None, None
    cols, meta = _parquet_columns(train_path, ("row_id", "is_noisy"))
    if "is_noisy" not in cols:
        return [], None, None
    row_id = np.asarray(cols["row_id"], dtype=np.int64) if "row_id" in cols else \
        np.arange(len(cols["is_noisy"]), dtype=np.int64)
    if len(row_id) != scores.n_samples or not np.array_equal(np.sort(row_id),
                                                             np.sort(scores.row_id)):
        raise MismatchError(
            f"training data `{train_path}` has {len(row_id)} rows (or other row_id) than the "
            f"{scores.n_samples} scored in `{run_dir / 'scores.parquet'}`; give the training data "
            "of this run with --train."
        )
    noisy = np.asarray(cols["is_noisy"], dtype=bool)
    stats = []
    for name, info in run["strategies"].items():
        path = run_dir / Path(str(info.get("cleaned", ""))).name
        if not path.is_file():
            continue
        c, _ = _parquet_columns(path, ("row_id", "relabeled"))
        kept = np.isin(row_id, np.asarray(c["row_id"], dtype=np.int64))
        flagged = ~kept
        if "relabeled" in c:
            flagged |= np.isin(row_id, np.asarray(c["row_id"])[np.asarray(c["relabeled"], bool)])
        stats.append(NoiseStats(strategy=name, n_flagged=int(flagged.sum()),
                                n_noisy=int(noisy.sum()),
                                n_true_positive=int((flagged & noisy).sum()), source=str(path)))
    return stats, None, meta.get("noise") if isinstance(meta.get("noise"), dict) else None


# --------------------------------------------------------------------------------------------
# report: HTML
# --------------------------------------------------------------------------------------------
CSS = """
:root{--ink:#1f2933;--dim:#616e7c;--line:#d9e2ec;--bg:#f5f7fa;--good:#1e7b34;--bad:#b42318}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 -apple-system,
 BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1040px;margin:0 auto;padding:24px 28px 48px;background:#fff;min-height:100vh}
h1{font-size:24px;margin:0 0 4px}
h3{font-size:14px;margin:12px 0 4px}
h2{font-size:17px;margin:30px 0 8px;padding-bottom:4px;border-bottom:2px solid var(--line)}
p{margin:6px 0}
.sub,.note,figcaption{color:var(--dim)}
.note{font-size:13px}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--bg);
 padding:1px 4px;border-radius:3px}
nav{margin:10px 0 4px;font-size:13px}
nav a{color:#2c6fbb;text-decoration:none;margin-right:14px}
table{border-collapse:collapse;margin:8px 0 4px;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.hl td{background:#fff7e0}
td.best{color:var(--good);font-weight:700}
td.worse{color:var(--bad)}
td.zero{color:#bcccdc}
table.kv td:first-child{color:var(--dim);white-space:nowrap}
figure{margin:10px 0}
figure img{max-width:100%;height:auto;border:1px solid var(--line)}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:8px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:150px}
.card b{display:block;font-size:20px;font-variant-numeric:tabular-nums}
.card span{color:var(--dim);font-size:12px}
.cols{display:flex;gap:36px;flex-wrap:wrap;align-items:flex-start}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(x: Any, spec: str = ".4g") -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return "—" if math.isnan(x) else format(x, spec)
    return str(x)


def _attrs(data: dict[str, Any]) -> str:
    return "".join(f' data-{k}="{_e(v)}"' for k, v in data.items())


_NO_VALUE = object()


def _td(text: Any, *, value: Any = _NO_VALUE, cls: str = "", **data: Any) -> str:
    """A cell; ``value`` (full precision, repr; None as `None`) goes in data-value."""
    attrs = _attrs(data)
    if value is not _NO_VALUE:
        attrs += f' data-value="{_e(repr(value) if isinstance(value, float) else value)}"'
    c = f' class="{cls}"' if cls else ""
    return f"<td{c}{attrs}>{_e(text)}</td>"


def _th(*names: str, numeric: tuple[str, ...] = ()) -> str:
    return "<tr>" + "".join(
        f'<th class="n">{_e(n)}</th>' if n in numeric else f"<th>{_e(n)}</th>" for n in names
    ) + "</tr>"


def _img(png: bytes, alt: str) -> str:
    b64 = base64.b64encode(png).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{b64}" alt="{_e(alt)}"></figure>'


def _kv_table(rows: list[tuple[str, Any]], section: str, *, none: str = "—") -> str:
    body = "".join(f"<tr><td>{_e(k)}</td>{_td(none if v is None else _num(v), value=v if _plain(v) or v is None else _NO_VALUE, section=section, key=k)}</tr>"  # noqa: E501
                   for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _plain(v: Any) -> bool:
    return isinstance(v, int | float | str) and not isinstance(v, bool)


def render_html(rep: RunReport, *, figures: bool = True) -> str:
    """The report as one self-contained HTML page (``figures=False`` leaves the plots out)."""
    run = rep.run
    title = f"rdia report: {rep.run_dir}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>",
        "<h1>rdia report</h1>",
        f'<p class="sub">run folder <code>{_e(rep.run_dir)}</code> · training data '
        f"<code>{_e(run.get('train'))}</code> ({_num(run.get('n_train'))} rows) · strategy "
        f"<b>{_e(rep.strategy)}</b> · test data <code>{_e(run.get('test'))}</code> "
        f"({_num(run.get('n_test'))} rows)</p>",
        '<nav><a href="#metrics">before / after</a><a href="#phi">Φ</a><a href="#sweep">α sweep'
        '</a><a href="#relabels">relabels</a><a href="#noise">label noise</a>'
        '<a href="#settings">settings</a></nav>',
    ]
    parts += _metrics_section(rep)
    parts += _phi_section(rep, figures)
    parts += _sweep_section(rep, figures)
    parts += _matrix_section(rep)
    parts += _noise_section(rep)
    parts += _settings_section(rep)
    parts.append('<p class="note">Φ &gt; 0 means a training row is harmful: removing it lowers '
                 "the validation loss by about Φ/N, relabeling it (paper Eq. 12) by about "
                 "Φ/(N(1 − p<sub>label</sub>)). Made by <code>rdia report</code> from "
                 f"{_e(', '.join(RUN_FILES))} and the cleaned files; nothing in this page is "
                 "loaded from elsewhere.</p>")
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def _metrics_section(rep: RunReport) -> list[str]:
    models = rep.metrics["models"]
    strategies = rep.run.get("strategies", {})
    erm = next((m for m in models if m.get("name") == "erm"), models[0] if models else None)
    best = min((m["loss"] for m in models), default=None)
    head = _th("model", "α", "relabeled", "removed", "test loss", "Δ vs erm", "accuracy", "AUC",
               "val loss", numeric=("α", "relabeled", "removed", "test loss", "Δ vs erm",
                                    "accuracy", "AUC", "val loss"))
    rows = []
    for m in models:
        name = m.get("name", Path(m["model"]).stem)
        s = strategies.get(name, {})
        delta = m["loss"] - erm["loss"] if erm is not None else None
        cls = ' class="hl"' if name == rep.strategy else ""
        cells = [
            f"<td><b>{_e(name)}</b> <code>{_e(Path(m['model']).name)}</code></td>",
            _td(_num(s.get("alpha")), cls="n", value=s.get("alpha"), model=name, key="alpha"),
            _td(_num(s.get("n_relabeled")), cls="n", value=s.get("n_relabeled"), model=name,
                key="n_relabeled"),
            _td(_num(s.get("n_removed")), cls="n", value=s.get("n_removed"), model=name,
                key="n_removed"),
            _td(f"{m['loss']:.4f}", cls="n best" if m["loss"] == best and len(models) > 1
                else "n", value=m["loss"], model=name, key="loss"),
            _td("—" if delta is None or name == "erm" else f"{delta:+.4f}",
                cls="n" if delta is None or delta <= 0 else "n worse", model=name, key="delta"),
            _td(f"{m['accuracy']:.4f}", cls="n", value=m["accuracy"], model=name,
                key="accuracy"),
            _td(_num(m.get("auc"), ".4f"), cls="n", value=m.get("auc"), model=name, key="auc"),
            _td(_num(m.get("val_loss"), ".4f"), cls="n", value=m.get("val_loss"), model=name,
                key="val_loss"),
        ]
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    data = rep.metrics.get("data", rep.run.get("test"))
    return [
        '<section id="metrics"><h2>Before / after</h2>',
        f'<p class="note">Every model of the run on the test data <code>{_e(data)}</code>; '
        "val loss on the clean validation data (which also chose α, so it is optimistic). Best "
        "test loss in green; the run's strategy highlighted.</p>",
        f'<table id="metrics-table">{head}{"".join(rows)}</table></section>',
    ]


def _phi_section(rep: RunReport, figures: bool) -> list[str]:
    phi = rep.phi
    n = len(phi)
    alpha = rep.alpha
    cut = 0.0 if alpha is None else alpha
    above = phi > cut
    cards = [
        ("rows scored", n, "n_scored"),
        ("Φ > 0 (harmful)", int((phi > 0).sum()), "n_positive"),
        (f"Φ > α ({_num(alpha)})", int(above.sum()), "n_above_alpha"),
        ("largest Φ", float(phi.max()) if n else None, "phi_max"),
    ]
    if alpha is None:  # --fraction runs record no α
        del cards[2]
    html_cards = "".join(
        f'<div class="card"><b data-key="{k}" data-value="{_e(repr(v) if isinstance(v, float) else v)}">'  # noqa: E501
        f"{_e(_num(v))}</b><span>{_e(label)}</span></div>" for label, v, k in cards
    )
    out = ['<section id="phi"><h2>Influence Φ of the training rows</h2>',
           f'<div class="cards">{html_cards}</div>']
    if figures:
        out.append(_img(phi_histogram_png(phi, alpha=alpha, title=f"Φ of {n:,} training rows"),
                        "histogram of Φ with the threshold α"))
    red = ("rows above the chosen α (the ones the strategy acts on)" if alpha is not None
           else "Φ > 0 (the run chose rows by --fraction, not by α)")
    out.append(f'<p class="note">Red: {_e(red)}. Counts on a log scale.</p></section>')
    return out


def _sweep_section(rep: RunReport, figures: bool) -> list[str]:
    out = ['<section id="sweep"><h2>α sweep</h2>']
    if not rep.sweep:
        settings = rep.run.get("settings", {})
        how = (f"rows chosen by --fraction {_num(settings['fraction'])}"
               if settings.get("fraction") is not None else f"α fixed at {_num(rep.alpha)}")
        out.append(f'<p class="note">No sweep was run ({_e(how)}).</p></section>')
        return out
    out.append(f'<p class="note">Candidate thresholds for <b>{_e(rep.sweep_strategy)}</b>: the '
               "model was retrained on each cleaned set and its validation loss measured; the "
               "lowest wins (highlighted). The prediction is the first-order change from Φ.</p>")
    if figures:
        out.append(_img(sweep_png(rep.sweep, chosen_alpha=rep.sweep_alpha,
                                  strategy=rep.sweep_strategy),
                        "validation loss against the number of rows selected"))
    head = _th("α", "selected", "relabeled", "removed", "predicted val loss",
               "val loss after retrain",
               numeric=("α", "selected", "relabeled", "removed", "predicted val loss",
                        "val loss after retrain"))
    rows = []
    for i, r in enumerate(rep.sweep):
        cls = ' class="hl"' if r.get("alpha") == rep.sweep_alpha else ""
        a = r.get("alpha")
        cells = [
            _td("none (erm)" if a is None else f"{a:.4g}", cls="n", value=a, sweep=i,
                key="alpha"),
            *[_td(_num(r.get(k)), cls="n", value=r.get(k), sweep=i, key=k)
              for k in ("n_selected", "n_relabeled", "n_removed")],
            *[_td(_num(r.get(k), ".4f"), cls="n", value=r.get(k), sweep=i, key=k)
              for k in ("predicted_val_loss", "val_loss")],
        ]
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    out.append(f'<table id="sweep-table">{head}{"".join(rows)}</table></section>')
    return out


def _matrix_section(rep: RunReport) -> list[str]:
    m = rep.matrix
    out = ['<section id="relabels"><h2>Relabels: from → to</h2>']
    total = int(m.sum())
    if total == 0:
        out.append(f'<p class="note">The strategy <b>{_e(rep.strategy)}</b> relabeled no rows.'
                   "</p></section>")
        return out
    out.append(f'<p class="note">{total:,} rows relabeled by <b>{_e(rep.strategy)}</b>: '
               "original label (rows) against the new target's top class (columns), from the "
               "cleaned file.</p>")
    head = "<tr><th>label ↓ · new →</th>" + "".join(
        f'<th class="n">{_e(c)}</th>' for c in rep.classes) + '<th class="n">total</th></tr>'
    rows = []
    for i, c in enumerate(rep.classes):
        cells = "".join(
            _td(_num(int(m[i, j])), cls="n" if m[i, j] else "n zero", value=int(m[i, j]),
                key="matrix", **{"from": c, "to": rep.classes[j]})
            for j in range(len(rep.classes)))
        rows.append(f"<tr><th>{_e(c)}</th>{cells}"
                    f'{_td(_num(int(m[i].sum())), cls="n")}</tr>')
    out.append(f'<table id="relabel-matrix">{head}{"".join(rows)}</table></section>')
    return out


def _noise_section(rep: RunReport) -> list[str]:
    out = ['<section id="noise"><h2>Label noise: flagged vs corrupted rows</h2>']
    if rep.noise_note:
        out.append(f'<p class="note">{_e(rep.noise_note)}</p></section>')
        return out
    if not rep.noise:
        out.append('<p class="note">The training data has no <code>is_noisy</code> column (it '
                   "is written by <code>rdia noise</code>), so the true corrupted rows are "
                   "unknown.</p></section>")
        return out
    nm = rep.noise_meta or {}
    desc = ", ".join(f"{k} {v}" for k, v in nm.items())
    out.append(f'<p class="note">Flagged = relabeled or removed rows; corrupted = '
               f"<code>is_noisy</code> in <code>{_e(rep.train_path)}</code>"
               f"{' (' + _e(desc) + ')' if desc else ''}. Precision: share of flagged rows that "
               "were corrupted; recall: share of corrupted rows that were flagged.</p>")
    head = _th("strategy", "flagged", "corrupted", "flagged ∩ corrupted", "precision", "recall",
               numeric=("flagged", "corrupted", "flagged ∩ corrupted", "precision", "recall"))
    rows = []
    for s in rep.noise:
        cls = ' class="hl"' if s.strategy == rep.strategy else ""
        cells = [
            f"<td><b>{_e(s.strategy)}</b></td>",
            _td(_num(s.n_flagged), cls="n", value=s.n_flagged, strategy=s.strategy,
                key="n_flagged"),
            _td(_num(s.n_noisy), cls="n", value=s.n_noisy, strategy=s.strategy, key="n_noisy"),
            _td(_num(s.n_true_positive), cls="n", value=s.n_true_positive, strategy=s.strategy,
                key="n_true_positive"),
            _td("—" if s.precision is None else f"{s.precision:.3f}", cls="n", value=s.precision,
                strategy=s.strategy, key="precision"),
            _td("—" if s.recall is None else f"{s.recall:.3f}", cls="n", value=s.recall,
                strategy=s.strategy, key="recall"),
        ]
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    out.append(f'<table id="noise-table">{head}{"".join(rows)}</table>')
    if any(s.n_flagged == 0 for s in rep.noise):
        out.append('<p class="note">—: the strategy flags no row (optlr only reweights).</p>')
    out.append("</section>")
    return out


def _settings_section(rep: RunReport) -> list[str]:
    run = rep.run
    settings = dict(run.get("settings", {}))
    net = settings.pop("net_options", None)
    rows = [(k, v if _plain(v) or v is None else json.dumps(v)) for k, v in settings.items()]
    if net:
        rows.append(("net_options", json.dumps(net)))
    rows += [(k, run.get(k)) for k in ("train", "val", "test", "n_train", "n_val", "n_test")]
    score = [(k, v if _plain(v) or v is None else json.dumps(v))
             for k, v in (run.get("score_info") or {}).items()]
    timings = run.get("timings") or {}
    trows = "".join(
        f"<tr><td>{_e(k)}</td>{_td(f'{v:.2f} s', cls='n', value=float(v), key='timing', stage=k)}</tr>"  # noqa: E501
        for k, v in timings.items())
    total = sum(float(v) for v in timings.values())
    trows += f'<tr><th>sum</th><th class="n">{total:.2f} s</th></tr>'
    return [
        '<section id="settings"><h2>Settings and timings</h2><div class="cols">',
        f"<div><h3>run</h3>{_kv_table(rows, 'settings', none='default')}</div>",
        f"<div><h3>influence solve</h3>{_kv_table(score, 'score_info')}</div>",
        f'<div><h3>timings</h3><table class="kv" id="timings">{trows}</table></div>',
        "</div></section>",
    ]


def build_report(run_dir: str | Path, *, train: str | Path | None = None) -> str:
    """Collect ``run_dir`` and render the HTML report (needs matplotlib)."""
    require_matplotlib()
    return render_html(collect_run(run_dir, train=train))


def write_text(text: str, path: str | Path) -> None:
    """Write UTF-8 text to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
