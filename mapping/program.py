"""The crossbar program: a trained network as chip-independent data, and its file (``.nsmx``).

A :class:`Program` is the ordered list of layer records a chip executes (docs/program-format.md):

``binarize``  x ∈ [0, 1] → z = +1 if x >= threshold else −1 (sign(2x − 1) for threshold 0.5).
``dense``     a binary layer on a crossbar: z (fan_in,) ±1 → (fan_out,) ±1 with
              P(z_i = +1 | z) = ½[1 + erf(β_i m_i/n_i + b_i/(c n_i))], m = zᵀW,
              n_i = √Σ_j z_j² W_ji², c = √(2 Var ξ) (DESIGN §2); deterministic sign layers
              fire sign(β_i m_i + b_i).
``conv``      the same matrix (C_in·kH·kW, C_out), applied to every im2col patch of the input.
``maxpool``   max over windows of ±1 states (a logical OR, digital periphery).
``flatten``   (C, H, W) → (C·H·W,) in C order (torch's ``nn.Flatten``).
``output``    the real-valued last layer: logits = zᵀW + b, read through an ADC.

Weights are stored as (fan_in, fan_out) float32 matrices: rows are crossbar rows (inputs), columns
are neurons. The mapping decisions that do not depend on a chip are recorded per crossbar layer
(``scale_policy``: per-column conductance scale, free because β absorbs it; ``encoding``:
differential pairs); tiling and the conductance values are the chip's job at programming time,
so the same program runs on any chip.

The file is one ``.npz`` (``np.savez``, no pickle) with a JSON manifest stored as a uint8 array
and a SHA-256 checksum over the manifest and every declared array. :func:`load_program` validates
everything and raises :class:`ProgramError` naming the file and the problem. This module imports
numpy only (never torch), so programs load on machines without PyTorch.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

FORMAT = "nsmx-program"
VERSION = 1
#: npz member that holds the UTF-8 JSON manifest (a 1-D uint8 array).
MANIFEST_KEY = "manifest"
#: Every array of a program is stored little-endian float32.
ARRAY_DTYPE = np.dtype("<f4")

NOISES = ("bernoulli", "gaussian", "none")
STRUCTURES = ("per_synapse", "per_input", "none")
SCALE_POLICIES = ("per_column", "global")
ENCODINGS = ("differential_pair", "reference_column")
BETA_PER = ("channel", "location")


class ProgramError(ValueError):
    """A program file is missing, damaged, hand-edited, of another version or invalid."""


# --------------------------------------------------------------------------------------------
# Field validation (ValueError naming the field, the value and what is allowed)
# --------------------------------------------------------------------------------------------


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _shape(where: str, value: object, *, ndim: int | None = None) -> tuple[int, ...]:
    """A tuple of ints >= 1 (length ``ndim`` if given)."""
    try:
        shape = tuple(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{where}={value!r} must be a sequence of ints >= 1") from None
    if (
        not shape
        or not all(_is_int(v) and v >= 1 for v in shape)
        or (ndim is not None and len(shape) != ndim)
    ):
        dims = f"{ndim} " if ndim is not None else ""
        raise ValueError(f"{where}={value!r} must be a sequence of {dims}ints >= 1")
    return tuple(int(v) for v in shape)


def _pair(where: str, value: object, *, minimum: int) -> tuple[int, int]:
    pair = (value, value) if _is_int(value) else value
    try:
        pair = tuple(pair)  # type: ignore[arg-type]
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(_is_int(v) and v >= minimum for v in pair):
        raise ValueError(f"{where}={value!r} must be an int or a pair of ints >= {minimum}")
    return int(pair[0]), int(pair[1])


def _choice(where: str, value: object, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{where}={value!r} is not allowed; choose one of {list(allowed)}")
    return value


def _bool(where: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{where}={value!r} must be true or false")
    return bool(value)


def _name(where: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}={value!r} must be a non-empty string")
    return value


def _array(where: str, value: object, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A read-only C-contiguous float32 copy of ``value``, finite, of ``shape`` if given."""
    try:
        a = np.array(value, dtype=ARRAY_DTYPE, order="C", copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where} is not a real-valued array ({exc})") from None
    if shape is not None and a.shape != shape:
        raise ValueError(f"{where} has shape {a.shape}; expected {shape}")
    if a.size and not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise ValueError(f"{where} has {bad} non-finite values (NaN or inf)")
    a.setflags(write=False)
    return a


