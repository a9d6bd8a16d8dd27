"""`rdia report`: everything a run folder (`rdia run -o DIR`) holds, collected into a
``RunReport``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rdia_cli.artifacts import metadata
from rdia_cli.errors import InputError, MismatchError, RdiaError
from rdia_cli.report.inspect import recorded_cut

RUN_FILES = ("metrics.json", "run.json", "scores.parquet")

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
    cv: list[dict] = field(default_factory=list)  # `auto`'s candidates (run.json), else empty
    verdict: dict | None = None  # `auto`'s verdict (run.json)
    chosen_fraction: float | None = None  # share of training rows the `auto` pick acts on
    examples: list[dict] = field(default_factory=list)  # "Why these rows" (``worked_examples``)
    examples_note: str | None = None  # why there are none


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


def collect_run(run_dir: str | Path, *, train: str | Path | None = None,
                examples: int = 4) -> RunReport:
    """Read the files `rdia run` left in ``run_dir`` into a :class:`RunReport`.

    ``train`` overrides the training data path recorded in run.json (needed for the
    label-noise precision/recall, from its ``is_noisy`` column, and for the worked examples).
    ``examples``: how many of the most harmful rows to explain (``worked_examples``; 0: none).
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
    shown, shown_note = worked_examples(run_dir, run, scores, train_path, k=examples)
    return RunReport(
        run_dir=str(run_dir), run=run, metrics=metrics, phi=scores.phi, classes=classes,
        strategy=strategy, alpha=recorded_cut(info), sweep=list(sweep_info.get("sweep") or []),
        matrix=matrix, noise=noise, noise_note=note, noise_meta=noise_meta,
        train_path=None if train_path is None else str(train_path),
        sweep_strategy=sweep_name, sweep_alpha=recorded_cut(sweep_info),
        examples=shown, examples_note=shown_note, **_auto_decision(run),
    )


def worked_examples(run_dir: Path, run: dict, scores, train_path: Path | None, *, k: int = 4
                    ) -> tuple[list[dict], str | None]:
    """The ``k`` rows with the largest Φ, each as a dict: ``row`` (ID or row_id), ``given``
    and ``suggested`` label (paper Eq. 12's top class), ``p_label`` (the model's probability
    of the given label), ``phi``, ``delta_val_loss`` (-Φ/(N(1-p)) if relabeled) and ``why``
    (``[{"row", "label", "share"}]``: the 3 validation rows pushing Φ most). Empty, with a
    sentence saying why, when the training or validation data or the model cannot be found
    or read as the run read them."""
    if k <= 0:
        return [], None
    val_path = resolve_recorded(run_dir, run, run.get("val"))
    model_path = run_dir / "erm.pt"
    missing = [what for what, p in (("training data", train_path), ("validation data",
                                                                      val_path),
                                    ("model erm.pt", model_path if model_path.is_file()
                                     else None)) if p is None]
    if missing:
        return [], (f"the {' and '.join(missing)} of this run were not found, so its rows "
                    "cannot be explained here (give --train PATH for moved training data).")
    from rdia_cli.data.readers import read_dataset
    from rdia_cli.models.io import load_model
    from rdia_cli.report.inspect import explain_harmful, harmful_rows
    from rdia_cli.stages import schema_of_model

    try:
        model = load_model(model_path)
        schema = schema_of_model(model)
        train = read_dataset(str(train_path), schema=schema, what="training data")
        val = read_dataset(str(val_path), schema=schema, what="validation data")
        if scores.meta.get("train_fingerprint") not in (None, train.fingerprint()):
            return [], (f"training data `{train_path}` is not the data this run scored, so "
                        "its rows are not explained (give the run's training data with "
                        "--train).")
        rows = harmful_rows(scores, train, top=k)
        whys = explain_harmful(rows, scores, train, val, model)
    except RdiaError as e:
        return [], f"the run's rows could not be explained ({e})"
    id_name = scores.meta.get("id_column") if scores.ids is not None else None
    n = int(scores.meta["n_train"])
    out = []
    for r, w in zip(rows, whys, strict=True):
        if w is None:
            continue
        out.append({
            "row": str(scores.ids[r.index]) if id_name else str(r.row_id),
            "row_id": r.row_id, "given": r.label, "suggested": r.new_label,
            "p_label": r.p_label, "phi": r.phi, "delta_val_loss": r.delta_relabel,
            "n_train": n,
            "why": [{"row": name, "label": val.classes[int(val.y[j])], "share": share}
                    for j, name, share in zip(w.positions, w.names, w.shares, strict=True)],
        })
    return out, None


def _auto_decision(run: dict) -> dict:
    """`auto`'s cross-validation table, verdict and pick, when the run has an `auto` result."""
    info = (run.get("strategies") or {}).get("auto") or {}
    verdict = run.get("verdict") if isinstance(run.get("verdict"), dict) else info.get("verdict")
    if not info.get("cv") or not isinstance(verdict, dict):
        return {}
    return {"cv": list(info["cv"]), "verdict": verdict,
            "chosen_fraction": info.get("fraction")}


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
