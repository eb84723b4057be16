"""The user's own data: one ``.npz`` file, validated at the boundary.

The file holds numpy arrays (read with ``allow_pickle=False``: data, never code):

``x``, ``y``              the evaluation split (test set): inputs (N, *input_shape) and integer
                          labels (N,) in [0, n_classes − 1];
``x_train``, ``y_train``  optional: the training split (``nsmx train``, ``nsmx learn``) and the
                          calibration examples of a chip (never the evaluated split).

Inputs are real numbers in [0, 1] as the bundled loaders give them (the network binarises them
with sign(2x − 1)); ``uint8`` inputs are scaled by 1/255 like image files. An input of shape
(N, prod(input_shape)) is reshaped to (N, *input_shape). Every problem raises
:class:`~nsm._idx.DatasetError` naming the file, the array and what was expected.
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from nsm._idx import DatasetError

#: The array names of each split.
SPLIT_ARRAYS = {"test": ("x", "y"), "train": ("x_train", "y_train")}


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"{path}: data file not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(
            f"{path}: not a readable .npz of numpy arrays ({type(exc).__name__}: {exc})"
        ) from exc


def _inputs(path: Path, name: str, x: np.ndarray, input_shape: Sequence[int] | None) -> np.ndarray:
    if x.dtype == bool or not (
        np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
    ):
        raise DatasetError(f"{path}: array {name!r} has dtype {x.dtype}; expected real numbers")
    if x.ndim < 2 or x.shape[0] == 0:
        raise DatasetError(
            f"{path}: array {name!r} has shape {x.shape}; expected (N, ...) with N >= 1"
        )
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        bad = int(x.size - np.count_nonzero(np.isfinite(x)))
        raise DatasetError(f"{path}: array {name!r} holds {bad} non-finite values (NaN or inf)")
    if input_shape is not None:
        shape = tuple(int(d) for d in input_shape)
        if x.shape[1:] != shape:
            if x[0].size != math.prod(shape):
                raise DatasetError(
                    f"{path}: array {name!r} has examples of shape {x.shape[1:]}; the network "
                    f"takes {shape} ({math.prod(shape)} values each)"
                )
            x = x.reshape(x.shape[0], *shape)
    return x


def _labels(path: Path, name: str, y: np.ndarray, n: int, n_classes: int | None) -> np.ndarray:
    if y.dtype == bool or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(
            f"{path}: array {name!r} has dtype {y.dtype}; expected integer class labels"
        )
    if y.shape != (n,):
        raise DatasetError(f"{path}: array {name!r} has shape {y.shape}; expected ({n},)")
    high = n_classes - 1 if n_classes is not None else None
    if y.min() < 0 or (high is not None and y.max() > high):
        bad = int(np.argmax((y < 0) | (y > (high if high is not None else np.inf))))
        allowed = f"[0, {high}]" if high is not None else "[0, inf)"
        raise DatasetError(
            f"{path}: array {name!r} holds label {int(y[bad])} at index {bad}; allowed: {allowed}"
        )
    return y.astype(np.int64)


def load_npz(
    path: str | os.PathLike[str],
    split: str = "test",
    *,
    input_shape: Sequence[int] | None = None,
    n_classes: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of a user ``.npz`` (module docstring) as ``(x float32, y int64)`` tensors.

    ``input_shape``: the network's input (without N), checked and reshaped to; ``n_classes``: the
    labels must lie in [0, n_classes − 1]. ``split="train"`` needs ``x_train``/``y_train``.
    """
    if split not in SPLIT_ARRAYS:
        raise ValueError(f"split={split!r} is not one of {list(SPLIT_ARRAYS)}")
    path = Path(path)
    arrays = _read(path)
    x_name, y_name = SPLIT_ARRAYS[split]
    missing = [k for k in (x_name, y_name) if k not in arrays]
    if missing:
        have = ", ".join(sorted(arrays)) or "no arrays"
        raise DatasetError(
            f"{path}: lacks the array(s) {missing} of the {split} split (it holds {have}); "
            "expected x, y and optionally x_train, y_train"
        )
    x = _inputs(path, x_name, arrays[x_name], input_shape)
    y = _labels(path, y_name, arrays[y_name], x.shape[0], n_classes)
    return torch.from_numpy(x), torch.from_numpy(y)


def has_split(path: str | os.PathLike[str], split: str) -> bool:
    """Whether the ``.npz`` holds both arrays of ``split`` (without loading them)."""
    try:
        with np.load(Path(path), allow_pickle=False) as npz:
            return all(k in npz.files for k in SPLIT_ARRAYS[split])
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError):
        return False


def save_npz(
    path: str | os.PathLike[str],
    x: np.ndarray,
    y: np.ndarray,
    x_train: np.ndarray | None = None,
    y_train: np.ndarray | None = None,
) -> Path:
    """Write arrays in the layout :func:`load_npz` reads (a convenience for users and tests)."""
    arrays = {"x": np.asarray(x), "y": np.asarray(y)}
    if (x_train is None) != (y_train is None):
        raise ValueError("x_train and y_train go together: give both or neither")
    if x_train is not None:
        arrays |= {"x_train": np.asarray(x_train), "y_train": np.asarray(y_train)}
    path = Path(path)
    np.savez(path, **arrays)
    return path
