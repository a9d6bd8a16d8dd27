"""Figures for `rdia inspect` and `rdia report` (PNG bytes). Never prints.

Plotting needs the optional extra ``pip install 'rdia-cli[report]'`` (matplotlib); it is imported
only inside the functions that draw, always with the Agg canvas (no display, no global pyplot
state). Φ, its sign and its scale: ``rdia_cli.glossary``.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from rdia_cli.artifacts.atomic import atomic_path
from rdia_cli.errors import InputError

INSTALL_HINT = "pip install 'rdia-cli[report]'"

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
                    label=f"chosen α = {fmt_num(chosen_alpha)}", zorder=5)
            break
    ax.set_xlabel(f"rows selected (Φ > α) for {strategy}", fontsize=9)
    ax.set_ylabel("validation loss", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.legend(frameon=False, fontsize=9)
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


_FAMILY_COLORS = ("#2c6fbb", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#7f8c8d",
                  "#2c3e50", "#b7950b", "#e84393")


def _cv_family(row: dict) -> str:
    """The candidate's family, its label without the share ("drop top 20% by Φ, ω=1" →
    "drop by Φ, ω=1"): one line per family."""
    return re.sub(r" top [0-9.]+% ", " ", str(row.get("label", "")))


def cv_decision_png(cv: list[dict], verdict: dict, *, chosen_fraction: float | None) -> bytes:
    """`--strategy auto`'s decision: every candidate's cross-validated loss (± one standard
    error) against the share of training rows it acts on, one line per family; ERM, the clean
    set alone and train + clean set as reference lines; the pick starred."""
    fig = _figure(9.6, 5.6)
    ax = fig.add_subplot()
    families: dict[str, list[dict]] = {}
    for row in cv:
        if row.get("weight", 1.0) == 0 or row.get("fraction", 0.0) == 0:
            continue  # the anchors: drawn as reference lines
        families.setdefault(_cv_family(row), []).append(row)
    for i, (name, rows) in enumerate(families.items()):
        rows = sorted(rows, key=lambda r: r["fraction"])
        color = _FAMILY_COLORS[i % len(_FAMILY_COLORS)]
        x = np.array([100 * r["fraction"] for r in rows])
        y = np.array([r["cv_loss"] for r in rows], dtype=float)
        se = np.array([np.nan if r.get("cv_se") is None else r["cv_se"] for r in rows])
        ax.plot(x, y, "-", color=color, linewidth=1, alpha=0.8, label=name)
        ax.errorbar(x, y, yerr=np.where(np.isfinite(se), se, 0.0), fmt="none", ecolor=color,
                    elinewidth=0.8, capsize=2, alpha=0.8)
        full = np.array([bool(r.get("all_folds")) for r in rows])
        ax.plot(x[full], y[full], "o", color=color, markersize=4)
        ax.plot(x[~full], y[~full], "o", markerfacecolor="white", color=color, markersize=4)
    refs = (("cv_loss_erm", "ERM (training set as given)", "#555", "--"),
            ("cv_loss_clean_only", "clean set alone", "#27ae60", ":"),
            ("cv_loss_train_plus_val", "training + clean set", "#8e44ad", "-."))
    for key, label, color, style in refs:
        v = verdict.get(key)
        if v is not None and np.isfinite(v):
            ax.axhline(v, color=color, linestyle=style, linewidth=1.2, label=f"{label}: {v:.4f}")
    v = verdict.get("cv_loss_chosen")
    if v is not None:
        x = 100 * (chosen_fraction or 0.0)
        ax.plot([x], [v], "*", color="#f1c40f", markeredgecolor="#333", markersize=16, zorder=6,
                label=f"pick: {verdict.get('chosen', '')} ({v:.4f})")
    ax.set_xlabel("training rows acted on, %  (hollow: raced out, fewer folds)", fontsize=9)
    ax.set_ylabel("cross-validated loss on the clean set (± 1 SE)", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def before_after_png(models: list[dict], *, highlight: str | None = None) -> bytes:
    """Test loss and accuracy of every model of a run (metrics.json), ERM first, as bars."""
    fig = _figure(9.6, 0.9 + 0.32 * max(2, len(models)))
    names = [str(m.get("name", "")) for m in models]
    y = np.arange(len(models))[::-1]
    for k, (key, label) in enumerate((("loss", "test loss (lower is better)"),
                                      ("accuracy", "test accuracy (higher is better)"))):
        ax = fig.add_subplot(1, 2, k + 1)
        vals = np.array([float(m.get(key, np.nan)) for m in models])
        colors = ["#f39c12" if n == highlight else "#95a5a6" if n == "erm" else "#2c6fbb"
                  for n in names]
        ax.barh(y, vals, color=colors, height=0.7)
        erm = next((v for n, v in zip(names, vals, strict=True) if n == "erm"), None)
        if erm is not None and np.isfinite(erm):
            ax.axvline(erm, color="#555", linestyle="--", linewidth=1)
        for yi, v in zip(y, vals, strict=True):
            if np.isfinite(v):
                ax.text(v, yi, f" {v:.3f}", va="center", fontsize=7)
        ax.set_yticks(y, names if k == 0 else [""] * len(names), fontsize=8)
        ax.set_xlabel(label, fontsize=9)
        ax.tick_params(labelsize=8)
        if key == "accuracy":
            lo = np.nanmin(vals) if np.isfinite(vals).any() else 0.0
            ax.set_xlim(max(0.0, lo - 0.1), 1.05)
        else:
            top = np.nanmax(vals) if np.isfinite(vals).any() else 1.0
            ax.set_xlim(0, top * 1.2)
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


def fmt_num(x: Any, spec: str = ".4g") -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return "—" if math.isnan(x) else format(x, spec)
    return str(x)
