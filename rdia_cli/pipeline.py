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

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from rdia_cli import stages as api
from rdia_cli.artifacts.run_folder import RunFolder, write_json
from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError
from rdia_cli.models.io import save_model

BASELINES = ("drop", "uids", "optlr", "random")
HONEST = ("clean-only", "train+val", "cleanlab")
RUN_MODELS = ("auto", "rdia", *BASELINES, *HONEST)  # the NAME.pt files besides erm.pt
RUN_FILES = ("erm.pt", "scores.parquet", "metrics.json", "run.json", "cleaned.parquet",
             *(f"{m}.pt" for m in RUN_MODELS),
             *(f"cleaned-{m}.parquet" for m in ("auto", "rdia", *BASELINES)))


def check_run_inputs(outdir: Path, inputs) -> None:
    """Refuse an input that is one of the files a run writes into ``outdir``: the run would
    replace it (a run's `scores.parquet` given as validation data, its `cleaned.parquet` as
    training data...)."""
    written = {(Path(outdir) / name).resolve() for name in RUN_FILES}
    for path in inputs:
        if path is not None and str(path) != "-" and Path(path).resolve() in written:
            raise InputError(f"`{path}` is a file `rdia run` writes into `{outdir}`; the run "
                             "would replace its own input: copy it elsewhere or give another "
                             "output folder.")


@dataclass(frozen=True)
class RunSettings:
    """The settings of one `rdia run`, saved beside its outputs (``run.json``'s ``settings``).

    Frozen: the run derives a copy (``dataclasses.replace``) where it fills in a default.
    ``check(val)`` validates them against the clean set before any work."""

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

    def check(self, val: Dataset) -> None:
        """Raise ``InputError`` for an unknown strategy or target kind, or for ``auto`` where
        it cannot run (networks, a one-class clean set)."""
        from rdia_cli.cleaning.auto import check_auto
        from rdia_cli.cleaning.strategies import STRATEGIES
        from rdia_cli.cleaning.targets import TARGETS

        valid = ("auto", *STRATEGIES)
        for name in (self.strategy, *self.also):
            if name is not None and name not in valid:
                raise InputError(f"`strategy` must be one of {', '.join(valid)}, not {name!r}.")
        if self.targets not in TARGETS:
            raise InputError(f"`targets` must be one of {', '.join(TARGETS)}, not "
                             f"{self.targets!r}.")
        auto = self.strategy == "auto" or (self.strategy is None and api.default_strategy(
            self.model_type, rule_given=False) == "auto")
        if auto:
            check_auto(self.model_type, val)


def run_pipeline(
    train: Dataset,
    val: Dataset,
    test: Dataset,
    outdir: Path,
    settings: RunSettings,
    *,
    device="cpu",
    say: Callable[[str], None] = lambda msg: None,
    stage: Callable[[str], None] = lambda what: None,
    progress: Callable[[float | None, float | None, str], None] | None = None,
    inputs: dict | None = None,
) -> dict:
    """Run train → score → relabel → retrain → evaluate; return the metrics.json payload.

    ``inputs``: where the training and validation data are and how they were read
    (``artifacts.inputs.record_inputs(train=..., val=...)``), recorded in the scores file and
    the cleaned files as `rdia score` and `rdia relabel` record them.

    What it reports, for a log or a progress bar (it never prints): ``stage(what)`` when a
    stage starts ("training ERM logreg"), ``progress(completed, total, info)`` as the stage
    goes (Newton step, CG iteration, cross-validation fit; ``total`` None when unknown), and
    ``say(msg)`` when it ends, with its result.

    Settings are checked before any work. The run is built in a staging folder beside
    ``outdir`` and swapped in whole at the end, under a lock on the folder
    (``artifacts.run_folder.RunFolder``): ``outdir`` holds the earlier run or this one, never
    a mix; files in it that are not a run's (the data, your notes) stay. A failed,
    interrupted or killed run leaves ``outdir`` as it was; a second run on the same folder
    while one is going raises ``InputError`` naming the first one's pid."""
    settings.check(val)
    check_run_inputs(outdir, [d.source for d in (train, val, test)])
    with RunFolder(outdir, RUN_MODELS) as folder:
        payload = _run_pipeline(train, val, test, outdir, settings, device=device, say=say,
                                stage=stage, progress=progress or (lambda *a: None),
                                inputs=inputs or {}, build=folder.staging)
        folder.commit()
    return payload


def _train_progress(progress):
    """``train_model``'s progress (Newton step, objective, gradient norm; or a network's step
    of total and its losses) as ``progress(completed, total, info)``."""

    def report(step, total_or_loss, extra=None):
        if isinstance(extra, dict):
            progress(step, total_or_loss, " ".join(f"{k} {v:.4g}" for k, v in extra.items()))
        else:
            progress(step, None, f"Newton step {step}, loss {total_or_loss:.6g}, "
                                 f"|g| {extra:.2e}")

    return report


