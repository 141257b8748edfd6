"""DermaMNIST (MedMNIST v2) as image files: the arrays of its ``.npz`` written once as PNG files.

DermaMNIST ships its images as arrays (``train_images``, ``val_images``,
``test_images``: uint8, N x H x W x 3, RGB) with labels 0-6 (``*_labels``, N x 1) in
a single ``.npz`` file per size: ``dermamnist.npz`` (28 x 28), ``dermamnist_64.npz``,
``dermamnist_128.npz`` and ``dermamnist_224.npz``. Everything else in skinlib reads
images from paths (preprocessing and duplicate caches are keyed by file stamps), so
:func:`materialise` writes each image once as a PNG file into a folder named after a
hash of the ``.npz`` file's bytes: the same file gives the same folder wherever it
lies, and a changed file a new one. The folder is built beside its final place and
renamed into it, so an interrupted run leaves no half folder; a PNG file missing from it
later (deleted, emptied, replaced by something else) is written again, by itself and
atomically. Nothing is written beside the ``.npz`` unless ``cache_dir`` says so.

Before anything is read, the ``.npy`` headers inside the ``.npz`` are checked against each
other and against the archive: each split's images uint8, N x H x W (x 3 or 1), H and W at
least 1; its labels integers, N or N x 1, the same N; no object arrays; every array's declared
bytes exactly the bytes its member holds, and within what its compressed size can hold (so a
header that declares 10^12 labels is refused, not allocated). Every problem is a
:class:`~skinlib._shared.errors.DatasetError` naming the file. Fortran-ordered arrays are read
(whole).

DermaMNIST's official split is by image, not by lesion: images of one lesion of
HAM10000 (its source) lie in more than one of its splits. :func:`load_dermamnist`
keeps that split as ``source_split``; use :func:`skinlib.find_duplicates` before
trusting it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from skinlib._shared.files import atomic_write
from skinlib._shared.paths import project_dir
from skinlib.data._reading import DatasetError, finish_table, require_regular_file

__all__ = [
    "CLASSES",
    "MALIGNANT",
    "SPLITS",
    "NPZ_PATTERN",
    "find_npz",
    "npz_digest",
    "default_cache_dir",
    "image_folder",
    "read_labels",
    "materialise",
    "load_dermamnist",
]

#: DermaMNIST's labels 0-6, in MedMNIST's order (HAM10000's diagnosis codes).
CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
#: The malignant classes, as for HAM10000: actinic keratosis / intraepithelial carcinoma, basal cell carcinoma, melanoma.
MALIGNANT = frozenset({"akiec", "bcc", "mel"})
#: The official splits, as the ``.npz`` keys name them.
SPLITS = ("train", "val", "test")
#: The file names of the DermaMNIST downloads, any size.
NPZ_PATTERN = "dermamnist*.npz"
#: Bump when the PNG files are written differently, so that an older folder is not reused.
FORMAT_VERSION = 1
#: The smallest height and width of an image accepted (OpenCV cannot encode an empty one).
MIN_SIDE = 1
#: How many times its compressed size a member of the archive may hold: deflate (what numpy
#: writes) cannot compress better than about 1032 to 1; stored members hold what they store.
_MAX_RATIO = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: 1032}
#: What reading a damaged archive or .npy member raises.
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def find_npz(folder: Path) -> Path:
    """The one DermaMNIST ``.npz`` file in ``folder``; :class:`DatasetError` when there is none, or several.

    Parameters
    ----------
    folder : pathlib.Path
        The folder to look in (its subfolders are not searched); a path that is not a folder
        holds no file.

    Returns
    -------
    pathlib.Path
        The one file of ``folder`` whose name matches :data:`NPZ_PATTERN` (``dermamnist*.npz``).

    Examples
    --------
    >>> find_npz(Path("/no/such/folder"))
    Traceback (most recent call last):
    ...
    skinlib.data.DatasetError: /no/such/folder: no dermamnist*.npz file here
    """
    found = sorted(folder.glob(NPZ_PATTERN)) if folder.is_dir() else []
    if not found:
        raise DatasetError(f"{folder}: no {NPZ_PATTERN} file here")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise DatasetError(f"{folder}: holds {len(found)} DermaMNIST files ({names}); pass the one to load")
    return found[0]


def npz_digest(path: Path) -> str:
    """The sha256 of the file's bytes, hex: the key of its PNG folder.

    Parameters
    ----------
    path : pathlib.Path
        The file to hash, read in blocks of 1 MiB.

    Returns
    -------
    str
        The 64 lower-case hex digits of the file's sha256.
    """
    require_regular_file(path, "a DermaMNIST .npz file")
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_cache_dir() -> Path:
    """Where PNG folders go by default: ``data/dermamnist/`` of the project (git-ignored), or of the per-user cache.

    Returns
    -------
    pathlib.Path
        ``data/dermamnist`` under the checkout skinlib runs from (a folder with a
        ``pyproject.toml``), else under the per-user cache folder
        (``$XDG_CACHE_HOME/skinlib``, default ``~/.cache/skinlib``). It is not created here.
    """
    return project_dir() / "data" / "dermamnist"


def image_folder(npz: Path, cache_dir: str | os.PathLike | None = None) -> Path:
    """The PNG folder of ``npz``: ``<cache_dir>/<file stem>-v<FORMAT_VERSION>-<first 16 hex digits of its sha256>``.

    Parameters
    ----------
    npz : pathlib.Path
        The DermaMNIST ``.npz`` file; it is read whole to hash it (:func:`npz_digest`).
    cache_dir : str or os.PathLike, optional
        The folder the PNG folder lies in (``~`` expanded). Default ``None``:
        :func:`default_cache_dir`.

    Returns
    -------
    pathlib.Path
        The PNG folder's path; it is neither created nor checked here.
    """
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return base / f"{npz.stem}-v{FORMAT_VERSION}-{npz_digest(npz)[:16]}"


def _open(npz: Path) -> np.lib.npyio.NpzFile:
    require_regular_file(npz, "a DermaMNIST .npz file")
    try:
        return np.load(npz, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{npz}: not a readable .npz file ({exc})") from None


def _npy_header(fh) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    return np.lib.format.read_array_header_2_0(fh)


def _member_header(npz: Path, zf: zipfile.ZipFile, key: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The header of the member ``<key>.npy``, after checking that its data is what the header declares."""
    info = zf.getinfo(f"{key}.npy")
    try:
        with zf.open(info) as fh:
            shape, fortran, dtype = _npy_header(fh)
            start = fh.tell()
    except _READ_ERRORS as exc:
        raise DatasetError(f"{npz}: {key} is not a readable .npy array ({exc})") from None
    if dtype.hasobject:
        raise DatasetError(f"{npz}: {key} is an array of Python objects ({dtype}); expected numbers (uint8 images, "
                           f"integer labels)")
    ratio = _MAX_RATIO.get(info.compress_type)
    if ratio is None:
        raise DatasetError(f"{npz}: {key} is compressed with method {info.compress_type}; expected stored or "
                           f"deflated members, as numpy writes")
    if info.file_size > ratio * info.compress_size + 1024:
        raise DatasetError(f"{npz}: {key} claims {info.file_size} bytes, more than its {info.compress_size} "
                           f"compressed bytes can hold (a damaged or crafted file)")
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    held = info.file_size - start
    if declared != held:
        raise DatasetError(f"{npz}: {key}'s header declares {dtype} {tuple(shape)} ({declared} bytes) but it holds "
                           f"{held} bytes of data (a truncated, damaged or crafted file)")
    return tuple(shape), fortran, dtype


