r"""Text from data drawn as plain text: a file name or a value is shown as it is, never as mathtext.

matplotlib reads a text holding two ``$`` as mathtext (``a$x$b.jpg`` is drawn "a", an italic "x",
"b"; ``$\frac{1$.jpg`` fails to draw, and the whole figure with it), and cannot draw a ``str``
holding lone surrogates, which is how Python decodes a file name that is not valid UTF-8
(``os.fsdecode(b"bad\xff.jpg") == "bad\udcff.jpg"``).

Contract: :func:`display_text` turns any value into text that every figure and page can show: its
``str``, each undecodable byte written ``\xNN`` (any other lone surrogate ``\uNNNN``); text without
surrogates comes back unchanged. Every figure of :mod:`skinlib.plotting` passes what it drew through
:func:`plain_text`: each title, axis label, legend entry, text and annotation, and each tick label
given as text (``set_xticks(ticks, labels)``), goes through :func:`display_text` and is drawn with
``parse_math`` and ``usetex`` off. Number tick labels and the axes' offset texts are matplotlib's
own and follow the rcParams.

>>> display_text("bad\udcff.jpg"), display_text("a$x$b.jpg"), display_text(3)
('bad\\xff.jpg', 'a$x$b.jpg', '3')
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure
    from matplotlib.text import Text

__all__ = ["display_text", "plain_text"]

_SURROGATES = re.compile("[\ud800-\udfff]")


def _written_out(match: re.Match) -> str:
    code = ord(match.group())
    # U+DC80..U+DCFF is how surrogateescape (os.fsdecode) keeps each byte 0x80..0xFF it could not decode.
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def display_text(value: object) -> str:
    r"""``value`` as text that can be drawn and written: its ``str``, undecodable bytes shown as ``\xNN``.

    A file name that is not valid UTF-8 decodes (``os.fsdecode``) to a ``str`` holding lone
    surrogates, which matplotlib cannot draw and UTF-8 cannot encode; each such byte is shown as
    Python writes it (as ``os.fsencode(name).decode("utf-8", "backslashreplace")`` does). Any other
    text, a ``$`` or a ``<`` in it, is returned as it is: escaping it is the figure's or the page's.

    Parameters
    ----------
    value : object
        A file name, a table's value, a name.

    Returns
    -------
    str
        ``str(value)`` with each lone surrogate written out: ``\xNN`` for an undecodable byte
        (U+DC80 to U+DCFF), ``\uNNNN`` for any other.

    Examples
    --------
    >>> import os
    >>> display_text(os.fsdecode(b"caf\xe9 $x$.jpg"))
    'caf\\xe9 $x$.jpg'
    """
    text = str(value)
    return _SURROGATES.sub(_written_out, text) if _SURROGATES.search(text) else text


def _plain(text: "Text") -> None:
    text.set_text(display_text(text.get_text()))
    text.set_parse_math(False)
    text.set_usetex(False)


def _plain_tick_labels(axis) -> None:
    """Tick labels given as text (``set_xticks(ticks, labels)``: fixed places, labels from a table) set again plain.

    Set through ``set_ticks``, which makes a tick for every label now: a tick made at drawing time
    would take its text from the formatter and read it as mathtext.
    """
    from matplotlib.ticker import FixedFormatter, FixedLocator, FuncFormatter

    for minor in (False, True):
        locator = axis.get_minor_locator() if minor else axis.get_major_locator()
        formatter = axis.get_minor_formatter() if minor else axis.get_major_formatter()
        if isinstance(locator, FixedLocator) and isinstance(formatter, (FixedFormatter, FuncFormatter)):
            places = list(locator.locs)
            labels = [display_text(formatter(place, i)) for i, place in enumerate(places)]
            axis.set_ticks(places, labels, minor=minor, parse_math=False, usetex=False)


def plain_text(target: "Figure | SubFigure | Axes") -> "Figure | SubFigure":
    r"""Draw every text of ``target`` that came from data as plain text; returns its figure.

    Each :class:`~matplotlib.text.Text` of ``target`` (titles, axis labels, legend entries, texts
    and annotations, a figure's own texts) gets :func:`display_text` of its text, and ``parse_math``
    and ``usetex`` off; so do tick labels given as text (``set_xticks(ticks, labels)``). Other tick
    labels and the offset texts, numbers that matplotlib formats at drawing time, are left as the
    rcParams make them.

    Parameters
    ----------
    target : matplotlib.figure.Figure or matplotlib.axes.Axes
        A figure a plotting function made, or the axes it drew on (the other axes of a user's
        figure are left alone).

    Returns
    -------
    matplotlib.figure.Figure
        ``target``, or the figure of the axes ``target``.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> fig = Figure()
    >>> ax = fig.add_subplot()
    >>> _ = ax.set_yticks([0, 1], ["$\\frac{1$", "bad\udcff"]), ax.set_title("a$x$b.jpg")
    >>> plain_text(fig) is fig, ax.title.get_parse_math(), [t.get_text() for t in ax.get_yticklabels()]
    (True, False, ['$\\frac{1$', 'bad\\xff'])
    """
    from matplotlib.axes import Axes
    from matplotlib.text import Text

    axes = [target] if isinstance(target, Axes) else list(target.axes)
    ticks = set()  # ids of the tick labels and offset texts: set at drawing time, by the formatters
    for axis in (a for ax in axes for a in (ax.xaxis, ax.yaxis)):
        _plain_tick_labels(axis)
        ticks.add(id(axis.offsetText))
        ticks.update(id(t) for tick in (*axis.majorTicks, *axis.minorTicks) for t in (tick.label1, tick.label2))
    for text in target.findobj(Text):
        if id(text) not in ticks:
            _plain(text)
    return target.figure if isinstance(target, Axes) else target
