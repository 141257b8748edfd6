"""The CNNs, their training recipes, metadata inputs, training, cross-validation, prediction and
explanations.

Importing this package does not import TensorFlow: Keras loads on first use of a name that needs it.
"""

from ._builders import (
    build_v1,
    build_v2,
    build_v3,
    build_model,
    MODELS,
)
from ._crossval import (
    assign_folds,
    cross_validate,
    FoldRunMismatch,
    FOLD_METRICS,
)
from ._explain import (
    last_conv_layer,
    gradcam,
    occlusion_map,
    explain_run,
    Explained,
)
from ._metadata import (
    METADATA_COLUMNS,
    LABEL_COLUMNS,
    check_metadata_columns,
    fit_metadata,
    encode_metadata,
    n_features,
    unseen_categories,
)
from ._prediction import (
    scale_pixels,
    predict_arrays,
    image_files,
    run_metadata,
    run_probabilities,
    predict,
)
from ._recipes import (
    RECIPES,
)
from ._training import (
    train,
    run_predictions,
    set_determinism,
    AUGMENTATIONS,
)

__all__ = [
    "build_v1",
    "build_v2",
    "build_v3",
    "build_model",
    "MODELS",
    "assign_folds",
    "cross_validate",
    "FoldRunMismatch",
    "FOLD_METRICS",
    "last_conv_layer",
    "gradcam",
    "occlusion_map",
    "explain_run",
    "Explained",
    "METADATA_COLUMNS",
    "LABEL_COLUMNS",
    "check_metadata_columns",
    "fit_metadata",
    "encode_metadata",
    "n_features",
    "unseen_categories",
    "scale_pixels",
    "predict_arrays",
    "image_files",
    "run_metadata",
    "run_probabilities",
    "predict",
    "RECIPES",
    "train",
    "run_predictions",
    "set_determinism",
    "AUGMENTATIONS",
]
