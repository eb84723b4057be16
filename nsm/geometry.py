"""The linear operation of a binary layer, written once for the NSM layers and the sign baselines.

:class:`DenseGeometry` (``in_features → out_features``) and :class:`Conv2dGeometry` (``C_in →
C_out`` with ``kernel_size``, ``stride``, ``padding``) validate and hold a layer's shape
arguments and give what depends on them alone: the weight shape, the
:class:`~nsm.functional.LinearOp` F(z, w), the input check, the extra ``hardware_params`` keys
and the start of ``extra_repr``. They are mixed into an ``nn.Module`` before its base class
(``class NSMLinear(DenseGeometry, _NSMBase)``) and add no parameters or buffers.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from nsm import functional as fn


def _check_input(z: Tensor, ndim: int, name: str, size: int, rest: str = "") -> None:
    """``z`` has ``ndim`` dimensions and ``size`` entries on dimension 1, else a ValueError."""
    if z.dim() != ndim or z.shape[1] != size:
        raise ValueError(
            f"input shape {tuple(z.shape)} does not match (batch, {name}={size}{rest})"
        )


class DenseGeometry:
    """A fully connected layer's shape: (B, in_features) → (B, out_features)."""

    op_name = "linear"
    in_features: int
    out_features: int

    def _init_geometry(self, in_features: int, out_features: int) -> tuple[int, ...]:
        """Validate and set the sizes; returns the weight shape (out_features, in_features)."""
        self.in_features = fn.check_count("in_features", in_features)
        self.out_features = fn.check_count("out_features", out_features)
        return (self.out_features, self.in_features)

    def _op(self) -> fn.LinearOp:
        return fn.DenseOp()

    def _check_input(self, z: Tensor) -> None:
        _check_input(z, 2, "in_features", self.in_features)

    def _geometry_params(self) -> dict[str, Any]:
        return {}

    def _geometry_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}"


class Conv2dGeometry:
    """A 2-D convolution's shape: (B, C_in, H, W) → (B, C_out, H', W'), zero padding."""

    op_name = "conv2d"
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]

    def _init_geometry(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int],
        padding: int | tuple[int, int],
    ) -> tuple[int, ...]:
        """Validate and set the sizes; returns the weight shape (C_out, C_in, kH, kW)."""
        self.in_channels = fn.check_count("in_channels", in_channels)
        self.out_channels = fn.check_count("out_channels", out_channels)
        self.kernel_size = fn.check_pair("kernel_size", kernel_size, minimum=1)
        self.stride = fn.check_pair("stride", stride, minimum=1)
        self.padding = fn.check_pair("padding", padding, minimum=0)
        return (self.out_channels, self.in_channels, *self.kernel_size)

    def output_size(self, input_size: tuple[int, int]) -> tuple[int, int]:
        """(H', W') for an input of (H, W)."""
        out = []
        for size, k, s, pad in zip(
            input_size, self.kernel_size, self.stride, self.padding, strict=True
        ):
            n = (size + 2 * pad - k) // s + 1
            if n < 1:
                raise ValueError(
                    f"input size {tuple(input_size)} is smaller than kernel_size "
                    f"{self.kernel_size} with padding {self.padding}"
                )
            out.append(n)
        return out[0], out[1]

    def _op(self) -> fn.LinearOp:
        return fn.Conv2dOp(self.kernel_size, self.stride, self.padding)

    def _check_input(self, z: Tensor) -> None:
        _check_input(z, 4, "in_channels", self.in_channels, ", H, W")

    def _geometry_params(self) -> dict[str, Any]:
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}

    def _geometry_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )
