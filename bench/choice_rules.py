"""Score `auto`'s choice rule — and variants of it — offline, on the candidates that
`default_strategy.py --candidates DIR` saved, without refitting anything.

Each run's file holds every candidate auto measured on all folds (out-of-fold loss per clean
row, test loss fitted like the chosen one). This script replays the rule of
`rdia_cli.autoclean` (its own `_guarded_choice` and `_tuned_choice`) on them — checking that
the replay picks what the run picked — and scores each variant per cell against the baselines
of the results JSON, as `default_strategy.py` does. "oracle" is the candidate with the lowest
test loss: what no rule choosing among these candidates can beat. A rule that picks a candidate
the run itself never λ-tuned cannot tune it here (the λ steps were not measured): replaying
revision 5 on revision-6 files reproduced 129 of 131 revision-5 runs, the other 2 for that
reason.

    python bench/default_strategy.py --datasets breast-cancer --seeds 20 --methods auto \\
        --candidates /tmp/cand          # (auto must be older than AUTO_REVISION to re-run)
    python bench/choice_rules.py /tmp/cand
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np

import rdia_cli.autoclean as ac
from rdia_cli.autoclean import Config

HERE = Path(__file__).resolve().parent


def load(path: Path) -> dict:
    z = np.load(path)
    configs = [Config(str(a), float(f), float(w), str(r), float(g)) for a, f, w, r, g in
               zip(z["action"], z["fraction"], z["weight"], z["ranker"], z["reg"], strict=True)]
    return {"configs": configs, "row_loss": z["row_loss"], "test_loss": z["test_loss"],
            "chosen": str(z["chosen"]), "noise_z": float(z["noise_z"])}


def on_the_mean(pick, pick_loss, alone_loss, z) -> bool:
    """Revision 5's test against "clean set alone": every pick meets it on the mean."""
    return bool(pick_loss.mean() <= alone_loss.mean())


def choose(run: dict, guard_se: float = ac.GUARD_SE, tune: bool = True, keeps=None) -> int:
    """The candidate auto's rule picks, with ``guard_se`` in place of GUARD_SE and ``keeps`` in
    place of ``_keeps`` (the test against "clean set alone")."""
    saved_keeps = ac._keeps
    ac._keeps = keeps or saved_keeps
    try:
        return _choose(run, guard_se, tune)
    finally:
        ac._keeps = saved_keeps


def _choose(run: dict, guard_se: float, tune: bool) -> int:
    configs, row_loss = run["configs"], run["row_loss"]
    at = {c: i for i, c in enumerate(configs)}
    first = [i for i, c in enumerate(configs) if c.reg == 1]
    pick = configs[first[ac._guarded_choice([configs[i] for i in first], row_loss[first],
                                            guard_se)]]
    if tune:
        missing = np.full(row_loss.shape[1], np.inf)  # a λ step the run never needed

        def cv(cfg: Config) -> np.ndarray:
            return row_loss[at[cfg]] if cfg in at else missing

        saved, ac.GUARD_SE = ac.GUARD_SE, guard_se
        try:
            with np.errstate(invalid="ignore"):  # inf − inf in a missing step's SE
                pick = ac._tuned_choice(cv, pick,
                                        next((c for c in configs if c.weight == 0), None))
        finally:
            ac.GUARD_SE = saved
    return at[pick]


RULES = {
    "auto": choose,
    "oracle": lambda run: int(np.argmin(run["test_loss"])),
    "guard 1 SE": lambda run: choose(run, 1.0),
    "guard 3 SE": lambda run: choose(run, 3.0),
    "no λ search": lambda run: choose(run, tune=False),
    "alone on the mean (rev. 5)": lambda run: choose(run, keeps=on_the_mean),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("candidates", help="the folder given to default_strategy.py --candidates")
    p.add_argument("--results", default=str(HERE / "results" / "default_strategy.json"))
    args = p.parse_args(argv)
    results = {(r["dataset"], r["clean"], r["tau"], r["seed"]): r["methods"]
               for r in json.loads(Path(args.results).read_text())["results"]}
    cells = collections.defaultdict(list)
    replayed = 0
    files = sorted(Path(args.candidates).glob("*.npz"))
    for f in files:
        name, clean, tau, seed = f.stem.rsplit("_", 3)
        run = load(f)
        replayed += run["configs"][choose(run)].label == run["chosen"]
        losses = {rule: float(run["test_loss"][pick(run)]) for rule, pick in RULES.items()}
        methods = results[(name, float(clean), float(tau), int(seed))]
        cells[(name, float(clean), float(tau))].append((methods, losses))
    print(f"{len(files)} runs; the replay picks what the run picked in {replayed}")
    wins = collections.Counter()
    noisy = 0
    print("| dataset | clean | τ | runs | best baseline | " + " | ".join(RULES) + " |")
    print("|---|---|---|---|---|" + "---|" * len(RULES))
    for (name, clean, tau), runs in sorted(cells.items()):
        base = {m: np.mean([ms[m]["loss"] for ms, _ in runs]) for m in runs[0][0]
                if m not in ("auto", "_")}
        best = min(base.values())
        row = {rule: np.mean([ls[rule] for _, ls in runs]) for rule in RULES}
        if tau > 0:
            noisy += 1
            wins.update(rule for rule, v in row.items() if v <= best * (1 + 1e-6))
        print(f"| {name} | {clean:.0%} | {tau:g} | {len(runs)} | {best:.4f} | "
              + " | ".join(f"{v:.4f}" for v in row.values()) + " |")
    print(f"\nnoisy cells with the lowest mean test loss (of {noisy}): "
          + ", ".join(f"{rule} {wins[rule]}" for rule in RULES))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
