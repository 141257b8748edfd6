"""From image files to model inputs: decoding, filters, contour cropping, the ``Preprocess``
pipelines with their caches, and the slider tuner.

The names are listed, with their types, in ``__init__.pyi``; ``lazy_loader`` reads it and loads each
name's module on first use.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
