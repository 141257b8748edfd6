"""Image filters: small pure functions on uint8 NumPy arrays.

Every function takes an image (H, W) or (H, W, C) of dtype uint8, returns a new
array and never modifies its input. Colour images are in OpenCV's BGR order.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

__all__ = [
    "check_uint8",
    "dihedral",
    "DIHEDRAL",
    "to_gray",
    "resize",
    "seed_contour",
    "bilateral",
    "remove_hair",
    "color_constancy",
]


def check_uint8(img: np.ndarray, name: str = "img") -> np.ndarray:
    """``img`` as a checked uint8 image: (H, W) or (H, W, 3 or 4), a single channel squeezed.

    Raises ``TypeError`` for another dtype and ``ValueError`` for another shape or an
    empty image, naming ``name``.

    Parameters
    ----------
    img : array-like
        The image.
    name : str
        What to call it in the error messages (default ``"img"``).

    Returns
    -------
    numpy.ndarray
        ``img`` as an array, not copied: (H, W) or (H, W, 3 or 4), an (H, W, 1) image as (H, W).

    Raises
    ------
    TypeError
        When ``img`` is not of dtype uint8.
    ValueError
        When ``img`` has another shape, or no row or no column.

    Examples
    --------
    >>> check_uint8(np.zeros((2, 3, 1), np.uint8)).shape
    (2, 3)
    """
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise TypeError(f"{name} must be a uint8 array, got dtype {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (3, 4)):
        raise ValueError(
            f"{name} must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {img.shape}"
        )
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {img.shape}")
    return img


#: The names of the eight views of :func:`dihedral`, by ``k``.
DIHEDRAL = ("", "rot90", "rot180", "rot270", "flip", "flip+rot90", "flip+rot180", "flip+rot270")


def dihedral(x: np.ndarray, k: int, *, axes: tuple[int, int] = (1, 2)) -> np.ndarray:
    """The ``k``-th (0-7) of the eight flips and quarter turns of ``x``.

    ``k`` = 0-3 turns by ``k`` quarter turns (counter-clockwise); 4-7 flip left-right
    first, then turn by ``k - 4``. ``axes`` are the (rows, columns) axes: ``(1, 2)``
    for a batch (N, H, W, C), ``(0, 1)`` for one image. A lesion has no up or down,
    so all eight (:data:`DIHEDRAL`) are equally valid views of it: test-time
    augmentation, training augmentation and the duplicate finder all use these.

    Parameters
    ----------
    x : numpy.ndarray
        An image or a batch of images, of any dtype.
    k : int
        Which view, 0 to 7 (its name is ``DIHEDRAL[k]``); 0 is ``x`` as it is.
    axes : tuple of int
        The (rows, columns) axes of ``x`` (default ``(1, 2)``, a batch).

    Returns
    -------
    numpy.ndarray
        The view, of ``x``'s shape with the ``axes`` swapped when ``k`` is odd. It shares
        ``x``'s memory (NumPy's ``flip`` and ``rot90`` return views): copy it before writing.

    Raises
    ------
    ValueError
        When ``k`` is not 0 to 7.

    Examples
    --------
    >>> img = np.arange(4).reshape(1, 2, 2, 1)
    >>> [dihedral(img, k)[0, :, :, 0].tolist() for k in (0, 1, 4)]
    [[[0, 1], [2, 3]], [[1, 3], [0, 2]], [[1, 0], [3, 2]]]
    """
    if not 0 <= k < 8:
        raise ValueError(f"k must be 0-7 (one of the eight flips and quarter turns), got {k}")
    if k >= 4:
        x = np.flip(x, axis=axes[1])
    return np.rot90(x, k % 4, axes=axes)


def _inpaint(img: np.ndarray, mask: np.ndarray, radius: int) -> np.ndarray:
    """``cv2.inpaint`` with Telea's method, the same result on every call.

    On an image one pixel high or wide OpenCV reads memory it never wrote, so the
    same input gives different outputs from call to call. Such an image is inpainted
    inside a one-pixel replicated border, then cropped back; others go straight
    to OpenCV, unchanged (the original pipeline is reproduced pixel for pixel).
    """
    if min(img.shape[:2]) > 1:
        return cv2.inpaint(img, mask, radius, cv2.INPAINT_TELEA)
    padded = cv2.copyMakeBorder(img, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    pmask = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    return cv2.inpaint(padded, pmask, radius, cv2.INPAINT_TELEA)[1:-1, 1:-1].copy()


def to_gray(img: np.ndarray) -> np.ndarray:
    """Convert a BGR, BGRA or grayscale image to a 2-D grayscale image.

    Uses OpenCV's luma weights (0.299 R + 0.587 G + 0.114 B), the same as
    ``cv2.imread(path, cv2.IMREAD_GRAYSCALE)``.

    Parameters
    ----------
    img : numpy.ndarray
        A uint8 image: (H, W), (H, W, 1), or BGR (H, W, 3) or BGRA (H, W, 4); see :func:`check_uint8`.

    Returns
    -------
    numpy.ndarray
        The (H, W) uint8 grayscale image; a grayscale input is returned as a copy.

    Examples
    --------
    >>> to_gray(np.zeros((4, 5, 3), np.uint8)).shape
    (4, 5)
    """
    img = check_uint8(img)
    if img.ndim == 2:
        return img.copy()
    code = cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(img, code)


def resize(img: np.ndarray, size: int = 28, *, interpolation: str = "area") -> np.ndarray:
    """Resize to ``size`` x ``size`` pixels.

    ``interpolation`` is ``"area"`` (average of the source pixels; the right choice
    when shrinking, it does not alias), ``"linear"`` (OpenCV's default, used by the
    original project), ``"nearest"`` or ``"cubic"``.

    Parameters
    ----------
    img : numpy.ndarray
        A uint8 image (see :func:`check_uint8`), of any size.
    size : int
        The side of the output, in pixels (default 28); at least 1.
    interpolation : {"area", "linear", "nearest", "cubic"}
        The interpolation, as above (default ``"area"``).

    Returns
    -------
    numpy.ndarray
        The uint8 image, ``size`` x ``size`` with the input's channels (an (H, W, 1) input
        gives a 2-D image). The aspect ratio is not kept.

    Raises
    ------
    ValueError
        When ``size`` is below 1 or ``interpolation`` is not one of the four names.

    Examples
    --------
    >>> resize(np.zeros((300, 400), np.uint8), 28).shape
    (28, 28)
    """
    img = check_uint8(img)
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    flags = {
        "area": cv2.INTER_AREA,
        "linear": cv2.INTER_LINEAR,
        "nearest": cv2.INTER_NEAREST,
        "cubic": cv2.INTER_CUBIC,
    }
    if interpolation not in flags:
        raise ValueError(f"interpolation must be one of {sorted(flags)}, got {interpolation!r}")
    out = cv2.resize(img, (size, size), interpolation=flags[interpolation])
    if interpolation == "cubic":  # cubic can overshoot, but cv2 saturates uint8 already
        out = out.astype(np.uint8, copy=False)
    return out


def seed_contour(
    gray: np.ndarray, threshold: int = 127, thickness: int = 4, inpaint_radius: int = 3
) -> np.ndarray:
    """The original project's "contour" cleaning step, exactly.

    Pixels darker than ``threshold`` become foreground (``THRESH_BINARY_INV``); the
    outlines of the external contours of that foreground are drawn into a mask
    ``thickness`` pixels wide, and the masked pixels are filled in with
    ``cv2.inpaint`` (Telea's method, radius ``inpaint_radius``).

    At 28x28 a 4-pixel outline covers most of a lesion, so this step erases much of
    what the classifier needs; it is kept to reproduce the original pipeline.

    Parameters
    ----------
    gray : numpy.ndarray
        A 2-D uint8 grayscale image (or (H, W, 1)).
    threshold : int
        Pixels at or below this grey level are foreground (default 127).
    thickness : int
        The width of the drawn outlines, in pixels (default 4); at least 1.
    inpaint_radius : int
        The radius of the inpainting, in pixels (default 3).

    Returns
    -------
    numpy.ndarray
        The cleaned 2-D uint8 image, of ``gray``'s height and width.

    Raises
    ------
    ValueError
        When ``gray`` is not a 2-D image or ``thickness`` is below 1.

    Examples
    --------
    >>> img = np.full((28, 28), 200, np.uint8); img[8:20, 8:20] = 40
    >>> seed_contour(img).shape
    (28, 28)
    """
    gray = check_uint8(gray, "gray")
    if gray.ndim != 2:
        raise ValueError(f"seed_contour needs a 2-D grayscale image, got shape {gray.shape}")
    if thickness < 1:
        raise ValueError(f"thickness must be >= 1, got {thickness}")
    _, binary = cv2.threshold(gray, threshold, 255, cv2.THRESH_BINARY_INV)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    mask = np.zeros_like(gray)
    cv2.drawContours(mask, contours, -1, 255, thickness)
    return _inpaint(gray, mask, inpaint_radius)


def bilateral(
    img: np.ndarray,
    d: int = -1,
    sigma_color: float = 50,
    sigma_space: float = 50,
    *,
    method: str = "opencv",
) -> np.ndarray:
    """Edge-preserving smoothing, as ``cv2.bilateralFilter``.

    ``d`` is the neighbourhood diameter; ``d <= 0`` lets OpenCV derive it from
    ``sigma_space`` (radius ``round(1.5 * sigma_space)``). Defaults are the
    original project's: on a 28x28 image they make a 151-pixel window, mostly
    mirrored border, and cost about 15 ms an image.

    ``method="matrix"`` computes the same filter for small grayscale images as one
    matrix product: the mirrored window maps every source pixel to a fixed spatial
    weight per output pixel, so the (H*W, H*W) weight matrix is built once per
    size and reused. It is several times faster for windows larger than the image
    and equals OpenCV's result up to rounding: with the original settings an
    occasional pixel differs by one grey level; with small windows OpenCV truncates
    where this rounds, so many pixels differ by one.
    Images larger than 64x64, or in colour, always use OpenCV.

    Parameters
    ----------
    img : numpy.ndarray
        A uint8 image: grayscale, BGR, or BGRA (its alpha channel is dropped first).
    d : int
        The neighbourhood diameter, in pixels (default -1: derived from ``sigma_space``).
    sigma_color : float
        The spread of the grey-level (or colour) weights (default 50): the larger, the more
        different the pixels averaged together.
    sigma_space : float
        The spread of the spatial weights, in pixels (default 50).
    method : {"opencv", "matrix"}
        ``"opencv"`` (the default) calls ``cv2.bilateralFilter``; ``"matrix"`` as above.

    Returns
    -------
    numpy.ndarray
        The smoothed uint8 image, of ``img``'s height and width; a BGRA input comes back BGR.

    Raises
    ------
    ValueError
        When ``method`` is neither.

    Examples
    --------
    >>> bilateral(np.zeros((28, 28), np.uint8)).shape
    (28, 28)
    """
    img = check_uint8(img)
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if method not in ("opencv", "matrix"):
        raise ValueError(f"method must be 'opencv' or 'matrix', got {method!r}")
    if method == "matrix" and img.ndim == 2 and img.size <= 64 * 64:
        return _bilateral_matrix(img, int(d), float(sigma_color), float(sigma_space))
    return cv2.bilateralFilter(img, int(d), float(sigma_color), float(sigma_space))


@functools.lru_cache(maxsize=16)
def _bilateral_space_matrix(h: int, w: int, d: int, sigma_space: float) -> np.ndarray:
    """K[p, s]: total spatial weight that source pixel s gets in output pixel p's window.

    Mirrors OpenCV's bilateralFilter: radius from d or sigma, a round window,
    float32 weights, BORDER_REFLECT_101 padding (which repeats for windows wider
    than the image).
    """
    sigma_space = sigma_space if sigma_space > 0 else 1.0
    radius = d // 2 if d > 0 else int(np.rint(sigma_space * 1.5))
    radius = max(radius, 1)
    # Padded coordinate -> source coordinate, as copyMakeBorder maps them.
    rows = np.array([cv2.borderInterpolate(i, h, cv2.BORDER_REFLECT_101) for i in range(-radius, h + radius)])
    cols = np.array([cv2.borderInterpolate(j, w, cv2.BORDER_REFLECT_101) for j in range(-radius, w + radius)])
    coeff = -0.5 / (sigma_space * sigma_space)
    # The Gaussian is separable; only the round window is not: row offset dy spans
    # columns |dx| <= half[dy]. So K = sum over spans s of R_s kron C_s, where
    # R_s[y, sy] sums exp(dy^2 coeff) over the dy of span s landing on source row sy,
    # and C_s[x, sx] sums exp(dx^2 coeff) over |dx| <= s landing on source column sx.
    offsets = np.arange(-radius, radius + 1)
    half = np.floor(np.sqrt(np.maximum(radius**2 - offsets.astype(np.float64) ** 2, 0)) + 1e-9).astype(int)
    spans, span_of = np.unique(half, return_inverse=True)
    ys = np.arange(h)
    R = np.zeros((len(spans), h, h))
    np.add.at(
        R,
        (np.repeat(span_of, h), np.tile(ys, len(offsets)), rows[ys[None, :] + offsets[:, None] + radius].ravel()),
        np.repeat(np.exp(offsets * offsets * coeff), h),
    )
    # D[k, x, sx]: weight of the columns at distance exactly k; cumulative sums give C.
    xs, ks = np.arange(w), np.arange(radius + 1)
    D = np.zeros((radius + 1, w, w))
    for sign in (1, -1):
        src = cols[xs[None, :] + sign * ks[:, None] + radius]
        weight = np.exp(ks * ks * coeff) * (1.0 if sign == 1 else (ks > 0))
        np.add.at(D, (np.repeat(ks, w), np.tile(xs, radius + 1), src.ravel()), np.repeat(weight, w))
    C = np.cumsum(D, axis=0)[spans]
    K = np.tensordot(R, C, axes=(0, 0))  # [y, sy, x, sx]
    K = K.transpose(0, 2, 1, 3).reshape(h * w, h * w).astype(np.float32)
    K.setflags(write=False)
    return K


def _bilateral_matrix(img: np.ndarray, d: int, sigma_color: float, sigma_space: float) -> np.ndarray:
    h, w = img.shape
    K = _bilateral_space_matrix(h, w, d, sigma_space)
    sigma_color = sigma_color if sigma_color > 0 else 1.0
    # Colour weights for signed differences -255..255, float32 like OpenCV's table.
    lut = np.exp(np.arange(-255.0, 256.0) ** 2 * (-0.5 / (sigma_color * sigma_color))).astype(np.float32)
    g = img.ravel().astype(np.int16)
    W = K * lut[g[:, None] - g[None, :] + 255]
    # einsum, not a BLAS matmul: a threaded BLAS would fight the worker processes
    # for the cores (and threads do not survive a fork).
    out = np.einsum("ij,j->i", W, g.astype(np.float32)) / W.sum(axis=1)
    return np.rint(out).astype(np.uint8).reshape(h, w)


def remove_hair(
    img: np.ndarray, kernel_size: int = 17, threshold: int = 10, inpaint_radius: int = 3
) -> np.ndarray:
    """Remove dark hairs, DullRazor-style.

    A morphological black-hat with a ``kernel_size`` cross-shaped element finds thin
    structures darker than their surroundings; pixels whose black-hat response
    exceeds ``threshold`` are inpainted (Telea). Apply it at the source resolution,
    before shrinking: at 28x28 a hair is thinner than a pixel.

    Lee et al., "DullRazor: a software approach to hair removal from images",
    Computers in Biology and Medicine 27(6), 1997.

    Parameters
    ----------
    img : numpy.ndarray
        A uint8 image: grayscale, BGR, or BGRA (its alpha channel is dropped first).
    kernel_size : int
        The side of the cross-shaped structuring element, in pixels (default 17): hairs
        narrower than it are found.
    threshold : int
        The black-hat response a pixel must exceed to be taken for hair (default 10); the
        mask is then widened by one pixel on each side.
    inpaint_radius : int
        The radius of the inpainting, in pixels (default 3).

    Returns
    -------
    numpy.ndarray
        The uint8 image with the hairs filled in, of ``img``'s height and width; a BGRA
        input comes back BGR.

    Examples
    --------
    >>> img = np.full((64, 64), 180, np.uint8); img[:, 30:32] = 20
    >>> int(remove_hair(img)[:, 30:32].min()) > 100
    True
    """
    img = check_uint8(img)
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (kernel_size, kernel_size))
    blackhat = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel)
    _, mask = cv2.threshold(blackhat, threshold, 255, cv2.THRESH_BINARY)
    # Widen the mask a little so the hair's soft edges are filled in too.
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    return _inpaint(img, mask, inpaint_radius)


def color_constancy(img: np.ndarray, power: int = 6) -> np.ndarray:
    """Shades of Gray colour constancy: remove the light source's colour cast.

    Each channel is divided by its Minkowski ``power``-norm mean (the illuminant's
    estimate), then all are rescaled so that a neutral grey keeps its brightness.
    ``power=1`` is Gray World, a large power approaches max-RGB; 6 is what the
    ISIC 2018 and 2019 challenge leaders used, after Barata et al., "Improving
    dermoscopy image classification using color constancy", IEEE JBHI 19(3), 2015.
    A grayscale image has no cast and is returned unchanged (as a copy).

    Parameters
    ----------
    img : numpy.ndarray
        A uint8 image: BGR, BGRA (its alpha channel is dropped first) or grayscale.
    power : int
        The Minkowski norm's power (default 6); at least 1.

    Returns
    -------
    numpy.ndarray
        The corrected uint8 image (BGR for a colour input, values rounded and clipped to
        0-255); a copy of ``img`` when it is grayscale or black.

    Raises
    ------
    ValueError
        When ``power`` is below 1.

    Examples
    --------
    >>> img = np.zeros((8, 8, 3), np.uint8); img[...] = (60, 120, 180)  # BGR, a warm cast
    >>> color_constancy(img)[0, 0].tolist()
    [130, 130, 130]
    """
    img = check_uint8(img)
    if power < 1:
        raise ValueError(f"power must be at least 1, got {power}")
    if img.ndim == 2:
        return img.copy()
    if img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    # A power of uint8 values overflows float32 at power >= 16; float64 is exact enough.
    table = np.arange(256, dtype=np.float64) ** power
    illuminant = np.array([table[img[..., c]].mean() for c in range(3)]) ** (1.0 / power)
    norm = np.sqrt(np.sum(illuminant**2))
    if norm == 0:  # a black image
        return img.copy()
    gains = norm / (np.sqrt(3.0) * np.maximum(illuminant, 1e-6))
    out = img.astype(np.float32) * gains.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
