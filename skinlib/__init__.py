"""skinlib: benign vs malignant dermoscopy classification with small CNNs, honestly measured.

Public API::

    load_dataset, split_dataset, undersample, class_weights, skipped_files   # datasets
    LAYOUTS, detect_layouts                                                 # the layouts load_dataset reads
    find_duplicates                                                         # duplicate images
    find_same_lesion, merge_pairs                                           # other photographs of one lesion
    merge_groups, check_leakage, drop_leaked                                # leakage-proof splits
    cross_validate, assign_folds                                            # grouped k-fold cross-validation
    Preprocess, preprocess_dataset, read_image                              # preprocessing
    filters (to_gray, resize, seed_contour, bilateral, remove_hair,
             color_constancy)                                               # image filters
    lesion_box, crop_to_lesion                                              # contour cropping
    make_sample                                                             # synthetic sample data
    RunConfig                                                               # one run's settings
    fit_metadata, encode_metadata, check_metadata_columns                   # patient metadata as inputs
    build_model, build_v1, build_v2, build_v3                               # the models
    Run, RunFolderError, load_run, load_predictions                         # run folders
    train, predict, predict_arrays, scale_pixels                            # training and prediction
    evaluate, choose_threshold, expected_calibration_error                  # metrics
    compare, conclusion                                                     # result tables
    analyse_errors, diagnosis_metrics, subgroup_metrics, operating_points   # what one AUC hides
    find_label_issues                                                       # likely label errors
    find_quality_issues                                                     # dark, blurry, ... images
    audit_dataset, DatasetAudit, write_audit_report                         # the whole audit, as an HTML report
    fit_temperature(_shift), apply_temperature, calibrate_run               # calibration
    gradcam, occlusion_map                                                  # where a model looks

TensorFlow loads on first use of the model functions, not on ``import skinlib``.
"""

from skinlib import filters
from skinlib.config import RunConfig, sample_dir
from skinlib.crop import crop_to_lesion, lesion_box
from skinlib.calibration import apply_temperature, calibrate_run, fit_temperature, fit_temperature_shift
from skinlib.evaluate import choose_threshold, evaluate, expected_calibration_error
from skinlib.datasets import class_weights, load_dataset, split_dataset, undersample
from skinlib.layouts import LAYOUTS, detect_layouts
from skinlib.reading import DatasetError, skipped_files
from skinlib.duplicates import find_duplicates
from skinlib.same_lesion import find_same_lesion, merge_pairs
from skinlib.error_analysis import analyse_errors, diagnosis_metrics, operating_points, subgroup_metrics
from skinlib.audit import DatasetAudit, audit_dataset
from skinlib.report import write_audit_report
from skinlib.label_issues import find_label_issues
from skinlib.leakage import check_leakage, drop_leaked, merge_groups
from skinlib.metadata import check_metadata_columns, encode_metadata, fit_metadata
from skinlib.images import ImageReadError, read_image
from skinlib.preprocess import Preprocess, PreprocessResult, preprocess_dataset
from skinlib.quality import find_quality_issues
from skinlib.results import compare, conclusion
from skinlib.runs import Run, RunFolderError, load_predictions, load_run
from skinlib.sample import make_sample

__version__ = "0.1.0"

# Keras and TensorFlow take seconds to import: load them only when a model
# function is first used, so data-only work (and preprocessing workers) stay light.
_LAZY = {
    "build_model": "skinlib.models",
    "build_v1": "skinlib.models",
    "build_v2": "skinlib.models",
    "build_v3": "skinlib.models",
    "predict_arrays": "skinlib.prediction",
    "gradcam": "skinlib.explain",
    "occlusion_map": "skinlib.explain",
    "train": "skinlib.training",
    "predict": "skinlib.prediction",
    "scale_pixels": "skinlib.prediction",
    "cross_validate": "skinlib.crossval",
    "assign_folds": "skinlib.crossval",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'skinlib' has no attribute {name!r}")


__all__ = [
    "filters",
    "RunConfig",
    "sample_dir",
    "crop_to_lesion",
    "lesion_box",
    "DatasetError",
    "class_weights",
    "load_dataset",
    "skipped_files",
    "LAYOUTS",
    "detect_layouts",
    "split_dataset",
    "undersample",
    "ImageReadError",
    "Preprocess",
    "PreprocessResult",
    "preprocess_dataset",
    "read_image",
    "make_sample",
    "find_duplicates",
    "merge_groups",
    "check_leakage",
    "drop_leaked",
    "evaluate",
    "choose_threshold",
    "compare",
    "conclusion",
    "load_predictions",
    "load_run",
    "Run",
    "RunFolderError",
    "calibrate_run",
    "expected_calibration_error",
    "fit_temperature",
    "fit_temperature_shift",
    "apply_temperature",
    "fit_metadata",
    "encode_metadata",
    "check_metadata_columns",
    "analyse_errors",
    "diagnosis_metrics",
    "subgroup_metrics",
    "operating_points",
    "find_label_issues",
    "find_quality_issues",
    "find_same_lesion",
    "merge_pairs",
    "audit_dataset",
    "DatasetAudit",
    "write_audit_report",
    *_LAZY,
]