def _pool_out(size: int, k: int, s: int, pad: int) -> int:
    return (size + 2 * pad - k) // s + 1


# --------------------------------------------------------------------------------------------
# Layer records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, kw_only=True)
class BinarizeLayer:
    """Input binariser: x (any shape, real) → +1 where x >= ``threshold`` else −1.

    With the default threshold 0.5 this is sign(2x − 1) with sign(0) = +1 on inputs in [0, 1].
    """

    kind: ClassVar[str] = "binarize"
    array_fields: ClassVar[tuple[str, ...]] = ()

    name: str
    in_shape: tuple[int, ...]
    threshold: float = 0.5

    def __post_init__(self) -> None:
        _name(f"{self.kind}.name", self.name)
        object.__setattr__(self, "in_shape", _shape(f"{self._where}.in_shape", self.in_shape))
        t = self.threshold
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t):
            raise ValueError(f"{self._where}.threshold={t!r} must be a finite real number")
        object.__setattr__(self, "threshold", float(t))

    @property
    def _where(self) -> str:
        return f"layer {self.name!r} ({self.kind})"

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.in_shape


@dataclass(frozen=True, eq=False, kw_only=True)
class _MatrixLayer:
    """What the binary crossbar layers (dense, conv) share: the matrix, gains, noise, mapping.

    Arrays are float32 (read-only copies). ``weight`` is (fan_in, fan_out); ``bias`` is the raw
    b_i of DESIGN §2 (the comparator threshold shift), (fan_out,). ``noise`` "bernoulli" (ξ ~
    Bern(``p``)), "gaussian" (ξ ~ N(1, ``sigma``²)) or "none" for the deterministic sign layers
    (``deterministic=True``: BN, BD, wBD), which the chip runs with deterministic reads.
    ``structure``: "per_synapse" (one stochastic element per cell) or "per_input" (one per row);
    "none" when deterministic. ``weight_norm``: the output depends on each column only through its
    direction (always true for NSM layers). ``rule``: how it was trained (information only).
    """

    array_fields: ClassVar[tuple[str, ...]] = ("weight", "beta", "bias")
    kind: ClassVar[str] = ""

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
    def _where(self) -> str:
        return f"layer {self.name!r} ({self.kind})"

    @property
    def fan_in(self) -> int:
        """Crossbar rows of the layer's matrix (K)."""
        return int(self.weight.shape[0])

    @property
    def fan_out(self) -> int:
        """Crossbar columns = neurons per location (N)."""
        return int(self.weight.shape[1])

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
        _name(f"{self.kind}.name", self.name)
        weight = _array(f"{w}.weight", self.weight)
        if weight.ndim != 2 or weight.shape[0] < 1 or weight.shape[1] < 1:
            raise ValueError(f"{w}.weight has shape {weight.shape}; expected (fan_in, fan_out)")
        object.__setattr__(self, "weight", weight)
        n_out = weight.shape[1]
        object.__setattr__(self, "bias", _array(f"{w}.bias", self.bias, (n_out,)))
        beta = _array(f"{w}.beta", self.beta)
        allowed = [tuple(s) for s in beta_shapes]
        if beta.shape not in allowed:
            raise ValueError(f"{w}.beta has shape {beta.shape}; expected one of {allowed}")
        object.__setattr__(self, "beta", beta)
        noise = _choice(f"{w}.noise", self.noise, NOISES)
        det = _bool(f"{w}.deterministic", self.deterministic)
        object.__setattr__(self, "deterministic", det)
        if det != (noise == "none"):
            raise ValueError(
                f"{w}: deterministic={det} contradicts noise={noise!r} (deterministic layers "
                "have noise 'none', stochastic layers 'bernoulli' or 'gaussian')"
            )
        p, sigma = self.p, self.sigma
        if noise == "bernoulli":
            if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 < p < 1.0:
                raise ValueError(f"{w}.p={p!r} is out of range; Bernoulli noise needs 0 < p < 1")
            object.__setattr__(self, "p", float(p))
        elif p is not None:
            raise ValueError(f"{w}.p={p!r} must be null for noise={noise!r}")
        if noise == "gaussian":
            if (
                not isinstance(sigma, (int, float))
                or isinstance(sigma, bool)
                or not (math.isfinite(sigma) and sigma > 0)
            ):
                raise ValueError(f"{w}.sigma={sigma!r} is out of range; it must be finite and > 0")
            object.__setattr__(self, "sigma", float(sigma))
        elif sigma is not None:
            raise ValueError(f"{w}.sigma={sigma!r} must be null for noise={noise!r}")
        structure = _choice(f"{w}.structure", self.structure, STRUCTURES)
        if det != (structure == "none"):
            allowed_s = "'none'" if det else "'per_synapse' or 'per_input'"
            raise ValueError(f"{w}.structure={structure!r} is not allowed here; use {allowed_s}")
        wn = _bool(f"{w}.weight_norm", self.weight_norm)
        object.__setattr__(self, "weight_norm", wn)
        if not det and not wn:
            raise ValueError(f"{w}: a stochastic NSM layer is weight-normalised (weight_norm=true)")
        _name(f"{w}.rule", self.rule)
        _choice(f"{w}.scale_policy", self.scale_policy, SCALE_POLICIES)
        _choice(f"{w}.encoding", self.encoding, ENCODINGS)

    def firing_probability(self, z: np.ndarray) -> np.ndarray:
        """P(z_i = +1 | z), (B, *out_shape), from the program's arrays alone (numpy reference,
        :func:`mapping.reference.firing_probability`; equals torch's ``firing_probability``)."""
        from mapping.reference import firing_probability

        return firing_probability(self, z)  # type: ignore[arg-type]

    def params(self) -> int:
        """Trained parameters: weight, beta and bias entries."""
        return int(self.weight.size + self.beta.size + self.bias.size)

    def cells(self) -> int:
        """Crossbar cells for the matrix (chip-independent count, before tiling).

        Differential pairs: 2·K·N. Reference column: K·(N + 1), one reference column (a lower bound:
        a chip with several column tiles needs one reference column per tile).
        """
        k, n = self.weight.shape
        return 2 * k * n if self.encoding == "differential_pair" else k * (n + 1)


