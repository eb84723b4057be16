"""Programming a crossbar program onto a chip: per-layer read conditions and hardware layers.

:func:`program_layers` builds, for every crossbar layer of a :class:`~mapping.program.Program`
(dense, conv, output), one :class:`crossbar.HardwareLayer` on the chip as that layer reads it; a
convolution is its im2col matrix (C_in·kH·kW, C_out), read once per output location, and the
output layer an analog MVM read through the output ADC. All device-to-device randomness
(programming noise, faults, element variation, comparator offsets, gain errors) is drawn here,
once, from ``SeedSequence(seed)`` spawned per program layer (layer i always gets child i).
:func:`mapping.runtime.program_chip` wraps the result in a :class:`~mapping.runtime.ChipModel`.

Read conditions (``p_policy``):

``"trained"`` (default)  the mapper sets each layer's read conditions so that the element
    realises the p the layer was trained with: a constant-p Bernoulli element gets that p; a
    threshold-switching selector gets the read voltage whose population-mean p is the trained p
    (:func:`devices.selector_read_voltage`; conv layers trained at p = 0.25 and fc layers at 0.5
    read at different voltages); a Gaussian element drawn by the element gets the trained σ.
    Residual differences (device-to-device p spread, g_min, read noise) are compensated by the
    periphery gain a_i, which the engine solves from the *programmed* state.
``"chip"``  the chip as configured; a_i alone compensates the chip's actual p (or σ).

Sign baselines (noise "none") are programmed as deterministic layers: one noise-free read phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from crossbar import ChipConfig, HardwareLayer, replace_field
from devices import (
    BernoulliConfig,
    ConfigError,
    ConfigTypeError,
    GaussianElementConfig,
    SelectorConfig,
    selector_read_voltage,
)
from devices.fields import check_choice, check_int, check_real
from mapping.program import Program
from mapping.records import BinaryMatrixLayer, ConvLayer, DenseLayer, Layer, OutputLayer
from mapping.run_config import P_POLICIES


class MappingError(ValueError):
    """A program cannot run on a chip (e.g. its noise type differs from the chip's element)."""


@dataclass(frozen=True, eq=False)
class ProgrammedLayer:
    """A crossbar layer of the program as programmed on the chip.

    index: position in ``program.layers``; record: the program's layer; hardware: the engine's
    layer; chip: the chip as this layer reads it (read conditions set by the policy);
    read: one-line description of the read conditions.
    """

    index: int
    record: BinaryMatrixLayer | OutputLayer
    hardware: HardwareLayer
    chip: ChipConfig
    read: str

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def tiles(self) -> tuple[int, int]:
        """(row-tiles, column-tiles) the matrix occupies."""
        return len(self.hardware.row_slices), len(self.hardware.col_slices)


def read_conditions(
    chip: ChipConfig, layer: BinaryMatrixLayer, p_policy: str = "trained"
) -> tuple[ChipConfig, str]:
    """The chip as this layer reads it, and a one-line description of its read conditions.

    See the module docstring for the policies. Deterministic (sign) layers read the chip as is.
    Raises :class:`MappingError` when the chip's stochastic element cannot realise the layer's
    noise type (a Bernoulli-trained layer on a Gaussian element, or the reverse).
    """
    check_choice("p_policy", p_policy, P_POLICIES)
    if layer.deterministic:
        return chip, "deterministic read"
    element = chip.devices.element
    element_noise = chip.devices.element_model().noise
    if element_noise != layer.noise:
        raise MappingError(
            f"layer {layer.name!r} was trained with {layer.noise} noise, but the chip's "
            f"stochastic element ({type(element).__name__}) is {element_noise}: choose a chip "
            f"with a {layer.noise} element (nsmx chips lists them)"
        )
    if p_policy == "chip":
        _check_chip_p(chip, layer)
        return chip, _describe(chip) + _structure_note(chip, layer)
    try:
        if isinstance(element, BernoulliConfig):
            chip = replace_field(chip, "devices.element.p", float(layer.p))
        elif isinstance(element, SelectorConfig):
            v = selector_read_voltage(element, float(layer.p))
            chip = replace_field(chip, "devices.element.v_read_v", v)
        elif isinstance(element, GaussianElementConfig) and element.source == "element":
            chip = replace_field(chip, "devices.element.sigma", float(layer.sigma))
        # Other elements (read-noise Gaussian, user models): the chip as is; a_i compensates.
    except (ConfigError, ConfigTypeError) as err:
        raise MappingError(
            f"layer {layer.name!r}: the chip cannot read at the trained "
            f"{'p' if layer.noise == 'bernoulli' else 'sigma'} ({err})"
        ) from None
    return chip, _describe(chip) + _structure_note(chip, layer)


def _check_chip_p(chip: ChipConfig, layer: BinaryMatrixLayer) -> None:
    """Refuse a chip p (``--p-policy chip``) the layer cannot compute with: a_i and β are solved
    from the read's mean p and variance p(1 − p), so p must lie in (0, 1), and a column of
    fan_in cells must see at least one cell that differs from the deterministic read per read on
    average (fan_in·p >= 1 and fan_in·(1 − p) >= 1): below that its reads carry no signal (p
    tiny) or no noise to sample (p near 1) and the layer runs at chance level without a word."""
    element = chip.devices.element
    if isinstance(element, BernoulliConfig):
        p, field = float(element.p), "devices.element.p"
    elif isinstance(element, SelectorConfig):
        p, field = selector_mean_p(element), "devices.element (selector mean p at v_read_v)"
    else:
        return
    k = layer.fan_in
    if not (0.0 < p < 1.0 and k * p >= 1.0 and k * (1.0 - p) >= 1.0):
        raise MappingError(
            f"layer {layer.name!r}: the chip's {field} gives p={p:g}, which a layer of fan_in {k} "
            f"cannot read under p_policy 'chip' (a_i and beta depend on p(1 - p) = "
            f"{p * (1.0 - p):.3g}; a column sees {k * p:.3g} conducting cells per read); "
            f"allowed: p in [{1.0 / k:.3g}, {1.0 - 1.0 / k:.3g}], or p_policy 'trained'"
        )


def _structure_note(chip: ChipConfig, layer: BinaryMatrixLayer) -> str:
    """A note when the chip's element structure differs from the trained noise structure.

    The marginal firing probabilities are the same (docs/model.md §3); only the neurons'
    correlations differ (per-row drivers correlate the neurons of a layer), so the layer runs as the
    chip is.
    """
    hardware = getattr(chip.devices.element, "structure", None)
    trained = {"per_synapse": "per_cell", "per_input": "per_row"}.get(layer.structure)
    if hardware is None or trained is None or hardware == trained:
        return ""
    return f" ({hardware} elements; trained {layer.structure})"


def _describe(chip: ChipConfig) -> str:
    e = chip.devices.element
    if isinstance(e, BernoulliConfig):
        return f"p={e.p:g}"
    if isinstance(e, SelectorConfig):
        return f"selector V_in={e.v_read_v:.4g} V (mean p={selector_mean_p(e):.3g})"
    if isinstance(e, GaussianElementConfig):
        return f"sigma={e.sigma:g}" if e.source == "element" else "sigma=read noise"
    return type(e).__name__


def selector_mean_p(element: SelectorConfig) -> float:
    """Population-mean conducting probability of a selector at its read voltage:
    Φ((V_in − μ)/√(σ_c² + σ_d²)) (the expectation over μ_ij ~ N(μ, σ_d²))."""
    return float(
        ndtr((element.v_read_v - element.mu_v) / math.hypot(element.sigma_c_v, element.sigma_d_v))
    )


def program_layers(
    program: Program,
    chip: ChipConfig,
    *,
    seed: int = 0,
    p_policy: str = "trained",
    t_cal_s: float = 0.0,
) -> tuple[ProgrammedLayer, ...]:
    """Program every crossbar layer of ``program`` onto ``chip`` (arguments as
    :func:`mapping.runtime.program_chip`); the layers in program order.

    Raises :class:`MappingError` if a layer cannot run on the chip (noise type, per-location
    β, reference-column encoding), ``ValueError``/``TypeError`` for bad arguments.
    """
    if not isinstance(program, Program):
        raise TypeError(f"program must be a mapping.program.Program, got {type(program).__name__}")
    if not isinstance(chip, ChipConfig):
        raise TypeError(f"chip must be a crossbar.ChipConfig, got {type(chip).__name__}")
    seed = check_int("seed", seed, ge=0)
    p_policy = check_choice("p_policy", p_policy, P_POLICIES)
    t_cal_s = check_real("t_cal_s", t_cal_s, ge=0.0, unit="s")
    children = np.random.SeedSequence(seed).spawn(len(program.layers))
    layers: list[ProgrammedLayer] = []
    for i, layer in enumerate(program.layers):
        if not isinstance(layer, (DenseLayer, ConvLayer, OutputLayer)):
            continue
        _check_supported(layer)
        rng = np.random.default_rng(children[i])
        if isinstance(layer, OutputLayer):
            layer_chip, read = chip, "deterministic read, output ADC"
            build = dict(kind="output")
        else:
            layer_chip, read = read_conditions(chip, layer, p_policy)
            build = dict(
                kind="binary", beta=layer.beta, noise=layer.noise, p=layer.p, sigma=layer.sigma
            )
        try:
            hardware = HardwareLayer.build(
                layer.weight,
                bias=layer.bias,
                chip=layer_chip,
                rng=rng,
                scale=layer.scale_policy,
                t_cal_s=t_cal_s,
                **build,
            )
        except (ValueError, TypeError) as exc:
            raise MappingError(f"layer {layer.name!r} ({layer.kind}): {exc}") from None
        layers.append(ProgrammedLayer(i, layer, hardware, layer_chip, read))
    return tuple(layers)


def _check_supported(layer: Layer) -> None:
    if getattr(layer, "encoding", "differential_pair") != "differential_pair":
        raise MappingError(
            f"layer {layer.name!r}: encoding {layer.encoding!r} is not supported by the crossbar "
            "engine (it maps weights to differential pairs); recompile with "
            "--encoding differential_pair"
        )
    if isinstance(layer, ConvLayer) and layer.beta_per != "channel":
        raise MappingError(
            f"layer {layer.name!r}: per-location beta ({layer.beta.shape}) is not supported on "
            "the chip (one periphery gain per column); train with beta_per='channel'"
        )


__all__ = [
    "MappingError",
    "ProgrammedLayer",
    "program_layers",
    "read_conditions",
    "selector_mean_p",
]
