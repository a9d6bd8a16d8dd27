"""The verdict of the auto strategy: what was chosen and why, as structured fields (``Verdict``),
the dict the output files keep (``Verdict.record``, ``VerdictRecord``) and the plain-language
lines ``rdia relabel`` and ``rdia run`` print (``verdict_lines``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from rdia_cli.cleaning.auto.config import CLEAN_ONLY, UNCLEANED, Config
from rdia_cli.cleaning.auto.policy import DEFAULT_POLICY, AutoPolicy
from rdia_cli.cleaning.auto.rules import noise_tests_fired, standard_errors


@dataclass(frozen=True)
class Verdict:
    """What ``auto_clean`` chose, from the cross-validated losses on the clean set."""
    chosen: str  # the final model, as displayed: a Config's label, or the blend of two
    kind: str  # Config.kind of the chosen config: CLEAN_ONLY, UNCLEANED or CLEANED (for a
    #            blend, of its training-based part)
    reg: float  # λ multiplier of the chosen config (λ = reg / rows)
    clean_only_share: float  # share of "clean set alone" in the final model (0 none, 1 all)
    clean_only_held_back: bool  # no noise seen: the clean set alone looked better, not by enough
    cv_loss_chosen: float  # mean out-of-fold loss of the clean rows under the final model
    cv_loss_erm: float  # … under ERM (the training rows alone)
    cv_loss_clean_only: float  # … under "clean set alone" at λ = 1/rows (NaN: not a candidate)
    cv_loss_train_plus_val: float | None  # … under "train + clean set" at λ = 1/rows
    n_folds: int
    n_clean: int
    lambda_rows: int  # the rows whose CV chose λ: the clean rows, or every row (no noise seen)
    noise: dict[str, Any]  # noise_evidence's result
    l2: float  # λ of the final model
    decided_by: tuple[str, ...] = ()  # which rule decided each part, in words (``decisions``)
    policy: AutoPolicy = DEFAULT_POLICY  # the thresholds and grid that chose it

    @property
    def noisy(self) -> bool:
        """Whether the training labels showed noise (the noise test fired)."""
        return bool(self.noise.get("noisy"))

    @property
    def blended(self) -> bool:
        return 0 < self.clean_only_share < 1

    @property
    def lambda_over_all_rows(self) -> bool:
        """Whether λ was cross-validated over every training and clean row."""
        return self.lambda_rows > self.n_clean

    @property
    def small_clean_set(self) -> bool:
        return self.n_clean < self.policy.small_clean_warning

    def record(self) -> dict[str, Any]:
        """The verdict as the files keep it (run.json, metrics.json, the cleaned file): every
        field but ``kind`` and ``reg``, in field order, the policy as its JSON followed by
        ``policy_digest``."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_KEPT}
        out["decided_by"] = list(self.decided_by)  # in its place: before the policy
        out["policy"] = self.policy.to_json()
        out["policy_digest"] = self.policy.digest()
        return out


_NOT_KEPT = ("kind", "reg")  # derived from ``chosen``; files from before them lack them


class VerdictRecord(dict):
    """``Verdict.record()``, the dict written to files (``AutoCleanResult.verdict``), holding the
    ``Verdict`` it was made from as ``fields``: ``verdict_lines`` renders those."""

    def __init__(self, fields: Verdict):
        super().__init__(fields.record())
        self.fields = fields


def chosen_label(config: Config, alone: Config | None, share: float) -> str:
    """The final model as displayed: ``config``'s label, or its blend with ``alone``."""
    if 0.0 < share < 1.0:
        return f"{1 - share:.0%} {config.label} + {share:.0%} {alone.label}"
    return config.label


