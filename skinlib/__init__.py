"""skinlib: benign vs malignant dermoscopy classification with small CNNs, honestly measured.

The code is grouped by topic, lowest layer first; each subpackage's ``__init__.pyi`` lists its names:

==========================  ===================================================================
``skinlib.data``            datasets in their download layouts, the sample, grouped splits, leakage
``skinlib.preprocessing``   image decoding, filters, contour cropping, ``Preprocess`` pipelines
``skinlib.runs``            the run folder, read and written in one place
``skinlib.evaluation``      metrics, calibration, result tables
``skinlib.models``          the CNNs, training, cross-validation, prediction, explanations
``skinlib.audit``           copies, same-lesion photographs, label errors, quality, error analysis
``skinlib.plotting``        every figure (also importable as ``skinlib.plots``)
``skinlib.config``          one run's settings (``RunConfig``)
==========================  ===================================================================

The names most work needs are importable from ``skinlib`` itself (``__init__.pyi`` lists them).
Every name loads on first use (``lazy_loader``): ``import skinlib`` is quick, and TensorFlow
loads only when a model function is first called, so data-only work stays light.
"""

import importlib as _importlib

import lazy_loader as _lazy

__version__ = "0.1.0"

#: The notebooks' names for subpackages (``from skinlib import plots``), which a stub cannot alias.
_ALIASES = {"plots": "skinlib.plotting"}
_lazy_getattr, _, __all__ = _lazy.attach_stub(__name__, __file__)
__all__ = sorted({*__all__, *_ALIASES})


def __dir__():
    return list(__all__)


def __getattr__(name: str):
    if name in _ALIASES:
        module = _importlib.import_module(_ALIASES[name])
        globals()[name] = module
        return module
    return _lazy_getattr(name)
