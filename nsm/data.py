"""Datasets for the software NSM: MNIST, Fashion-MNIST (IDX files) and scikit-learn's 8x8 digits.

Every loader returns **torch tensors** ``(x, y)``: ``x`` float32 of shape (N, 1, H, W) with pixel
intensities scaled to [0, 1], ``y`` int64 of shape (N,) with class indices. Binarising the input
(sign(2x - 1), docs/model.md §2) is the model's job, not the loader's. For numpy arrays use
:func:`read_idx` / :func:`read_image_label_pair` directly.

Where the files come from (first match wins):

1. the ``root`` argument;
2. an environment variable: ``NSMX_MNIST_DIR`` for MNIST, ``NSMX_FASHION_MNIST_DIR`` for
   Fashion-MNIST;
3. Fashion-MNIST only: ``/usr/share/datasets/fashion-mnist`` when it exists (where Debian's
   ``dataset-fashion-mnist`` package installs the four files).

A folder holds the four standard files, raw or gzip-compressed (detected by content), under their
standard names with or without ``.gz``: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``. MNIST can be downloaded with checksum
verification (:func:`download_mnist`, or ``download=True``). The digits set ships with
scikit-learn and needs no files at all: it is the embedded offline default.

Nothing here is read, imported or downloaded at import time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nsm._download import MNIST_FILES, MNIST_MIRRORS, RemoteFile, download_files, verify_file
from nsm._idx import (
    MAGIC_IMAGES_U8,
    MAGIC_LABELS_U8,
    DatasetError,
    read_idx,
    read_image_label_pair,
)

__all__ = [
    "DATASET_NAMES",
    "FASHION_MNIST_SYSTEM_DIR",
    "MAGIC_IMAGES_U8",
    "MAGIC_LABELS_U8",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "DatasetError",
    "DatasetInfo",
    "RemoteFile",
    "dataset_info",
    "download_mnist",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
    "read_image_label_pair",
    "verify_file",
]

SPLITS = ("train", "test")
DATASET_NAMES = ("digits", "mnist", "fashion-mnist")

MNIST_ENV = "NSMX_MNIST_DIR"
FASHION_MNIST_ENV = "NSMX_FASHION_MNIST_DIR"
# Install location of Debian/Ubuntu's `dataset-fashion-mnist` package (`dpkg -L` lists the four
# *-ubyte.gz files there). A system path, used only when no folder is given and it exists.
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

# File stems by split: the IDX names used by MNIST and (identically) by Fashion-MNIST.
_IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset before loading it.

    Attributes:
        name: one of :data:`DATASET_NAMES`.
        image_shape: (channels, height, width) of one sample in ``x``.
        n_classes: number of classes; labels are 0 .. n_classes - 1.
        class_names: human-readable name of each class index.
        env_var: the environment variable naming its folder, or None for embedded data.
    """

    name: str
    image_shape: tuple[int, int, int]
    n_classes: int
    class_names: tuple[str, ...]
    env_var: str | None

    @property
    def n_features(self) -> int:
        """Pixels per sample (C*H*W): the fan-in of a first fully connected layer."""
        c, h, w = self.image_shape
        return c * h * w


_DIGIT_NAMES = tuple(str(k) for k in range(10))
_INFO = {
    "digits": DatasetInfo("digits", (1, 8, 8), 10, _DIGIT_NAMES, None),
    "mnist": DatasetInfo("mnist", (1, 28, 28), 10, _DIGIT_NAMES, MNIST_ENV),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        (1, 28, 28),
        10,
        # Class order of Zalando's Fashion-MNIST README (label 0 .. 9).
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        FASHION_MNIST_ENV,
    ),
}


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(
            f"name: expected a str, one of {', '.join(DATASET_NAMES)}, found {type(name).__name__}"
        )
    key = name.strip().lower().replace("_", "-")
    if key not in _INFO:
        raise ValueError(f"name: unknown dataset {name!r}; allowed: {', '.join(DATASET_NAMES)}")
    return key


def _check_split(split: object) -> str:
    if split not in SPLITS:
        raise ValueError(f"split: expected 'train' or 'test', found {split!r}")
    return str(split)


