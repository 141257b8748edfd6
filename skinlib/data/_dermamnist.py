"""DermaMNIST (MedMNIST v2) as image files: the arrays of its ``.npz`` written once as PNG files.

DermaMNIST ships its images as arrays (``train_images``, ``val_images``,
``test_images``: uint8, N x H x W x 3, RGB) with labels 0-6 (``*_labels``, N x 1) in
a single ``.npz`` file per size: ``dermamnist.npz`` (28 x 28), ``dermamnist_64.npz``,
``dermamnist_128.npz`` and ``dermamnist_224.npz``. Everything else in skinlib reads
images from paths (preprocessing and duplicate caches are keyed by file stamps), so
:func:`materialise` writes each image once as a PNG file into a folder named after a
hash of the ``.npz`` file's bytes: the same file gives the same folder wherever it
lies, and a changed file a new one. The folder is built beside its final place and
renamed into it, so an interrupted run leaves no half folder; nothing is written
beside the ``.npz`` unless ``cache_dir`` says so.

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
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from skinlib._shared.paths import project_dir
from skinlib.data._reading import DatasetError, finish_table

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
    try:
        return np.load(npz, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{npz}: not a readable .npz file ({exc})") from None


def read_labels(npz: Path) -> dict[str, np.ndarray]:
    """The labels of each split, ``{"train": array, ...}`` (int64, one per image), after checking them.

    Each split needs ``<split>_images`` and ``<split>_labels``; labels are N x 1 or
    N integers 0-6, one per image. Anything else raises :class:`DatasetError` naming
    the file, the key and what was expected. Reads the labels and the images' shapes,
    not the images.

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
    with _open(npz) as z:
        keys = set(z.files)
        missing = [f"{s}_{kind}" for s in SPLITS for kind in ("images", "labels") if f"{s}_{kind}" not in keys]
        if missing:
            raise DatasetError(
                f"{npz}: not a DermaMNIST file: missing {', '.join(missing)}; found {', '.join(sorted(keys)) or 'none'}"
            )
        out = {}
        for split in SPLITS:
            labels = z[f"{split}_labels"]
            n = _image_shape(npz, split)[0]
            if labels.ndim == 2 and labels.shape[1] == 1:
                labels = labels[:, 0]
            if labels.ndim != 1 or labels.shape[0] != n or not np.issubdtype(labels.dtype, np.integer):
                raise DatasetError(
                    f"{npz}: {split}_labels is {labels.dtype} {tuple(z[f'{split}_labels'].shape)}; expected "
                    f"{n} integer labels (N x 1), one per image of {split}_images"
                )
            bad = np.flatnonzero((labels < 0) | (labels >= len(CLASSES)))
            if bad.size:
                raise DatasetError(
                    f"{npz}: {split}_labels[{int(bad[0])}] is {int(labels[bad[0]])}; expected 0-{len(CLASSES) - 1} "
                    f"({', '.join(CLASSES)}) ({bad.size} label(s) out of range)"
                )
            out[split] = labels.astype(np.int64)
    return out


def _npy_header(fh) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    return np.lib.format.read_array_header_2_0(fh)


def _image_shape(npz: Path, split: str) -> tuple[int, ...]:
    """The shape of ``<split>_images``, read from its header (the images are not loaded)."""
    return _image_header(npz, split)[0]


def _image_header(npz: Path, split: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    with zipfile.ZipFile(npz) as zf, zf.open(f"{split}_images.npy") as fh:
        shape, fortran, dtype = _npy_header(fh)
    if dtype != np.uint8 or len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] not in (1, 3)):
        raise DatasetError(
            f"{npz}: {split}_images is {dtype} {tuple(shape)}; expected uint8 images, N x H x W x 3 (RGB) or N x H x W"
        )
    return tuple(shape), fortran, dtype


def _images(npz: Path, split: str):
    """The images of one split, one at a time (so a 224 x 224 file is not loaded whole)."""
    shape, fortran, dtype = _image_header(npz, split)
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


def _write_pngs(npz: Path, folder: Path) -> None:
    for split in SPLITS:
        (folder / split).mkdir()
        for i, img in enumerate(_images(npz, split)):
            if img.ndim == 3 and img.shape[2] == 3:
                img = img[:, :, ::-1]  # RGB to the BGR order OpenCV writes
            ok, buf = cv2.imencode(".png", np.ascontiguousarray(img))
            if not ok:
                raise DatasetError(f"{npz}: image {i} of {split}_images could not be encoded as PNG")
            (folder / split / f"{split}_{i:05d}.png").write_bytes(buf.tobytes())


def materialise(npz: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder of ``npz``'s images as PNG files (``<split>/<split>_<index>.png``), written on first use.

    The folder is :func:`image_folder`: under ``cache_dir`` (default
    :func:`default_cache_dir`, never beside the ``.npz``), named after the file's
    content. It is built in a temporary folder beside it and renamed into place, so
    it is complete or absent; when another process made it meanwhile, that one is
    used. The PNG files show the colours the arrays hold (RGB).

    Parameters
    ----------
    npz : str or os.PathLike
        The DermaMNIST ``.npz`` file (``~`` expanded). Its keys, shapes and labels are checked
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
    read_labels(npz)  # checks keys, shapes and labels before anything is written
    folder = image_folder(npz, cache_dir)
    if folder.is_dir():
        return folder
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    except OSError as exc:
        raise OSError(
            f"cannot write DermaMNIST's PNG folder under {folder.parent}: {exc.strerror or exc}; "
            f"pass cache_dir= to put it elsewhere"
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
