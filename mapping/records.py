"""The layer records of a crossbar program: what each layer of a chip computes, as validated data.

A program (:class:`mapping.program.Program`) is an ordered list of these records
(docs/program-format.md). Each record's ``kind`` is its tag in the program file:

``binarize``  x ∈ [0, 1] → z = +1 if x >= threshold else −1 (sign(2x − 1) for threshold 0.5).
``dense``     a binary layer on a crossbar: z (fan_in,) ±1 → (fan_out,) ±1 with
              P(z_i = +1 | z) = ½[1 + erf(β_i m_i/n_i + b_i/(c n_i))], m = zᵀW,
              n_i = √Σ_j z_j² W_ji², c = √(2 Var ξ) (docs/nsm.md); deterministic sign layers
              fire sign(β_i m_i + b_i).
``conv``      the same matrix (C_in·kH·kW, C_out), applied to every im2col patch of the input.
``maxpool``   max over windows of ±1 states (a logical OR, digital periphery).
``flatten``   (C, H, W) → (C·H·W,) in C order (torch's ``nn.Flatten``).
``output``    the real-valued last layer: logits = zᵀW + b, read through an ADC.

Weights are stored as (fan_in, fan_out) float32 matrices: rows are crossbar rows (inputs),
columns are neurons. The mapping decisions that do not depend on a chip are recorded per crossbar
layer (``scale_policy``: per-column conductance scale, free because β absorbs it; ``encoding``:
differential pairs); tiling and the conductance values are the chip's job at programming time.
Records are frozen; construction validates every field and raises ``ValueError`` (wrong values)
or ``TypeError`` (wrong types) naming the layer, the field and what is allowed
(:mod:`devices.fields`). Numpy only.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from devices.errors import ArgumentError, ArgumentTypeError
from devices.fields import check_array, check_bool, check_choice, check_int, check_name, check_real

#: Every array of a program is held (and stored) as little-endian float32.
ARRAY_DTYPE = np.dtype("<f4")

NOISES = ("bernoulli", "gaussian", "none")
STRUCTURES = ("per_synapse", "per_input", "none")
SCALE_POLICIES = ("per_column", "global")
ENCODINGS = ("differential_pair", "reference_column")
BETA_PER = ("channel", "location")


# --------------------------------------------------------------------------------------------
# Field conversions (on top of devices.fields)
# --------------------------------------------------------------------------------------------


def as_shape(where: str, value: object, *, ndim: int | None = None) -> tuple[int, ...]:
    """``value`` as a tuple of ints >= 1 (of length ``ndim`` if given)."""
    allowed = f"a sequence of {f'{ndim} ' if ndim is not None else ''}ints >= 1"
    try:
        shape = tuple(value)  # type: ignore[arg-type]
    except TypeError:
        raise ArgumentTypeError(where, value, allowed) from None
    if not shape or (ndim is not None and len(shape) != ndim):
        raise ArgumentError(where, value, allowed, "has the wrong length")
    return tuple(check_int(f"{where}[{i}]", v, ge=1) for i, v in enumerate(shape))


def _pair(where: str, value: object, *, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints >= ``minimum``, as a pair."""
    single = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    try:
        pair = (value, value) if single else tuple(value)  # type: ignore[arg-type]
    except TypeError:
        pair = ()
    if len(pair) != 2:
        raise ArgumentError(where, value, f"an int or a pair of ints >= {minimum}", "is invalid")
    return check_int(f"{where}[0]", pair[0], ge=minimum), check_int(
        f"{where}[1]", pair[1], ge=minimum
    )


def _frozen_array(where: str, value: object) -> np.ndarray:
    """A read-only C-contiguous float32 copy of ``value``, every entry finite."""
    a = np.array(check_array(where, value, dtype=ARRAY_DTYPE, allow_empty=True), order="C")
    a.setflags(write=False)
    return a


def _pool_out(size: int, k: int, s: int, pad: int) -> int:
    """Output length of a window of k with stride s over size + 2·pad (floor rounding)."""
    return (size + 2 * pad - k) // s + 1


