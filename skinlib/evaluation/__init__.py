"""Metrics the field uses (ROC AUC with an interval, balanced accuracy, sensitivity,
specificity, calibration error, screening operating points), calibration, and result tables.

The names are listed, with their types, in ``__init__.pyi``; ``lazy_loader`` reads it and loads each
name's module on first use.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
