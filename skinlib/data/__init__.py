"""Datasets: one loader per download layout, the built-in sample, grouped splits and leakage checks.

Nothing here imports TensorFlow or any other part of skinlib but its private helpers.

The names are listed, with their types, in ``__init__.pyi``; ``lazy_loader`` reads it and loads each
name's module on first use.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