class _Record:
    """What every layer record has: a name, an input shape and a ``kind`` tag."""

    kind: ClassVar[str] = ""
    array_fields: ClassVar[tuple[str, ...]] = ()
    name: str
    in_shape: tuple[int, ...]

    @property
    def _where(self) -> str:
        return f"layer {self.name!r} ({self.kind})"

    def _check_name_and_shape(self, ndim: int | None = None) -> None:
        check_name(f"{self.kind}.name", self.name)
        in_shape = as_shape(f"{self._where}.in_shape", self.in_shape, ndim=ndim)
        object.__setattr__(self, "in_shape", in_shape)

    def _check_window(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """Validate ``kernel_size``, ``stride`` (>= 1) and ``padding`` (>= 0) of a window layer
        (conv, maxpool), store them as int pairs and return them."""
        w = self._where
        k = _pair(f"{w}.kernel_size", getattr(self, "kernel_size", None), minimum=1)
        s = _pair(f"{w}.stride", getattr(self, "stride", None), minimum=1)
        pad = _pair(f"{w}.padding", getattr(self, "padding", None), minimum=0)
        object.__setattr__(self, "kernel_size", k)
        object.__setattr__(self, "stride", s)
        object.__setattr__(self, "padding", pad)
        return k, s, pad


class _Crossbar:
    """What the layers on a crossbar (dense, conv, output) share: a (fan_in, fan_out) matrix."""

    weight: np.ndarray
    encoding: str

    @property
    def fan_in(self) -> int:
        """Crossbar rows of the layer's matrix (K)."""
        return int(self.weight.shape[0])

    @property
    def fan_out(self) -> int:
        """Crossbar columns = neurons (or classes) per location (N)."""
        return int(self.weight.shape[1])

    def cells(self) -> int:
        """Crossbar cells for the matrix (chip-independent count, before tiling).

        Differential pairs: 2·K·N. Reference column: K·(N + 1), one reference column (a lower
        bound: a chip with several column tiles needs one reference column per tile).
        """
        k, n = self.weight.shape
        return 2 * k * n if self.encoding == "differential_pair" else k * (n + 1)


# --------------------------------------------------------------------------------------------
# Layer records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, kw_only=True)
class BinariseLayer(_Record):
    """Input binariser: x (any shape, real) → +1 where x >= ``threshold`` else −1.

    With the default threshold 0.5 this is sign(2x − 1) with sign(0) = +1 on inputs in [0, 1].
    The threshold lies inside the input range, 0 < threshold < 1 (at or outside it every input
    maps to one state). Its file tag is ``binarize``.
    """

    kind: ClassVar[str] = "binarize"

    name: str
    in_shape: tuple[int, ...]
    threshold: float = 0.5

    def __post_init__(self) -> None:
        self._check_name_and_shape()
        t = check_real(f"{self._where}.threshold", self.threshold, gt=0.0, lt=1.0)
        object.__setattr__(self, "threshold", t)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.in_shape


@dataclass(frozen=True, eq=False, kw_only=True)
class _MatrixLayer(_Crossbar, _Record):
    """What the binary crossbar layers (dense, conv) share: the matrix, gains, noise, mapping.

    Arrays are float32 (read-only copies). ``weight`` is (fan_in, fan_out); ``bias`` is the raw
    b_i of the NSM unit (the comparator threshold shift), (fan_out,). ``noise`` "bernoulli"
    (ξ ~ Bern(``p``)), "gaussian" (ξ ~ N(1, ``sigma``²)) or "none" for the deterministic sign
    layers (``deterministic=True``: BN, BD, wBD), which the chip runs with deterministic reads.
    ``structure``: "per_synapse" (one stochastic element per cell) or "per_input" (one per row);
    "none" when deterministic. ``weight_norm``: the output depends on each column only through
    its direction (always true for NSM layers). ``rule``: how it was trained (information only).
    """

    array_fields: ClassVar[tuple[str, ...]] = ("weight", "beta", "bias")

    name: str
    in_shape: tuple[int, ...]
    weight: np.ndarray
    beta: np.ndarray
    bias: np.ndarray
    noise: str
    p: float | None = None
    sigma: float | None = None
    structure: str = "per_synapse"
    deterministic: bool = False
    weight_norm: bool = True
    rule: str = "sample"
    scale_policy: str = "per_column"
    encoding: str = "differential_pair"

    @property
    def noise_var(self) -> float:
        """Var[ξ]: p(1 − p) (Bernoulli), σ² (Gaussian), 0 (deterministic)."""
        if self.noise == "bernoulli":
            return float(self.p) * (1.0 - float(self.p))  # type: ignore[arg-type]
        if self.noise == "gaussian":
            return float(self.sigma) ** 2  # type: ignore[arg-type]
        return 0.0

    @property
    def noise_mean(self) -> float:
        """E[ξ]: p (Bernoulli), 1 (Gaussian and deterministic reads)."""
        return float(self.p) if self.noise == "bernoulli" else 1.0  # type: ignore[arg-type]

    def _check_common(self, beta_shapes: Iterable[tuple[int, ...]]) -> None:
        w = self._where
        weight = _frozen_array(f"{w}.weight", self.weight)
        if weight.ndim != 2 or weight.shape[0] < 1 or weight.shape[1] < 1:
            raise ValueError(f"{w}.weight has shape {weight.shape}; expected (fan_in, fan_out)")
        object.__setattr__(self, "weight", weight)
        n_out = weight.shape[1]
        bias = _frozen_array(f"{w}.bias", self.bias)
        if bias.shape != (n_out,):
            raise ValueError(f"{w}.bias has shape {bias.shape}; expected {(n_out,)}")
        object.__setattr__(self, "bias", bias)
        beta = _frozen_array(f"{w}.beta", self.beta)
        allowed = [tuple(s) for s in beta_shapes]
        if beta.shape not in allowed:
            raise ValueError(f"{w}.beta has shape {beta.shape}; expected one of {allowed}")
        object.__setattr__(self, "beta", beta)
        noise = check_choice(f"{w}.noise", self.noise, NOISES)
        det = check_bool(f"{w}.deterministic", self.deterministic)
        object.__setattr__(self, "deterministic", det)
        if det != (noise == "none"):
            raise ValueError(
                f"{w}: deterministic={det} contradicts noise={noise!r} (deterministic layers "
                "have noise 'none', stochastic layers 'bernoulli' or 'gaussian')"
            )
        self._check_level(noise)
        structure = check_choice(f"{w}.structure", self.structure, STRUCTURES)
        if det != (structure == "none"):
            allowed_s = "'none'" if det else "'per_synapse' or 'per_input'"
            raise ValueError(f"{w}.structure={structure!r} is not allowed here; use {allowed_s}")
        wn = check_bool(f"{w}.weight_norm", self.weight_norm)
        object.__setattr__(self, "weight_norm", wn)
        if not det and not wn:
            raise ValueError(f"{w}: a stochastic NSM layer is weight-normalised (weight_norm=true)")
        check_name(f"{w}.rule", self.rule)
        check_choice(f"{w}.scale_policy", self.scale_policy, SCALE_POLICIES)
        check_choice(f"{w}.encoding", self.encoding, ENCODINGS)

    def _check_level(self, noise: str) -> None:
        """p for Bernoulli noise, σ for Gaussian noise, neither otherwise."""
        w = self._where
        if noise == "bernoulli":
            object.__setattr__(self, "p", check_real(f"{w}.p", self.p, gt=0.0, lt=1.0))
        elif self.p is not None:
            raise ValueError(f"{w}.p={self.p!r} must be null for noise={noise!r}")
        if noise == "gaussian":
            object.__setattr__(self, "sigma", check_real(f"{w}.sigma", self.sigma, gt=0.0))
        elif self.sigma is not None:
            raise ValueError(f"{w}.sigma={self.sigma!r} must be null for noise={noise!r}")

    def params(self) -> int:
        """Trained parameters: weight, beta and bias entries."""
        return int(self.weight.size + self.beta.size + self.bias.size)


@dataclass(frozen=True, eq=False, kw_only=True)
class DenseLayer(_MatrixLayer):
    """Fully connected binary layer: in_shape (fan_in,), weight (fan_in, fan_out), beta and
    bias (fan_out,)."""

    kind: ClassVar[str] = "dense"

    def __post_init__(self) -> None:
        self._check_name_and_shape(ndim=1)
        n_out = np.shape(self.weight)[1] if np.ndim(self.weight) == 2 else -1
        self._check_common([(n_out,)])
        if self.in_shape != (self.fan_in,):
            raise ValueError(
                f"{self._where}.in_shape={self.in_shape} does not match weight rows {self.fan_in}"
            )

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.fan_out,)

    @property
    def n_locations(self) -> int:
        """Output locations that share the matrix (1 for a dense layer)."""
        return 1


