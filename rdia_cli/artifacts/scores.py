"""The scores file: Φ and friends for every training row (Parquet, one row per sample).

Columns: row_id, label (class value), phi, phi_paper (= C·(M/N)·Φ, the paper's scale, see
``paper_factor``), delta_remove (= -Φ/N), delta_relabel (= -Φ/(N(1-p_label))), p_label, loss,
probs (list<float32> of length K).
Metadata ``rdia.*`` (JSON): classes, fingerprints of model, training and validation data, N, M,
λ, damping, solver, iterations, residual, timings. Sign and scale: ``rdia_cli.glossary``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rdia_cli import glossary
from rdia_cli.artifacts import metadata
from rdia_cli.artifacts.atomic import atomic_path
from rdia_cli.artifacts.inputs import STDIN, is_stream, pipe_bytes
from rdia_cli.errors import InputError, MismatchError
from rdia_cli.glossary import relabel_effect

COLUMNS = ("row_id", "label", "phi", "delta_remove", "delta_relabel", "p_label", "loss", "probs")


def paper_factor(meta: dict) -> float:
    """C·(M/N) of a scores file's metadata (``glossary.paper_factor``)."""
    return glossary.paper_factor(meta.get("l2"), meta.get("damping"), meta.get("n_train"),
                                 meta.get("n_val"))


def file_fingerprint(path: str | Path) -> str:
    """16 hex chars of blake2b over the file's bytes (for model files; a pipe's as read)."""
    h = hashlib.blake2b(digest_size=8)
    if is_stream(path):
        h.update(pipe_bytes(path))
        return h.hexdigest()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class Scores:
    row_id: np.ndarray
    label: np.ndarray  # class indices
    phi: np.ndarray
    phi_paper: np.ndarray  # C·(M/N)·Φ, the scale of the paper's α (``paper_factor``)
    p_label: np.ndarray
    loss: np.ndarray
    probs: np.ndarray  # (N, K)
    meta: dict[str, Any]
    path: str = "<memory>"
    ids: np.ndarray | None = None  # the data's ID column (``meta["id_column"]`` names it)

    @property
    def n_samples(self) -> int:
        return len(self.phi)

    @property
    def paper_factor(self) -> float:
        """C·(M/N): ``phi_paper`` = paper_factor·Φ (NaN where there is no paper scale)."""
        return paper_factor(self.meta)

    @property
    def delta_remove(self) -> np.ndarray:
        return -self.phi / self.meta["n_train"]

    @property
    def delta_relabel(self) -> np.ndarray:
        return relabel_effect(self.phi, self.p_label, self.meta["n_train"])