@dataclass(frozen=True, eq=False, kw_only=True)
class DenseLayer(_MatrixLayer):
    """Fully connected binary layer: in_shape (fan_in,), weight (fan_in, fan_out), beta and
    bias (fan_out,)."""

    kind: ClassVar[str] = "dense"

    def __post_init__(self) -> None:
        in_shape = _shape(f"{self._where}.in_shape", self.in_shape, ndim=1)
        object.__setattr__(self, "in_shape", in_shape)
        n_out = np.shape(self.weight)[1] if np.ndim(self.weight) == 2 else -1
        self._check_common([(n_out,)])
        if in_shape != (self.fan_in,):
            raise ValueError(
                f"{self._where}.in_shape={in_shape} does not match weight rows {self.fan_in}"
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
    """2-D convolution unrolled im2col-style (DESIGN §3).

    in_shape (C_in, H, W); weight (C_in·kH·kW, C_out) whose row index is c·kH·kW + i·kW + j (the
    column order of ``torch.nn.functional.unfold``); the matrix is applied at each of the
    L = H'·W' output locations (row-major, l = h'·W' + w'), zero padding. out_shape (C_out, H', W').
    beta: (C_out,) with ``beta_per="channel"`` or (C_out, H', W') with ``beta_per="location"``.
    """

    kind: ClassVar[str] = "conv"

    kernel_size: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    beta_per: str = "channel"

    def __post_init__(self) -> None:
        w = self._where
        in_shape = _shape(f"{w}.in_shape", self.in_shape, ndim=3)
        object.__setattr__(self, "in_shape", in_shape)
        k = _pair(f"{w}.kernel_size", self.kernel_size, minimum=1)
        s = _pair(f"{w}.stride", self.stride, minimum=1)
        pad = _pair(f"{w}.padding", self.padding, minimum=0)
        object.__setattr__(self, "kernel_size", k)
        object.__setattr__(self, "stride", s)
        object.__setattr__(self, "padding", pad)
        beta_per = _choice(f"{w}.beta_per", self.beta_per, BETA_PER)
        c_in, h, wd = in_shape
        h_out, w_out = _pool_out(h, k[0], s[0], pad[0]), _pool_out(wd, k[1], s[1], pad[1])
        if h_out < 1 or w_out < 1:
            raise ValueError(
                f"{w}: input {in_shape} is smaller than kernel_size {k} with padding {pad}"
            )
        n_out = np.shape(self.weight)[1] if np.ndim(self.weight) == 2 else -1
        beta_shape = (n_out,) if beta_per == "channel" else (n_out, h_out, w_out)
        self._check_common([beta_shape])
        if self.fan_in != c_in * k[0] * k[1]:
            raise ValueError(
                f"{w}.weight has {self.fan_in} rows; in_shape {in_shape} with kernel_size {k} "
                f"needs C_in·kH·kW = {c_in * k[0] * k[1]}"
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
class MaxPoolLayer:
    """Max-pooling of (C, H, W) states in digital periphery (on ±1: a logical OR).

    Padding, as in torch, is implicit −inf (never selected); no dilation, floor rounding.
    """

    kind: ClassVar[str] = "maxpool"
    array_fields: ClassVar[tuple[str, ...]] = ()

    name: str
    in_shape: tuple[int, ...]
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        w = self._where
        _name(f"{self.kind}.name", self.name)
        object.__setattr__(self, "in_shape", _shape(f"{w}.in_shape", self.in_shape, ndim=3))
        k = _pair(f"{w}.kernel_size", self.kernel_size, minimum=1)
        s = _pair(f"{w}.stride", self.stride, minimum=1)
        pad = _pair(f"{w}.padding", self.padding, minimum=0)
        if pad[0] > k[0] // 2 or pad[1] > k[1] // 2:
            raise ValueError(f"{w}.padding={pad} must be at most half of kernel_size={k}")
        object.__setattr__(self, "kernel_size", k)
        object.__setattr__(self, "stride", s)
        object.__setattr__(self, "padding", pad)
        if min(self.out_shape[1:]) < 1:
            raise ValueError(f"{w}: input {self.in_shape} is smaller than kernel_size {k}")

    @property
    def _where(self) -> str:
        return f"layer {self.name!r} ({self.kind})"

    @property
    def out_shape(self) -> tuple[int, ...]:
        c, h, w = self.in_shape
        return (
            c,
            _pool_out(h, self.kernel_size[0], self.stride[0], self.padding[0]),
            _pool_out(w, self.kernel_size[1], self.stride[1], self.padding[1]),
        )


@dataclass(frozen=True, eq=False, kw_only=True)
class FlattenLayer:
    """(d0, d1, ...) → (d0·d1·...,) in C order (torch's ``nn.Flatten`` on (C, H, W))."""

    kind: ClassVar[str] = "flatten"
    array_fields: ClassVar[tuple[str, ...]] = ()

    name: str
    in_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        _name(f"{self.kind}.name", self.name)
        object.__setattr__(self, "in_shape", _shape(f"{self._where}.in_shape", self.in_shape))

    @property
    def _where(self) -> str:
        return f"layer {self.name!r} ({self.kind})"

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (math.prod(self.in_shape),)


@dataclass(frozen=True, eq=False, kw_only=True)
class OutputLayer:
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
        _name(f"{self.kind}.name", self.name)
        in_shape = _shape(f"{w}.in_shape", self.in_shape, ndim=1)
        object.__setattr__(self, "in_shape", in_shape)
        weight = _array(f"{w}.weight", self.weight)
        if weight.ndim != 2 or weight.shape[0] != in_shape[0] or weight.shape[1] < 1:
            raise ValueError(
                f"{w}.weight has shape {weight.shape}; expected ({in_shape[0]}, n_classes)"
            )
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "bias", _array(f"{w}.bias", self.bias, (weight.shape[1],)))
        _choice(f"{w}.scale_policy", self.scale_policy, SCALE_POLICIES)
        _choice(f"{w}.encoding", self.encoding, ENCODINGS)

    @property
    def _where(self) -> str:
        return f"layer {self.name!r} ({self.kind})"

    @property
    def fan_in(self) -> int:
        return int(self.weight.shape[0])

    @property
    def fan_out(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.fan_out,)

    def params(self) -> int:
        return int(self.weight.size + self.bias.size)

    def cells(self) -> int:
        """Crossbar cells: 2·K·N (differential pairs) or K·(N + 1) (reference column)."""
        k, n = self.weight.shape
        return 2 * k * n if self.encoding == "differential_pair" else k * (n + 1)


Layer = BinarizeLayer | DenseLayer | ConvLayer | MaxPoolLayer | FlattenLayer | OutputLayer
BinaryMatrixLayer = DenseLayer | ConvLayer

#: Layer classes by their ``kind``.
KINDS: dict[str, type] = {
    cls.kind: cls
    for cls in (BinarizeLayer, DenseLayer, ConvLayer, MaxPoolLayer, FlattenLayer, OutputLayer)
}


def _attr_names(cls: type) -> list[str]:
    """The JSON attributes of a layer record: every dataclass field but the arrays."""
    return [f.name for f in fields(cls) if f.name not in cls.array_fields]  # type: ignore[arg-type]


def _attrs(layer: Layer) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _attr_names(type(layer)):
        v = getattr(layer, key)
        out[key] = list(v) if isinstance(v, tuple) else v
    return out


# --------------------------------------------------------------------------------------------
# The program
# --------------------------------------------------------------------------------------------


def _check_json_value(where: str, value: object) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where} must be JSON data (str, number, bool, null): {exc}") from None


