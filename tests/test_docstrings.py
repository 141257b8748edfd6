"""Every public function and class documents its parameters and what it returns (numpydoc).

The public names are those of the subpackages' ``__init__.pyi`` stubs and of the public modules
(``skinlib.preprocessing.filters``, ``skinlib.runs``, ``skinlib.config``). numpydoc's own validator
reads each docstring: a parameter missing from ``Parameters`` (PR01), a documented parameter the
signature does not have (PR02), a function that returns something without a ``Returns`` (or
``Yields``) section (RT01), or a name without a docstring (GL08), fails.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

validate = pytest.importorskip("numpydoc.validate").validate

MODULES = ["skinlib.data", "skinlib.preprocessing", "skinlib.preprocessing.filters", "skinlib.runs",
           "skinlib.config", "skinlib.evaluation", "skinlib.models", "skinlib.audit", "skinlib.plotting"]
CHECKS = {"GL08", "PR01", "PR02", "RT01"}


def public_callables() -> list[str]:
    """Dotted paths of the public functions and classes (as their ``__module__`` names them), each once."""
    found = set()
    for module in MODULES:
        package = importlib.import_module(module)
        for name in package.__all__:
            obj = getattr(package, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__.startswith("skinlib"):
                found.add(f"{obj.__module__}.{obj.__qualname__}")
    return sorted(found)


@pytest.mark.parametrize("path", public_callables())
def test_public_docstring_documents_parameters_and_returns(path):
    found = [f"{code}: {message}" for code, message in validate(path)["errors"] if code in CHECKS]
    assert not found, f"{path}: " + "; ".join(found)