@dataclass(frozen=True, eq=False, kw_only=True)
class ConvLayer(_MatrixLayer):
    """2-D convolution unrolled im2col-style (docs/crossbar.md).

    in_shape (C_in, H, W); weight (C_in·kH·kW, C_out) whose row index is c·kH·kW + i·kW + j (the
    column order of ``torch.nn.functional.unfold``); the matrix is applied at each of the
    L = H'·W' output locations (row-major, l = h'·W' + w'), zero padding. out_shape
    (C_out, H', W'). beta: (C_out,) with ``beta_per="channel"`` or (C_out, H', W') with
    ``beta_per="location"``.
    """

    kind: ClassVar[str] = "conv"

    kernel_size: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    beta_per: str = "channel"

    def __post_init__(self) -> None:
        w = self._where
        self._check_name_and_shape(ndim=3)
        k, s, pad = self._check_window()
        beta_per = check_choice(f"{w}.beta_per", self.beta_per, BETA_PER)
        c_in, h, wd = self.in_shape
        h_out, w_out = _pool_out(h, k[0], s[0], pad[0]), _pool_out(wd, k[1], s[1], pad[1])
        if h_out < 1 or w_out < 1:
            raise ValueError(
                f"{w}: input {self.in_shape} is smaller than kernel_size {k} with padding {pad}"
            )
        n_out = np.shape(self.weight)[1] if np.ndim(self.weight) == 2 else -1
        beta_shape = (n_out,) if beta_per == "channel" else (n_out, h_out, w_out)
        self._check_common([beta_shape])
        if self.fan_in != c_in * k[0] * k[1]:
            raise ValueError(
                f"{w}.weight has {self.fan_in} rows; in_shape {self.in_shape} with kernel_size "
                f"{k} needs C_in·kH·kW = {c_in * k[0] * k[1]}"
            )

    @property
    def out_hw(self) -> tuple[int, int]:
        """(H', W') of the output."""
        _, h, w = self.in_shape
        return (
            _pool_out(h, self.kernel_size[0], self.stride[0], self.padding[0]),
            _pool_out(w, self.kernel_size[1], self.stride[1], self.padding[1]),
        )

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.fan_out, *self.out_hw)

    @property
    def n_locations(self) -> int:
        """L = H'·W' output locations, each a read of the same matrix."""
        h, w = self.out_hw
        return h * w


