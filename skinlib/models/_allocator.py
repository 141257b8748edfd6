"""Memory allocation settings that make training on the CPU faster.

Training frees and allocates the same few megabytes of tensors at every step. By
default, glibc's ``malloc`` hands such memory back to the operating system when it
is freed (unmapping a block, or trimming the top of a heap), so the next step's
blocks are fresh memory: every 4 KiB page faults and is zeroed again. On a 2-core
machine, training v3 spent almost as much time in the kernel doing this (about
100,000 page faults a second) as in the network itself; ``benchmarks/allocator.py``
measures it.

:func:`keep_freed_memory` asks ``malloc`` to keep freed memory for reuse instead.
It changes how memory is obtained, never what is computed: the same seed gives the
same weights either way. The process then keeps its peak memory until it ends.
:func:`skinlib.train` calls it; setting the environment variable
``SKINLIB_KEEP_FREED_MEMORY=0`` leaves ``malloc``'s defaults alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["keep_freed_memory"]

# mallopt(3) parameter numbers, from glibc's <malloc.h>.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory(*, mmap_threshold: int = 1 << 30, trim_threshold: int = 1 << 30,
                      top_pad: int = 64 << 20) -> bool:
    """Make glibc's ``malloc`` reuse freed memory rather than return it (and fault it in again).

    Blocks below ``mmap_threshold`` bytes come from the heap instead of their own
    ``mmap``; the heap is trimmed only when ``trim_threshold`` bytes are free at its
    top; it grows ``top_pad`` bytes at a time. Returns ``True`` if the settings were
    applied, ``False`` where they do not apply (not Linux with glibc, or
    ``SKINLIB_KEEP_FREED_MEMORY=0``). Calling it again is harmless.

    Parameters
    ----------
    mmap_threshold : int
        Bytes from which a block gets its own ``mmap`` (``M_MMAP_THRESHOLD``; default
        ``1 << 30``, 1 GiB).
    trim_threshold : int
        Free bytes at the top of the heap before it is trimmed (``M_TRIM_THRESHOLD``;
        default ``1 << 30``, 1 GiB).
    top_pad : int
        Extra bytes the heap grows by (``M_TOP_PAD``; default ``64 << 20``, 64 MiB).

    Returns
    -------
    bool
        ``True`` if ``mallopt`` accepted all three settings; ``False`` if it refused one,
        if the C library has no ``mallopt``, off Linux, or with
        ``SKINLIB_KEEP_FREED_MEMORY=0``.

    Raises
    ------
    ValueError
        When a setting is not a whole number from 0 to 2**31 - 1 (checked on Linux only,
        unless ``SKINLIB_KEEP_FREED_MEMORY=0``).

    Examples
    --------
    >>> keep_freed_memory() in (True, False)
    True
    """
    if os.environ.get("SKINLIB_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    for name, value in (("mmap_threshold", mmap_threshold), ("trim_threshold", trim_threshold),
                        ("top_pad", top_pad)):
        if not isinstance(value, int) or not 0 <= value < 1 << 31:
            raise ValueError(f"{name} must be a whole number of bytes from 0 to 2**31 - 1, got {value!r}")
    try:
        # The symbols already loaded into this process, the C library's among them: no
        # library search (find_library would run ldconfig at every call).
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success and 0 for a value it refuses.
    return all(mallopt(param, value) == 1 for param, value in (
        (M_MMAP_THRESHOLD, mmap_threshold), (M_TRIM_THRESHOLD, trim_threshold), (M_TOP_PAD, top_pad)))
