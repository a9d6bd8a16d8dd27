"""The cleaned file: what `rdia relabel` writes for any downstream trainer, and how the rdia
stages read it back.

On disk (Parquet, see ``rdia_cli.data.writers``) a cleaned training set is ready for a trainer
that knows nothing of rdia:

``label``           the new hard label on relabeled rows (the top class of the new target),
                    the original label elsewhere;
``original_label``  the label the row came with;
``target``          a probability vector per row (one-hot where unchanged; paper Eq. 12's
                    values normalized to sum to 1 — Eq. 12 itself sums to less than 1 for K > 2);
``target_raw``      Eq. 12's values as the paper trains on them, only where they differ from
                    ``target`` (``rdia retrain`` trains on these);
``weight``          only when some row's weight is not 1;
``relabeled``, ``phi`` and the input's own extra columns.

The clean validation rows are left out unless asked for (``include_clean``): a user who appends
their clean set to the file would otherwise count it twice. Where the strategy trains on them
(``auto``), the file's metadata records where they are (path and fingerprint) so that
`rdia retrain` can add them back, and the λ and blend share to use (``hint_lines``).

This module owns the file's ``rdia.relabel`` metadata: ``rule_record`` and ``auto_record``
build it (for `rdia relabel` and `rdia run` alike), ``write_cleaned`` writes the file,
``record_of`` reads the record back and ``load_clean_rows`` finds the clean rows it names.

In memory the stages keep the training view: ``y`` the original labels (so the fingerprint of a
cleaned file is the fingerprint of the data it came from) and ``target`` what training uses.
``for_file`` turns that view into the file's, ``from_file`` turns it back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError, MismatchError

ORIGINAL = "original_label"
RAW = "target_raw"


def for_file(ds: Dataset) -> Dataset:
    """The on-disk view of a cleaned Dataset (see the module docstring)."""
    extra = dict(ds.extra)
    target, weight, y = ds.target, ds.weight, ds.y
    if target is not None:
        raw = np.asarray(target, dtype=np.float32)
        relabeled = np.asarray(extra.get("relabeled", np.zeros(ds.n_samples, bool)), bool)
        y = ds.y.copy()
        if relabeled.any():
            y[relabeled] = raw[relabeled].argmax(1)
        sums = raw.sum(1, keepdims=True, dtype=np.float64)
        target = np.where(sums > 0, raw / np.where(sums > 0, sums, 1.0), np.eye(ds.n_classes)[y])
        target = target.astype(np.float32)
        if not np.array_equal(target, raw):
            extra[RAW] = raw
        extra[ORIGINAL] = np.asarray(ds.classes)[ds.y]
    if weight is not None and np.all(np.asarray(weight) == 1.0):
        weight = None
    return Dataset(X=ds.X, y=y, classes=list(ds.classes), row_id=ds.row_id, target=target,
                   weight=weight, feature_names=ds.feature_names, extra=extra,
                   meta=dict(ds.meta), source=ds.source, table=ds.table)


def from_file(ds: Dataset) -> Dataset:
    """The training view of a cleaned file read from disk (inverse of ``for_file``)."""
    if ORIGINAL not in ds.extra and RAW not in ds.extra:
        return ds
    extra = dict(ds.extra)
    y, target = ds.y, ds.target
    if ORIGINAL in extra:
        values = extra.pop(ORIGINAL)
        lookup = {str(c): i for i, c in enumerate(ds.classes)}
        try:
            y = np.fromiter((lookup[str(v)] for v in values), dtype=np.int64, count=len(values))
        except KeyError as e:
            raise InputError(f"`{ds.source}` has an `{ORIGINAL}` value {e} that is not one of "
                             f"its classes {ds.classes}.") from None
    if RAW in extra:
        target = np.asarray(extra.pop(RAW), dtype=np.float32)
    return Dataset(X=ds.X, y=y, classes=list(ds.classes), row_id=ds.row_id, target=target,
                   weight=ds.weight, feature_names=ds.feature_names, extra=extra,
                   meta=dict(ds.meta), source=ds.source, table=ds.table)


def split_clean_rows(ds: Dataset, include_clean: bool, source: Dataset | None = None,
                     clean: Dataset | None = None) -> tuple[Dataset, dict[str, Any]]:
    """For a Dataset with ``extra['part']`` (auto: 0 training row, 1 clean row), the rows to
    write and what the metadata says about the clean rows. The rows get back the user's own
    table: the training rows ``source``'s (the training data), the clean rows ``clean``'s (the
    clean set), so the file keeps the user's columns."""
    if "part" not in ds.extra:
        return ds, {}
    part = np.asarray(ds.extra["part"])
    n_clean = int((part == 1).sum())
    if include_clean:
        info = {"clean_rows": "included", "n_clean": n_clean}
        rows = ds
    elif n_clean == ds.n_samples:  # auto kept no training row: an empty file would help no one
        info = {"clean_rows": "included", "n_clean": n_clean,
                "clean_rows_why": "no training row was kept (the clean set alone was best)"}
        rows = ds
    else:
        info = {"clean_rows": "excluded", "n_clean": n_clean}
        rows = ds.subset(np.flatnonzero(part == 0))
        rows.extra.pop("part")
    if rows.table is None:
        _with_user_table(rows, source, clean)
    return rows, info


