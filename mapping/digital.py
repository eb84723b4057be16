"""The digital steps of a crossbar program, written once for every dtype.

What the chip's digital periphery does between crossbar reads, and what the numpy reference and
in-situ learning do in software: the input binariser, the im2col unrolling of a convolution's
input into the patches its columns read, folding per-location column outputs back to
(C, H', W'), max-pooling over ±1 states and flattening. The runtime calls these with
``dtype=np.int8`` (±1 states, memory-light), the reference and learning with ``np.float64``;
the values are the same.

Shapes (B = batch): a dense layer reads patches (B, 1, fan_in); a convolution (C_in, H, W) reads
(B, L, K) with L = H'·W' (patch l = h'·W' + w') and K = C_in·kH·kW (entry c·kH·kW + i·kW + j,
the column order of ``torch.nn.functional.unfold`` and of the program's weight rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mapping.records import (
    BinariseLayer,
    BinaryMatrixLayer,
    DenseLayer,
    FlattenLayer,
    MaxPoolLayer,
)


def binarise(layer: BinariseLayer, x: Any, dtype: Any = np.float64) -> np.ndarray:
    """+1 where x >= ``layer.threshold`` else −1, as ``dtype`` (same shape as x).

    x is compared in its own dtype (no conversion), so the same inputs binarise alike on every
    path.
    """
    return np.where(np.asarray(x) >= layer.threshold, 1, -1).astype(dtype)


def _windows(
    z: np.ndarray,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    pad_value: float,
) -> np.ndarray:
    """(B, C, H, W) → (B, C, H', W', kH, kW) views of every window (a copy only for padding)."""
    ph, pw = padding
    if ph or pw:
        z = np.pad(z, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    win = sliding_window_view(z, kernel_size, axis=(2, 3))
    return win[:, :, :: stride[0], :: stride[1]]


def patches(layer: BinaryMatrixLayer, z: Any, dtype: Any = np.float64) -> np.ndarray:
    """The states each column reads, (B, L, K) of ``dtype``, C-contiguous.

    Dense: (B, 1, fan_in). Conv: im2col with zero padding (0 is an undriven row).
    """
    if isinstance(layer, DenseLayer):
        return np.ascontiguousarray(z, dtype=dtype)[:, None, :]
    win = _windows(np.asarray(z), layer.kernel_size, layer.stride, layer.padding, 0)
    b, c, h, w, kh, kw = win.shape
    return np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5), dtype=dtype).reshape(
        b, h * w, c * kh * kw
    )


def fold(layer: BinaryMatrixLayer, y: Any) -> np.ndarray:
    """(B, L, N) per-location column outputs → (B, *layer.out_shape), channels first for conv."""
    y = np.asarray(y)
    if isinstance(layer, DenseLayer):
        return y[:, 0, :]
    return np.ascontiguousarray(y.transpose(0, 2, 1)).reshape(y.shape[0], *layer.out_shape)


def maxpool(layer: MaxPoolLayer, z: Any) -> np.ndarray:
    """Max over each window of (B, C, H, W) states, (B, *layer.out_shape), z's dtype.

    On ±1 states a logical OR. The padding is never selected: −inf for floats, the dtype's
    minimum for integers (−128 for int8), as torch's implicit −inf padding.
    """
    z = np.asarray(z)
    pad = np.iinfo(z.dtype).min if np.issubdtype(z.dtype, np.integer) else -np.inf
    win = _windows(z, layer.kernel_size, layer.stride, layer.padding, pad)
    # The max of kH·kW strided views, one element-wise np.maximum each: the same values as
    # win.max(axis=(-2, -1)) (max is exact), without numpy's slow reduction over a 6-D view.
    kh, kw = layer.kernel_size
    out = np.array(win[..., 0, 0])
    for i in range(kh):
        for j in range(kw):
            if i or j:
                np.maximum(out, win[..., i, j], out=out)
    return out


def flatten(z: Any) -> np.ndarray:
    """(B, d0, d1, ...) → (B, d0·d1·...) in C order (torch's ``nn.Flatten``)."""
    z = np.asarray(z)
    return z.reshape(z.shape[0], -1)


def digital_step(
    layer: BinariseLayer | MaxPoolLayer | FlattenLayer, z: Any, dtype: Any = np.float64
) -> np.ndarray:
    """Apply a digital layer record (binarise, maxpool, flatten) to a batch ``z``.

    ``dtype`` is the dtype of the binariser's ±1 output; max-pooling and flattening keep z's.
    """
    if isinstance(layer, BinariseLayer):
        return binarise(layer, z, dtype)
    if isinstance(layer, MaxPoolLayer):
        return maxpool(layer, z)
    if isinstance(layer, FlattenLayer):
        return flatten(z)
    raise TypeError(f"layer {layer.name!r} ({layer.kind}) is not a digital layer")


__all__ = ["binarise", "digital_step", "flatten", "fold", "maxpool", "patches"]