def _keys() -> list[str]:
    """The arrays a DermaMNIST file holds, in its order: each split's images, then its labels."""
    return [f"{split}_{kind}" for split in SPLITS for kind in ("images", "labels")]


def _headers(npz: Path) -> dict[str, tuple[tuple[int, ...], bool, np.dtype]]:
    """The checked headers of every ``<split>_images`` and ``<split>_labels``, read without reading the arrays."""
    require_regular_file(npz, "a DermaMNIST .npz file")
    try:
        with zipfile.ZipFile(npz) as zf:
            keys = {name[:-4] for name in zf.namelist() if name.endswith(".npy")}
            missing = [key for key in _keys() if key not in keys]
            if missing:
                raise DatasetError(
                    f"{npz}: not a DermaMNIST file: missing {', '.join(missing)}; found "
                    f"{', '.join(sorted(keys)) or 'none'}"
                )
            headers = {key: _member_header(npz, zf, key) for key in _keys()}
    except DatasetError:
        raise
    except _READ_ERRORS as exc:
        raise DatasetError(f"{npz}: not a readable .npz file ({exc})") from None
    for split in SPLITS:
        shape, _, dtype = headers[f"{split}_images"]
        if dtype != np.uint8 or len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] not in (1, 3)):
            raise DatasetError(
                f"{npz}: {split}_images is {dtype} {shape}; expected uint8 images, N x H x W x 3 (RGB) or N x H x W"
            )
        if min(shape[1:3]) < MIN_SIDE:
            raise DatasetError(f"{npz}: {split}_images is {shape}: images of height {shape[1]} and width {shape[2]}; "
                               f"expected images at least {MIN_SIDE} x {MIN_SIDE}")
        labels, _, label_dtype = headers[f"{split}_labels"]
        if (len(labels) not in (1, 2) or (len(labels) == 2 and labels[1] != 1) or labels[0] != shape[0]
                or label_dtype.kind not in "iu"):
            raise DatasetError(
                f"{npz}: {split}_labels is {label_dtype} {labels}; expected {shape[0]} integer labels (N x 1), "
                f"one per image of {split}_images"
            )
    return headers


