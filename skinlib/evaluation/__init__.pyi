"""Metrics the field uses (ROC AUC with an interval, balanced accuracy, sensitivity,
specificity, calibration error, screening operating points), calibration, and result tables.
"""

from ._calibration import (
    calibrate_predictions,
    calibrate_run,
    fit_temperature,
    fit_temperature_shift,
    apply_temperature,
    EPSILON,
)
from ._metrics import (
    evaluate,
    choose_threshold,
    check_predictions,
    check_probabilities,
    expected_calibration_error,
    operating_points,
)
from ._results import (
    compare,
    conclusion,
    run_metrics,
    summarise,
    markdown_table,
    out_of_fold,
    outcome_examples,
    METRICS,
)

__all__ = [
    "calibrate_predictions",
    "calibrate_run",
    "fit_temperature",
    "fit_temperature_shift",
    "apply_temperature",
    "EPSILON",
    "evaluate",
    "choose_threshold",
    "check_predictions",
    "check_probabilities",
    "expected_calibration_error",
    "operating_points",
    "compare",
    "conclusion",
    "run_metrics",
    "summarise",
    "markdown_table",
    "out_of_fold",
    "outcome_examples",
    "METRICS",
]
