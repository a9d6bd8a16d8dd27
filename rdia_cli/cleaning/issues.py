"""The label-issues table: one row per training row saying whether its label looks wrong, what
the chosen strategy does with it, and why (``find_issues``); and the cleaning a reviewed table
asks for (``cleaning_from_issues``, which `rdia apply` writes with the cleaned-file writer).

Columns, in this order (names and dtypes as cleanlab's ``Datalab.get_issues("label")`` where
they mean the same thing):

``row_id``          int64, the row's 0-based position in the input; then the data's ID column
                    when it has one (``--id-col``);
``is_label_issue``  bool: the strategy cleans the row (``action`` is not ``keep``); when it
                    drops every training row (the clean set alone was best), the rows whose
                    out-of-fold prediction is not their label;
``label_quality``   float64 in [0, 1], **low = suspect** (as cleanlab's label quality scores):
                    the self-confidence p(given label | x) under out-of-fold models of the
                    training rows (``quality_probs``, 5 folds, the same fits the auto strategy
                    ranks with; cleanlab's own recommendation). Chosen over a model fitted on
                    the clean set alone because it uses all N rows, not 5-10% of them, and
                    because then rdia, cleanlab and the benchmark read the same probabilities;
                    `bench/results/detection.md` measures both. Networks and a missing model:
                    the trained model's in-sample probabilities (the summary says which);
``given_label``     the label as given; ``predicted_label`` the out-of-fold model's class;
``suggested_label`` the class a relabel gives (the strategy's new label where it relabels,
                    else the model's most likely other class, what a hard relabel would pick);
``action``          keep | relabel | drop, as the strategy decided;
``phi``             Φ (``rdia_cli.glossary``: > 0 harmful);
``delta_val_loss``  first-order change of the mean validation loss if ``action`` is taken:
                    -Φ/N (drop), -Φ/(N(1-p)) (relabel, p the model's probability of the
                    given label), 0 (keep);
``why``, ``why_rows``, ``why_shares``  for up to ``explain`` flagged rows: the three
                    validation rows that push Φ_i most and their shares of Φ_i
                    (``influence.explain``: Φ_i = Σ_j c_ij, exactly for logistic regression,
                    to the solver's tolerance for networks); ``;``-separated lists;
``weight``          only when the strategy weighs the kept training rows (auto's ω ≠ 1).

The summary (``DataFrame.attrs["rdia"]``): the strategy, counts, issues per (given → suggested)
pair, and the noise rate and transition matrix estimated by confident learning's calibrated
confident joint on the same out-of-fold probabilities (Northcutt et al. 2021).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rdia_cli.cleaning.strategies import Cleaning, clean
from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError
from rdia_cli.glossary import relabel_effect
from rdia_cli.models.kinds import kind_of

ACTIONS = ("keep", "relabel", "drop")
RULE_STRATEGIES = ("rdia", "drop")  # the rule strategies whose decisions are keep/relabel/drop
SORTS = ("input", "quality", "phi")
WHY_ROWS = 3


# --- the probabilities behind label_quality ---------------------------------------------------
def quality_probs(train: Dataset, model, scores, *, seed: int = 0, device="cpu",
                  in_sample=None) -> tuple[np.ndarray, str]:
    """(N, K) probabilities for ``label_quality`` and a sentence saying where they come from
    (``in_sample``: the trained model's probabilities when ``scores`` carries none)."""
    if model is not None and kind_of(model).supports_auto:  # the fits auto ranks with
        from rdia_cli.cleaning.auto.cv import out_of_fold_scores
        from rdia_cli.cleaning.auto.policy import DEFAULT_POLICY

        _, probs = out_of_fold_scores(train, model, seed=seed, device=device)
        return probs, (f"out-of-fold probabilities ({DEFAULT_POLICY.oof_folds} folds of the "
                       "training rows, logistic regression)")
    probs = getattr(scores, "probs", None)
    if probs is None:
        probs = in_sample
    if probs is None:
        raise InputError("`scores` carries no class probabilities; give `model`.")
    return np.asarray(probs, np.float64), ("the trained model's in-sample probabilities (no "
                                           "out-of-fold fits for this model kind)")


def confident_joint(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Confident learning's calibrated joint Q[given, true] (sums to 1): a row counts for the
    true class j when p_j reaches the mean self-confidence t_j of class j (the likeliest such j),
    and each given-label row of the count matrix is rescaled to that label's count."""
    labels = np.asarray(labels, np.int64)
    n, k = probs.shape
    t = np.array([probs[labels == j, j].mean() if (labels == j).any() else 1.0
                  for j in range(k)])
    above = probs >= t[None, :] - 1e-12
    masked = np.where(above, probs, -np.inf)
    true = masked.argmax(1)
    ok = above.any(1)
    C = np.zeros((k, k))
    np.add.at(C, (labels[ok], true[ok]), 1.0)
    counts = np.bincount(labels, minlength=k).astype(float)
    sums = C.sum(1, keepdims=True)
    C = np.where(sums > 0, C / np.where(sums > 0, sums, 1.0), np.eye(k)) * counts[:, None]
    return C / max(C.sum(), 1.0)


# --- what the strategy does with each row -----------------------------------------------------
def _rule_cleaning(train, scores, probs, *, strategy, alpha, phi_threshold, fraction, seed):
    phi = np.asarray(scores.phi, np.float64)
    select_on, cut = phi, phi_threshold
    if alpha is not None:
        factor = float(scores.paper_factor)
        if np.isnan(factor):
            raise InputError("the scores have no paper scale; give `phi_threshold` or "
                             "`fraction` instead of `alpha`.")
        select_on, cut = phi * factor, alpha
    return clean(select_on, probs, train.y, strategy=strategy, alpha=cut, fraction=fraction,
                 targets="paper", seed=seed)


def _auto_cleaning(train, val, model, *, seed, device, progress):
    """(Cleaning on the training rows, the weight of kept rows, auto's description)."""
    from rdia_cli.cleaning.auto import auto_clean

    ac = auto_clean(train, val, model, seed=seed, device=device, progress=progress)
    cleaned, k = ac.cleaned, train.n_classes
    part = np.asarray(cleaned.extra["part"])
    at = {int(r): i for i, r in enumerate(train.row_id)}
    kept = np.array([at[int(r)] for r in cleaned.row_id[part == 0]], np.int64)
    keep = np.zeros(train.n_samples, bool)
    keep[kept] = True
    target = np.eye(k)[train.y]
    target[kept] = cleaned.targets()[part == 0]
    relabeled = np.zeros(train.n_samples, bool)
    relabeled[kept] = np.asarray(cleaned.extra["relabeled"])[part == 0]
    cfg = ac.config
    return (Cleaning(keep, target, relabeled), cfg.weight,
            {"strategy": "auto", "chosen": ac.verdict.get("chosen"), "action": cfg.action,
             "ranker": cfg.ranker, "fraction": cfg.fraction, "weight": cfg.weight})


def _strategy_for(strategy, rule_given: bool, val, model) -> str:
    if strategy is None:
        can_auto = val is not None and model is not None and kind_of(model).supports_auto
        if rule_given:
            return "rdia"
        if not can_auto:
            raise InputError("give `val` and `model` (a logistic regression) for the auto "
                             "strategy, or a rule: `fraction`, `alpha` or `phi_threshold`.")
        return "auto"
    if strategy not in ("auto", *RULE_STRATEGIES):
        raise InputError(f"`strategy` must be auto, rdia or drop for an issues table (the "
                         f"others reweight or sample rows), not {strategy!r}.")
    if strategy == "auto" and rule_given:
        raise InputError("the auto strategy chooses the rows itself; drop `alpha`, "
                         "`phi_threshold` and `fraction`.")
    if strategy != "auto" and not rule_given:
        raise InputError(f"`strategy` {strategy} needs a rule: `fraction`, `alpha` or "
                         "`phi_threshold`.")
    return strategy


# --- the table --------------------------------------------------------------------------------
def find_issues(
    train: Dataset,
    scores,
    *,
    val: Dataset | None = None,
    model=None,
    strategy: str | None = None,
    alpha: float | None = None,
    phi_threshold: float | None = None,
    fraction: float | None = None,
    explain: int = 50,
    sort: str = "input",
    top: int | None = None,
    seed: int = 0,
    device="cpu",
    progress=None,
):
    """The label-issues table of ``train`` (a pandas DataFrame, columns in the module
    docstring; the summary in ``.attrs["rdia"]``).

    ``scores``: the ScoreResult of ``score_model`` or a scores file (``read_scores``) for
    ``train``. The strategy (``strategy``; default ``auto`` when ``val`` and a logistic
    regression ``model`` are given and no rule is, else ``rdia`` with the rule) decides
    ``action``; give at most one rule: ``alpha`` (paper's scale), ``phi_threshold`` or
    ``fraction``, as for ``relabel_dataset``. ``explain``: how many flagged rows (largest Φ
    first) get a ``why`` (needs ``val`` and ``model``; 0: none).
    ``sort``: input (the default), quality (lowest ``label_quality`` first) or phi (largest
    first); ``top`` keeps the first rows after sorting."""
    import pandas as pd

    rules = _check_options(alpha, phi_threshold, fraction, sort, top, explain)
    phi = np.asarray(scores.phi, np.float64)
    n = train.n_samples
    if len(phi) != n:
        raise InputError(f"the scores have {len(phi):,} rows and the training data "
                         f"{n:,}; score this data first.")
    erm_probs = getattr(scores, "probs", None)
    if erm_probs is None:
        if model is None:
            raise InputError("`scores` carries no class probabilities; give `model`.")
        from rdia_cli.models.common import probabilities

        erm_probs = probabilities(model, train, device=device)
    erm_probs = np.asarray(erm_probs, np.float64)
    strategy = _strategy_for(strategy, bool(rules), val, model)

    weight = None
    if strategy == "auto":
        cleaning, weight, how = _auto_cleaning(train, val, model, seed=seed, device=device,
                                               progress=progress)
    else:
        cleaning = _rule_cleaning(train, scores, erm_probs, strategy=strategy, alpha=alpha,
                                  phi_threshold=phi_threshold, fraction=fraction, seed=seed)
        how = {"strategy": strategy, "alpha": alpha, "phi_threshold": phi_threshold,
               "fraction": fraction}
    action = np.full(n, "keep", dtype=object)
    action[cleaning.relabeled] = "relabel"
    action[~cleaning.keep] = "drop"

    qprobs, q_source = quality_probs(train, model, scores, seed=seed, device=device,
                                     in_sample=erm_probs)
    rows = np.arange(n)
    quality = np.clip(qprobs[rows, train.y], 0.0, 1.0)
    predicted = qprobs.argmax(1)
    other = erm_probs.copy()
    other[rows, train.y] = -np.inf
    suggested = other.argmax(1)
    new = np.asarray(cleaning.target).argmax(1)
    suggested[cleaning.relabeled] = new[cleaning.relabeled]
    all_dropped = not cleaning.keep.any()
    is_issue = (predicted != train.y) if all_dropped else action != "keep"

    p_label = erm_probs[rows, train.y]
    delta = np.zeros(n)
    drop, rel = action == "drop", action == "relabel"
    delta[drop] = -phi[drop] / n
    delta[rel] = relabel_effect(phi[rel], p_label[rel], n)

    classes = np.asarray(train.classes, dtype=object)
    cols: dict[str, Any] = {"row_id": train.row_id}
    ids = train.ids()
    if ids is not None:
        cols[ids[0]] = ids[1].to_pandas()
    cols.update(is_label_issue=is_issue.astype(bool), label_quality=quality.astype(np.float64),
                given_label=_values(classes, train.y), predicted_label=_values(classes, predicted),
                suggested_label=_values(classes, suggested), action=action, phi=phi,
                delta_val_loss=delta)
    why, why_rows, why_shares = _explain(train, val, model, scores, phi, is_issue, explain,
                                         device)
    cols.update(why=why, why_rows=why_rows, why_shares=why_shares)
    if weight is not None and weight not in (0.0, 1.0):
        cols["weight"] = np.where(cleaning.keep, float(weight), np.nan)
    table = pd.DataFrame(cols)

    summary = _summary(train, qprobs, q_source, is_issue, suggested, action, why, how,
                       all_dropped)
    if sort == "quality":
        table = table.sort_values("label_quality", kind="stable")
    elif sort == "phi":
        table = table.sort_values("phi", ascending=False, kind="stable")
    if top is not None:
        table = table.head(top)
    table = table.reset_index(drop=True)
    table.attrs["rdia"] = summary
    return table


def _check_options(alpha, phi_threshold, fraction, sort, top, explain) -> list[str]:
    """``find_issues``' options checked; the rules given (at most one)."""
    rules = [n for n, v in (("alpha", alpha), ("phi_threshold", phi_threshold),
                            ("fraction", fraction)) if v is not None]
    if len(rules) > 1:
        raise InputError(f"give one of `alpha`, `phi_threshold` and `fraction`, not "
                         f"{' and '.join(f'`{r}`' for r in rules)}.")
    if sort not in SORTS:
        raise InputError(f"`sort` must be one of {', '.join(SORTS)}, not {sort!r}.")
    if top is not None and top < 1:
        raise InputError(f"`top` must be at least 1, not {top}.")
    if explain < 0:
        raise InputError(f"`explain` must be 0 or more, not {explain}.")
    return rules


def _summary(train: Dataset, qprobs, q_source: str, is_issue, suggested, action, why, how,
             all_dropped: bool) -> dict[str, Any]:
    """What ``find_issues`` found, for the summary: counts, (given → suggested) pairs, and
    the noise rate and transition matrix by confident learning on ``qprobs``."""
    n = train.n_samples
    classes = np.asarray(train.classes, dtype=object)
    rel, drop = action == "relabel", action == "drop"
    joint = confident_joint(train.y, qprobs)
    col_sums = joint.sum(0, keepdims=True)
    transition = joint / np.where(col_sums > 0, col_sums, 1.0)  # P(given = i | true = j)
    pairs: dict[tuple, int] = {}
    for g, s, a in zip(train.y[is_issue], suggested[is_issue], action[is_issue], strict=True):
        key = (str(classes[g]), str(classes[s]) if a != "drop" else "(drop)")
        pairs[key] = pairs.get(key, 0) + 1
    return {
        "n_rows": n, "n_issues": int(is_issue.sum()), "n_relabel": int(rel.sum()),
        "n_drop": int(drop.sum()), "n_explained": int(sum(1 for w in why if w)),
        "strategy": how,
        "is_label_issue": ("the out-of-fold prediction differs from the label (the strategy "
                           "drops every training row)") if all_dropped
                          else "the strategy relabels or drops the row",
        "label_quality": f"p(given label) under {q_source}; low = suspect",
        "pairs": [{"given": g, "suggested": s, "rows": c}
                  for (g, s), c in sorted(pairs.items(), key=lambda kv: -kv[1])],
        "noise_rate": float(1.0 - np.trace(joint)),
        "transition": {"classes": [str(c) for c in classes],
                       "given_by_true": transition.round(6).tolist()},
        "noise_estimated_by": ("confident learning's calibrated confident joint "
                               f"(Northcutt et al. 2021) on {q_source}; transition[i][j] = "
                               "P(given = class i | true = class j)"),
    }


def _values(classes: np.ndarray, idx: np.ndarray):
    """Class values of ``idx`` as a column of the classes' own type (ints stay int64)."""
    values = classes[idx]
    if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in classes):
        return values.astype(np.int64)
    if all(isinstance(c, (float, np.floating)) for c in classes):
        return values.astype(np.float64)
    return values


def _explain(train, val, model, scores, phi, flagged, explain, device):
    n = len(phi)
    why = np.full(n, "", dtype=object)
    why_rows = np.full(n, "", dtype=object)
    why_shares = np.full(n, "", dtype=object)
    if explain == 0 or val is None or model is None:
        return why, why_rows, why_shares
    from rdia_cli.influence.explain import explain_rows

    cand = np.flatnonzero(flagged)
    rows = cand[np.argsort(-phi[cand], kind="stable")][:explain]
    info = getattr(scores, "info", None) or getattr(scores, "meta", {}) or {}
    for i, w in zip(rows, explain_rows(model, train, val, rows, info=info, k=WHY_ROWS,
                                       device=device), strict=True):
        why[i] = w.text()
        why_rows[i] = ";".join(w.names)
        why_shares[i] = ";".join(f"{s:.6g}" for s in w.shares)
    return why, why_rows, why_shares


# --- a reviewed table back to a cleaning ------------------------------------------------------
def cleaning_from_issues(train: Dataset, table, *, source: str = "the issues table"
                         ) -> tuple[Cleaning, np.ndarray]:
    """The Cleaning a (reviewed) issues table asks for, and Φ per row (NaN where the table has
    no row). Rows are matched by the data's ID column when both have it, else by ``row_id``;
    training rows missing from the table are kept. ``action`` keep | relabel | drop (blank:
    keep); ``suggested_label`` the class for relabel. Unknown rows, duplicate rows, unknown
    actions and classes raise InputError naming the first one."""
    n, k = train.n_samples, train.n_classes
    ids = train.ids()
    if ids is not None and ids[0] in table.columns:
        key, values = ids[0], [str(v) for v in ids[1].to_pylist()]
    elif "row_id" in table.columns:
        key, values = "row_id", [str(int(v)) for v in train.row_id]
    else:
        want = f"`{ids[0]}` or `row_id`" if ids is not None else "`row_id`"
        raise InputError(f"{source} has no {want} column to match its rows to the data.")
    for col in ("action",):
        if col not in table.columns:
            raise InputError(f"{source} has no `{col}` column.")
    at = {v: i for i, v in enumerate(values)}
    keys = [_key(v) for v in table[key].tolist()]
    pos = np.empty(len(keys), np.int64)
    seen: dict[str, int] = {}
    for r, v in enumerate(keys):
        if v not in at:
            raise InputError(f"{source} row {r + 1} has {key} {v!r}, which is not a row of the "
                             "data; give the data the table was made from.")
        if v in seen:
            raise InputError(f"{source} lists {key} {v!r} twice (rows {seen[v] + 1} and "
                             f"{r + 1}); keep one.")
        seen[v] = r
        pos[r] = at[v]
    actions = [("keep" if _blank(a) else str(a).strip().lower()) for a in table["action"]]
    bad = next((r for r, a in enumerate(actions) if a not in ACTIONS), None)
    if bad is not None:
        raise InputError(f"{source} row {bad + 1} has action {table['action'].iloc[bad]!r}; "
                         f"use {', '.join(ACTIONS)}.")
    actions = np.asarray(actions, dtype=object)
    lookup = _class_lookup(train.classes)
    target = np.eye(k)[train.y]
    relabeled = np.zeros(n, bool)
    keep = np.ones(n, bool)
    rel = np.flatnonzero(actions == "relabel")
    if rel.size and "suggested_label" not in table.columns:
        raise InputError(f"{source} relabels rows but has no `suggested_label` column.")
    for r in rel:
        v = table["suggested_label"].iloc[r]
        c = lookup(v)
        if c is None:
            raise InputError(f"{source} row {r + 1} suggests label {v!r}, which is not a class "
                             f"of the data ({', '.join(str(c) for c in train.classes)}).")
        i = pos[r]
        if c != train.y[i]:
            target[i] = np.eye(k)[c]
            relabeled[i] = True
    keep[pos[actions == "drop"]] = False
    weight = None
    if "weight" in table.columns:
        w = np.ones(n)
        vals = _numbers(table["weight"])
        w[pos] = np.where(np.isnan(vals), 1.0, vals)
        weight = None if np.all(w == 1.0) else w
    phi = np.full(n, np.nan)
    if "phi" in table.columns:
        phi[pos] = _numbers(table["phi"])
    return Cleaning(keep, target, relabeled, weight), phi


def _numbers(col) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""


def _key(v) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _class_lookup(classes):
    by_str = {str(c): i for i, c in enumerate(classes)}
    by_num = {}
    for i, c in enumerate(classes):
        try:
            by_num[float(c)] = i
        except (TypeError, ValueError):
            pass

    def lookup(v):
        if _blank(v):
            return None
        if str(v).strip() in by_str:
            return by_str[str(v).strip()]
        try:
            return by_num.get(float(v))
        except (TypeError, ValueError):
            return None

    return lookup


# --- the file ---------------------------------------------------------------------------------
ISSUE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}