def read_labels(npz: Path) -> dict[str, np.ndarray]:
    """The labels of each split, ``{"train": array, ...}`` (int64, one per image), after checking them.

    Each split needs ``<split>_images`` and ``<split>_labels``; labels are N x 1 or
    N integers 0-6, one per image. The ``.npy`` headers are checked first, against each
    other and the archive (see the module's notes), so that a crafted header is refused
    before anything is allocated. Anything else raises :class:`DatasetError` naming the
    file, the key and what was expected. Reads the labels and the images' headers, not
    the images.

    Parameters
    ----------
    npz : pathlib.Path
        The DermaMNIST ``.npz`` file.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{"train": labels, "val": labels, "test": labels}``: each split's labels as int64,
        0-6 (indices into :data:`CLASSES`), one per image of ``<split>_images``.
    """
    _headers(npz)
    out = {}
    with _open(npz) as z:
        for split in SPLITS:
            try:
                labels = z[f"{split}_labels"]
            except _READ_ERRORS as exc:
                raise DatasetError(f"{npz}: {split}_labels cannot be read ({exc})") from None
            labels = labels.reshape(-1)
            bad = np.flatnonzero((labels < 0) | (labels >= len(CLASSES)))
            if bad.size:
                raise DatasetError(
                    f"{npz}: {split}_labels[{int(bad[0])}] is {int(labels[bad[0]])}; expected 0-{len(CLASSES) - 1} "
                    f"({', '.join(CLASSES)}) ({bad.size} label(s) out of range)"
                )
            out[split] = labels.astype(np.int64)
    return out


def _images(npz: Path, split: str):
    """The images of one split, one at a time (so a 224 x 224 file is not loaded whole)."""
    shape, fortran, dtype = _headers(npz)[f"{split}_images"]
    try:
        if fortran:  # not what MedMNIST writes; read it whole
            with _open(npz) as z:
                yield from z[f"{split}_images"]
            return
        size = int(np.prod(shape[1:])) * dtype.itemsize
        with zipfile.ZipFile(npz) as zf, zf.open(f"{split}_images.npy") as fh:
            _npy_header(fh)
            for _ in range(shape[0]):
                data = fh.read(size)
                if len(data) != size:
                    raise DatasetError(f"{npz}: {split}_images ends early (truncated file)")
                yield np.frombuffer(data, dtype=dtype).reshape(shape[1:])
    except DatasetError:
        raise
    except _READ_ERRORS as exc:
        raise DatasetError(f"{npz}: {split}_images cannot be read ({exc})") from None


def _png(npz: Path, split: str, i: int, img: np.ndarray) -> bytes:
    """Image ``i`` of ``<split>_images`` (RGB) as the bytes of a PNG file."""
    if img.ndim == 3 and img.shape[2] == 3:
        img = img[:, :, ::-1]  # RGB to the BGR order OpenCV writes
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img))
    if not ok:
        raise DatasetError(f"{npz}: image {i} of {split}_images could not be encoded as PNG")
    return buf.tobytes()


def _png_name(split: str, i: int) -> str:
    return f"{split}_{i:05d}.png"


def _write_pngs(npz: Path, folder: Path) -> None:
    for split in SPLITS:
        (folder / split).mkdir()
        for i, img in enumerate(_images(npz, split)):
            (folder / split / _png_name(split, i)).write_bytes(_png(npz, split, i, img))


def _missing_pngs(folder: Path, counts: dict[str, int]) -> dict[str, set[int]]:
    """The images of each split whose PNG file is not in ``folder`` as written: absent, empty or no plain file."""
    missing = {}
    for split, n in counts.items():
        try:
            present = {e.name for e in os.scandir(folder / split)
                       if e.is_file(follow_symlinks=False) and e.stat(follow_symlinks=False).st_size > 0}
        except OSError:
            present = set()
        absent = {i for i in range(n) if _png_name(split, i) not in present}
        if absent:
            missing[split] = absent
    return missing


def _repair_pngs(npz: Path, folder: Path, missing: dict[str, set[int]]) -> None:
    """Write the PNG files of ``missing`` again, each atomically: a reader sees the old entry or the whole file."""
    for split, indices in missing.items():
        (folder / split).mkdir(exist_ok=True)
        for i, img in enumerate(_images(npz, split)):
            if i in indices:
                data = _png(npz, split, i, img)
                atomic_write(folder / split / _png_name(split, i), lambda fh: fh.write(data))