def _run_pipeline(train, val, test, outdir, settings, *, device, say, stage, progress,
                  inputs, build=None) -> dict:
    """The stages; files are written into ``build`` (``outdir`` when None) and recorded under
    their names in ``outdir``, where they will be."""
    build = outdir if build is None else build
    build.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    stage(f"training ERM {settings.model_type} on {train.n_samples:,} rows")
    erm = api.train_model(train, model_type=settings.model_type, device=device, l2=settings.l2,
                          net_options=settings.net_options, progress=_train_progress(progress))
    save_model(erm, build / "erm.pt")
    erm.path = str(outdir / "erm.pt")
    timings["train"] = time.perf_counter() - t
    say(f"trained ERM {settings.model_type} in {timings['train']:.2f} s")

    t = time.perf_counter()
    stage(f"scoring {train.n_samples:,} rows")
    result = _score(erm, train, val, outdir, settings, device, progress, inputs, build)
    timings["score"] = time.perf_counter() - t
    n_pos = int((result.phi > 0).sum())
    say(f"scored {train.n_samples:,} rows in {timings['score']:.2f} s: {n_pos:,} with Φ > 0")

    if settings.strategy is None:
        settings = replace(settings, strategy=api.default_strategy(erm.arch, rule_given=False))
    models = [("erm", erm, outdir / "erm.pt")]
    details = {}
    verdict = None
    for name in _strategies(settings, erm.arch):
        t = time.perf_counter()
        cleaned_name = ("cleaned.parquet" if name == settings.strategy
                        else f"cleaned-{name}.parquet")
        cleaned_path = outdir / cleaned_name
        if name == "auto":
            stage("auto: choosing the cleaning by cross-validation on the clean set")
            model, info = _clean_auto(train, val, erm, result, outdir, build / cleaned_name,
                                      settings, device, progress, inputs)
            verdict = info["verdict"]
        else:
            stage(f"{name}: relabeling and retraining")
            model, info = _clean_by_rule(train, val, erm, result, outdir, build / cleaned_name,
                                         settings, name, device, progress)
        path = outdir / f"{name}.pt"
        save_model(model, build / path.name)
        timings[f"clean+retrain:{name}"] = time.perf_counter() - t
        details[name] = dict(info, cleaned=str(cleaned_path))
        say(_describe(name, info))
        models.append((name, model, path))
    if settings.compare:
        models += _honest_baselines(train, val, erm, outdir, build, settings, device, say,
                                    stage)

    stage(f"evaluating {len(models)} models")
    results = []
    for name, model, path in models:
        metrics = api.evaluate_model(model, test, device=device)
        val_metrics = api.evaluate_model(model, val, device=device)
        results.append({"name": name, "model": str(path), **metrics,
                        "val_loss": val_metrics["loss"]})
    payload = {"data": test.source, "models": results}
    if verdict is not None:
        payload["verdict"] = verdict
    write_json(build / "metrics.json", payload, default=str)
    write_json(build / "run.json", {
        "settings": asdict(settings), "train": train.source, "val": val.source,
        "test": test.source, "n_train": train.n_samples, "n_val": val.n_samples,
        "n_test": test.n_samples, "strategies": details, "timings": timings,
        "score_info": result.info, "verdict": verdict,
    }, default=str)
    return payload


def _score(erm, train, val, outdir, settings, device, progress, inputs, build):
    """Φ of every training row, written to DIR/scores.parquet (into ``build``); the result
    carries the class probabilities."""
    from rdia_cli.artifacts.scores import file_fingerprint, write_scores

    result = api.score_model(
        erm, train, val, device=device, solver=settings.solver, damping=settings.damping,
        seed=settings.seed,
        on_iter=lambda k, residual: progress(k, None, f"CG iteration {k}, residual "
                                                      f"{residual:.2e}"))
    result.probs = api.probabilities(erm, train, device=device)
    result.n_val = val.n_samples
    write_scores(build / "scores.parquet", row_id=train.row_id, labels=train.y,
                 classes=train.classes, result=result, probs=result.probs,
                 meta=dict(result.info, model=str(outdir / "erm.pt"),
                           model_fingerprint=file_fingerprint(build / "erm.pt"),
                           train_fingerprint=train.fingerprint(),
                           val_fingerprint=val.fingerprint(), n_train=train.n_samples,
                           n_val=val.n_samples, arch=erm.arch, **inputs), ids=train.ids())
    return result


def _strategies(settings: RunSettings, arch: str) -> list[str]:
    """The main strategy, then --also, then with --compare every other one that applies."""
    strategies = [settings.strategy] + [s for s in settings.also if s != settings.strategy]
    if settings.compare:
        strategies += [s for s in ("auto", "rdia", *BASELINES) if s not in strategies]
        if api.default_strategy(arch, rule_given=False) != "auto":  # no auto for this kind
            strategies = [s for s in strategies if s != "auto"]
    return strategies