@dataclass(frozen=True, eq=False, kw_only=True)
class MaxPoolLayer(_Record):
    """Max-pooling of (C, H, W) states in digital periphery (on ±1: a logical OR).

    Padding, as in torch, is implicit −inf (never selected); no dilation, floor rounding.
    """

    kind: ClassVar[str] = "maxpool"

    name: str
    in_shape: tuple[int, ...]
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        w = self._where
        self._check_name_and_shape(ndim=3)
        k, _, pad = self._check_window()
        if pad[0] > k[0] // 2 or pad[1] > k[1] // 2:
            raise ValueError(f"{w}.padding={pad} must be at most half of kernel_size={k}")
        if min(self.out_shape[1:]) < 1:
            raise ValueError(f"{w}: input {self.in_shape} is smaller than kernel_size {k}")

    @property
    def out_shape(self) -> tuple[int, ...]:
        c, h, w = self.in_shape
        return (
            c,
            _pool_out(h, self.kernel_size[0], self.stride[0], self.padding[0]),
            _pool_out(w, self.kernel_size[1], self.stride[1], self.padding[1]),
        )


@dataclass(frozen=True, eq=False, kw_only=True)
class FlattenLayer(_Record):
    """(d0, d1, ...) → (d0·d1·...,) in C order (torch's ``nn.Flatten`` on (C, H, W))."""

    kind: ClassVar[str] = "flatten"

    name: str
    in_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        self._check_name_and_shape()

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (math.prod(self.in_shape),)


