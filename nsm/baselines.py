"""The rebuttal's baselines (docs/model.md), same architecture with the rule swapped.

- **BD**  ``SignLinear(..., weight_norm=False, backward="ste")``: y = sign(w·z + b), straight-
  through backward (gradient of hardtanh of the pre-activation).
- **wBD** ``SignLinear(..., weight_norm=True, backward="ste")``: y = sign(s) with the weight-
  normalised s = β w·z/‖w‖ + b/‖w‖, straight-through backward.
- **BN**  ``SignLinear(..., weight_norm=True, backward="erf")``: y = sign(s) forward, gradient of
  erf(s) backward: the NSM's mean field without forward noise (compiles to deterministic reads).
- **SN**  ``nn.Linear`` / ``nn.Conv2d`` followed by :class:`NoisyReLU`: relu(x + N(0, 0.1²)).
- **NSM-STE**, **NSM-BinConcrete**: :class:`nsm.layers.NSMLinear` / ``NSMConv2d`` with
  ``rule="ste"`` / ``rule="binconcrete"``.

The sign layers are deterministic: ``eval()`` changes nothing. ``SignConv2d`` mirrors
``SignLinear`` with the convolution as the linear operation; the two share one implementation.
"""

from __future__ import annotations

import math
from typing import Any, TypedDict, Unpack

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nsm import functional as fn
from nsm.geometry import Conv2dGeometry, DenseGeometry

BACKWARDS = ("ste", "erf")


def sign_activation(s: Tensor, backward: str) -> Tensor:
    """sign(s) (sign(0) = +1) forward; gradient of hardtanh(s) ("ste") or erf(s) ("erf")."""
    fn.check_choice("backward", backward, BACKWARDS)
    surrogate = F.hardtanh(s) if backward == "ste" else torch.erf(s)
    return fn.straight_through(fn.sign(s), surrogate)


class SignOptions(TypedDict, total=False):
    """The keyword options of both sign layers (:class:`SignLinear`, :class:`SignConv2d`); their
    defaults: bias True, weight_norm False, backward "ste", beta_init 1.0."""

    bias: bool
    weight_norm: bool
    backward: str
    beta_init: float


class _SignBase(nn.Module):
    weight: nn.Parameter
    bias: nn.Parameter | None
    beta: nn.Parameter | None

    def _init_params(
        self,
        weight_shape: tuple[int, ...],
        *,
        bias: bool = True,
        weight_norm: bool = False,
        backward: str = "ste",
        beta_init: float = 1.0,
    ) -> None:
        """Check the options of :class:`SignOptions` (the defaults of both sign layers live
        here) and create the parameters: weight ``weight_shape``, bias and β (out,)."""
        self.weight_norm = bool(weight_norm)
        self.backward = fn.check_choice("backward", backward, BACKWARDS)
        out = weight_shape[0]
        self.weight = nn.Parameter(torch.empty(weight_shape))
        self.bias = nn.Parameter(torch.zeros(out)) if bias else None
        self.beta = nn.Parameter(torch.full((out,), float(beta_init))) if weight_norm else None
        # Same initialisation as nn.Linear / nn.Conv2d.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    # op_name, _op(), _geometry_params() and _geometry_repr() come from the geometry mixin
    # (nsm.geometry) that the concrete layer lists first.

    def _view(self, t: Tensor) -> Tensor:
        """Reshape a per-neuron (out,) tensor to broadcast against the output."""
        return t

    def preactivation(self, z: Tensor) -> Tensor:
        """s = w·z + b (BD), or β w·z/‖w‖ + b/‖w‖ with weight normalisation (wBD, BN)."""
        m = self._op().apply(z, self.weight)
        if not self.weight_norm:
            return m if self.bias is None else m + self._view(self.bias)
        assert self.beta is not None
        norm = self.weight.flatten(1).norm(dim=1).clamp_min(torch.finfo(m.dtype).tiny)
        s = self._view(self.beta / norm) * m
        return s if self.bias is None else s + self._view(self.bias / norm)

    def forward(self, z: Tensor) -> Tensor:
        return sign_activation(self.preactivation(z), self.backward)

    def _common_params(self, op: str) -> dict[str, Any]:
        w = self.weight.detach().cpu().clone()
        out = w.shape[0]
        return {
            "kind": "sign",
            "op": op,
            "weight": w,
            "beta": self.beta.detach().cpu().clone()
            if self.beta is not None
            else torch.ones(out, dtype=w.dtype),
            "bias": self.bias.detach().cpu().clone()
            if self.bias is not None
            else torch.zeros(out, dtype=w.dtype),
            "noise": "none",
            "p": None,
            "sigma": None,
            "structure": "none",
            "weight_norm": self.weight_norm,
        }

    def hardware_params(self) -> dict[str, Any]:
        """See :class:`nsm.layers.BinaryLayer`; noise "none": u = β w·z + b; op "linear", or
        "conv2d" with kernel_size, stride, padding."""
        d = self._common_params(self.op_name)
        d.update(self._geometry_params())
        return d

    def extra_repr(self) -> str:
        return (
            f"{self._geometry_repr()}, weight_norm={self.weight_norm}, "
            f"backward={self.backward}, bias={self.bias is not None}"
        )


class SignLinear(DenseGeometry, _SignBase):
    """Deterministic binary layer (B, in_features) → (B, out_features) ±1 (BD / wBD / BN)."""

    def __init__(self, in_features: int, out_features: int, **options: Unpack[SignOptions]) -> None:
        super().__init__()
        self._init_params(self._init_geometry(in_features, out_features), **options)


class SignConv2d(Conv2dGeometry, _SignBase):
    """Deterministic binary convolution (B, C_in, H, W) → (B, C_out, H', W') ±1."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        *,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        **options: Unpack[SignOptions],
    ) -> None:
        super().__init__()
        weight_shape = self._init_geometry(in_channels, out_channels, kernel_size, stride, padding)
        self._init_params(weight_shape, **options)

    def _view(self, t: Tensor) -> Tensor:
        return t.view(-1, 1, 1)


class NoisyReLU(nn.Module):
    """The SN baseline's noisy rectifier y = relu(x + n), n ~ N(0, std²), in training and eval.

    The noise is drawn from ``self.generator`` without gradient, so the backward pass is the
    identity through the noise (∂y/∂x = 1 where x + n > 0). ``std`` is in units of x (0.1 in the
    rebuttal's SN baseline).
    """

    def __init__(self, std: float = 0.1) -> None:
        super().__init__()
        self.std = fn.check_positive("std", std)
        self.generator: torch.Generator | None = None

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            n = self.std * torch.randn(
                x.shape, generator=self.generator, device=x.device, dtype=x.dtype
            )
        return F.relu(x + n)

    def extra_repr(self) -> str:
        return f"std={self.std}"
