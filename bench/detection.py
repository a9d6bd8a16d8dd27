"""How well rdia finds the corrupted labels (issue #29 item 5): detection, not repair.

Per data set x noise kind x seed: a clean set (8% of the rows, at least 40, stratified) keeps its
true labels; the other rows are the training set, whose labels get 20% noise (`symmetric`: to a
uniformly drawn other class; `pair`: to the next class, (y + 1) mod K). Then

  train + score      logistic regression (λ = 1/rows), Φ against the clean set
  find_issues        the default (auto) strategy; label_quality = p(given) under 5-fold
                     out-of-fold models of the training rows

and each ranking is scored against the truly corrupted rows: AUROC, average precision, and the
false-negative rate when flagging as many rows as were corrupted (FNR@noise):

  rdia Φ             larger Φ = more suspect
  rdia strategy      the rows the auto strategy relabels or drops first (then by label_quality)
  rdia label_quality 1 - label_quality (identical to cleanlab's self_confidence on the same
                     out-of-fold probabilities, by construction)
  cleanlab margin    cleanlab.rank.get_label_quality_scores(method="normalized_margin")
  cleanlab mask      cleanlab.filter.find_label_issues (prune_by_noise_rate) as a 0/1 score;
                     its FNR is at its own flag count (shown), not at the noise count
  clean-set model    -log p(given) under a model fitted on the clean set alone

    python bench/detection.py            # 3 data sets x 2 noises x 3 seeds -> results/
    python bench/detection.py --quick    # breast-cancer, symmetric, seed 0 -> scratch folder
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import data_root, flip_labels, log, machine, quick_defaults, results_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rdia_cli.data.dataset import Dataset  # noqa: E402


def load(name: str):
    if name == "breast-cancer":
        from sklearn.datasets import load_breast_cancer

        X, y = load_breast_cancer(return_X_y=True)
        return (X - X.mean(0)) / X.std(0), y
    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return X / 16.0, y
    from rdia_cli.data.readers import ReadOptions, read_dataset

    ds = read_dataset(str(data_root() / "libsvm" / name), ReadOptions())
    X = ds.flat_X()
    return (X.toarray() if hasattr(X, "toarray") else np.asarray(X)), ds.y


def rankings(name, noise, seed, clean_share):
    from sklearn.model_selection import train_test_split

    from rdia_cli.cleaning.auto.cv import clean_model_scores
    from rdia_cli.cleaning.issues import find_issues
    from rdia_cli.stages import score_model, train_model

    X, y = load(name)
    k = int(y.max()) + 1
    idx = np.arange(len(y))
    n_clean = max(40, int(round(clean_share * len(y))))
    tr, va = train_test_split(idx, test_size=n_clean, stratify=y, random_state=seed)
    noisy, flipped = flip_labels(y[tr], 0.2, k, seed=seed, kind=noise)
    classes = list(range(k))
    train = Dataset(X=X[tr], y=noisy, classes=classes, row_id=np.arange(len(tr)))
    val = Dataset(X=X[va], y=y[va], classes=classes, row_id=np.arange(len(va)))
    t0 = time.perf_counter()
    model = train_model(train)
    scores = score_model(model, train, val)
    table = find_issues(train, scores, val=val, model=model, explain=0, seed=seed)
    seconds = time.perf_counter() - t0
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    from rdia_cli.cleaning.issues import quality_probs

    probs, _ = quality_probs(train, model, scores, seed=seed)
    q = table.label_quality.to_numpy()
    mask = find_label_issues(noisy, probs)
    margin = get_label_quality_scores(noisy, probs, method="normalized_margin")
    clean_nll, _ = clean_model_scores(train, val, model)
    ranks = {
        "rdia Φ": table.phi.to_numpy(),
        "rdia strategy": table.is_label_issue.to_numpy() + (1 - q) / 2,
        "rdia label_quality": 1 - q,
        "cleanlab margin": 1 - margin,
        "cleanlab mask": mask.astype(float),
        "clean-set model": clean_nll,
    }
    return ranks, flipped, {"seconds": seconds, "n_train": len(tr), "n_clean": len(va),
                            "n_flagged_strategy": int(table.is_label_issue.sum()),
                            "n_flagged_cleanlab": int(mask.sum())}


def metrics(score, truth):
    from sklearn.metrics import average_precision_score, roc_auc_score

    m = int(truth.sum())
    top = np.argsort(-score, kind="stable")[:m]
    return {"auroc": float(roc_auc_score(truth, score)),
            "ap": float(average_precision_score(truth, score)),
            "fnr": float(1 - truth[top].sum() / max(m, 1))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="breast-cancer,digits,dna.scale")
    ap.add_argument("--noises", default="symmetric,pair")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--clean-share", type=float, default=0.08)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        quick_defaults(ap, args, datasets="breast-cancer", noises="symmetric", seeds=1)
    out = results_dir(args.quick)
    rows = []
    for name in args.datasets.split(","):
        for noise in args.noises.split(","):
            for seed in range(args.seeds):
                ranks, truth, info = rankings(name, noise, seed, args.clean_share)
                for method, score in ranks.items():
                    rows.append({"data": name, "noise": noise, "seed": seed, "method": method,
                                 **metrics(score, truth), **info})
                log(f"{name} {noise} seed {seed}: {info['seconds']:.1f} s")
    (out / "detection.json").write_text(json.dumps(rows, indent=1))
    lines = ["# Finding the corrupted labels (bench/detection.py)", "",
             *_protocol(),
             f"Machine: {machine()}. Seeds: {args.seeds}; clean set {args.clean_share:.0%}; "
             "noise 20%. Mean over seeds (AUROC, average precision, FNR@noise; higher, higher, "
             "lower is better).", ""]
    for name in args.datasets.split(","):
        for noise in args.noises.split(","):
            sel = [r for r in rows if r["data"] == name and r["noise"] == noise]
            if not sel:
                continue
            r0 = sel[0]
            lines += [f"## {name}, {noise} ({r0['n_train']} training rows, {r0['n_clean']} "
                      "clean)", "", "| method | AUROC | AP | FNR@noise |", "|---|---:|---:|---:|"]
            for method in dict.fromkeys(r["method"] for r in sel):
                ms = [r for r in sel if r["method"] == method]
                mean = {k: np.mean([r[k] for r in ms]) for k in ("auroc", "ap", "fnr")}
                lines.append(f"| {method} | {mean['auroc']:.3f} | {mean['ap']:.3f} | "
                             f"{mean['fnr']:.3f} |")
            lines.append("")
    notes = Path(__file__).resolve().parent / "results" / "detection_notes.md"
    if notes.exists() and not args.quick:  # the hand-written reading of the full run
        lines += ["## Reading", "", notes.read_text().strip(), ""]
    (out / "detection.md").write_text("\n".join(lines) + "\n")
    log(f"wrote {out / 'detection.md'}")


def _protocol() -> list[str]:
    """The docstring's protocol as markdown: prose as it is, the indented tables as code."""
    out = []
    for part in __doc__.split("\n\n")[1:5]:
        out += [f"```\n{part}\n```" if part.startswith("  ") else part.strip(), ""]
    return out


if __name__ == "__main__":
    main()
