"""``AutoPolicy``: every threshold and the candidate grid of ``--strategy auto``, as one frozen,
validated value saved with the output (the verdict's ``policy`` and ``policy_digest``).

``DEFAULT_POLICY`` is what ``auto_clean`` uses unless given another; a variant is
``dataclasses.replace(DEFAULT_POLICY, guard_se=2.0)``. The final pick among the training-based
candidates is the callable ``choose`` (see ``choice``); the JSON keeps its name from
``CHOICE_RULES``, so only a registered rule survives ``from_json``. Where each number acts:

* candidates: ``fractions`` × ``actions`` × ``rankers`` for each ω in ``weights`` (ω = 0: the
  clean set alone), plus "train + clean set" for each ω > 0 and the clean set alone;
* folds: ``folds``-fold CV over the clean set, at least ``small_clean_folds`` when it has fewer
  than ``small_clean_rows`` rows; ``oof_folds`` for the out-of-fold ranking and the noise test;
  ``union_folds`` for λ of "train + clean set" over all rows when no noise is seen;
* noise test (``rules.noise_evidence``): ``noise_z``, ``noise_z_low``, ``noise_p_labels``,
  ``noise_p_pairs``;
* the pick: ``choose`` with ``guard_se`` and ``tie_se``; the clean set alone without a sign
  of noise only on ``clean_only_se``; with noise, the blend share from ``blend_shares``: the
  smallest within ``blend_se`` standard errors of the lowest CV loss, all of the model only
  by ``guard_se``;
* λ line search: ×``reg_step`` up to ``reg_max_steps`` times, each step on ``reg_se`` standard
  errors; down over all rows on ``reg_down_se`` (None: never down);
* race: every candidate runs on the first ``race_first_folds`` of the folds, then the best
  ``race_keep`` of them (at least ``race_keep_min``) and the anchors; after each fold, one that
  the best beats by ``race_drop_se`` standard errors stops (None: never);
* fits: ``cv_tol`` for CV fits over the clean set, ``union_tol`` for those of the all-row CV
  (its standard errors are small, so its fits must be closer), ``fit_tol`` and ``max_iter``
  for the final one,
  ``clean_model_tol`` for the clean-set model of the ``clean`` ranker;
* learning-curve correction of the clean set alone: ``curve_repeats`` refits on
  ``curve_share`` of a fold's rows, skipped below ``curve_min_rows`` rows;
* verdict text: ``small_clean_warning`` rows, ``clean_only_close`` (CV loss margin)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, fields
from typing import Any

from rdia_cli.cleaning.auto.choice import CHOICE_RULES, ChoiceRule, parsimonious_choice
from rdia_cli.errors import InputError

ACTIONS = ("drop", "hard")
RANKERS = ("phi", "clean", "oof")


@dataclass(frozen=True)
class AutoPolicy:
    """The auto strategy's thresholds and candidate grid (module docstring: where each acts)."""

    # candidate grid
    fractions: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8)
    weights: tuple[float, ...] = (0.0, 1.0)
    actions: tuple[str, ...] = ACTIONS
    rankers: tuple[str, ...] = RANKERS
    blend_shares: tuple[float, ...] = tuple(i / 10 for i in range(11))
    # folds
    folds: int = 5
    small_clean_rows: int = 100
    small_clean_folds: int = 10
    oof_folds: int = 5
    union_folds: int = 5
    # noise test
    noise_z: float = 1.645  # training rows fit worse by this many standard errors (one-sided 5%)
    noise_z_low: float = 3.0  # … or better by this many (clean rows fit worse: mostly flipped)
    noise_p_labels: float = 0.01  # class proportions of train vs clean labels, chi-square p
    noise_p_pairs: float = 0.01  # one label looking like another class, Bonferroni-adjusted p
    # the pick
    guard_se: float = 1.0  # standard errors by which a cleaning must beat "train + clean set"
    #                        (and the clean set alone every blend, to take the whole model)
    tie_se: float = 0.5  # cleanings this close to the lowest CV loss are tied (``choose``)
    blend_se: float = 0.0  # the blend's share: the smallest within this many SE of the lowest
    clean_only_se: float = 2.0  # … and the clean set alone the pick, without a sign of noise
    choose: ChoiceRule = parsimonious_choice
    # λ line search
    reg_step: float = 4.0
    reg_max_steps: int = 6
    reg_se: float = 1.0
    reg_down_se: float | None = 2.0
    # race over the folds
    race_first_folds: float = 0.4
    race_keep: float = 1 / 3
    race_keep_min: int = 12
    race_drop_se: float | None = 3.0  # after each fold, drop who the best beats by this many
    # fits
    cv_tol: float = 1e-4
    union_tol: float = 1e-5  # the all-row CV: at 1e-4 a λ step turned on how far fits ran
    fit_tol: float = 1e-8
    max_iter: int = 100
    clean_model_tol: float = 1e-6
    # learning-curve correction of "clean set alone"
    curve_share: float = 0.75
    curve_repeats: int = 2
    curve_min_rows: int = 4
    # verdict text
    small_clean_warning: int = 50
    clean_only_close: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("fractions", "weights", "blend_shares"):
            object.__setattr__(self, name, tuple(float(v) for v in _seq(self, name)))
        for name in ("actions", "rankers"):
            object.__setattr__(self, name, tuple(str(v) for v in _seq(self, name)))
        _check_grid(self)
        _check_numbers(self)
        if not callable(self.choose):
            raise InputError(f"AutoPolicy `choose` must be a callable (configs, row_loss, policy) "
                             f"-> index, not {self.choose!r}; name one of {sorted(CHOICE_RULES)} "
                             "or pass a function.")

    @property
    def choose_name(self) -> str:
        """``choose``'s name in ``CHOICE_RULES``, else its module and qualified name."""
        for name, rule in CHOICE_RULES.items():
            if rule is self.choose:
                return name
        module = getattr(self.choose, "__module__", "?")
        return f"{module}.{getattr(self.choose, '__qualname__', '?')}"

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON values (tuples as lists, ``choose`` as ``choose_name``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = self.choose_name if f.name == "choose" else (
                list(v) if isinstance(v, tuple) else v)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AutoPolicy:
        """The policy ``to_json`` wrote; fields it lacks take their defaults."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"AutoPolicy has no field `{unknown[0]}`; its fields are "
                             f"{sorted(known)}.")
        kw = dict(data)
        if "choose" in kw and isinstance(kw["choose"], str):
            if kw["choose"] not in CHOICE_RULES:
                raise InputError(f"AutoPolicy `choose` names `{kw['choose']}`, not a registered "
                                 f"choice rule; register it in CHOICE_RULES (known: "
                                 f"{sorted(CHOICE_RULES)}).")
            kw["choose"] = CHOICE_RULES[kw["choose"]]
        return cls(**kw)

    def digest(self) -> str:
        """A short stable hash of ``to_json`` (12 hex digits of its SHA-256)."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def folds_for(self, n_clean: int) -> int:
        """The number of CV folds over a clean set of ``n_clean`` rows."""
        return max(self.folds, self.small_clean_folds) if n_clean < self.small_clean_rows \
            else self.folds

    def race_kept(self, n_candidates: int) -> int:
        """How many candidates race on after the first folds (besides the anchors)."""
        share = math.floor(n_candidates * self.race_keep + 1e-9)
        return min(n_candidates, max(self.race_keep_min, share))


def _seq(policy: AutoPolicy, name: str) -> tuple:
    v = getattr(policy, name)
    if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
        raise InputError(f"AutoPolicy `{name}` must be a sequence, not {v!r}.")
    return tuple(v)


def _fail(name: str, rule: str, value: Any) -> None:
    raise InputError(f"AutoPolicy `{name}` must be {rule}, not {value!r}.")


def _check_grid(p: AutoPolicy) -> None:
    if not p.fractions or not all(0 < f <= 1 for f in p.fractions):
        _fail("fractions", "a non-empty list of shares in (0, 1]", p.fractions)
    if not all(math.isfinite(w) and w >= 0 for w in p.weights):
        _fail("weights", "a list of finite weights ≥ 0", p.weights)
    if not p.actions or not set(p.actions) <= set(ACTIONS):
        _fail("actions", f"a non-empty list of {list(ACTIONS)}", p.actions)
    if not p.rankers or not set(p.rankers) <= set(RANKERS):
        _fail("rankers", f"a non-empty list of {list(RANKERS)}", p.rankers)
    s = p.blend_shares
    if not s or not all(0 <= v <= 1 for v in s) or list(s) != sorted(set(s)):
        _fail("blend_shares", "a non-empty increasing list of shares in [0, 1]", s)


# name → (check, rule as the message says it)
_RULES: dict[str, tuple[Any, str]] = {
    "folds": (lambda v: _int(v) and v >= 2, "an integer ≥ 2"),
    "small_clean_rows": (lambda v: _int(v) and v >= 0, "an integer ≥ 0"),
    "small_clean_folds": (lambda v: _int(v) and v >= 2, "an integer ≥ 2"),
    "oof_folds": (lambda v: _int(v) and v >= 2, "an integer ≥ 2"),
    "union_folds": (lambda v: _int(v) and v >= 2, "an integer ≥ 2"),
    "noise_z": (lambda v: _pos(v), "a number > 0"),
    "noise_z_low": (lambda v: _pos(v), "a number > 0"),
    "noise_p_labels": (lambda v: _num(v) and 0 < v < 1, "a p-value in (0, 1)"),
    "noise_p_pairs": (lambda v: _num(v) and 0 < v < 1, "a p-value in (0, 1)"),
    "guard_se": (lambda v: _num(v) and v >= 0, "a number ≥ 0"),
    "tie_se": (lambda v: _num(v) and v >= 0, "a number ≥ 0"),
    "clean_only_se": (lambda v: _num(v) and v >= 0, "a number ≥ 0"),
    "blend_se": (lambda v: _num(v) and v >= 0, "a number ≥ 0"),
    "reg_step": (lambda v: _num(v) and v > 1, "a factor > 1"),
    "reg_max_steps": (lambda v: _int(v) and v >= 0, "an integer ≥ 0"),
    "reg_se": (lambda v: _num(v) and v >= 0, "a number ≥ 0"),
    "reg_down_se": (lambda v: v is None or (_num(v) and v >= 0), "a number ≥ 0 or None"),
    "race_first_folds": (lambda v: _num(v) and 0 < v <= 1, "a share in (0, 1]"),
    "race_keep": (lambda v: _num(v) and 0 < v <= 1, "a share in (0, 1]"),
    "race_keep_min": (lambda v: _int(v) and v >= 1, "an integer ≥ 1"),
    "race_drop_se": (lambda v: v is None or (_num(v) and v > 0), "a number > 0 or None"),
    "cv_tol": (lambda v: _pos(v), "a number > 0"),
    "union_tol": (lambda v: _pos(v), "a number > 0"),
    "fit_tol": (lambda v: _pos(v), "a number > 0"),
    "max_iter": (lambda v: _int(v) and v >= 1, "an integer ≥ 1"),
    "clean_model_tol": (lambda v: _pos(v), "a number > 0"),
    "curve_share": (lambda v: _num(v) and 0 < v < 1, "a share in (0, 1)"),
    "curve_repeats": (lambda v: _int(v) and v >= 0, "an integer ≥ 0"),
    "curve_min_rows": (lambda v: _int(v) and v >= 2, "an integer ≥ 2"),
    "small_clean_warning": (lambda v: _int(v) and v >= 0, "an integer ≥ 0"),
    "clean_only_close": (lambda v: _num(v) and v >= 0, "a number ≥ 0"),
}


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _pos(v: Any) -> bool:
    return _num(v) and v > 0


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_numbers(p: AutoPolicy) -> None:
    for name, (ok, rule) in _RULES.items():
        if not ok(getattr(p, name)):
            _fail(name, rule, getattr(p, name))


DEFAULT_POLICY = AutoPolicy()