def _clean_auto(train, val, erm, result, outdir, cleaned_path, settings, device, progress,
                inputs):
    """The auto strategy: its model, and what run.json records of it; the cleaned file gets
    the same record `rdia relabel --strategy auto` writes (so `rdia retrain` repeats the
    blend)."""
    from rdia_cli.artifacts.inputs import record_inputs
    from rdia_cli.cleaning.auto import auto_clean
    from rdia_cli.cleaning.files import auto_record, split_clean_rows, write_cleaned

    ac = auto_clean(train, val, erm, l2=settings.l2, seed=settings.seed, device=device,
                    progress=lambda done, total: progress(done, total, "fits"))
    cleaned, model = ac.cleaned, ac.model
    info = {"alpha": None, "fraction": ac.config.fraction, "action": ac.config.action,
            "weight": ac.config.weight, "clean_only_share": ac.clean_only_share,
            "n_relabeled": int(cleaned.extra["relabeled"].sum()),
            "n_removed": int(train.n_samples - (cleaned.extra["part"] == 0).sum()
                             if ac.config.weight > 0 else train.n_samples),
            "l2": model.meta["l2"], "cv": ac.cv, "verdict": ac.verdict}
    rows, clean_info = split_clean_rows(cleaned, include_clean=False, source=train,
                                        clean=val)
    clean_inputs = {key.replace("val_", "clean_", 1): value for key, value in inputs.items()
                    if key.startswith("val_")} or record_inputs(clean=(val.source, None))
    write_cleaned(rows, cleaned_path, auto_record(
        ac, source_fingerprint=train.fingerprint(), clean=val, clean_info=clean_info,
        clean_inputs=clean_inputs, scores=str(outdir / "scores.parquet")))
    return model, info


def _clean_by_rule(train, val, erm, result, outdir, cleaned_path, settings, name, device,
                   progress):
    """A rule-based strategy (α, fraction or α tuned on the clean set), retrained."""
    from rdia_cli.cleaning.files import rule_record, write_cleaned

    outcome = _relabel(train, result, erm, val, settings, name, device, progress)
    model = api.retrain_model(outcome.dataset, erm, device=device,
                              progress=_train_progress(progress))
    info = {"alpha": outcome.alpha, "phi_threshold": outcome.phi_threshold,
            "n_relabeled": outcome.cleaning.n_relabeled,
            "n_removed": outcome.cleaning.n_removed, "sweep": outcome.sweep}
    write_cleaned(outcome.dataset, cleaned_path, rule_record(
        outcome.cleaning, strategy=name, targets=settings.targets, alpha=outcome.alpha,
        phi_threshold=outcome.phi_threshold, fraction=settings.fraction,
        paper_factor=result.paper_factor, source_fingerprint=train.fingerprint(),
        scores=str(outdir / "scores.parquet"), scores_fingerprint=train.fingerprint(),
        sweep=outcome.sweep))
    return model, info


def _honest_baselines(train, val, erm, outdir, build, settings, device, say, stage) -> list:
    """--compare: the clean set alone, train + clean set, and cleanlab (when installed), for
    model kinds that have them."""
    from rdia_cli.cleaning import baselines

    if api.default_strategy(erm.arch, rule_given=False) != "auto":
        return []
    extra = [("clean-only", lambda: baselines.clean_only(val, erm, device=device)),
             ("train+val", lambda: baselines.train_plus_val(train, val, erm, device=device))]
    if baselines.cleanlab_available():
        extra.append(("cleanlab", lambda: baselines.cleanlab_drop(
            train, erm, seed=settings.seed, device=device)[0]))
    else:
        say("cleanlab baseline skipped: cleanlab is not installed (pip install cleanlab)")
    models = []
    for name, make in extra:
        stage(f"baseline {name}")
        model = make()
        path = outdir / f"{name}.pt"
        save_model(model, build / path.name)
        models.append((name, model, path))
    return models


def _describe(name: str, info: dict) -> str:
    if name == "auto":
        return (f"auto: {info['verdict']['chosen']} ({info['n_relabeled']:,} relabeled, "
                f"{info['n_removed']:,} training rows removed, validation rows added)")
    alpha = info.get("alpha")
    return (f"{name}: α {'none' if alpha is None else format(alpha, '.4g')} (paper's scale), "
            f"{info['n_relabeled']:,} relabeled, {info['n_removed']:,} removed")


def _relabel(train, result, erm, val, settings: RunSettings, strategy: str, device,
             progress):
    if settings.fraction is not None:
        return api.relabel_dataset(train, result, strategy=strategy,
                                   fraction=settings.fraction, targets=settings.targets,
                                   seed=settings.seed)
    if settings.alpha == "auto":
        return api.auto_alpha(train, result, erm, val, strategy=strategy,
                              targets=settings.targets, seed=settings.seed, device=device,
                              progress=lambda done, total: progress(done, total, "α candidates"))
    if settings.alpha is None:
        raise InputError("give `alpha` A, `alpha` auto or `fraction` Q.")
    return api.relabel_dataset(train, result, strategy=strategy, alpha=float(settings.alpha),
                               targets=settings.targets, seed=settings.seed)