def _with_user_table(rows: Dataset, source: Dataset | None, clean: Dataset | None) -> None:
    """Give ``rows`` (training rows, ``part`` 0, and clean rows, ``part`` 1, by ``row_id``)
    the user's table: the rows of ``source``'s and ``clean``'s tables, when every row has one
    and the two tables have the same columns. Otherwise ``rows`` keeps rdia's layout."""
    import pyarrow as pa

    part = np.asarray(rows.extra.get("part", np.zeros(rows.n_samples, np.int8)))
    pieces, metas = [], []
    for value, data in ((0, source), (1, clean)):
        ids = rows.row_id[part == value]
        if len(ids) == 0:
            continue
        if data is None or data.table is None:
            return
        at = {int(r): i for i, r in enumerate(data.row_id)}
        if any(int(r) not in at for r in ids):
            return
        pieces.append(data.table.take(np.array([at[int(r)] for r in ids], np.int64)))
        metas.append(data.meta)
    if not pieces or (len(pieces) == 2 and set(pieces[0].column_names)
                      != set(pieces[1].column_names)):
        return
    if len(pieces) == 2:
        pieces[1] = pieces[1].select(pieces[0].column_names)
        try:
            table = pa.concat_tables(pieces, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return
        if not (np.diff(part) >= 0).all():  # rows are training rows then clean rows
            return
    else:
        table = pieces[0]
    rows.table = table
    rows.meta = dict(metas[0], **rows.meta)


def add_clean_rows(ds: Dataset, clean: Dataset) -> Dataset:
    """The training rows of an auto file followed by the clean rows, as ``auto`` trained on them
    (``cleaning.auto.build_training_set``: weight 1 and one-hot targets for the clean rows)."""
    import scipy.sparse as sp

    k = ds.n_classes
    if clean.n_features != ds.n_features or [str(c) for c in clean.classes] != [
            str(c) for c in ds.classes]:
        raise MismatchError(f"the clean set `{clean.source}` does not match `{ds.source}` "
                            "(features or classes differ).")
    blocks = [ds.flat_X(), clean.flat_X()]
    X = (sp.vstack(blocks, format="csr") if any(sp.issparse(b) for b in blocks)
         else np.vstack(blocks))
    n_t, n_v = ds.n_samples, clean.n_samples
    target = np.vstack([ds.targets(), np.eye(k)[clean.y]]).astype(np.float32)
    weight = np.concatenate([np.ones(n_t) if ds.weight is None else ds.weight, np.ones(n_v)])
    extra = {"part": np.concatenate([np.zeros(n_t, np.int8), np.ones(n_v, np.int8)])}
    if "relabeled" in ds.extra:
        extra["relabeled"] = np.concatenate([ds.extra["relabeled"], np.zeros(n_v, bool)])
    return Dataset(X=X, y=np.concatenate([ds.y, clean.y]), classes=list(ds.classes),
                   row_id=np.concatenate([ds.row_id, clean.row_id]), target=target,
                   weight=weight, feature_names=ds.feature_names, extra=extra,
                   meta=dict(ds.meta), source=ds.source)


def hint_lines(relabel_meta: dict[str, Any], n_rows: int) -> list[str]:
    """How to train on the file with one's own trainer: the λ and blend that auto chose."""
    lines = []
    l2 = relabel_meta.get("l2")
    if l2:
        n = n_rows + (relabel_meta.get("n_clean") or 0
                      if relabel_meta.get("clean_rows") == "excluded" else 0)
        lines.append(f"λ = {l2:.4g} (mean-loss L2 over the {n:,} rows auto trained on; "
                     f"scikit-learn C = 1/(λ·rows) = {1 / (l2 * n):.4g})")
    if relabel_meta.get("clean_rows") == "excluded" and relabel_meta.get("n_clean"):
        lines.append(f"add your {relabel_meta['n_clean']:,} clean rows (weight 1): this file "
                     "leaves them out (`--include-clean` writes them in, column `part` = 1)")
    w = relabel_meta.get("weight")
    if w is not None and w != 1:
        lines.append(f"the training rows carry weight {w:g} (column `weight`)")
    blend = relabel_meta.get("blend")
    if blend:
        lines.append(f"auto's model also averages the parameters with a fit on the clean rows "
                     f"alone (λ = {blend['clean_only_l2']:.4g}), share "
                     f"{blend['clean_only_share']:.0%}; `rdia retrain` does this for you")
    return lines


# --- the file's record (``rdia.relabel``) ------------------------------------------------------
def rule_record(cleaning, *, strategy: str, targets: str, alpha: float | None,
                phi_threshold: float | None, fraction: float | None, paper_factor: float,
                source_fingerprint: str, scores: str | None = None,
                scores_fingerprint: str | None = None, sweep=()) -> dict[str, Any]:
    """The record of a rule-based cleaning (α, Φ threshold or fraction; ``--alpha auto``)."""
    return {"strategy": strategy, "targets": targets, "alpha": alpha,
            "phi_threshold": phi_threshold, "fraction": fraction,
            "paper_factor": None if np.isnan(paper_factor) else paper_factor, "scores": scores,
            "scores_fingerprint": scores_fingerprint, "source_fingerprint": source_fingerprint,
            "n_relabeled": cleaning.n_relabeled, "n_removed": cleaning.n_removed,
            "sweep": list(sweep)}


def auto_record(result, *, source_fingerprint: str, clean: Dataset, clean_info: dict,
                clean_inputs: dict, scores: str | None = None) -> dict[str, Any]:
    """The record of an ``auto`` cleaning (``result``: what ``auto_clean`` returned):
    the choice, λ, the verdict, where the clean rows are and the blend with the clean-only fit,
    which `rdia retrain` repeats. ``clean_info`` comes from ``split_clean_rows``,
    ``clean_inputs`` from ``artifacts.inputs.record_inputs(clean=...)``."""
    cfg = result.config
    record = {"strategy": "auto", "action": cfg.action, "ranker": cfg.ranker,
              "fraction": cfg.fraction, "weight": cfg.weight, "l2": result.model.meta["l2"],
              "scores": scores, "source_fingerprint": source_fingerprint,
              "verdict": result.verdict, "cv": result.cv,
              "n_relabeled": int(result.cleaned.extra["relabeled"].sum()),
              **clean_info, "clean_fingerprint": clean.fingerprint(), **clean_inputs}
    if "blend" in result.model.meta:  # `rdia retrain` refits both parts and blends them
        record["blend"] = {"clean_only_share": result.clean_only_share,
                           "clean_only_l2": result.model.meta["blend"]["l2"][1]}
    return record


def write_cleaned(ds: Dataset, path, record: dict[str, Any]) -> None:
    """Write the cleaned Dataset (training view) as the cleaned file, with its record."""
    from rdia_cli.data.writers import write_dataset

    write_dataset(for_file(ds), str(path), meta={"relabel": record})


def record_of(ds: Dataset) -> dict[str, Any]:
    """The ``rdia.relabel`` record of a cleaned file read back ({} for other data)."""
    record = ds.meta.get("relabel")
    return record if isinstance(record, dict) else {}


def needs_clean_rows(ds: Dataset) -> bool:
    """An ``auto`` file written without the clean rows it was trained with."""
    return record_of(ds).get("clean_rows") == "excluded"


def load_clean_rows(ds: Dataset, clean: Dataset | None = None, *, schema=None) -> Dataset:
    """``ds`` (an ``auto`` file without its clean rows) with the clean rows added back:
    ``clean`` when given, else the clean set at the path the file records, read with the
    options it records. Its fingerprint must be the recorded one."""
    from rdia_cli.artifacts.inputs import recorded_options, recorded_path
    from rdia_cli.data.readers import ReadOptions, read_dataset

    record = record_of(ds)
    if clean is None:
        path = recorded_path(record, "clean", "clean set", "give --val")
        clean = read_dataset(str(path), recorded_options(record, "clean", ReadOptions),
                             schema=schema, what="clean data")
    want = record.get("clean_fingerprint")
    if want and clean.fingerprint() != want:
        raise MismatchError(f"`{clean.source}` is not the clean set `{ds.source}` was made with "
                            f"(fingerprint {clean.fingerprint()}, expected {want}); give the "
                            "right one with --val.")
    return add_clean_rows(ds, clean)
