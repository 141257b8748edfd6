"""skinlib: benign vs malignant dermoscopy classification with small CNNs, honestly measured.

Public API::

    load_dataset, split_dataset, undersample, class_weights, skipped_files   # datasets
    Preprocess, preprocess_dataset, read_image                              # preprocessing
    filters (to_gray, resize, seed_contour, bilateral, remove_hair)          # image filters
    lesion_box, crop_to_lesion                                              # contour cropping
    make_sample                                                             # synthetic sample data
    RunConfig                                                               # one run's settings
"""

from skinlib import filters
from skinlib.config import RunConfig, sample_dir
from skinlib.crop import crop_to_lesion, lesion_box
from skinlib.datasets import (
    DatasetError,
    class_weights,
    load_dataset,
    skipped_files,
    split_dataset,
    undersample,
)
from skinlib.preprocess import ImageReadError, Preprocess, PreprocessResult, preprocess_dataset, read_image
from skinlib.sample import make_sample

__version__ = "0.1.0"

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
    "split_dataset",
    "undersample",
    "ImageReadError",
    "Preprocess",
    "PreprocessResult",
    "preprocess_dataset",
    "read_image",
    "make_sample",
]