def verdict_lines(v: Verdict | VerdictRecord) -> list[str]:
    """Plain-language verdict from the cross-validated losses (validation data only), with the
    thresholds of the policy that chose it."""
    if isinstance(v, VerdictRecord):
        v = v.fields
    if not isinstance(v, Verdict):
        raise TypeError(f"verdict_lines renders a Verdict (AutoCleanResult.verdict.fields), not "
                        f"{type(v).__name__}")
    lines = [
        f"chosen by {v.n_folds}-fold cross-validation on the clean set: {v.chosen} "
        f"(CV loss {v.cv_loss_chosen:.4f})",
        f"ERM on the training data alone: CV loss {v.cv_loss_erm:.4f}; clean set alone: "
        f"{v.cv_loss_clean_only:.4f}"
        + (f"; train + clean set, uncleaned: {v.cv_loss_train_plus_val:.4f}"
           if v.cv_loss_train_plus_val is not None else ""),
    ]
    if v.noise:
        lines.append(_noise_line(v))
    if v.decided_by:
        lines.append("decided by: " + "; ".join(v.decided_by) + ".")
    if v.small_clean_set:
        lines.append(f"warning: the clean set has {v.n_clean} rows; with fewer than "
                     f"{v.policy.small_clean_warning} "
                     "the choice is close to a coin toss between candidates a few percent apart "
                     "(measured with 27-31 clean rows: over 20 splits auto was up to 24% worse "
                     "than the best baseline). Label more clean rows if you can.")
    gain = v.cv_loss_erm - v.cv_loss_chosen
    alone = v.kind == CLEAN_ONLY
    share = v.clean_only_share
    if v.blended:
        lines.append(f"the model averages the parameters of two fits: {share:.0%} of the one on "
                     f"the clean set alone, {1 - share:.0%} of the one on the training rows + "
                     "clean set (the share chosen by the same cross-validation).")
    if alone:
        lines.append("the noisy training rows do not help: the clean set alone looks best (its "
                     "CV loss beat the model trained on them and every blend of the two tried). "
                     "Consider labeling more clean data instead of cleaning these rows.")
    elif v.clean_only_held_back and v.noisy:
        lines.append("the clean set alone had the lowest CV loss, but by less than "
                     f"{standard_errors(v.policy.guard_se)} over the pick: with "
                     f"{v.n_clean} clean rows its estimate is too uncertain to give it the "
                     "whole model.")
    elif v.clean_only_held_back:
        lines.append("the clean set alone had a lower CV loss, but by less than "
                     f"{v.policy.clean_only_se:g} "
                     "standard errors; with no sign of label noise the training rows are kept "
                     "(if you know the labels are noisy, `rdia run --compare` also writes the "
                     "model fitted on the clean set alone, clean-only.pt).")
    elif v.cv_loss_clean_only <= v.cv_loss_chosen + v.policy.clean_only_close:
        lines.append("warning: training on the clean set alone looks about as good; the noisy "
                     "rows add little.")
    if gain > 0:
        what = ("training on the clean set alone" if alone
                else "adding the clean set to the training data" if v.kind == UNCLEANED
                else "cleaning")
        if share == 0 and v.reg != 1 and not alone:  # much of the gain may be the tuned λ's
            what += f", with λ × {v.reg:g} (λ = {v.reg:g}/rows),"
        lines.append(f"{what} helped: CV loss {gain:.4f} below ERM "
                     f"({gain / max(v.cv_loss_erm, 1e-12):.0%}).")
    else:
        lines.append("cleaning did not beat ERM on the validation folds.")
    return lines


def _noise_line(v: Verdict) -> str:
    """What the noise test saw, and what followed from it."""
    noise, policy = v.noise, v.policy
    seen = (f"out-of-fold loss {noise['train_loss']:.4f} on the training rows, "
            f"{noise['val_loss']:.4f} on the clean rows under the same models")
    fired = noise.get("fired")
    if fired is None:  # a noise record from before the label test: the loss test alone
        fired = noise_tests_fired({"z": noise["z"]}, policy)
    labels_p = noise.get("labels_p")
    props = ("" if labels_p is None or math.isnan(labels_p) else
             f"; class proportions of the training and clean labels: chi-square p = "
             f"{labels_p:.2g}, noise needs p < {policy.noise_p_labels:g}")
    pairs_p = noise.get("pairs_p")
    if pairs_p is not None and not math.isnan(pairs_p):
        props += (f"; the training rows of any one label against the clean rows of it: "
                  f"p = {pairs_p:.2g} (Bonferroni), noise needs p < {policy.noise_p_pairs:g}")
    z = noise["z"]
    if not fired:
        lam = (f"; λ was chosen by {policy.union_folds}-fold cross-validation over all "
               f"{v.lambda_rows} training and clean rows" if v.lambda_over_all_rows else "")
        return (f"no sign of label noise ({seen}, {z:+.1f} standard errors apart, noise needs "
                f"≥ +{policy.noise_z:g} or ≤ −{policy.noise_z_low:g}{props}): nothing was "
                f"cleaned{lam}.")
    why = []
    if "loss" in fired:
        why.append(f"the training rows fit worse: {seen} ({z:+.1f} standard errors)")
    if "loss-low" in fired:
        why.append(f"the clean rows fit far worse — most training labels look flipped: "
                   f"{seen} ({z:+.1f} standard errors)")
    if "labels" in fired:
        why.append(f"the class proportions of the training labels differ from the clean "
                   f"labels' (chi-square p = {labels_p:.2g}; a one-directional flip, or "
                   "a shift of the classes' shares)")
    if "pairs" in fired:
        k, j = noise.get("pair_classes") or noise.get("pair") or ("?", "?")
        why.append(f"the training rows labelled {k} look like class {j} more than the clean "
                   f"rows labelled {k} do (p = {pairs_p:.2g} after Bonferroni over the labels; "
                   f"rows of class {j} labelled {k})")
    return "the training labels look noisy: " + "; ".join(why) + "."
