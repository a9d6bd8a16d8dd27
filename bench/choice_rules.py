"""Score `auto`'s choice rule — and variants of it — offline, on the candidates that
`default_strategy.py --candidates DIR` saved, without refitting anything.

Each run's file holds every candidate auto measured on all folds: its out-of-fold probabilities
and loss per clean row, and its test probabilities when fitted on the whole data like the chosen
one. Because auto's final model averages the parameters of two logistic regressions, and that
average's log-probabilities are the blend of the two's, any blend's CV and test loss can be
computed from these files exactly, and so is ERM's (its probabilities are saved too). This
script replays the library's rule (its own `_guarded_choice`, `_reg_line_search`,
`_final_share`, `_blend_share` and `_beats`) — checking it against the auto
losses of the results JSON where they are of the current revision — and scores each variant per
cell against the baselines there, as `default_strategy.py` does. "oracle" is the single
candidate with the lowest test loss. A rule that needs a λ step the run never measured cannot
take it here: the line search stops.

    python bench/default_strategy.py --datasets breast-cancer --seeds 20 --methods auto \\
        --recompute --candidates /tmp/cand
    python bench/choice_rules.py /tmp/cand
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np

import rdia_cli.cleaning.auto as ac
import rdia_cli.cleaning.auto.blend as blend
import rdia_cli.cleaning.auto.rules as rules
from rdia_cli.cleaning.auto import Config
from rdia_cli.metrics import row_losses

HERE = Path(__file__).resolve().parent


def load(path: Path) -> dict:
    z = np.load(path)
    configs = [Config(str(a), float(f), float(w), str(r), float(g)) for a, f, w, r, g in
               zip(z["action"], z["fraction"], z["weight"], z["ranker"], z["reg"], strict=True)]
    return {"configs": configs, "row_loss": z["row_loss"], "test_loss": z["test_loss"],
            "row_probs": z["row_probs"].astype(np.float64), "shift": z["alone_shift"],
            "test_probs": z["test_probs"].astype(np.float64), "val_y": z["val_y"],
            "test_y": z["test_y"], "noise_z": float(z["noise_z"]),
            "union": ({float(g): row for g, row in zip(z["union_reg"], z["union_loss"],
                                                       strict=True)}
                      if "union_reg" in z.files else {}),
            "erm_val": row_losses(z["erm_val_probs"].astype(np.float64), z["val_y"]),
            "erm_test": float(row_losses(z["erm_test_probs"].astype(np.float64),
                                             z["test_y"]).mean())}


def _tuned(run: dict, i: int, tune: bool, union: bool = True, down: bool = True) -> int:
    """``_reg_line_search`` on the measured candidates (a step never measured ends it). Without
    a sign of noise, train + clean set's λ comes from the CV over all its rows (revision 9),
    where the dump holds it, and may go down from 1/rows (revision 10; ``down``)."""
    if not tune:
        return i
    configs, row_loss = run["configs"], run["row_loss"]
    at = {c: k for k, c in enumerate(configs)}
    cfg = configs[i]
    quiet = abs(run["noise_z"]) < ac.NOISE_Z
    if union and run["union"] and quiet and cfg.weight > 0 and not cfg.fraction:
        losses = run["union"]
        missing = np.full(len(next(iter(losses.values()))), np.inf)
        with np.errstate(invalid="ignore"):
            cfg = rules._reg_line_search(lambda c: losses.get(c.reg, missing), cfg,
                                      down_se=ac.GUARD_SE if down else None)
        return at.get(cfg, i)
    missing = np.full(row_loss.shape[1], np.inf)
    with np.errstate(invalid="ignore"):  # inf − inf in a missing step's SE
        cfg = rules._reg_line_search(lambda c: row_loss[at[c]] if c in at else missing, cfg)
    return at[cfg]


def parts(run: dict, guard_se: float = ac.GUARD_SE, tune: bool = True,
          union: bool = True, down: bool = True) -> tuple[int, int]:
    """(training-based pick, clean set alone), each at its λ, as the library chooses them."""
    configs, row_loss = run["configs"], run["row_loss"]
    based = [i for i, c in enumerate(configs) if c.reg == 1 and c.weight > 0]
    pick = based[rules._guarded_choice([configs[i] for i in based], row_loss[based], guard_se)]
    alone = next(i for i, c in enumerate(configs) if c.reg == 1 and c.weight == 0)
    return _tuned(run, pick, tune, union, down), _tuned(run, alone, tune, union, down)


def blended(run: dict, grid=ac.BLEND_GRID, always: bool = False, keep_erm: bool = False,
            quiet_mean: bool = False, **kw) -> float:
    """Test loss of the library's rule (``_final_share``) or a variant of it: ``grid``, the
    shares of "clean set alone" tried when noise is seen; ``always``: that grid without a sign
    of noise too; ``quiet_mean``: without a sign of noise, the clean set alone whenever its
    mean CV loss is lower (revision 7) instead of by GUARD_SE standard errors; ``keep_erm``:
    without a sign of noise, ERM unless the choice beats it by GUARD_SE standard errors
    (measured, not adopted)."""
    pick, alone = parts(run, **kw)
    quiet = abs(run["noise_z"]) < ac.NOISE_Z
    probs, y, shift = run["row_probs"], run["val_y"], run["shift"][alone]
    if quiet and not always:
        share = (blend._blend_share(probs[pick], probs[alone], y, shift, (0.0, 1.0)) if quiet_mean
                 else rules._final_share(probs[pick], probs[alone], y, shift, run["row_loss"][pick],
                                      noisy=False))
    else:
        share = blend._blend_share(probs[pick], probs[alone], y, shift, grid)
    chosen = run["row_loss"][alone if share == 1.0 else pick]
    if keep_erm and quiet and not rules._beats(chosen, run["erm_val"], ac.GUARD_SE):
        return run["erm_test"]
    test = blend._blend_probs(run["test_probs"][pick], run["test_probs"][alone], share)
    return float(row_losses(test, run["test_y"]).mean())


def one_model(run: dict) -> float:
    """Revision 6: one of the two, never a blend — a cleaning had to beat the clean set alone by
    GUARD_SE standard errors, an uncleaned pick on the mean."""
    pick, alone = parts(run, union=False)
    loss = run["row_loss"]
    if run["configs"][pick].fraction > 0:
        keep = rules._beats(loss[pick], loss[alone], ac.GUARD_SE)
    else:
        keep = loss[pick].mean() <= loss[alone].mean()
    return float(run["test_loss"][pick if keep else alone])


RULES = {
    "auto": blended,
    "oracle (one model)": lambda run: float(run["test_loss"].min()),
    "keep ERM without noise": lambda run: blended(run, keep_erm=True),
    "rev. 9 (quiet: λ up only)": lambda run: blended(run, down=False),
    "rev. 8 (quiet: λ on clean rows)": lambda run: blended(run, union=False),
    "rev. 7 (quiet: on the mean)": lambda run: blended(run, quiet_mean=True, union=False),
    "rev. 6 (one model)": one_model,
    "shares 0, ½, 1": lambda run: blended(run, grid=(0.0, 0.5, 1.0)),
    "blend without noise": lambda run: blended(run, always=True),
    "guard 1 SE": lambda run: blended(run, guard_se=1.0),
    "no λ search": lambda run: blended(run, tune=False),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("candidates", help="the folder given to default_strategy.py --candidates")
    p.add_argument("--results", default=str(HERE / "results" / "default_strategy.json"))
    args = p.parse_args(argv)
    import default_strategy

    results = {(r["dataset"], r["clean"], r["tau"], r["seed"]): r["methods"]
               for r in json.loads(Path(args.results).read_text())["results"]}
    cells = collections.defaultdict(list)
    checked = same = 0
    files = sorted(Path(args.candidates).glob("*.npz"))
    for f in files:
        name, clean, tau, seed = f.stem.rsplit("_", 3)
        run = load(f)
        losses = {rule: fn(run) for rule, fn in RULES.items()}
        methods = results[(name, float(clean), float(tau), int(seed))]
        if methods["auto"].get("revision") == default_strategy.AUTO_REVISION:
            checked += 1
            same += abs(methods["auto"]["loss"] - losses["auto"]) < 1e-5
        cells[(name, float(clean), float(tau))].append((methods, losses))
    print(f"{len(files)} runs; of the {checked} whose auto result is of the current revision, the "
          f"replay gives the same test loss in {same}")
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
