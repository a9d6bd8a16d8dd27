"""`rdia inspect`: the most harmful training rows and the label each would get (Φ > 0 harmful;
relabeling row i changes the validation loss by about -Φ_i / (N (1 - p_label)),
``rdia_cli.glossary``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rdia_cli.errors import InputError, MismatchError
from rdia_cli.report.figures import image_grid_png


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
    (``rdia_cli.cleaning.targets.relabel_targets``); for a cleaned file it is the file's
    ``target``.
    """
    from rdia_cli.cleaning.files import from_file

    ds = from_file(ds)
    from rdia_cli.cleaning.strategies import relabel_targets

    if top < 0:
        raise InputError(f"`top` must be 0 or more, not {top}.")
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


def recorded_cut(info: dict):
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
# inspect: why (the validation rows pushing each Φ)
# --------------------------------------------------------------------------------------------
def explain_harmful(rows: list[HarmfulRow], scores, train, val, model, *, k: int = 3,
                    device="cpu") -> list:
    """``influence.explain.Why`` of each row (None where the row is not in ``train``), with
    the operator ``scores`` were computed with. ``train`` must be the data that was scored
    (not a cleaned file: its targets change the Hessian)."""
    from rdia_cli.influence.explain import explain_rows

    if is_cleaned(train):
        raise InputError("explaining Φ needs the training data that was scored, not a cleaned "
                         "file; give it with --data.")
    shown = [r for r in rows if r.position is not None]
    whys = explain_rows(model, train, val, [r.position for r in shown], info=scores.meta, k=k,
                        device=device)
    by_index = {r.index: w for r, w in zip(shown, whys, strict=True)}
    return [by_index.get(r.index) for r in rows]


def why_grid_png(train, val, rows: list[HarmfulRow], whys: list) -> bytes:
    """One line per harmful row: its image (`label → new label`, Φ), then the validation
    images that push its Φ most, each captioned with its ID, label and share of Φ."""
    shown = [(r, w) for r, w in zip(rows, whys, strict=True)
             if r.position is not None and w is not None]
    if not shown:
        raise InputError("none of the rows to show is in the data (all were removed).")
    k = max(len(w.positions) for _, w in shown)
    images, captions = [], []
    blank = np.zeros_like(np.asarray(train.X[shown[0][0].position], dtype=np.float32))
    vclasses = list(val.classes)
    for r, w in shown:
        images.append(np.asarray(train.X[r.position], dtype=np.float32))
        captions.append(f"{r.label} → {r.new_label if r.status != 'kept' else r.label}\n"
                        f"Φ = {r.phi:.3g}")
        for j in range(k):
            if j < len(w.positions):
                p = w.positions[j]
                images.append(np.asarray(val.X[p], dtype=np.float32))
                captions.append(f"val {w.names[j]}: {vclasses[int(val.y[p])]}\n"
                                f"{w.shares[j]:.0%} of Φ")
            else:
                images.append(blank)
                captions.append("")
    return image_grid_png(np.stack(images), captions, ncols=k + 1)
