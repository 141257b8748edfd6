"""The dataset audit: copies, other photographs of one lesion, leakage, likely label errors, image
quality, what one AUC hides, and the HTML report.

The names are listed, with their types, in ``__init__.pyi``; ``lazy_loader`` reads it and loads each
name's module on first use.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
