"""Contour cropping: find the lesion and cut a square around it.

Dermoscopy images often show the lesion small, off-centre, inside a dark circular
vignette or frame. Cropping to the lesion before shrinking to 28x28 keeps far more
of its pixels than shrinking the whole field of view.
"""

from __future__ import annotations

import cv2
import numpy as np

from skinlib.preprocessing.filters import check_uint8, to_gray

__all__ = ["lesion_box", "crop_to_lesion"]


def _centre_box(h: int, w: int) -> tuple[int, int, int, int]:
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return y0, x0, y0 + side, x0 + side


def lesion_box(img: np.ndarray, margin: float = 0.15, min_area: float = 0.002) -> tuple[int, int, int, int]:
    """Square box ``(y0, x0, y1, x1)`` around the lesion, always inside the image.

    The image is blurred and split with Otsu's threshold into dark and light; each
    connected dark region (the inside of an external contour) is a candidate.
    Regions that reach a corner of
    the image are the dark frame or vignette, not the lesion, and are ignored; so
    are specks smaller than ``min_area`` of the image. The box is the largest
    remaining region's bounding box made square, grown by ``margin`` of its side on
    each side, and shifted (then, if needed, shrunk) to fit the image. With no
    candidate it is the largest centred square.

    Parameters
    ----------
    img : numpy.ndarray
        A uint8 image, grayscale or colour (see :func:`skinlib.preprocessing.filters.to_gray`).
    margin : float
        The share of the region's side the box grows by on each side (default 0.15); at least 0.
    min_area : float
        The smallest region taken for a lesion, as a share of the image's area (default 0.002).

    Returns
    -------
    tuple of int
        ``(y0, x0, y1, x1)``: the rows ``y0:y1`` and columns ``x0:x1`` of the box, its side at
        least 1 pixel. The largest centred square when no region qualifies or the image is
        under 8 pixels high or wide.

    Raises
    ------
    ValueError
        When ``margin`` is negative.

    Examples
    --------
    >>> img = np.full((100, 120), 200, np.uint8); img[30:50, 70:90] = 50
    >>> y0, x0, y1, x1 = lesion_box(img, margin=0)
    >>> (y0, x0, y1 - y0, x1 - x0)
    (30, 70, 20, 20)
    """
    gray = to_gray(img)
    h, w = gray.shape
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if min(h, w) < 8:  # too small to hold a meaningful contour
        return _centre_box(h, w)
    blurred = cv2.GaussianBlur(gray, (5, 5), 0)
    _, dark = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    corner_labels = {labels[0, 0], labels[0, w - 1], labels[h - 1, 0], labels[h - 1, w - 1]}
    best, best_area = None, min_area * h * w
    for label in range(1, n):
        area = stats[label, cv2.CC_STAT_AREA]
        if label in corner_labels or area < best_area:
            continue
        best, best_area = label, area
    if best is None:
        return _centre_box(h, w)
    x, y, bw, bh = (int(v) for v in stats[best, :4])
    side = int(round(max(bw, bh) * (1 + 2 * margin)))
    side = max(1, min(side, h, w))
    cy, cx = y + bh / 2, x + bw / 2
    y0 = int(round(cy - side / 2))
    x0 = int(round(cx - side / 2))
    y0 = min(max(y0, 0), h - side)
    x0 = min(max(x0, 0), w - side)
    return y0, x0, y0 + side, x0 + side


def crop_to_lesion(img: np.ndarray, margin: float = 0.15, min_area: float = 0.002) -> np.ndarray:
    """Crop ``img`` (grayscale or colour) to the square :func:`lesion_box`.

    Parameters
    ----------
    img : numpy.ndarray
        A uint8 image (see :func:`skinlib.preprocessing.filters.check_uint8`).
    margin : float
        Goes to :func:`lesion_box`: the box grows by this share of its side on each side
        (default 0.15).
    min_area : float
        Goes to :func:`lesion_box`: the smallest region taken for a lesion, as a share of the
        image's area (default 0.002).

    Returns
    -------
    numpy.ndarray
        The square crop, a copy, with ``img``'s channels (an (H, W, 1) image gives a 2-D crop).

    Examples
    --------
    >>> img = np.full((100, 120, 3), 200, np.uint8); img[30:50, 70:90] = 50
    >>> crop_to_lesion(img, margin=0.5).shape
    (40, 40, 3)
    """
    img = check_uint8(img)
    y0, x0, y1, x1 = lesion_box(img, margin=margin, min_area=min_area)
    return img[y0:y1, x0:x1].copy()
