"""``--strategy auto``: cross-validated choice among cleanings of the training set, the
training set plus the clean set, the clean set alone and blends (see ``clean``).

Modules, each importing only those above it: ``config`` (a candidate and the training set it
builds), ``blend`` (blends with "clean set alone"), ``rules`` (the decision rules), ``cv`` (the
K-fold machinery), ``verdict`` (what was chosen and why), ``clean`` (``auto_clean``)."""

from rdia_cli.cleaning.auto.blend import BLEND_GRID, blend_models
from rdia_cli.cleaning.auto.clean import AutoCleanResult, auto_clean, check_auto
from rdia_cli.cleaning.auto.config import (
    CLEAN_ONLY,
    CLEANED,
    UNCLEANED,
    Config,
    build_training_set,
)
from rdia_cli.cleaning.auto.cv import (
    CV_TOL,
    UNION_FOLDS,
    clean_model_scores,
    out_of_fold_probabilities,
    out_of_fold_scores,
)
from rdia_cli.cleaning.auto.rules import (
    GUARD_SE,
    NOISE_P_LABELS,
    NOISE_Z,
    NOISE_Z_LOW,
    REG_SE,
    candidates,
    noise_evidence,
    noise_tests_fired,
)
from rdia_cli.cleaning.auto.verdict import SMALL_CLEAN, Verdict, VerdictRecord, verdict_lines

__all__ = [
    "BLEND_GRID", "CLEAN_ONLY", "CLEANED", "CV_TOL", "GUARD_SE", "NOISE_P_LABELS", "NOISE_Z",
    "NOISE_Z_LOW", "REG_SE", "SMALL_CLEAN", "UNCLEANED", "UNION_FOLDS", "AutoCleanResult",
    "Config", "Verdict", "VerdictRecord", "auto_clean", "blend_models", "build_training_set",
    "candidates", "check_auto", "clean_model_scores", "noise_evidence", "noise_tests_fired",
    "out_of_fold_probabilities", "out_of_fold_scores", "verdict_lines",
]
