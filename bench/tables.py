"""rdia on real mixed-type tables: raw table vs. hand encoding, and a downstream trainer (#26.5)

Four public tables from `../shared/data/pmlb` (never copied into the repository) are turned back
into what a user has: string categories, numbers, blanks, an ID column, a named label column.

  australian  Statlog Australian credit, 690 rows: 8 integer-coded columns decoded to letters
              (`A4` = a/b/c ...), 6 numeric; label `approved` yes/no; 5% of numeric cells blank
  german      Statlog German credit, 1,000 rows: `Status` decoded by its class counts to
              `<0 DM` / `0-200 DM` / `>=200 DM` / `no account`, the other 12 coded attributes as
              UCI-style codes `A31`, `A41`, ... (PMLB's integer order, not necessarily UCI's), 7
              numeric; label `good_credit` yes/no; 5% of numeric cells blank
  mushroom    UCI mushroom, 8,124 rows, 22 categorical columns as letters a, b, ... (PMLB's
              integer order); stalk-root's code 0 (2,480 rows, UCI's `?`) is blank; label `class`
              edible/poisonous; 5% of the categorical cells blank
  splice      UCI splice junctions, 3,188 rows, 3 classes (`junction` EI / IE / N), the 60
              positions as A/C/G/T (PMLB codes are alphabetical per column; the rare ambiguity
              codes D/N/R/S become `N`); 5% of the cells blank

Per table x noise x seed: a stratified 25% test split, a clean validation set of max(60, 8%)
of the rest, the rest is training data whose labels (only) get the noise: `symmetric` (20% of
the rows, each to a uniformly drawn other class) or `class` (30% of one class flipped into
another: approved yes->no, good_credit yes->no, poisonous->edible, EI->IE). The splits are
written as CSV into a temporary folder, then

  raw   `rdia run train.csv --val val.csv --test test.csv -o D --label-col L --id-col id`
        on the raw table (a subprocess; exit code and stderr kept)
  hand  the same on a table encoded in pandas: numeric blanks -> training median + a
        `_missing` indicator, standardized with the training mean/std; categories one-hot with
        `pandas.get_dummies` over all splits (a `_nan` column where a column has blanks); ID
        dropped
  HGB   sklearn's HistGradientBoostingClassifier (defaults, random_state = seed) trained on the
        cleaned file as plain pandas reads it (rdia's columns dropped by name, the label column
        under its own name, a `weight` column as sample weight) plus the clean set, against the
        same trainer on the noisy training rows plus the clean set; native categorical support
        on the raw table, the one-hot columns on the hand-encoded one.

Metrics: rdia's `metrics.json` test log-loss (erm, auto); HGB test log-loss and accuracy.

    python bench/tables.py                       # 4 tables x 2 noises x 3 seeds -> results/
    python bench/tables.py --quick               # australian, symmetric, seed 0 -> scratch
    python bench/tables.py --tables german,splice --seeds 5 --noise class --out /tmp/t
    python bench/tables.py --parts hand          # skip the raw-table runs
    python bench/tables.py --report-only         # re-render the .md from the .json
    python bench/tables.py --report-only --reading r.txt   # ... with a hand-written reading
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# One thread for HGB and for each `rdia run` (unless set): on a loaded 2-core machine HGB's
# OpenMP threads took 13 s for a 500-row fit that takes 0.3 s on one thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA_ROOT = Path(os.environ.get("RDIA_SHARED_DATA", HERE.parents[1] / "shared" / "data"))
RDIA = [sys.executable, "-m", "rdia_cli"]
ID = "id"
# rdia's own columns in a cleaned file (and `label`, its label name before the writers keep the
# user's); `target` columns start with "target".
RDIA_COLS = ("row_id", "original_label", "relabeled", "phi", "weight")
NOISES = ("symmetric", "class")
SYM_RATE, CLASS_RATE, BLANK_RATE, TEST_SHARE, VAL_SHARE, VAL_MIN = 0.2, 0.3, 0.05, 0.25, 0.08, 60


# --------------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------------
@dataclass
class Table:
    name: str
    frame: pd.DataFrame          # id, features, label (true labels), blanks included
    label: str
    numeric: list[str]
    categorical: list[str]
    flip: tuple[str, str]        # class-conditional noise: this class -> that one
    notes: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[str]:
        return [c for c in self.frame.columns if c not in (ID, self.label)]


def _pmlb(name: str, root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "pmlb" / f"{name}.tsv.gz", sep="\t")


def _letters(codes: pd.Series) -> pd.Series:
    """PMLB integer code k -> the k-th letter (its own order, not the original names')."""
    return codes.map(lambda k: chr(ord("a") + int(k)))


def _finish(name, d, label, numeric, categorical, flip, seed, blank_cols) -> Table:
    d.insert(0, ID, [f"C{i + 1:05d}" for i in range(len(d))])
    d = d[[ID] + numeric + categorical + [label]].copy()
    rng = np.random.default_rng(10_000 + seed)
    before = int(d[blank_cols].isna().sum().sum())
    size = len(d) * len(blank_cols)
    flat = np.zeros(size, bool)
    flat[rng.choice(size, size=int(round(BLANK_RATE * size)), replace=False)] = True
    mask = flat.reshape(len(d), len(blank_cols))
    for j, col in enumerate(blank_cols):
        v = d[col].astype(object) if col in categorical else d[col].astype(float)
        d[col] = v.mask(mask[:, j])
    cells = range(size)
    t = Table(name, d.reset_index(drop=True), label, numeric, categorical, flip)
    t.notes.append(f"{int(d[blank_cols].isna().sum().sum()) - before} cells blanked "
                   f"({BLANK_RATE:.0%} of {len(cells)}), {before} blank before")
    return t


def australian(root: Path, seed: int) -> Table:
    d = _pmlb("australian", root)
    cat = ["A1", "A4", "A5", "A6", "A8", "A9", "A11", "A12"]
    num = ["A2", "A3", "A7", "A10", "A13", "A14"]
    for c in cat:
        d[c] = _letters(d[c] - d[c].min())
    d["approved"] = np.where(d.pop("target") == 1, "yes", "no")  # 307 '+' rows are code 1
    return _finish("australian", d, "approved", num, cat, ("yes", "no"), seed, num)


GERMAN_CAT = {"Status": 1, "Credit-history": 3, "Purpose": 4, "Savings-account": 6,
              "Employment": 7, "Personal-status": 9, "Debtors": 10, "Property": 12,
              "Installments": 14, "Housing": 15, "Job": 17, "Telephone": 19, "Foreign": 20}


def german(root: Path, seed: int) -> Table:
    d = _pmlb("german", root)
    num = ["Duration", "Credit", "Installment-rate", "Residence-time", "Age", "Existing-credits",
           "Liable-people"]
    cat = list(GERMAN_CAT)
    # Status's counts identify UCI's codes: A11 274, A12 269, A13 63, A14 394.
    counts = d["Status"].value_counts().to_dict()
    status = {274: "<0 DM", 269: "0-200 DM", 63: ">=200 DM", 394: "no account"}
    assert sorted(counts.values()) == sorted(status), counts
    d["Status"] = d["Status"].map({k: status[n] for k, n in counts.items()})
    for c in cat[1:]:
        d[c] = d[c].map(lambda k, a=GERMAN_CAT[c]: f"A{a}{int(k) + 1}")
    d["good_credit"] = np.where(d.pop("target") == 1, "yes", "no")  # 700 good rows: code 1
    return _finish("german", d, "good_credit", num, cat, ("yes", "no"), seed, num)


def mushroom(root: Path, seed: int) -> Table:
    d = _pmlb("mushroom", root)
    cat = [c for c in d.columns if c != "target"]
    root_missing = d["stalk-root"] == 0
    assert int(root_missing.sum()) == 2480  # UCI's `?` count
    for c in cat:
        d[c] = _letters(d[c])
    d.loc[root_missing, "stalk-root"] = np.nan
    d["class"] = np.where(d.pop("target") == 1, "poisonous", "edible")
    d.columns = [c.replace("?", "") for c in d.columns]  # `bruises?` -> `bruises`
    cat = [c.replace("?", "") for c in cat]
    return _finish("mushroom", d, "class", [], cat, ("poisonous", "edible"), seed, cat)


def splice(root: Path, seed: int) -> Table:
    d = _pmlb("splice", root)
    cat = [c for c in d.columns if c != "target"]
    for c in cat:
        top = sorted(d[c].value_counts().index[:4])  # the four bases, in alphabetical order
        d[c] = d[c].map(dict(zip(top, "ACGT", strict=False))).fillna("N")
    d.columns = [f"p{int(c[1:]) + 1:02d}" if c != "target" else c for c in d.columns]
    cat = [f"p{int(c[1:]) + 1:02d}" for c in cat]
    d["junction"] = d.pop("target").map({0: "EI", 1: "IE", 2: "N"})
    return _finish("splice", d, "junction", [], cat, ("EI", "IE"), seed, cat)


TABLES = {"australian": australian, "german": german, "mushroom": mushroom, "splice": splice}


# --------------------------------------------------------------------------------------------
# Splits, noise, encodings
# --------------------------------------------------------------------------------------------
def split(t: Table, seed: int) -> dict[str, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    d = t.frame
    rest, test = train_test_split(d, test_size=TEST_SHARE, stratify=d[t.label],
                                  random_state=seed)
    n_val = max(VAL_MIN, int(round(VAL_SHARE * len(rest))))
    train, val = train_test_split(rest, test_size=n_val, stratify=rest[t.label],
                                  random_state=seed)
    return {"train": train.reset_index(drop=True), "val": val.reset_index(drop=True),
            "test": test.reset_index(drop=True)}


def add_noise(y: pd.Series, kind: str, flip: tuple[str, str], seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    y = y.copy()
    classes = sorted(y.unique())
    if kind == "symmetric":
        rows = rng.choice(len(y), size=int(round(SYM_RATE * len(y))), replace=False)
        for r in rows:
            others = [c for c in classes if c != y.iat[r]]
            y.iat[r] = others[rng.integers(len(others))]
    elif kind == "class":
        src = np.flatnonzero((y == flip[0]).to_numpy())
        rows = rng.choice(src, size=int(round(CLASS_RATE * len(src))), replace=False)
        y.iloc[rows] = flip[1]
    else:
        raise ValueError(kind)
    return y


def encode_by_hand(t: Table, s: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    names = list(s)
    allx = pd.concat([s[n][t.features] for n in names], keys=names)
    tr = s["train"]
    cols = {}
    for c in t.numeric:
        med = tr[c].median()
        if allx[c].isna().any():
            cols[f"{c}_missing"] = allx[c].isna().astype(float)
        v = allx[c].fillna(med)
        ref = tr[c].fillna(med)
        cols[c] = (v - ref.mean()) / (ref.std(ddof=0) or 1.0)
    parts = [pd.DataFrame(cols, index=allx.index)] if cols else []
    for c in t.categorical:
        parts.append(pd.get_dummies(allx[c], prefix=c, dummy_na=bool(allx[c].isna().any()),
                                    dtype=float))
    enc = pd.concat(parts, axis=1)
    return {n: enc.loc[n].reset_index(drop=True).assign(**{t.label: s[n][t.label].to_numpy()})
            for n in names}


# --------------------------------------------------------------------------------------------
# rdia and the downstream trainer
# --------------------------------------------------------------------------------------------
def raw_flags_exist() -> bool:
    out = subprocess.run(RDIA + ["run", "--help"], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "200"})
    return "--id-col" in out.stdout


def rdia_run(folder: Path, prefix: str, label: str, extra: list[str], seed: int) -> dict:
    out = folder / f"{prefix}_out"
    cmd = RDIA + ["run", str(folder / f"{prefix}_train.csv"), "--val",
                  str(folder / f"{prefix}_val.csv"), "--test", str(folder / f"{prefix}_test.csv"),
                  "-o", str(out), "--label-col", label, "--seed", str(seed)] + extra
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
    r = {"seconds": time.perf_counter() - t, "rc": p.returncode,
         "command": " ".join(["rdia"] + cmd[len(RDIA):])}
    (folder / f"{prefix}.log").write_text(p.stderr)
    if p.returncode != 0:
        r["stderr_tail"] = p.stderr[-3000:]
        r["stdout_tail"] = p.stdout[-1500:]
        return r
    m = json.loads((out / "metrics.json").read_text())
    for mod in m["models"]:
        r[mod["name"]] = {"loss": mod["loss"], "accuracy": mod["accuracy"]}
    r["chosen"] = m.get("verdict", {}).get("chosen")
    r["noise_seen"] = m.get("verdict", {}).get("noise", {}).get("noisy")
    r["out"] = str(out)
    return r


def read_cleaned(out: Path) -> tuple[pd.DataFrame, str]:
    """The cleaned table as a user reads it: plain pandas, CSV if there is one."""
    if (out / "cleaned.csv").exists():
        return pd.read_csv(out / "cleaned.csv"), "cleaned.csv"
    return pd.read_parquet(out / "cleaned.parquet"), "cleaned.parquet"


def user_view(c: pd.DataFrame, label: str, features: list[str]):
    """Label column under the user's name (rdia's older writer: `label`), features by name."""
    lab = label if label in c.columns else "label"
    drop = set(RDIA_COLS) | {ID, lab} | {x for x in c.columns if x.startswith("target")}
    feats = [x for x in c.columns if x not in drop]
    missing = sorted(set(features) - set(feats))
    extra = sorted(set(feats) - set(features))
    w = c["weight"].to_numpy(float) if "weight" in c.columns else None
    keep = [f for f in features if f in c.columns]
    return c[keep], c[lab].astype(str), w, {"label_column": lab, "missing": missing[:20],
                                            "n_missing": len(missing),
                                            "unexpected": extra[:20], "n_unexpected": len(extra)}


def _as_model_input(X: pd.DataFrame, t: Table | None) -> pd.DataFrame:
    X = X.copy()
    if t is not None:  # raw table: native categories, same category list for every split
        for c in t.categorical:
            cats = sorted(t.frame[c].dropna().astype(str).unique())
            X[c] = pd.Categorical(X[c].astype(object).where(X[c].notna()), categories=cats)
        for c in t.numeric:
            X[c] = pd.to_numeric(X[c], errors="coerce").astype("float32")
    else:
        X = X.astype("float32")
    # float32 everywhere: rdia keeps features as float32, and HGB's bins move when the same
    # value comes once as float32 (cleaned file) and once as float64 (clean set): 0.05 of test
    # loss on australian from 1e-7 differences.
    return X


def hgb(Xtr, ytr, w, Xte, yte, seed: int, t: Table | None) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier

    tt = time.perf_counter()
    model = HistGradientBoostingClassifier(random_state=seed, categorical_features="from_dtype")
    model.fit(_as_model_input(Xtr, t), np.asarray(ytr), sample_weight=w)
    proba = model.predict_proba(_as_model_input(Xte, t))
    cls = list(model.classes_)
    y = np.asarray(yte)
    idx = np.array([cls.index(v) if v in cls else -1 for v in y])
    p = np.where(idx >= 0, proba[np.arange(len(y)), np.maximum(idx, 0)], 0.0)
    return {"loss": float(-np.log(np.clip(p, 1e-15, 1)).mean()),
            "accuracy": float((np.asarray(cls)[proba.argmax(1)] == y).mean()),
            "rows": int(len(ytr)), "seconds": time.perf_counter() - tt}


def label_repair(c: pd.DataFrame, lab: str, true: pd.Series, noisy: pd.Series,
                 train: pd.DataFrame, feats: list[str]) -> dict:
    """Wrong labels before (all training rows) and after (the rows in the cleaned file).

    Rows are matched by `id` (raw table) or rdia's `row_id`, and the match is checked on the
    features: a cleaned file that holds other rows (auto's "clean set only" writes the clean
    set) is reported as unmatched.
    """
    out = {"noisy_before": int((noisy != true).sum()), "rows": int(len(c))}
    if ID in c.columns:
        where = pd.Series(range(len(train)), index=train[ID].to_numpy())
        pos = where.reindex(c[ID].to_numpy()).to_numpy()
    elif "row_id" in c.columns:
        pos = c["row_id"].to_numpy(float)
    else:
        pos = np.arange(len(c), dtype=float) if len(c) == len(train) else None
    ok = pos is not None and not np.isnan(pos).any() and (pos < len(train)).all()
    if ok:
        pos = pos.astype(int)
        a, b = c[feats].reset_index(drop=True), train[feats].iloc[pos].reset_index(drop=True)
        num = [f for f in feats if pd.api.types.is_numeric_dtype(b[f])]
        other = [f for f in feats if f not in num]
        ok = bool(np.allclose(a[num].to_numpy(float), b[num].to_numpy(float), atol=1e-4,
                              equal_nan=True)) and bool(
            (a[other].astype(str).where(b[other].notna(), "") ==
             b[other].astype(str).where(b[other].notna(), "")).all().all())
    if not ok:
        out["unmatched"] = True
        return out
    new = c[lab].astype(str).to_numpy()
    tr, no = true.to_numpy()[pos], noisy.to_numpy()[pos]
    kept = np.zeros(len(train), bool)
    kept[pos] = True
    wrong = (noisy != true).to_numpy()
    out.update(removed=int((~kept).sum()), removed_noisy=int((wrong & ~kept).sum()),
               wrong_after=int((new != tr).sum()), changed=int((new != no).sum()),
               fixed=int(((no != tr) & (new == tr)).sum()),
               broken=int(((no == tr) & (new != tr)).sum()))
    return out


def cell(t: Table, kind: str, seed: int, folder: Path, parts: set[str]) -> dict:
    s = split(t, seed)
    true = s["train"][t.label].copy()
    s["train"][t.label] = add_noise(true, kind, t.flip, seed)
    noisy = s["train"][t.label]
    res: dict = {"table": t.name, "noise": kind, "seed": seed,
                 "n": {k: int(len(v)) for k, v in s.items()},
                 "noisy_rows": int((noisy != true).sum())}
    for n, df in s.items():
        df.to_csv(folder / f"raw_{n}.csv", index=False)
    enc = encode_by_hand(t, s)
    for n, df in enc.items():
        df.to_csv(folder / f"hand_{n}.csv", index=False)
    res["hand_columns"] = int(enc["train"].shape[1] - 1)
    val, test = s["val"], s["test"]
    # Downstream baselines: the noisy training rows plus the clean set.
    Xn = pd.concat([s["train"][t.features], val[t.features]], ignore_index=True)
    yn = pd.concat([noisy, val[t.label]], ignore_index=True)
    res["hgb"] = {"raw noisy+clean": hgb(Xn, yn, None, test[t.features], test[t.label], seed, t)}
    ef = [c for c in enc["train"].columns if c != t.label]
    Xe = pd.concat([enc["train"][ef], enc["val"][ef]], ignore_index=True)
    res["hgb"]["hand noisy+clean"] = hgb(Xe, yn, None, enc["test"][ef], test[t.label], seed,
                                         None)
    for part, prefix, extra, feats, tab in (("hand", "hand", [], ef, None),
                                            ("raw", "raw", ["--id-col", ID], t.features, t)):
        if part not in parts:
            continue
        r = rdia_run(folder, prefix, t.label, extra, seed)
        res[part] = r
        if r["rc"] != 0:
            continue
        c, fname = read_cleaned(Path(r.pop("out")))
        X, y, w, info = user_view(c, t.label, feats)
        r["cleaned_file"] = fname
        r["cleaned_view"] = info
        if info["missing"]:  # not the user's table: no downstream fit, recorded as such
            r["cleaned_view"].update(rows=int(len(c)), columns=[str(x) for x in c.columns][:20])
            r["repair"] = {"noisy_before": res["noisy_rows"], "rows": int(len(c)),
                           "unmatched": True}
            continue
        tr_feats = s["train"] if tab is not None else enc["train"].assign(**{ID: s["train"][ID]})
        r["repair"] = label_repair(c, info["label_column"], true, noisy, tr_feats, feats)
        Xv = val[t.features] if tab is not None else enc["val"][ef]
        Xc = pd.concat([X, Xv], ignore_index=True)
        yc = pd.concat([y, val[t.label].astype(str)], ignore_index=True)
        wc = None if w is None else np.concatenate([w, np.ones(len(Xv))])
        Xte = test[t.features] if tab is not None else enc["test"][ef]
        res["hgb"][f"{part} cleaned+clean"] = hgb(Xc, yc, wc, Xte, test[t.label], seed, tab)
    return res


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
def _ms(v: list[float], d: int = 4) -> str:
    if not v:
        return "–"
    return f"{np.mean(v):.{d}f} ± {np.std(v, ddof=1) if len(v) > 1 else 0:.{d}f}"


def render(doc: dict) -> str:
    from collections import defaultdict

    res = doc["results"]
    groups = defaultdict(list)
    for r in res:
        groups[(r["table"], r["noise"])].append(r)
    order = sorted(groups, key=lambda k: (list(TABLES).index(k[0]), NOISES.index(k[1])))
    L = ["# rdia on raw mixed-type tables vs. a hand encoding (issue #26 item 5)", "",
         f"Command: `{doc['command']}`", "",
         f"Machine: {doc['machine']}; load average (1/5/15 min) at start {doc['load_start']}, "
         f"at end {doc['load_end']}; wall time {doc['wall_seconds']:.0f} s; rdia at "
         f"{doc['rdia_commit']}; raw-table flags present: {doc['raw_flags']}.", "",
         "Protocol in `bench/tables.py`'s docstring. Mean ± std over seeds "
         f"({', '.join(map(str, doc['seeds']))}); test log-loss unless marked acc.", ""]
    L += ["## rdia's own logistic regression (metrics.json)", "",
          "| table | noise | train/val/test | noisy rows | raw erm | raw auto | hand erm | "
          "hand auto | auto raw − hand (paired) | equal within spread |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    failures = []
    for key in order:
        runs = groups[key]
        n = runs[0]["n"]

        def get(part, model, runs=runs):
            return [r[part][model]["loss"] for r in runs
                    if part in r and r[part].get("rc") == 0]

        for r in runs:
            for part in ("raw", "hand"):
                if part in r and r[part]["rc"] != 0:
                    failures.append((r, part))
        ra, ha = get("raw", "auto"), get("hand", "auto")
        pair = [r["raw"]["auto"]["loss"] - r["hand"]["auto"]["loss"] for r in runs
                if r.get("raw", {}).get("rc") == 0 and r.get("hand", {}).get("rc") == 0]
        if pair:
            spread = max(np.std(ra, ddof=1), np.std(ha, ddof=1)) if len(pair) > 1 else 0.0
            eq = ("yes" if abs(np.mean(ra) - np.mean(ha)) <= spread else "no") + (
                f" (|Δ| {abs(np.mean(ra) - np.mean(ha)):.4f} vs std {spread:.4f})")
        else:
            eq = "–"
        L.append(f"| {key[0]} | {key[1]} | {n['train']}/{n['val']}/{n['test']} | "
                 f"{_ms([r['noisy_rows'] for r in runs], 0)} | {_ms(get('raw', 'erm'))} | "
                 f"{_ms(ra)} | {_ms(get('hand', 'erm'))} | {_ms(ha)} | "
                 f"{_ms(pair) if pair else '–'} | {eq} |")
    L += ["", "## Downstream: HistGradientBoostingClassifier on the cleaned file + clean set", "",
          "| table | noise | raw noisy+clean | raw cleaned+clean | hand noisy+clean | "
          "hand cleaned+clean | acc raw noisy / cleaned | acc hand noisy / cleaned |",
          "|---|---|---|---|---|---|---|---|"]
    for key in order:
        runs = groups[key]

        def h(m, f="loss", runs=runs):
            return [r["hgb"][m][f] for r in runs if m in r["hgb"]]

        def hm(m, runs=runs):  # mean ± std, marked when some seeds have no fit
            v = h(m)
            return _ms(v) + (f" ({len(v)} of {len(runs)} seeds)" if v and len(v) < len(runs)
                             else "")

        L.append(f"| {key[0]} | {key[1]} | {hm('raw noisy+clean')} | "
                 f"{hm('raw cleaned+clean')} | {hm('hand noisy+clean')} | "
                 f"{hm('hand cleaned+clean')} | {_ms(h('raw noisy+clean', 'accuracy'), 3)}"
                 f" / {_ms(h('raw cleaned+clean', 'accuracy'), 3)} | "
                 f"{_ms(h('hand noisy+clean', 'accuracy'), 3)} / "
                 f"{_ms(h('hand cleaned+clean', 'accuracy'), 3)} |")
    L += ["", "## Labels in the cleaned file, auto's choice, time per `rdia run`", "",
          "Noisy training rows before; rows removed (of them noisy); wrong labels among the "
          "rows kept; relabeled rows fixed / broken. Mean over the seeds whose cleaned file "
          "holds training rows (`unmatched`: the file holds other rows, e.g. the clean set "
          "when auto chose \"clean set only\"). chosen = auto's verdict per seed.", "",
          "| table | noise | part | noisy before | removed (noisy) | wrong in kept rows | "
          "fixed / broken | unmatched | chosen | seconds |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for key in order:
        runs = groups[key]
        for part in ("raw", "hand"):
            ok = [r[part] for r in runs if r.get(part, {}).get("rc") == 0]
            if not ok:
                continue
            rep = [o["repair"] for o in ok if not o["repair"].get("unmatched")]

            def m(f, rep=rep):
                return f"{np.mean([x[f] for x in rep]):.1f}" if rep else "–"

            L.append(f"| {key[0]} | {key[1]} | {part} | {m('noisy_before')} | {m('removed')} "
                     f"({m('removed_noisy')}) | {m('wrong_after')} | {m('fixed')} / "
                     f"{m('broken')} | {len(ok) - len(rep)} | "
                     f"{'; '.join(str(o.get('chosen')) for o in ok)} | "
                     f"{_ms([o['seconds'] for o in ok], 1)} |")
    redone = [r for r in res if r.get("earlier_failure")]
    if redone:
        L += ["", "## Runs that failed once and were rerun (`--redo-failed`)", ""]
        for r in redone:
            for part, f in r["earlier_failure"].items():
                msg = f.get("stderr_tail", "").strip().splitlines()
                L += [f"* {r['table']} {r['noise']} seed {r['seed']} ({part}), exit {f['rc']}: "
                      f"`{f['command']}` — {msg[-1] if msg else ''}; the rerun: exit "
                      f"{r[part]['rc']} (rdia_cli/ was being edited by others during the run)"]
    if failures:
        L += ["", "## Failed rdia runs", ""]
        seen = set()
        for r, part in failures:
            msg = r[part].get("stderr_tail", "").strip().splitlines()
            key = (part, r["table"], tuple(msg[-3:]))
            if key in seen:
                continue
            seen.add(key)
            L += [f"* {r['table']} {r['noise']} seed {r['seed']} ({part}), exit "
                  f"{r[part]['rc']}: `{r[part]['command']}`", "", "```",
                  *[x.rstrip() for x in msg[-12:]], "```", ""]
    notes = doc.get("table_notes", {})
    if notes:
        L += ["", "## Tables built", ""]
        L += [f"* {k}: {'; '.join(v)}" for k, v in notes.items()]
    if doc.get("reading"):
        L += ["", "## Reading", "", doc["reading"]]
    return "\n".join(L) + "\n"


def _machine() -> str:
    model = platform.processor() or "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(x.split(":", 1)[1].strip() for x in out.splitlines()
                     if x.startswith("Model name"))
    except Exception:  # noqa: BLE001
        pass
    return (f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}, "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tables", default=",".join(TABLES))
    p.add_argument("--noise", default=",".join(NOISES))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--parts", default="raw,hand", help="raw, hand (HGB baselines always)")
    p.add_argument("--out", default=None, help="output prefix (default bench/results/tables)")
    p.add_argument("--data-root", default=str(DATA_ROOT))
    p.add_argument("--quick", action="store_true",
                   help="australian, symmetric, seed 0; out in $RDIA_BENCH_RESULTS or "
                        "$TMPDIR/rdia-bench-quick")
    p.add_argument("--keep", default=None, help="keep the CSVs and rdia folders here")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--redo-failed", action="store_true",
                   help="rerun the cells of --out's JSON where an rdia run failed (the first "
                        "error is kept in the cell as `earlier_failure`)")
    p.add_argument("--reading", default=None,
                   help="with --report-only: a text file, the hand-written reading to add")
    args = p.parse_args(argv)
    if args.quick:  # options given on the command line win over the quick values
        given = set(argv if argv is not None else sys.argv[1:])
        args.tables = args.tables if "--tables" in given else "australian"
        args.noise = args.noise if "--noise" in given else "symmetric"
        args.seeds = args.seeds if "--seeds" in given else 1
        scratch = os.environ.get("RDIA_BENCH_RESULTS") or str(
            Path(tempfile.gettempdir()) / "rdia-bench-quick")
        args.out = args.out or str(Path(scratch) / "tables")
    out = Path(args.out or HERE / "results" / "tables")
    out.parent.mkdir(parents=True, exist_ok=True)
    js, md = out.with_suffix(".json"), out.with_suffix(".md")
    if args.report_only:
        doc = json.loads(js.read_text())
        if args.reading:
            doc["reading"] = Path(args.reading).read_text().strip()
            js.write_text(json.dumps(doc, indent=1, default=str))
        md.write_text(render(doc))
        print(md)
        return 0
    parts = set(args.parts.split(","))
    if args.redo_failed:
        doc = json.loads(js.read_text())
        for i, r in enumerate(doc["results"]):
            bad = {p: r[p] for p in ("raw", "hand") if p in r and r[p]["rc"] != 0}
            if not bad:
                continue
            t = TABLES[r["table"]](Path(args.data_root), r["seed"])
            with tempfile.TemporaryDirectory(prefix=f"tables_{t.name}_") as tmp:
                tc = time.perf_counter()
                new = cell(t, r["noise"], r["seed"], Path(tmp), {p for p in ("raw", "hand")
                                                                  if p in r})
                new["seconds"] = time.perf_counter() - tc
            new["earlier_failure"] = bad
            doc["results"][i] = new
            print(f"redone {r['table']} {r['noise']} seed {r['seed']}: "
                  + ", ".join(f"{p} rc={new[p]['rc']}" for p in bad), flush=True)
        doc["command"] += " && python bench/tables.py --redo-failed " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:]) if a != "--redo-failed")
        js.write_text(json.dumps(doc, indent=1, default=str))
        md.write_text(render(doc))
        print(md)
        return 0
    flags = raw_flags_exist()
    if "raw" in parts and not flags:
        print("rdia run has no --id-col yet: the raw-table runs are attempted anyway and "
              "their errors recorded", file=sys.stderr)
    commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(HERE), "status", "--porcelain", "--",
                            str(HERE.parent / "rdia_cli")], capture_output=True,
                           text=True).stdout.strip()
    doc = {"command": "python bench/tables.py " + " ".join(argv if argv is not None
                                                           else sys.argv[1:]),
           "machine": _machine(), "load_start": _load(), "rdia_commit": commit + (
               " + uncommitted changes in rdia_cli/" if dirty else ""),
           "raw_flags": flags, "seeds": list(range(args.seeds)), "results": [],
           "table_notes": {}}
    t0 = time.perf_counter()
    for name in args.tables.split(","):
        for seed in range(args.seeds):
            t = TABLES[name](Path(args.data_root), seed)
            if seed == 0:
                doc["table_notes"][name] = [
                    f"{len(t.frame)} rows, {len(t.numeric)} numeric + {len(t.categorical)} "
                    f"categorical columns, label `{t.label}` "
                    f"({ {k: int(v) for k, v in t.frame[t.label].value_counts().items()} }), "
                    "class noise "
                    f"{t.flip[0]} → {t.flip[1]}", *t.notes]
            for kind in args.noise.split(","):
                with tempfile.TemporaryDirectory(prefix=f"tables_{name}_") as tmp:
                    folder = Path(args.keep) / f"{name}_{kind}_{seed}" if args.keep else Path(tmp)
                    folder.mkdir(parents=True, exist_ok=True)
                    tc = time.perf_counter()
                    r = cell(t, kind, seed, folder, parts)
                    r["seconds"] = time.perf_counter() - tc
                doc["results"].append(r)
                msg = " ".join(
                    f"{part} " + (f"erm {r[part]['erm']['loss']:.4f} auto "
                                  f"{r[part]['auto']['loss']:.4f}" if r[part]["rc"] == 0
                                  else f"FAILED rc={r[part]['rc']}")
                    for part in ("raw", "hand") if part in r)
                print(f"{name} {kind} seed {seed}: {msg}; HGB "
                      + " ".join(f"{k} {v['loss']:.4f}" for k, v in r["hgb"].items())
                      + f" ({r['seconds']:.1f} s)", flush=True)
                doc["wall_seconds"] = time.perf_counter() - t0
                doc["load_end"] = _load()
                js.write_text(json.dumps(doc, indent=1, default=str))
    md.write_text(render(doc))
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