@dataclass(frozen=True, eq=False, kw_only=True)
class OutputLayer(_Crossbar, _Record):
    """The real-valued last layer: logits = zᵀ weight + bias; weight (fan_in, n_classes).

    On chip an analog matrix-vector product (deterministic read) digitised by an ADC and rescaled
    digitally to logits; ``scale_policy`` and ``encoding`` as for the binary layers.
    """

    kind: ClassVar[str] = "output"
    array_fields: ClassVar[tuple[str, ...]] = ("weight", "bias")

    name: str
    in_shape: tuple[int, ...]
    weight: np.ndarray
    bias: np.ndarray
    scale_policy: str = "per_column"
    encoding: str = "differential_pair"

    def __post_init__(self) -> None:
        w = self._where
        self._check_name_and_shape(ndim=1)
        weight = _frozen_array(f"{w}.weight", self.weight)
        if weight.ndim != 2 or weight.shape[0] != self.in_shape[0] or weight.shape[1] < 1:
            raise ValueError(
                f"{w}.weight has shape {weight.shape}; expected ({self.in_shape[0]}, n_classes)"
            )
        object.__setattr__(self, "weight", weight)
        bias = _frozen_array(f"{w}.bias", self.bias)
        if bias.shape != (weight.shape[1],):
            raise ValueError(f"{w}.bias has shape {bias.shape}; expected {(weight.shape[1],)}")
        object.__setattr__(self, "bias", bias)
        check_choice(f"{w}.scale_policy", self.scale_policy, SCALE_POLICIES)
        check_choice(f"{w}.encoding", self.encoding, ENCODINGS)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.fan_out,)

    def params(self) -> int:
        """Trained parameters: weight and bias entries."""
        return int(self.weight.size + self.bias.size)


Layer = BinariseLayer | DenseLayer | ConvLayer | MaxPoolLayer | FlattenLayer | OutputLayer
BinaryMatrixLayer = DenseLayer | ConvLayer

#: Layer classes by their ``kind`` (the tag in the program file).
KINDS: dict[str, type] = {
    cls.kind: cls
    for cls in (BinariseLayer, DenseLayer, ConvLayer, MaxPoolLayer, FlattenLayer, OutputLayer)
}


def attr_names(cls: type) -> list[str]:
    """The JSON attributes of a layer record class: every dataclass field but the arrays."""
    return [f.name for f in fields(cls) if f.name not in cls.array_fields]  # type: ignore[arg-type]


def layer_attrs(layer: Layer) -> dict[str, Any]:
    """A record's attributes as JSON data (tuples as lists), arrays left out."""
    out: dict[str, Any] = {}
    for key in attr_names(type(layer)):
        v = getattr(layer, key)
        out[key] = list(v) if isinstance(v, tuple) else v
    return out


__all__ = [
    "ARRAY_DTYPE",
    "BETA_PER",
    "ENCODINGS",
    "KINDS",
    "NOISES",
    "SCALE_POLICIES",
    "STRUCTURES",
    "BinariseLayer",
    "BinaryMatrixLayer",
    "ConvLayer",
    "DenseLayer",
    "FlattenLayer",
    "Layer",
    "MaxPoolLayer",
    "OutputLayer",
    "attr_names",
    "layer_attrs",
]
