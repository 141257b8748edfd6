"""skinlib's public names, by subpackage: read by ``lazy_loader`` (``__init__.py``) and by editors."""

from . import audit, config, data, evaluation, models, plotting, preprocessing, runs
from . import plotting as plots  # the notebooks' name for the figures

# The errors: one family, each a ValueError
from ._shared.errors import FoldRunMismatch, SkinlibError

# Datasets, splits and leakage (no TensorFlow)
from .data import (
    DatasetError,
    LAYOUTS,
    check_leakage,
    class_weights,
    detect_layouts,
    drop_leaked,
    load_dataset,
    make_sample,
    merge_groups,
    merge_pairs,
    skipped_files,
    split_dataset,
    undersample,
)

# From image files to model inputs
from .preprocessing import (
    ImageReadError,
    Preprocess,
    PreprocessResult,
    crop_to_lesion,
    filters,
    lesion_box,
    preprocess_dataset,
    read_image,
)

# One run's settings and the run folder
from .config import RunConfig, sample_dir
from .runs import Run, RunFolderError, load_predictions, load_run

# Models, training, cross-validation, prediction, explanations (TensorFlow on first use)
from .models import (
    assign_folds,
    build_model,
    build_v1,
    build_v2,
    build_v3,
    check_metadata_columns,
    cross_validate,
    encode_metadata,
    fit_metadata,
    gradcam,
    occlusion_map,
    predict,
    predict_arrays,
    scale_pixels,
    train,
)

# Metrics, calibration, result tables
from .evaluation import (
    apply_temperature,
    calibrate_run,
    choose_threshold,
    compare,
    conclusion,
    evaluate,
    expected_calibration_error,
    fit_temperature,
    fit_temperature_shift,
    operating_points,
)

# The dataset audit
from .audit import (
    DatasetAudit,
    analyse_errors,
    audit_dataset,
    diagnosis_metrics,
    find_duplicates,
    find_label_issues,
    find_quality_issues,
    find_same_lesion,
    subgroup_metrics,
    write_audit_report,
)

__version__: str

__all__ = [
    "DatasetAudit",
    "DatasetError",
    "FoldRunMismatch",
    "ImageReadError",
    "LAYOUTS",
    "Preprocess",
    "PreprocessResult",
    "Run",
    "RunConfig",
    "RunFolderError",
    "SkinlibError",
    "analyse_errors",
    "apply_temperature",
    "assign_folds",
    "audit",
    "audit_dataset",
    "build_model",
    "build_v1",
    "build_v2",
    "build_v3",
    "calibrate_run",
    "check_leakage",
    "check_metadata_columns",
    "choose_threshold",
    "class_weights",
    "compare",
    "conclusion",
    "config",
    "crop_to_lesion",
    "cross_validate",
    "data",
    "detect_layouts",
    "diagnosis_metrics",
    "drop_leaked",
    "encode_metadata",
    "evaluate",
    "evaluation",
    "expected_calibration_error",
    "filters",
    "find_duplicates",
    "find_label_issues",
    "find_quality_issues",
    "find_same_lesion",
    "fit_metadata",
    "fit_temperature",
    "fit_temperature_shift",
    "gradcam",
    "lesion_box",
    "load_dataset",
    "load_predictions",
    "load_run",
    "make_sample",
    "merge_groups",
    "merge_pairs",
    "models",
    "occlusion_map",
    "operating_points",
    "plots",
    "plotting",
    "predict",
    "predict_arrays",
    "preprocess_dataset",
    "preprocessing",
    "read_image",
    "runs",
    "sample_dir",
    "scale_pixels",
    "skipped_files",
    "split_dataset",
    "subgroup_metrics",
    "train",
    "undersample",
    "write_audit_report",
]