def write_scores(path, *, row_id, labels, classes, result, probs, meta: dict,
                 row_group_size: int = 1 << 20, ids=None) -> None:
    """Write the scores file atomically, one row group at a time (no whole-file table; the
    labels are taken from the class values without a Python object per row). ``ids``:
    (name, Arrow array) of the data's ID column, written after ``row_id`` under its name."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rdia_cli.artifacts.arrow import arrow_of  # not pa.array: it imports pandas

    n = len(result.phi)
    n_train = int(meta["n_train"])
    values = metadata.classes_array(classes)
    labels = np.asarray(labels, dtype=np.int64)
    row_id = np.asarray(row_id, dtype=np.int64)
    phi = np.asarray(result.phi, dtype=np.float64)
    p_label = np.asarray(result.p_label, dtype=np.float64)
    loss = np.asarray(result.loss, dtype=np.float64)
    from rdia_cli.artifacts.atomic import without_timings

    meta = without_timings(meta)  # the same command gives the same bytes
    k = probs.shape[1]
    factor = paper_factor(meta)
    full_meta = dict(meta, classes=list(classes), n_rows=n, kind="scores", format_version=1,
                     paper_factor=None if np.isnan(factor) else factor)
    id_field = []
    if ids is not None:
        id_name = ids[0] if ids[0] not in (*COLUMNS, "phi_paper") else f"{ids[0]}_id"
        full_meta["id_column"] = id_name
        id_field = [(id_name, ids[1].type)]
    schema = pa.schema(
        [("row_id", pa.int64()), *id_field, ("label", values.type), ("phi", pa.float64()),
         ("phi_paper", pa.float64()),
         ("delta_remove", pa.float64()), ("delta_relabel", pa.float64()),
         ("p_label", pa.float64()), ("loss", pa.float64()), ("probs", pa.list_(pa.float32(), k))],
        metadata=metadata.encode(full_meta),
    )
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        if n == 0:
            writer.write_table(schema.empty_table())
        for a in range(0, n, row_group_size):
            b = min(n, a + row_group_size)
            ph = phi[a:b]
            probs_arr = pa.FixedSizeListArray.from_arrays(
                arrow_of(np.ascontiguousarray(probs[a:b], dtype=np.float32).reshape(-1)), k
            )
            table = pa.Table.from_arrays(
                [
                    arrow_of(row_id[a:b]),
                    *([] if ids is None else [ids[1].slice(a, b - a)]),
                    values.take(arrow_of(labels[a:b])),
                    arrow_of(ph),
                    arrow_of(ph * factor),
                    arrow_of(-ph / n_train),
                    arrow_of(relabel_effect(ph, p_label[a:b], n_train)),
                    arrow_of(p_label[a:b]),
                    arrow_of(loss[a:b]),
                    probs_arr,
                ],
                schema=schema,
            )
            writer.write_table(table, row_group_size=b - a)


def read_scores(path) -> Scores:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if str(path) == STDIN:  # Parquet needs to seek: read the whole stream first
        import sys

        p, source = Path("<stdin>"), pa.BufferReader(sys.stdin.buffer.read())
        if source.size() == 0:
            raise InputError("no scores on standard input (it is empty); pipe `rdia score` "
                             "into this command or give --scores FILE.")
    elif is_stream(path):  # a pipe (`<(cat s.parquet)`): the same, once
        p = Path(path)
        with open(p, "rb") as f:
            source = pa.BufferReader(f.read())
        if source.size() == 0:
            raise InputError(f"Scores file `{p}` is empty: nothing was written into the pipe.")
    else:
        p = source = Path(path)
        if not p.exists():
            raise InputError(f"Scores file `{p}` does not exist.")
    try:
        table = pq.read_table(source)
    except Exception as e:  # noqa: BLE001 - pyarrow raises many kinds
        raise InputError(f"`{p}` is not a Parquet file ({str(e).splitlines()[0]}).") from None
    try:
        meta = metadata.decode(table.schema.metadata)  # strict: a damaged value raises
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        raise InputError(f"Scores file `{p}` has damaged metadata (`{_bad_key(table)}` is not "
                         "JSON); make it again with `rdia score`.") from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if meta.get("kind") != "scores" or missing:
        raise InputError(
            f"`{p}` is not an rdia scores file"
            + (f" (missing columns: {', '.join(missing)})" if missing else "")
            + "; make one with `rdia score`."
        )
    classes = _check_table(table, meta, p)
    labels = _label_indices(table.column("label"), classes, p)
    probs_col = table.column("probs").combine_chunks()
    k = len(classes)
    probs = probs_col.flatten().to_numpy(zero_copy_only=False).reshape(-1, k).astype(np.float64)
    col = lambda name: table.column(name).to_numpy().astype(np.float64)  # noqa: E731
    # a damaged or hand-edited file: NaN/inf Φ or probabilities would silently pick rows
    for name, values in (("phi", col("phi")), ("p_label", col("p_label")), ("probs", probs)):
        bad = np.flatnonzero(~np.isfinite(values).reshape(len(values), -1).all(axis=1))
        if bad.size:
            r, more = int(bad[0]), bad.size - 1
            raise InputError(
                f"Scores file `{p}` has a non-finite `{name}` in row {r} (row_id "
                f"{int(table.column('row_id')[r].as_py())})"
                + (f" and {more:,} more rows" if more else "")
                + "; it is damaged: make it again with `rdia score`.")
    return Scores(
        row_id=table.column("row_id").to_numpy().astype(np.int64),
        label=labels,
        phi=col("phi"),
        phi_paper=(col("phi_paper") if "phi_paper" in table.column_names  # older files: derive
                   else col("phi") * paper_factor(meta)),
        p_label=col("p_label"),
        loss=col("loss"),
        probs=probs,
        meta=meta,
        path=str(p),
        ids=(table.column(meta["id_column"]).to_numpy(zero_copy_only=False)
             if meta.get("id_column") in table.column_names else None),
    )


def _bad_key(table) -> str:
    """The first ``rdia.*`` metadata key of ``table`` whose value ``metadata.decode`` refuses."""
    for k, v in (table.schema.metadata or {}).items():
        try:
            metadata.decode({k: v})
        except ValueError:
            return k.decode(errors="replace")
    return "a `rdia.*` value"


def _check_table(table, meta: dict, p) -> list:
    """The metadata's classes (a list of 2 or more distinct values); the columns' types, the
    width of `probs` (one per class) and at least one row. Returns the classes."""
    import pyarrow as pa

    def bad(what: str) -> InputError:
        return InputError(f"Scores file `{p}` is damaged: {what}; make it again with "
                          "`rdia score`.")

    classes = meta.get("classes")
    if not isinstance(classes, list) or len(classes) < 2 or len(set(map(str, classes))) != len(
            classes):
        raise bad("its metadata `rdia.classes` is "
                  + ("missing" if classes is None else f"{classes!r}")
                  + ", not a list of 2 or more distinct class values")
    numeric = lambda t: pa.types.is_floating(t) or pa.types.is_integer(t)  # noqa: E731
    names = ("row_id", "phi", "phi_paper", "delta_remove", "delta_relabel", "p_label", "loss")
    for name in names:
        if name in table.column_names:
            t = table.schema.field(name).type
            ok = pa.types.is_integer(t) if name == "row_id" else numeric(t)
            if not ok:
                raise bad(f"column `{name}` holds {t}, expected "
                          + ("integers" if name == "row_id" else "numbers"))
    t = table.schema.field("probs").type
    if not (pa.types.is_list(t) or pa.types.is_fixed_size_list(t)
            or pa.types.is_large_list(t)) or not numeric(t.value_type):
        raise bad(f"column `probs` holds {t}, expected lists of {len(classes)} probabilities")
    if table.num_rows == 0:
        raise bad("it has no rows")
    import pyarrow.compute as pc

    widths = pc.list_value_length(table.column("probs")).to_numpy(zero_copy_only=False)
    wrong = np.flatnonzero(widths != len(classes))
    if wrong.size:
        r = int(wrong[0])
        raise bad(f"row {r + 1}'s `probs` has {widths[r]} values but the file has "
                  f"{len(classes)} classes {classes}")
    return classes


def _label_indices(col, classes: list, path) -> np.ndarray:
    """Class indices of a label column, vectorized (no Python object per row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_integer(col.type) and all(isinstance(c, int) for c in classes):
        keys, values = col, pa.array(classes, type=col.type)
    else:
        keys = pc.cast(col, pa.string())
        values = pa.array([str(c) for c in classes], type=pa.string())
    idx = pc.index_in(keys, value_set=values)
    if idx.null_count:
        r = int(np.flatnonzero(idx.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(f"Scores file `{path}` has label `{col[r]}` in row {r + 1}, which is not "
                         f"one of its classes {classes}; rerun `rdia score`.")
    return np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.int64)


def check_scores_match(scores: Scores, fingerprint: str, row_id: np.ndarray, source: str) -> None:
    """Refuse scores made from other data than the dataset at hand."""
    want = scores.meta.get("train_fingerprint")
    if want != fingerprint:
        raise MismatchError(
            f"scores `{scores.path}` were computed on other training data (fingerprint {want}) "
            f"than `{source}` (fingerprint {fingerprint}); rerun `rdia score` on this file."
        )
    if len(row_id) != scores.n_samples:
        raise MismatchError(
            f"scores `{scores.path}` have {scores.n_samples} rows but `{source}` has "
            f"{len(row_id)}; rerun `rdia score` on this file."
        )
    if not np.array_equal(row_id, scores.row_id):
        r = int(np.flatnonzero(np.asarray(row_id) != scores.row_id)[0])
        raise MismatchError(
            f"scores `{scores.path}` and `{source}` both have {len(row_id)} rows but "
            f"their row_id differ (row {r + 1}: {int(scores.row_id[r])} in the scores, "
            f"{int(row_id[r])} in the data; reordered or edited?); rerun `rdia score` on "
            "this file."
        )