def materialise(npz: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder of ``npz``'s images as PNG files (``<split>/<split>_<index>.png``), written on first use.

    The folder is :func:`image_folder`: under ``cache_dir`` (default
    :func:`default_cache_dir`, never beside the ``.npz``), named after the file's
    content. It is built in a temporary folder beside it and renamed into place, so
    it is complete or absent; when another process made it meanwhile, that one is
    used. A PNG file of an existing folder that is missing (deleted, emptied, or
    replaced by a link, a FIFO or anything but a plain file) is written again, each
    atomically, so that a load never skips it as missing. The PNG files show the
    colours the arrays hold (RGB).

    Parameters
    ----------
    npz : str or os.PathLike
        The DermaMNIST ``.npz`` file (``~`` expanded). Its keys, headers and labels are checked
        (:func:`read_labels`) before anything is written.
    cache_dir : str or os.PathLike, optional
        The folder the PNG folder is made in (created when missing, ``~`` expanded). Default
        ``None``: :func:`default_cache_dir`.

    Returns
    -------
    pathlib.Path
        The PNG folder: ``train/``, ``val/`` and ``test/``, each holding one
        ``<split>_<index>.png`` per image, the index zero-padded to five digits (``train_00000.png``).

    Raises
    ------
    DatasetError
        When ``npz`` is not a readable DermaMNIST file, or an image cannot be encoded.
    OSError
        When the folder cannot be made under ``cache_dir`` (the message suggests another
        ``cache_dir``).

    Examples
    --------
    >>> folder = materialise("~/data/dermamnist.npz")  # doctest: +SKIP
    >>> sorted(p.name for p in folder.iterdir())  # doctest: +SKIP
    ['test', 'train', 'val']
    """
    npz = Path(npz).expanduser()
    labels = read_labels(npz)  # checks keys, headers and labels before anything is written
    folder = image_folder(npz, cache_dir)
    if folder.is_dir():
        missing = _missing_pngs(folder, {split: len(codes) for split, codes in labels.items()})
        if missing:
            _repair_pngs(npz, folder, missing)
        return folder
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    except OSError as exc:
        raise OSError(
            f"cannot write DermaMNIST's PNG folder under {folder.parent}: {exc.strerror or exc}; "
            f"pass cache_dir= (on the command line, --png-dir) to put it elsewhere"
        ) from exc
    try:
        _write_pngs(npz, tmp)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not folder.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished first: use its folder
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_dermamnist(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """DermaMNIST as a table, one row per image: its ``.npz`` (or a folder holding one) through :func:`materialise`.

    Parameters
    ----------
    path : str or os.PathLike
        A DermaMNIST ``.npz`` file, or a folder holding exactly one (:func:`find_npz`);
        ``~`` expanded.
    cache_dir : str or os.PathLike, optional
        The folder its PNG folder is written in, once (see :func:`materialise`). Default
        ``None``: :func:`default_cache_dir`, never beside the ``.npz``.

    Returns
    -------
    pandas.DataFrame
        Columns: ``path`` (the PNG file), ``label`` (1 for ``akiec``, ``bcc`` and
        ``mel``), ``group`` (the image: the split is by image), ``source_split``
        (``train``, ``val``, ``test``: the official split), ``image`` (``train_00012``),
        ``index`` (within its split) and ``dx`` (the class name, refused as a model
        input). ``df.attrs["root"]`` is the PNG folder, ``df.attrs["npz"]`` the file.

    Examples
    --------
    >>> df = load_dermamnist("~/data/dermamnist_64.npz")  # doctest: +SKIP
    >>> df.groupby("source_split").size().to_dict()  # doctest: +SKIP
    {'test': 2005, 'train': 7007, 'val': 1003}
    """
    path = Path(path).expanduser()
    npz = find_npz(path) if path.is_dir() else path
    require_regular_file(npz, "a DermaMNIST .npz file")
    labels = read_labels(npz)
    folder = materialise(npz, cache_dir)
    parts = []
    for split in SPLITS:
        codes = labels[split]
        names = [f"{split}_{i:05d}" for i in range(len(codes))]
        dx = np.array(CLASSES, dtype=object)[codes]
        parts.append(pd.DataFrame({
            "path": [str(folder / split / f"{name}.png") for name in names],
            "label": np.isin(dx, list(MALIGNANT)).astype(int),
            "group": names,
            "source_split": split,
            "image": names,
            "index": np.arange(len(codes)),
            "dx": dx,
        }))
    df = finish_table(pd.concat(parts, ignore_index=True), [], folder, "dermamnist")
    df.attrs["npz"] = str(npz)
    return df