def _check_bool(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{field}: expected a bool, found {type(value).__name__} {value!r}")
    return value


def dataset_info(name: str) -> DatasetInfo:
    """Shape, class count and class names of a dataset (no data is read).

    Raises:
        ValueError: ``name`` is not one of :data:`DATASET_NAMES` (the message lists them).
    """
    return _INFO[_check_name(name)]


def _resolve_root(
    root: str | os.PathLike[str] | None, env_var: str, label: str, system_dir: Path | None = None
) -> tuple[Path, str]:
    """The data folder and a phrase saying where it came from (for error messages)."""
    if root is not None:
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root: expected a str or os.PathLike, found {type(root).__name__}")
        return Path(root).expanduser(), "the root argument"
    from_env = os.environ.get(env_var, "").strip()
    if from_env:
        return Path(from_env).expanduser(), f"the environment variable {env_var}"
    if system_dir is not None and system_dir.is_dir():
        return system_dir, "the system folder of the dataset-fashion-mnist package"
    hint = f" (or install Debian's dataset-fashion-mnist into {system_dir})" if system_dir else ""
    raise DatasetError(
        f"no {label} folder given: pass root=<folder> or set the environment variable {env_var} to "
        f"a folder holding the four IDX files (train-images-idx3-ubyte[.gz], "
        f"train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz])"
        f"{hint}"
    )


def _find_idx(folder: Path, stem: str, origin: str, hint: str) -> Path:
    """``folder/stem`` or ``folder/stem.gz`` (raw first: it needs no decompression)."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetError(
        f"{folder}: missing {stem}: looked for {stem} and {stem}.gz (folder from {origin}){hint}"
    )


def _to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, H, W) and integer (N,) arrays -> float32 (N, 1, H, W) in [0, 1], int64 (N,)."""
    x = torch.from_numpy(images).unsqueeze(1).to(torch.float32).div_(255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def _load_idx_dataset(
    folder: Path, origin: str, split: str, hint: str
) -> tuple[torch.Tensor, torch.Tensor]:
    if not folder.is_dir():
        raise DatasetError(f"{folder}: folder not found (from {origin}){hint}")
    images_stem, labels_stem = _IDX_STEMS[split]
    images_path = _find_idx(folder, images_stem, origin, hint)
    labels_path = _find_idx(folder, labels_stem, origin, hint)
    images, labels = read_image_label_pair(images_path, labels_path, image_shape=(28, 28))
    return _to_tensors(images, labels)


def download_mnist(
    root: str | os.PathLike[str],
    *,
    base_url: str | Sequence[str] | None = None,
    progress: bool = True,
    timeout_s: float = 60.0,
) -> list[Path]:
    """Download the four MNIST files into ``root`` (created if needed), verifying each one.

    Files already present (raw or gzip) whose content verifies are kept. Each download goes to a
    temporary file in ``root`` and is renamed into place only after its uncompressed content
    matches the official size, MD5 and SHA-256 (:data:`MNIST_FILES`); anything else is deleted.

    Args:
        root: destination folder.
        base_url: a mirror URL (``http``, ``https`` or ``file``) or a sequence tried in order;
            default: :data:`MNIST_MIRRORS`.
        progress: show a tqdm progress bar on stderr per file.
        timeout_s: socket timeout per request, seconds.

    Returns:
        The paths of the four verified files (train images, train labels, test images, test labels).

    Raises:
        DatasetError: no mirror delivered a verified copy of some file; the message lists each URL
            tried and why (connection error, incomplete download, checksum expected vs found).
    """
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root: expected a str or os.PathLike, found {type(root).__name__}")
    _check_bool("progress", progress)
    if not timeout_s > 0:
        raise ValueError(f"timeout_s: expected a positive number of seconds, found {timeout_s!r}")
    if base_url is None:
        base_url = MNIST_MIRRORS
    base_urls = (base_url,) if isinstance(base_url, str) else tuple(base_url)
    return download_files(
        root, MNIST_FILES, base_urls=base_urls, progress=progress, timeout_s=timeout_s
    )


def load_mnist(
    root: str | os.PathLike[str] | None = None, *, split: str = "train", download: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split of MNIST.

    Args:
        root: folder with the IDX files; default: the environment variable ``NSMX_MNIST_DIR``.
        split: ``"train"`` (60,000 samples) or ``"test"`` (10,000).
        download: fetch missing or invalid files into the folder first (:func:`download_mnist`).

    Returns:
        ``(x, y)``: x float32 (N, 1, 28, 28) in [0, 1]; y int64 (N,) in 0..9.

    Raises:
        DatasetError: no folder given, folder or file missing, or a malformed file (the message
            names the file and what is wrong).
    """
    split = _check_split(split)
    _check_bool("download", download)
    folder, origin = _resolve_root(root, MNIST_ENV, "MNIST")
    if download:
        download_mnist(folder, progress=True)
    hint = "; load_mnist(..., download=True) or nsm.data.download_mnist(root) fetches MNIST"
    return _load_idx_dataset(folder, origin, split, hint)


def load_fashion_mnist(
    root: str | os.PathLike[str] | None = None, *, split: str = "train", download: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split of Fashion-MNIST (Xiao, Rasul & Vollgraf 2017).

    Args:
        root: folder with the IDX files; default: the environment variable
            ``NSMX_FASHION_MNIST_DIR``, else :data:`FASHION_MNIST_SYSTEM_DIR` if it exists.
        split: ``"train"`` (60,000 samples) or ``"test"`` (10,000).
        download: accepted for a uniform signature; no checksummed download exists for
            Fashion-MNIST, so when files are missing the error says how to obtain them.

    Returns:
        ``(x, y)``: x float32 (N, 1, 28, 28) in [0, 1]; y int64 (N,) in 0..9.

    Raises:
        DatasetError: as :func:`load_mnist`.
    """
    split = _check_split(split)
    _check_bool("download", download)
    folder, origin = _resolve_root(
        root, FASHION_MNIST_ENV, "Fashion-MNIST", system_dir=FASHION_MNIST_SYSTEM_DIR
    )
    hint = (
        "; downloading is supported for MNIST only (no verified checksum table for Fashion-MNIST): "
        "install Debian's dataset-fashion-mnist or copy the four files into the folder"
    )
    return _load_idx_dataset(folder, origin, split, hint)


def load_digits(
    split: str = "train", *, test_fraction: float = 0.25, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 samples), split deterministically.

    The split is stratified: within each class, a permutation drawn from
    ``numpy.random.default_rng(seed)`` puts ``round(test_fraction * n_class)`` samples in the test
    set and the rest in the training set. Samples keep their original order within a split. The
    same ``(test_fraction, seed)`` always gives the same, disjoint split.

    Args:
        split: ``"train"`` or ``"test"``.
        test_fraction: share of each class held out for testing, in (0, 1).
        seed: non-negative integer seed of the split.

    Returns:
        ``(x, y)``: x float32 (N, 1, 8, 8) in [0, 1] (the 0..16 pixel counts divided by 16);
        y int64 (N,) in 0..9.
    """
    split = _check_split(split)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)):
        raise TypeError(f"test_fraction: expected a float, found {type(test_fraction).__name__}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction: expected a value in (0, 1), found {test_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, found {seed!r}")

    from sklearn.datasets import load_digits as _sklearn_digits  # heavy import, only when used

    bunch = _sklearn_digits()
    images = np.asarray(bunch.images, dtype=np.float32)  # (1797, 8, 8), integer counts 0..16
    labels = np.asarray(bunch.target, dtype=np.int64)
    is_test = _stratified_test_mask(labels, test_fraction, np.random.default_rng(seed))
    keep = is_test if split == "test" else ~is_test
    # 16 = 4x4 block of the 32x32 bitmaps each 8x8 pixel counts (UCI optdigits description).
    x = torch.from_numpy(images[keep] / np.float32(16.0)).unsqueeze(1)
    y = torch.from_numpy(labels[keep])
    return x, y


def _stratified_test_mask(
    labels: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Boolean mask (N,): True for the test samples, ``round(test_fraction * n_c)`` per class."""
    is_test = np.zeros(labels.shape[0], dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_test = round(test_fraction * members.size)
        is_test[rng.permutation(members)[:n_test]] = True
    return is_test


def load_dataset(
    name: str,
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a dataset by name: the single entry point of the command-line app.

    Args:
        name: ``"digits"``, ``"mnist"`` or ``"fashion-mnist"`` (case and ``_``/``-`` insensitive).
        split: ``"train"`` or ``"test"``.
        root: data folder for the IDX datasets (see module docstring); ignored for ``"digits"``,
            which is embedded in scikit-learn.
        download: for ``"mnist"``, fetch missing files first; ignored for ``"digits"``.

    Returns:
        ``(x, y)``: float32 (N, 1, H, W) in [0, 1] and int64 (N,), as the specific loaders.

    Raises:
        ValueError: unknown ``name`` (the message lists the allowed names) or ``split``.
        DatasetError: missing or malformed data files.
    """
    key = _check_name(name)
    if key == "digits":
        return load_digits(split)
    if key == "mnist":
        return load_mnist(root, split=split, download=download)
    return load_fashion_mnist(root, split=split, download=download)
