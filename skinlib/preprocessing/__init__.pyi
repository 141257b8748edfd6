"""From image files to model inputs: decoding, filters, contour cropping, the ``Preprocess``
pipelines with their caches, and the slider tuner.
"""

from ._crop import (
    lesion_box,
    crop_to_lesion,
)
from ._images import (
    read_image,
    ImageReadError,
    image_size,
    max_image_pixels,
    MAX_IMAGE_PIXELS,
    MAX_PIXELS_VARIABLE,
)
from ._pipeline import (
    Preprocess,
    PreprocessResult,
    preprocess_dataset,
    output_image,
    STEPS,
    PARAMETERS,
)
from ._widgets import (
    PreprocessTuner,
    render_mosaic,
    slow_settings,
)
from . import filters

__all__ = [
    "lesion_box",
    "crop_to_lesion",
    "read_image",
    "ImageReadError",
    "image_size",
    "max_image_pixels",
    "MAX_IMAGE_PIXELS",
    "MAX_PIXELS_VARIABLE",
    "Preprocess",
    "PreprocessResult",
    "preprocess_dataset",
    "output_image",
    "STEPS",
    "PARAMETERS",
    "PreprocessTuner",
    "render_mosaic",
    "slow_settings",
    "filters",
]
