"""``--strategy auto``: cross-validated choice among cleanings of the training set, the
training set plus the clean set, the clean set alone and blends (see ``clean``), under an
``AutoPolicy`` (every threshold and the candidate grid, saved with the verdict).

Modules, each importing only those above it: ``config`` (a candidate and the training set it
builds), ``choice`` (the final pick's rules), ``policy`` (``AutoPolicy``), ``blend`` (blends
with "clean set alone"), ``rules`` (the decision rules), ``cv`` (the K-fold machinery),
``verdict`` (what was chosen and why), ``clean`` (``auto_clean``)."""

from rdia_cli.cleaning.auto.blend import blend_cv, blend_models, blend_probs, blend_share
from rdia_cli.cleaning.auto.choice import (
    CHOICE_RULES,
    beats,
    guarded_choice,
    lowest_mean,
    parsimonious_choice,
)
from rdia_cli.cleaning.auto.clean import AutoCleanResult, auto_clean, check_auto, fit_from
from rdia_cli.cleaning.auto.config import (
    CLEAN_ONLY,
    CLEANED,
    UNCLEANED,
    Config,
    build_training_set,
)
from rdia_cli.cleaning.auto.cv import (
    clean_model_scores,
    out_of_fold_probabilities,
    out_of_fold_scores,
)
from rdia_cli.cleaning.auto.policy import DEFAULT_POLICY, AutoPolicy
from rdia_cli.cleaning.auto.rules import (
    candidates,
    final_share,
    honest_share,
    noise_evidence,
    noise_tests_fired,
    reg_line_search,
)
from rdia_cli.cleaning.auto.verdict import Verdict, VerdictRecord, verdict_lines

# DEFAULT_POLICY's values under the names code outside this package reads
BLEND_GRID = DEFAULT_POLICY.blend_shares
CV_TOL = DEFAULT_POLICY.cv_tol
GUARD_SE = DEFAULT_POLICY.guard_se
NOISE_P_LABELS = DEFAULT_POLICY.noise_p_labels
NOISE_Z = DEFAULT_POLICY.noise_z
NOISE_Z_LOW = DEFAULT_POLICY.noise_z_low
REG_SE = DEFAULT_POLICY.reg_se
SMALL_CLEAN = DEFAULT_POLICY.small_clean_warning
UNION_FOLDS = DEFAULT_POLICY.union_folds

__all__ = [
    "BLEND_GRID", "CHOICE_RULES", "CLEAN_ONLY", "CLEANED", "CV_TOL", "DEFAULT_POLICY", "GUARD_SE",
    "NOISE_P_LABELS", "NOISE_Z", "NOISE_Z_LOW", "REG_SE", "SMALL_CLEAN", "UNCLEANED",
    "UNION_FOLDS", "AutoCleanResult", "AutoPolicy", "Config", "Verdict", "VerdictRecord",
    "auto_clean", "beats", "blend_cv", "blend_models", "blend_probs", "blend_share",
    "build_training_set", "candidates", "check_auto", "clean_model_scores", "final_share",
    "fit_from",
    "guarded_choice", "honest_share", "lowest_mean", "noise_evidence", "noise_tests_fired",
    "out_of_fold_probabilities", "out_of_fold_scores", "parsimonious_choice", "reg_line_search",
    "verdict_lines",
]
