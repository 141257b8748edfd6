"""Checks of the values every layer takes: one wording for the same mistake everywhere."""

from __future__ import annotations

import numbers
from typing import Any

__all__ = ["is_whole_number", "check_whole_number"]


def is_whole_number(value: Any) -> bool:
    """Whether ``value`` is an integer (NumPy's too), and not a bool.

    Parameters
    ----------
    value : object
        The value to check.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_whole_number(3), is_whole_number(3.0), is_whole_number(True)
    (True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_whole_number(name: str, value: Any, minimum: int = 0) -> int:
    """``value`` as an int, once checked to be a whole number of at least ``minimum``.

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    value : object
        The value given.
    minimum : int
        The smallest value accepted.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        Naming the parameter, the bound and the value given.

    Examples
    --------
    >>> check_whole_number("n_boot", -1)
    Traceback (most recent call last):
    ...
    ValueError: n_boot must be a whole number >= 0, got -1
    """
    if not is_whole_number(value) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)