def issues_format(path) -> str:
    """csv, tsv or parquet, by the extension of ``path`` (`-`: CSV on standard output)."""
    from pathlib import Path

    if str(path) == "-":
        return "csv"
    fmt = ISSUE_FORMATS.get(Path(str(path)).suffix.lower())
    if fmt is None:
        raise InputError(f"cannot tell the format of `{path}` from its extension; name it "
                         ".csv, .tsv or .parquet.")
    return fmt


def write_issues(table, path) -> None:
    """Write the issues table (atomically; Parquet keeps the summary as ``rdia.issues``
    metadata)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from rdia_cli.artifacts.atomic import atomic_path

    fmt = issues_format(path)
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            t = pa.Table.from_pandas(table, preserve_index=False)
            meta = dict(t.schema.metadata or {})
            meta[b"rdia.issues"] = json.dumps(table.attrs.get("rdia", {})).encode()
            pq.write_table(t.replace_schema_metadata(meta), tmp)
        else:
            table.to_csv(tmp, index=False, sep="\t" if fmt == "tsv" else ",")


def read_issues(path):
    """An issues table (reviewed or not) as a DataFrame; identifiers and labels read as text
    where a CSV could change them (``row_id`` stays numeric). A .parquet table's summary
    (with the training data's path and reader options) comes back in ``.attrs["rdia"]``."""
    from pathlib import Path

    import pandas as pd

    fmt = issues_format(path)
    if not Path(str(path)).exists():
        raise InputError(f"issues table `{path}` does not exist.")
    try:
        if fmt == "parquet":
            import json

            import pyarrow.parquet as pq

            table = pd.read_parquet(path)
            raw = (pq.read_schema(path).metadata or {}).get(b"rdia.issues")
            if raw:
                try:
                    table.attrs["rdia"] = json.loads(raw)
                except ValueError:
                    pass  # a damaged summary: the table itself is what `apply` needs
            return table
        return pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", dtype=str,
                           keep_default_na=False)
    except Exception as e:  # noqa: BLE001 - pandas/pyarrow raise many kinds
        raise InputError(f"`{path}` is not a readable {fmt} table "
                         f"({str(e).splitlines()[0] if str(e) else type(e).__name__}).") from None
