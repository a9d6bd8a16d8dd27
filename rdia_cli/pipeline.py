"""All five stages in one call, leaving every stage's file in a folder (what `rdia run` does).

DIR/erm.pt            model trained on the raw training data (ERM)
DIR/scores.parquet    Φ of every training row
DIR/cleaned.parquet   training set after the main strategy (cleaned-NAME.parquet for --compare)
DIR/NAME.pt           retrained model per strategy
DIR/metrics.json      `rdia evaluate --json` form, a `name` per model: erm first, then the
                      strategy that was run, then the --compare baselines
DIR/run.json          settings, α chosen, sweeps, timings
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rdia_cli import api
from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError
from rdia_cli.io_utils import atomic_path
from rdia_cli.models.io import save_model

BASELINES = ("drop", "uids", "optlr", "random")
HONEST = ("clean-only", "train+val", "cleanlab")


@dataclass
class RunSettings:
    model_type: str = "logreg"
    l2: float | None = None
    alpha: float | str | None = "auto"
    fraction: float | None = None
    strategy: str | None = None  # None: auto for logistic regression, rdia for networks
    targets: str = "paper"
    compare: bool = False
    also: tuple[str, ...] = ()  # more strategies to run after the main one
    seed: int = 0
    solver: str = "auto"
    damping: float | None = None
    net_options: dict = field(default_factory=dict)


def _write_json(path: Path, payload) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(payload, f, indent=2, default=str)
        f.write("\n")


def run_pipeline(
    train: Dataset,
    val: Dataset,
    test: Dataset,
    outdir: Path,
    settings: RunSettings,
    *,
    device="cpu",
    say: Callable[[str], None] = lambda msg: None,
) -> dict:
    """Run train → score → relabel → retrain → evaluate; return the metrics.json payload.

    Settings are checked before any work; a folder this call creates is removed again if the
    run fails, so a failed run leaves no half-filled folder behind."""
    _check_settings(settings, val)
    created = not outdir.exists()
    try:
        return _run_pipeline(train, val, test, outdir, settings, device=device, say=say)
    except BaseException:
        if created:
            shutil.rmtree(outdir, ignore_errors=True)
        raise


def _check_settings(settings: RunSettings, val: Dataset) -> None:
    from rdia_cli.autoclean import check_auto
    from rdia_cli.relabel import STRATEGIES, TARGETS

    valid = ("auto", *STRATEGIES)
    for name in (settings.strategy, *settings.also):
        if name is not None and name not in valid:
            raise InputError(f"--strategy must be one of {', '.join(valid)}, not {name!r}.")
    if settings.targets not in TARGETS:
        raise InputError(f"--targets must be one of {', '.join(TARGETS)}, not "
                         f"{settings.targets!r}.")
    auto = settings.strategy == "auto" or (settings.strategy is None
                                           and settings.model_type == "logreg")
    if auto:
        check_auto(settings.model_type, val)


def _run_pipeline(train, val, test, outdir, settings, *, device, say) -> dict:
    from rdia_cli.data.writers import write_dataset

    outdir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    erm = api.train_model(train, model_type=settings.model_type, device=device, l2=settings.l2,
                          net_options=settings.net_options)
    save_model(erm, outdir / "erm.pt")
    erm.path = str(outdir / "erm.pt")
    timings["train"] = time.perf_counter() - t
    say(f"trained ERM {settings.model_type} in {timings['train']:.2f} s")

    t = time.perf_counter()
    result = api.score_model(erm, train, val, device=device, solver=settings.solver,
                             damping=settings.damping, seed=settings.seed)
    probs = api.probabilities(erm, train, device=device)
    from rdia_cli.scores import file_fingerprint, write_scores

    write_scores(outdir / "scores.parquet", row_id=train.row_id, labels=train.y,
                 classes=train.classes, result=result, probs=probs,
                 meta=dict(result.info, model=str(outdir / "erm.pt"),
                           model_fingerprint=file_fingerprint(outdir / "erm.pt"),
                           train_fingerprint=train.fingerprint(),
                           val_fingerprint=val.fingerprint(), n_train=train.n_samples,
                           n_val=val.n_samples, arch=erm.arch))
    timings["score"] = time.perf_counter() - t
    n_pos = int((result.phi > 0).sum())
    say(f"scored {train.n_samples:,} rows in {timings['score']:.2f} s: {n_pos:,} with Φ > 0")

    if settings.strategy is None:
        settings.strategy = "auto" if erm.arch == "logreg" else "rdia"
    strategies = [settings.strategy] + [s for s in settings.also if s != settings.strategy]
    if settings.compare:
        strategies += [s for s in ("auto", "rdia", *BASELINES) if s not in strategies]
        if erm.arch != "logreg":
            strategies = [s for s in strategies if s != "auto"]
    models = [("erm", erm, outdir / "erm.pt")]
    details = {}
    verdict = None
    for name in strategies:
        t = time.perf_counter()
        cleaned_path = outdir / ("cleaned.parquet" if name == settings.strategy
                                 else f"cleaned-{name}.parquet")
        if name == "auto":
            from rdia_cli.autoclean import auto_clean

            ac = auto_clean(train, val, erm, l2=settings.l2, seed=settings.seed, device=device)
            cleaned, model = ac.cleaned, ac.model
            info = {"alpha": None, "fraction": ac.config.fraction, "action": ac.config.action,
                    "weight": ac.config.weight, "clean_only_share": ac.clean_only_share,
                    "n_relabeled": int(cleaned.extra["relabeled"].sum()),
                    "n_removed": int(train.n_samples - (cleaned.extra["part"] == 0).sum()
                                     if ac.config.weight > 0 else train.n_samples),
                    "l2": model.meta["l2"], "cv": ac.cv, "verdict": ac.verdict}
            verdict = ac.verdict
        else:
            outcome = _relabel(train, result.phi, probs, erm, val, settings, name, device)
            cleaned = outcome.dataset
            model = api.retrain_model(cleaned, erm, device=device)
            info = {"alpha": outcome.alpha, "n_relabeled": outcome.cleaning.n_relabeled,
                    "n_removed": outcome.cleaning.n_removed, "sweep": outcome.sweep}
        write_dataset(cleaned, str(cleaned_path),
                      meta={"relabel": dict(info, strategy=name,
                                            source_fingerprint=train.fingerprint())})
        path = outdir / f"{name}.pt"
        save_model(model, path)
        timings[f"clean+retrain:{name}"] = time.perf_counter() - t
        details[name] = dict(info, cleaned=str(cleaned_path))
        say(_describe(name, info))
        models.append((name, model, path))
    if settings.compare and erm.arch == "logreg":
        from rdia_cli import baselines

        extra = [("clean-only", lambda: baselines.clean_only(val, erm, device=device)),
                 ("train+val", lambda: baselines.train_plus_val(train, val, erm, device=device))]
        if baselines.cleanlab_available():
            extra.append(("cleanlab", lambda: baselines.cleanlab_drop(
                train, erm, seed=settings.seed, device=device)[0]))
        else:
            say("cleanlab baseline skipped: cleanlab is not installed "
                "(pip install cleanlab)")
        for name, make in extra:
            model = make()
            path = outdir / f"{name}.pt"
            save_model(model, path)
            models.append((name, model, path))

    results = []
    for name, model, path in models:
        metrics = api.evaluate_model(model, test, device=device)
        val_metrics = api.evaluate_model(model, val, device=device)
        results.append({"name": name, "model": str(path), **metrics,
                        "val_loss": val_metrics["loss"]})
    payload = {"data": test.source, "models": results}
    if verdict is not None:
        payload["verdict"] = verdict
    _write_json(outdir / "metrics.json", payload)
    _write_json(outdir / "run.json", {
        "settings": asdict(settings), "train": train.source, "val": val.source,
        "test": test.source, "n_train": train.n_samples, "n_val": val.n_samples,
        "n_test": test.n_samples, "strategies": details, "timings": timings,
        "score_info": result.info, "verdict": verdict,
    })
    return payload


def _describe(name: str, info: dict) -> str:
    if name == "auto":
        return (f"auto: {info['verdict']['chosen']} ({info['n_relabeled']:,} relabeled, "
                f"{info['n_removed']:,} training rows removed, validation rows added)")
    alpha = info["alpha"]
    return (f"{name}: α {'none' if alpha is None else format(alpha, '.4g')}, "
            f"{info['n_relabeled']:,} relabeled, {info['n_removed']:,} removed")


def _relabel(train, phi, probs, erm, val, settings: RunSettings, strategy: str, device):
    if settings.fraction is not None:
        return api.relabel_dataset(train, phi, probs, strategy=strategy,
                                   fraction=settings.fraction, targets=settings.targets,
                                   seed=settings.seed)
    if settings.alpha == "auto":
        return api.auto_alpha(train, phi, probs, erm, val, strategy=strategy,
                              targets=settings.targets, seed=settings.seed, device=device)
    if settings.alpha is None:
        raise InputError("give --alpha A, --alpha auto or --fraction Q.")
    return api.relabel_dataset(train, phi, probs, strategy=strategy, alpha=float(settings.alpha),
                               targets=settings.targets, seed=settings.seed)
