"""Score `auto`'s choice rule — and variants of it — offline, on the candidates that
`default_strategy.py --candidates DIR` saved, without refitting anything.

Each run's file holds every candidate auto measured on all folds: its out-of-fold probabilities
and loss per clean row, and its test probabilities when fitted on the whole data like the chosen
one. Because auto's final model averages the parameters of two logistic regressions, and that
average's log-probabilities are the blend of the two's, any blend's CV and test loss can be
computed from these files exactly, and so is ERM's (its probabilities are saved too). This
script replays the library's rule under `DEFAULT_POLICY` (its `choose`, `reg_line_search`,
`final_share`, `blend_share` and `beats`) — checking it against the auto losses of the results
JSON where they are of the current policy digest — and scores each variant, mostly a policy
built with `dataclasses.replace(DEFAULT_POLICY, ...)`, per cell against the baselines there, as
`default_strategy.py` does. "oracle" is the single
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
from dataclasses import replace
from pathlib import Path

import numpy as np
from benchlib import quick_defaults, results_dir

import rdia_cli.cleaning.auto as ac
from rdia_cli.cleaning.auto import DEFAULT_POLICY, AutoPolicy, Config
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


def _tuned(run: dict, i: int, policy: AutoPolicy, union: bool = True,
           veto: bool = True) -> int:
    """``reg_line_search`` on the measured candidates (a step never measured ends it). Without
    a sign of noise, train + clean set's λ comes from the CV over all its rows where the dump
    holds it (``union``), and may go down from 1/rows (``policy.reg_down_se``)."""
    configs, row_loss = run["configs"], run["row_loss"]
    at = {c: k for k, c in enumerate(configs)}
    cfg = configs[i]
    quiet = abs(run["noise_z"]) < policy.noise_z
    if union and run["union"] and quiet and cfg.weight > 0 and not cfg.fraction:
        losses = run["union"]
        missing = np.full(len(next(iter(losses.values()))), np.inf)
        with np.errstate(invalid="ignore"):
            cfg = ac.reg_line_search(lambda c: losses.get(c.reg, missing), cfg, policy,
                                     down=True, clean_rows=(slice(-len(run["val_y"]), None)
                                                            if veto else None))
        return at.get(cfg, i)
    missing = np.full(row_loss.shape[1], np.inf)
    with np.errstate(invalid="ignore"):  # inf − inf in a missing step's SE
        cfg = ac.reg_line_search(lambda c: row_loss[at[c]] if c in at else missing, cfg, policy)
    return at[cfg]


def parts(run: dict, policy: AutoPolicy = DEFAULT_POLICY, union: bool = True,
          veto: bool = True) -> tuple[int, int]:
    """(training-based pick, clean set alone), each at its λ, as the library chooses them
    (``veto=False``: a step up of λ over all rows without the clean rows' veto, before #30)."""
    configs, row_loss = run["configs"], run["row_loss"]
    based = [i for i, c in enumerate(configs) if c.reg == 1 and c.weight > 0]
    pick = based[policy.choose([configs[i] for i in based], row_loss[based], policy)]
    alone = next(i for i, c in enumerate(configs) if c.reg == 1 and c.weight == 0)
    return _tuned(run, pick, policy, union, veto), _tuned(run, alone, policy, union, veto)


def blended(run: dict, policy: AutoPolicy = DEFAULT_POLICY, always: bool = False,
            keep_erm: bool = False, union: bool = True, lowest_share: bool = False,
            veto: bool = True) -> float:
    """Test loss of the library's rule (``final_share``) under ``policy``, or a variant of it:
    ``always``: the blend grid without a sign of noise too; ``keep_erm``: without a sign of
    noise, ERM unless the choice beats it by ``policy.guard_se`` standard errors (measured, not
    adopted); ``union=False``: λ of train + clean set on the clean rows' CV alone;
    ``lowest_share``: with noise, the blend share of lowest CV loss (the rule before #30)."""
    pick, alone = parts(run, policy, union, veto)
    quiet = abs(run["noise_z"]) < policy.noise_z
    probs, y, shift = run["row_probs"], run["val_y"], run["shift"][alone]
    if quiet and not always:
        share = ac.final_share(probs[pick], probs[alone], y, shift, run["row_loss"][pick],
                               noisy=False, policy=policy)
    elif lowest_share:  # before #30: the share with the lowest CV loss
        share = ac.blend_share(probs[pick], probs[alone], y, shift, policy.blend_shares)
    else:
        share = ac.final_share(probs[pick], probs[alone], y, shift, run["row_loss"][pick],
                               noisy=True, policy=policy)
    chosen = run["row_loss"][alone if share == 1.0 else pick]
    if keep_erm and quiet and not ac.beats(chosen, run["erm_val"], policy.guard_se):
        return run["erm_test"]
    test = ac.blend_probs(run["test_probs"][pick], run["test_probs"][alone], share)
    return float(row_losses(test, run["test_y"]).mean())


def _geometric_mean(probs: np.ndarray) -> np.ndarray:
    """Probabilities of the model whose parameters average those of the models behind
    ``probs`` (models × rows × classes): for linear softmax models, the normalized geometric
    mean."""
    z = np.log(np.clip(probs, 1e-300, None)).mean(0)
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def averaged_ties(run: dict, policy: AutoPolicy = DEFAULT_POLICY) -> float:
    """The tie rule's alternative (#30 item 3, measured, not adopted): the cleanings within
    ``policy.tie_se`` of the lowest CV loss (at most 5, λ = 1/rows) averaged into one model —
    exact for logistic regressions, and a fit per member in the library — which must beat train
    + clean set by ``policy.guard_se``; then blended with the clean set alone as ``blended``
    does (no λ search for the average)."""
    configs, loss = run["configs"], run["row_loss"]
    pick, alone = parts(run, policy)
    at1 = [i for i, c in enumerate(configs) if c.reg == 1 and c.weight > 0]
    cleaning = [i for i in at1 if configs[i].fraction > 0]
    base = next((i for i in at1 if configs[i].fraction == 0), None)
    y, ty = run["val_y"], run["test_y"]
    val_p, test_p = run["row_probs"][pick], run["test_probs"][pick]
    if cleaning and base is not None:
        best = min(cleaning, key=lambda i: loss[i].mean())
        tied = sorted((i for i in cleaning if i == best or not ac.beats(
            loss[best], loss[i], policy.tie_se)), key=lambda i: loss[i].mean())[:5]
        avg_val = _geometric_mean(run["row_probs"][tied])
        if ac.beats(row_losses(avg_val, y), loss[base], policy.guard_se):
            val_p, test_p = avg_val, _geometric_mean(run["test_probs"][tied])
        else:
            val_p, test_p = run["row_probs"][base], run["test_probs"][base]
    quiet = abs(run["noise_z"]) < policy.noise_z
    shift = run["shift"][alone]
    share = ac.final_share(val_p, run["row_probs"][alone], y, shift, row_losses(val_p, y),
                           noisy=not quiet, policy=policy)
    test = ac.blend_probs(test_p, run["test_probs"][alone], share)
    return float(row_losses(test, ty).mean())


def one_model(run: dict, policy: AutoPolicy = DEFAULT_POLICY) -> float:
    """One of the two, never a blend: a cleaning had to beat the clean set alone by
    ``policy.guard_se`` standard errors, an uncleaned pick on the mean."""
    pick, alone = parts(run, policy, union=False)
    loss = run["row_loss"]
    if run["configs"][pick].fraction > 0:
        keep = ac.beats(loss[pick], loss[alone], policy.guard_se)
    else:
        keep = loss[pick].mean() <= loss[alone].mean()
    return float(run["test_loss"][pick if keep else alone])


def variant(**change) -> AutoPolicy:
    return replace(DEFAULT_POLICY, **change)


RULES = {
    "auto": blended,
    "oracle (one model)": lambda run: float(run["test_loss"].min()),
    "keep ERM without noise": lambda run: blended(run, keep_erm=True),
    "rev. 9 (quiet: λ up only)": lambda run: blended(run, variant(reg_down_se=None)),
    "rev. 8 (quiet: λ on clean rows)": lambda run: blended(run, union=False),
    "rev. 7 (quiet: on the mean)": lambda run: blended(run, variant(clean_only_se=0.0),
                                                       union=False),
    "rev. 6 (one model)": one_model,
    "shares 0, ½, 1": lambda run: blended(run, variant(blend_shares=(0.0, 0.5, 1.0))),
    "blend without noise": lambda run: blended(run, always=True),
    "guard 1 SE": lambda run: blended(run, variant(guard_se=1.0)),
    "share of lowest CV (before #30)": lambda run: blended(run, lowest_share=True),
    "no λ veto (before #30)": lambda run: blended(run, veto=False),
    "lowest CV, guard 1 SE": lambda run: blended(run, variant(choose=ac.guarded_choice)),
    "ties to the least cleaning, guard 2 SE": lambda run: blended(run, variant(guard_se=2.0)),
    "ties averaged, guard 1 SE": averaged_ties,
    "policy before #30": lambda run: blended(
        run, variant(guard_se=2.0, choose=ac.guarded_choice), lowest_share=True, veto=False),
    "share within 0.5 SE": lambda run: blended(run, variant(blend_se=0.5)),
    "share within 0 SE": lambda run: blended(run, variant(blend_se=0.0)),
    "share within 2 SE": lambda run: blended(run, variant(blend_se=2.0)),
    "no λ search": lambda run: blended(run, variant(reg_max_steps=0)),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("candidates", nargs="?",
                   help="the folder given to default_strategy.py --candidates")
    p.add_argument("--results", default=str(HERE / "results" / "default_strategy.json"))
    p.add_argument("--quick", action="store_true", help="smoke run: `default_strategy.py "
                   "--quick --candidates` into a scratch folder, then the replay on it")
    args = p.parse_args(argv)
    import default_strategy

    if args.quick and not args.candidates:
        scratch = results_dir(quick=True) / "choice_rules"
        args.candidates = str(scratch / "candidates")
        default_strategy.main(["--quick", "--candidates", args.candidates,
                               "--out", str(scratch / "default_strategy")])
        quick_defaults(p, args, results=str(scratch / "default_strategy.json"))
    if not args.candidates:
        p.error("the candidates folder is required (or --quick)")

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
        if default_strategy.auto_revision(methods["auto"]) == default_strategy.AUTO_REVISION:
            checked += 1
            same += abs(methods["auto"]["loss"] - losses["auto"]) < 1e-5
        cells[(name, float(clean), float(tau))].append((methods, losses))
    print(f"{len(files)} runs; of the {checked} whose auto result is of the current policy, the "
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
    noisy_runs = [ls for (_, _, tau), runs in cells.items() if tau > 0 for _, ls in runs]
    print(f"\nmean test loss over the {len(noisy_runs)} noisy runs: " + ", ".join(
        f"{rule} {np.mean([ls[rule] for ls in noisy_runs]):.4f}" for rule in RULES))
    print(f"\nnoisy cells with the lowest mean test loss (of {noisy}): "
          + ", ".join(f"{rule} {wins[rule]}" for rule in RULES))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