@dataclass(frozen=True, eq=False)
class Program:
    """An ordered, validated list of layer records; chip-independent.

    ``input_shape``: the shape of one input example (e.g. (1, 28, 28)), values in [0, 1].
    ``source``: information about where the program came from (checkpoint path, model, rule,
    epochs); ``created``: filled by :func:`load_program` from the file (package version, time).
    Validation on construction: the layers chain (each ``in_shape`` is the previous
    ``out_shape``), crossbar layers receive binary states (a ``binarize`` layer comes first:
    no DAC), and exactly one ``output`` layer ends the program.
    """

    layers: tuple[Layer, ...]
    input_shape: tuple[int, ...]
    source: Mapping[str, Any] = field(default_factory=dict)
    created: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "input_shape", _shape("input_shape", self.input_shape))
        for key in ("source", "created"):
            value = dict(getattr(self, key))
            if not all(isinstance(k, str) for k in value):
                raise ValueError(f"{key} keys must be strings")
            _check_json_value(key, value)
            object.__setattr__(self, key, value)
        if not layers:
            raise ValueError("a program needs at least one layer (the output layer)")
        shape = self.input_shape
        binary = False
        names = set()
        for i, layer in enumerate(layers):
            if type(layer) not in KINDS.values():
                raise ValueError(
                    f"layers[{i}] is a {type(layer).__name__}; expected one of "
                    f"{[c.__name__ for c in KINDS.values()]}"
                )
            where = f"layers[{i}] {layer.name!r} ({layer.kind})"
            if layer.name in names:
                raise ValueError(f"{where}: duplicate layer name")
            names.add(layer.name)
            if layer.in_shape != shape:
                prev = "the program input" if i == 0 else f"layers[{i - 1}]"
                raise ValueError(
                    f"{where}: in_shape {layer.in_shape} does not match the shape {shape} "
                    f"produced by {prev}"
                )
            if isinstance(layer, (DenseLayer, ConvLayer, OutputLayer)) and not binary:
                raise ValueError(
                    f"{where}: a crossbar layer needs ±1 input states (rows are driven by ±V, "
                    "no DAC); put a binarize layer before it"
                )
            if isinstance(layer, OutputLayer) and i != len(layers) - 1:
                raise ValueError(f"{where}: the output layer must be the last layer")
            if isinstance(layer, (BinarizeLayer, DenseLayer, ConvLayer)):
                binary = True
            shape = layer.out_shape
        if not isinstance(layers[-1], OutputLayer):
            raise ValueError(
                f"the last layer {layers[-1].name!r} is a {layers[-1].kind} layer; a program "
                "ends with a real-valued output layer"
            )

    def __eq__(self, other: object) -> bool:
        """Equal manifests (layers, attributes, shapes, source) and bitwise equal arrays."""
        if not isinstance(other, Program):
            return NotImplemented
        if (self.input_shape, dict(self.source)) != (other.input_shape, dict(other.source)):
            return False
        if len(self.layers) != len(other.layers):
            return False
        for a, b in zip(self.layers, other.layers, strict=True):
            if type(a) is not type(b) or _attrs(a) != _attrs(b):
                return False
            for key in a.array_fields:
                x, y = getattr(a, key), getattr(b, key)
                if x.shape != y.shape or x.tobytes() != y.tobytes():
                    return False
        return True

    __hash__ = None  # type: ignore[assignment]

    @property
    def output(self) -> OutputLayer:
        return self.layers[-1]  # type: ignore[return-value]

    @property
    def n_classes(self) -> int:
        return self.output.fan_out

    @property
    def binary_layers(self) -> tuple[BinaryMatrixLayer, ...]:
        """The stochastic / sign crossbar layers (dense and conv), in order."""
        return tuple(layer for layer in self.layers if isinstance(layer, (DenseLayer, ConvLayer)))

    def params(self) -> int:
        """Total trained parameters (weights, beta, bias)."""
        return sum(layer.params() for layer in self.layers if hasattr(layer, "params"))

    def cells(self) -> int:
        """Total crossbar cells over all matrices (see :meth:`DenseLayer.cells`)."""
        return sum(layer.cells() for layer in self.layers if hasattr(layer, "cells"))

    def summary(self) -> list[dict[str, Any]]:
        """One row per layer: name, kind, in/out shapes, noise, level (p or σ), params, cells."""
        rows = []
        for layer in self.layers:
            row: dict[str, Any] = {
                "name": layer.name,
                "kind": layer.kind,
                "in_shape": list(layer.in_shape),
                "out_shape": list(layer.out_shape),
                "noise": "",
                "level": "",
                "params": 0,
                "cells": 0,
            }
            if isinstance(layer, (DenseLayer, ConvLayer)):
                row["noise"] = layer.noise
                if layer.noise == "bernoulli":
                    row["level"] = f"p={layer.p:g}"
                elif layer.noise == "gaussian":
                    row["level"] = f"sigma={layer.sigma:g}"
                else:
                    row["level"] = "deterministic"
                row["matrix"] = [layer.fan_in, layer.fan_out]
            if isinstance(layer, (DenseLayer, ConvLayer, OutputLayer)):
                row["params"] = layer.params()
                row["cells"] = layer.cells()
                row["matrix"] = [layer.fan_in, layer.fan_out]
            rows.append(row)
        return rows

    # ---------------------------------------------------------------- manifest (file contents)

    def manifest(self, *, created: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The JSON manifest without its checksum (see docs/program-format.md)."""
        records = []
        for i, layer in enumerate(self.layers):
            record: dict[str, Any] = {"kind": layer.kind, **_attrs(layer)}
            record["out_shape"] = list(layer.out_shape)
            record["arrays"] = [
                {
                    "field": key,
                    "key": f"layer{i}.{key}",
                    "shape": list(getattr(layer, key).shape),
                    "dtype": ARRAY_DTYPE.str,
                }
                for key in layer.array_fields
            ]
            records.append(record)
        return {
            "format": FORMAT,
            "version": VERSION,
            "created": dict(self.created if created is None else created),
            "input_shape": list(self.input_shape),
            "layers": records,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by its npz key (``layer{i}.{field}``), in checksum order."""
        return {
            f"layer{i}.{key}": getattr(layer, key)
            for i, layer in enumerate(self.layers)
            for key in layer.array_fields
        }


# --------------------------------------------------------------------------------------------
# Checksum
# --------------------------------------------------------------------------------------------


def canonical_json(manifest: Mapping[str, Any]) -> bytes:
    """The manifest as hashed: sorted keys, no whitespace, ASCII, no NaN."""
    return json.dumps(
        manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def compute_checksum(manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 (hex) of the canonical manifest (without ``checksum``) then each declared array's
    little-endian C-order bytes, layer by layer in the order the manifest lists them."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    h = hashlib.sha256(canonical_json(body))
    for record in body["layers"]:
        for spec in record["arrays"]:
            a = arrays[spec["key"]]
            h.update(np.ascontiguousarray(a, dtype=np.dtype(spec["dtype"])).tobytes())
    return h.hexdigest()


def _package_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python < 3.8
        return "unknown"
    try:
        return version("nsm-crossbar")
    except PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------------------------
# Save / load
# --------------------------------------------------------------------------------------------


def save_program(program: Program, path: str | os.PathLike) -> Path:
    """Write ``program`` to ``path`` (one .npz; the exact name is kept) atomically.

    The file appears complete or not at all (temporary file in the same folder, then
    ``os.replace``). Returns the path.
    """
    if not isinstance(program, Program):
        raise TypeError(f"program must be a Program, got {type(program).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = {
        "package": "nsm-crossbar",
        "package_version": _package_version(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": dict(program.source),
    }
    manifest = program.manifest(created=created)
    arrays = program.arrays()
    manifest["checksum"] = {"algorithm": "sha256", "value": compute_checksum(manifest, arrays)}
    text = json.dumps(manifest, indent=1, ensure_ascii=True, allow_nan=False)
    members = {MANIFEST_KEY: np.frombuffer(text.encode("ascii"), dtype=np.uint8)}
    members.update({k: np.asarray(v, dtype=ARRAY_DTYPE) for k, v in arrays.items()})
    # A unique name in the same folder (os.replace is atomic within a file system); opened with
    # "xb" rather than mkstemp so the file gets the user's default permissions.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:
            np.savez(f, **members)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


_TOP_KEYS = {"format", "version", "created", "input_shape", "layers", "checksum"}
_RECORD_KEYS = {"kind", "out_shape", "arrays"}


def load_program(path: str | os.PathLike) -> Program:
    """Read and fully validate a program file; never unpickles, never imports torch.

    Raises :class:`ProgramError` naming the file and what is wrong for: a missing file, a file
    that is not an npz archive, truncated or corrupted bytes, a manifest that is not valid JSON
    or not a program manifest, another format version, missing or extra arrays, arrays whose
    shape or dtype differ from the manifest, a checksum mismatch (the file was edited), non-finite
    values, and layer records that are invalid or do not chain.
    """
    path = Path(path)
    if not path.is_file():
        raise ProgramError(f"{path}: program file not found")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy/zipfile raise many types for foreign or damaged files
        raise ProgramError(
            f"{path}: not a readable nsmx program (expected an .npz archive; "
            f"{type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ProgramError(f"{path}: not an nsmx program (a single .npy array, not an .npz)")
    try:
        with npz:
            return _load_from_npz(npz, path)
    except ProgramError:
        raise
    except Exception as exc:  # a damaged archive can fail anywhere while reading members
        raise ProgramError(f"{path}: damaged program file ({type(exc).__name__}: {exc})") from None


def _read_member(npz: Any, key: str, path: Path) -> np.ndarray:
    try:
        return npz[key]
    except Exception as exc:  # CRC errors, truncated members, bad .npy headers, pickled data
        raise ProgramError(
            f"{path}: array {key!r} is unreadable, the file is corrupted "
            f"({type(exc).__name__}: {exc})"
        ) from None


def _load_from_npz(npz: Any, path: Path) -> Program:
    members = set(npz.files)
    if MANIFEST_KEY not in members:
        raise ProgramError(f"{path}: not an nsmx program (no {MANIFEST_KEY!r} member)")
    raw = _read_member(npz, MANIFEST_KEY, path)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ProgramError(
            f"{path}: the manifest must be a 1-D uint8 array, found {raw.dtype} {raw.shape}"
        )
    try:
        manifest = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProgramError(f"{path}: the manifest is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ProgramError(f"{path}: not an nsmx program (format tag is not {FORMAT!r})")
    version = manifest.get("version")
    if not _is_int(version) or version != VERSION:
        newer = _is_int(version) and version > VERSION
        hint = "; the file is newer: upgrade nsm-crossbar" if newer else ""
        raise ProgramError(
            f"{path}: program format version {version!r} is not supported (this nsm-crossbar "
            f"reads version {VERSION}{hint})"
        )
    keys = set(manifest)
    if keys != _TOP_KEYS:
        raise ProgramError(
            f"{path}: manifest fields {sorted(keys)} differ from the expected {sorted(_TOP_KEYS)}"
        )
    records = manifest["layers"]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ProgramError(f"{path}: manifest 'layers' must be a list of layer records")

    # Arrays: exactly the declared set, each readable with the declared shape and dtype.
    declared: list[tuple[int, dict[str, Any]]] = []
    for i, record in enumerate(records):
        specs = record.get("arrays")
        if not isinstance(specs, list) or not all(
            isinstance(s, dict) and set(s) == {"field", "key", "shape", "dtype"} for s in specs
        ):
            raise ProgramError(
                f"{path}: layers[{i}].arrays must be a list of {{field, key, shape, dtype}}"
            )
        declared.extend((i, s) for s in specs)
    keys_declared = [s["key"] for _, s in declared]
    if len(set(keys_declared)) != len(keys_declared):
        raise ProgramError(f"{path}: the manifest declares an array key twice")
    missing = sorted(set(keys_declared) - members)
    if missing:
        raise ProgramError(f"{path}: arrays {missing} declared in the manifest are missing")
    extra = sorted(members - set(keys_declared) - {MANIFEST_KEY})
    if extra:
        raise ProgramError(f"{path}: unexpected arrays {extra} not declared in the manifest")
    arrays: dict[str, np.ndarray] = {}
    for i, spec in declared:
        key = spec["key"]
        a = _read_member(npz, key, path)
        if spec["dtype"] != ARRAY_DTYPE.str or a.dtype != ARRAY_DTYPE:
            raise ProgramError(
                f"{path}: array {key!r} (layers[{i}].{spec['field']}) has dtype {a.dtype.str} "
                f"(manifest: {spec['dtype']!r}); programs store {ARRAY_DTYPE.str!r}"
            )
        if not isinstance(spec["shape"], list) or list(a.shape) != spec["shape"]:
            raise ProgramError(
                f"{path}: array {key!r} (layers[{i}].{spec['field']}) has shape "
                f"{list(a.shape)}, the manifest declares {spec['shape']}"
            )
        arrays[key] = a

    checksum = manifest["checksum"]
    if (
        not isinstance(checksum, dict)
        or checksum.get("algorithm") != "sha256"
        or not isinstance(checksum.get("value"), str)
    ):
        raise ProgramError(f"{path}: manifest 'checksum' must be {{algorithm: sha256, value}}")
    try:
        actual = compute_checksum(manifest, arrays)
    except (TypeError, ValueError) as exc:
        raise ProgramError(f"{path}: the manifest cannot be hashed ({exc})") from None
    if actual != checksum["value"]:
        raise ProgramError(
            f"{path}: checksum mismatch: the file was modified or damaged after it was written "
            f"(stored {checksum['value'][:16]}..., computed {actual[:16]}...)"
        )

    for i, spec in declared:
        a = arrays[spec["key"]]
        if not np.all(np.isfinite(a)):
            raise ProgramError(
                f"{path}: array {spec['key']!r} (layers[{i}].{spec['field']}) has non-finite "
                "values (NaN or inf)"
            )
    try:
        layers = tuple(_layer_from_record(i, record, arrays) for i, record in enumerate(records))
        created = manifest["created"]
        if not isinstance(created, dict):
            raise ValueError("manifest 'created' must be an object")
        source = created.get("source", {})
        if not isinstance(source, dict):
            raise ValueError("manifest 'created.source' must be an object")
        info = {k: v for k, v in created.items() if k != "source"}
        return Program(layers, manifest["input_shape"], source=source, created=info)
    except ValueError as exc:
        raise ProgramError(f"{path}: invalid program: {exc}") from None


def _layer_from_record(i: int, record: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> Layer:
    kind = record.get("kind")
    if kind not in KINDS:
        raise ValueError(f"layers[{i}].kind={kind!r} is not one of {sorted(KINDS)}")
    cls = KINDS[kind]
    attrs = _attr_names(cls)
    expected = set(attrs) | _RECORD_KEYS
    given = set(record)
    required = {f.name for f in fields(cls) if f.name not in cls.array_fields}
    if given - expected:
        raise ValueError(f"layers[{i}] ({kind}) has unknown fields {sorted(given - expected)}")
    if expected - given:
        raise ValueError(f"layers[{i}] ({kind}) lacks the fields {sorted(expected - given)}")
    specs = {s["field"]: s["key"] for s in record["arrays"]}
    if set(specs) != set(cls.array_fields) or len(specs) != len(record["arrays"]):
        raise ValueError(
            f"layers[{i}] ({kind}) declares arrays {sorted(specs)}; expected "
            f"{sorted(cls.array_fields)}"
        )
    kwargs = {k: record[k] for k in required}
    kwargs.update({f: arrays[key] for f, key in specs.items()})
    layer = cls(**kwargs)
    if record["out_shape"] != list(layer.out_shape):
        raise ValueError(
            f"layers[{i}] {layer.name!r} ({kind}): out_shape {record['out_shape']} is "
            f"inconsistent with its parameters, which give {list(layer.out_shape)}"
        )
    return layer
