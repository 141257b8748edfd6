"""The examples in the docstrings (the API reference shows them) run and print what they say."""

import doctest
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "skinlib"
#: Every module of the package, private ones included (their examples are shown in the API reference
#: through the subpackage that exports their names): ``data._datasets``, ``runs``...
MODULES = sorted(".".join(p.relative_to(PACKAGE).with_suffix("").parts) for p in PACKAGE.rglob("*.py")
                 if p.name not in ("__init__.py", "__main__.py"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"skinlib.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.failed == 0, f"{result.failed} of the {result.attempted} docstring examples of skinlib.{name} failed"
