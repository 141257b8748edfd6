"""Every figure of skinlib, built on a matplotlib ``Figure`` without pyplot and returned."""

from ._audit import (
    plot_duplicates,
    plot_pairs,
    plot_label_issues,
    plot_quality_issues,
)
from ._errors import (
    plot_error_analysis,
    plot_diagnoses,
    plot_subgroups,
    plot_operating_points,
)
from ._plots import (
    show_image,
    thumbnail,
    plot_history,
    plot_roc,
    plot_pr,
    plot_calibration,
    plot_confusion,
    plot_confusion_grid,
    plot_samples,
    plot_stages,
    plot_gradcam,
    save_figure,
)
from ._text import display_text

__all__ = [
    "plot_pairs",
    "plot_label_issues",
    "plot_quality_issues",
    "plot_error_analysis",
    "plot_diagnoses",
    "plot_subgroups",
    "plot_operating_points",
    "show_image",
    "thumbnail",
    "plot_history",
    "plot_roc",
    "plot_pr",
    "plot_calibration",
    "plot_confusion",
    "plot_confusion_grid",
    "plot_samples",
    "plot_stages",
    "plot_duplicates",
    "plot_gradcam",
    "save_figure",
    "display_text",
]
