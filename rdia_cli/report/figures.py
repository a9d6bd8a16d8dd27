"""Figures for `rdia inspect` and `rdia report` (PNG bytes). Never prints.

Plotting needs the optional extra ``pip install 'rdia-cli[report]'`` (matplotlib); it is imported
only inside the functions that draw, always with the Agg canvas (no display, no global pyplot
state). Φ, its sign and its scale: ``rdia_cli.glossary``.
"""

from __future__ import annotations

import io
import math
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
