"""The digital steps of the backward pass: per-location errors, col2im and max-pool routing.

The forward pass of a convolution reads its im2col patches (:func:`mapping.digital.patches`:
(B, L, K), patch l = h'·W' + w', entry c·kH·kW + i·kW + j) and folds the per-location column
states back to (B, C_out, H', W') (:func:`mapping.digital.fold`). Learning runs the same steps
backwards, in float64:

- :func:`locations` is the inverse of ``fold``: an error on a layer's output (B, *out_shape)
  as the per-location column errors (B·L, N) the transposed read drives;
- :func:`col2im` folds the sensed patch errors (B·L, K) back onto the layer's input
  (B, C_in, H, W), adding the contributions of overlapping windows (the adjoint of im2col;
  padding rows are undriven and dropped);
- :func:`maxpool_backward` routes each pooled error to the arg-max of its window (the first
  maximum in row-major window order, as ``torch.nn.functional.max_pool2d``; the padding is
  never selected), adding where windows overlap.

A dense layer is the one-location case (L = 1, K = fan_in): its errors pass unchanged.
"""

from __future__ import annotations

import numpy as np

from ..records import ConvLayer, DenseLayer, MaxPoolLayer


def locations(layer: DenseLayer | ConvLayer, g: np.ndarray) -> np.ndarray:
    """Errors on the layer's output (B, *out_shape) → per-location column errors (B·L, N),
    rows b·L + l (the row order of the forward read's patches), float64."""
    g = np.asarray(g, dtype=np.float64)
    b = g.shape[0]
    if isinstance(layer, DenseLayer):
        return g.reshape(b, layer.fan_out)
    n, h, w = layer.out_shape
    return np.ascontiguousarray(g.reshape(b, n, h * w).transpose(0, 2, 1)).reshape(b * h * w, n)


def _window_slices(
    i: int, j: int, out_hw: tuple[int, int], stride: tuple[int, int]
) -> tuple[slice, slice]:
    """The padded-input positions that window offset (i, j) touches, one per output location."""
    (h, w), (sh, sw) = out_hw, stride
    return slice(i, i + sh * (h - 1) + 1, sh), slice(j, j + sw * (w - 1) + 1, sw)


def col2im(layer: DenseLayer | ConvLayer, e: np.ndarray, batch: int) -> np.ndarray:
    """Sensed patch errors (B·L, K) → errors on the layer's input (B, *in_shape), float64:
    Σ over the windows that read each input (the adjoint of the im2col of the forward read)."""
    e = np.asarray(e, dtype=np.float64)
    if isinstance(layer, DenseLayer):
        return e.reshape(batch, *layer.in_shape)
    c, h, w = layer.in_shape
    (kh, kw), (ph, pw) = layer.kernel_size, layer.padding
    oh, ow = layer.out_hw
    patches = e.reshape(batch, oh, ow, c, kh, kw)
    out = np.zeros((batch, c, h + 2 * ph, w + 2 * pw))
    for i in range(kh):
        for j in range(kw):
            rs, cs = _window_slices(i, j, (oh, ow), layer.stride)
            out[:, :, rs, cs] += patches[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return out[:, :, ph : ph + h, pw : pw + w]


def maxpool_backward(layer: MaxPoolLayer, z_in: np.ndarray, g_out: np.ndarray) -> np.ndarray:
    """Errors on the pooled output (B, *out_shape) → errors on its input (B, *in_shape),
    float64: each window's error goes to its arg-max in ``z_in`` (the first maximum in
    row-major order), the other entries get none."""
    z = np.asarray(z_in, dtype=np.float64)
    g = np.asarray(g_out, dtype=np.float64)
    b, c, h, w = z.shape
    (kh, kw), (ph, pw), (sh, sw) = layer.kernel_size, layer.padding, layer.stride
    zp = np.pad(z, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    oh, ow = g.shape[2], g.shape[3]
    best = np.full(g.shape, -np.inf)
    arg = np.zeros(g.shape, dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            rs, cs = _window_slices(i, j, (oh, ow), (sh, sw))
            v = zp[:, :, rs, cs]
            take = v > best  # strict: an earlier maximum wins a tie
            best = np.where(take, v, best)
            arg[take] = i * kw + j
    out = np.zeros((b, c, h + 2 * ph, w + 2 * pw))
    for i in range(kh):
        for j in range(kw):
            rs, cs = _window_slices(i, j, (oh, ow), (sh, sw))
            out[:, :, rs, cs] += np.where(arg == i * kw + j, g, 0.0)
    return out[:, :, ph : ph + h, pw : pw + w]


__all__ = ["col2im", "locations", "maxpool_backward"]
