"""Every figure of skinlib, built on a matplotlib ``Figure`` without pyplot and returned.

The names are listed, with their types, in ``__init__.pyi``; ``lazy_loader`` reads it and loads each
name's module on first use.

Every text a figure draws from data is plain text: a ``$`` is a dollar sign, never mathtext, and a
file name that is not valid UTF-8 shows its undecodable bytes as ``\\xNN`` (:func:`display_text`).
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
