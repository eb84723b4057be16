"""Cost parameters of a chip (energy, latency, area) and the per-operation cost terms.

:class:`CostConfig` is the ``cost`` section of a :class:`~crossbar.config.ChipConfig`: every
number the cost model uses, as a frozen, validated dataclass with the unit in each field name and
its source (or "illustrative") next to each default. The functions below are the terms of the
model, each a small pure function of counts and parameters; :mod:`mapping.cost` applies them to
the operation counters of a run (:class:`~crossbar.counters.Counters`) and to the programmed
conductances. Nothing here runs or re-runs a network.

Derivation (per read phase of one tile; SI units inside, conductances given in µS):

Array reads. A ±1 input drives its differential pair's two rows at ±V_read (no DAC); the bit
lines are held at virtual ground, so every conducting cell sees |V| = V_read for the read time
t_read and dissipates V²·G·t_read. With a Bernoulli element the cell conducts with probability
p_ij, so the expected energy of a stochastic-phase read is V²·t_read·Σ_ij G_ij·p_ij; the
deterministic phase (every element conducts) costs V²·t_read·Σ_ij G_ij; a Gaussian element
ξ ~ N(1, σ²) has E[ξ] = 1 and costs V²·t_read·Σ G in either phase (:func:`array_read_energy_j`).
Read noise is zero-mean and leaves the expected energy unchanged; IR drop is neglected (the
wires' own dissipation is not modelled). Zero-conductance cells draw nothing.

Line charging. Each read charges every driven row line and every sensed column line once:
E = C_line·V_read², C_line = c_wire·(cells along the line)·pitch, pitch = √(cell area)
(:func:`line_capacitance_f`, :func:`line_charge_energy_j`). Using V_read for the bit lines too is
an upper bound for a virtual-ground bit line, whose swing is smaller.

Comparators and ADCs. A comparator decision costs ``e_comparator_j``. An ADC conversion of b
bits costs FOM·2^b with the Walden figure of merit FOM = P/(2^ENOB·f_s) (J per conversion step)
(:func:`adc_energy_j`); ENOB is taken equal to the nominal bits, which makes the estimate
optimistic. A converter simulated as ideal (0 bits) is charged ``ideal_cost_bits`` bits.

Periphery arithmetic. The β gain a_i·I_d costs one analog gain operation per decision
(two_phase) or one digital multiply-add (digital mode). Digital partial sums cost one add per
extra converted value combined into a decision. A digital decision (after ADCs) is a compare
(one add). The output layer's logits each cost one multiply-add (scale 1/(κV) and bias), one
exponential and one add (the softmax averaged over the MC samples).

Data movement. Every binary state delivered to a layer's row drivers (one bit per driven input
and evaluation, read once from a buffer and broadcast to the column-tiles; conv patches
re-deliver a state once per location that reads it) costs ``e_bit_j``.

Latency. The tiles of a layer read in parallel; its read cycle is the read phases in sequence
plus the sensing: a comparator decision, or the conversions of each ADC (``cols_per_adc``
columns share one converter) plus a digital step. Layers, conv locations and MC samples run in
sequence, the samples spread over ``parallel_copies`` copies of the chip (latency ÷ copies,
area × copies; energy unchanged).

Area. Whole tiles of cells (rows x cols x cell area), one comparator per analog-sensed neuron,
the ADCs (area ∝ 2^bits, as a SAR ADC's capacitive DAC), and the gain registers (bits x register
area, plus an analog gain circuit per neuron with two_phase β).

Sources: B. Murmann, "ADC Performance Survey" (github.com/bmurmann/ADC-survey); M. Horowitz,
"Computing's energy problem (and what we can do about it)", ISSCC 2014 (45 nm energies of
arithmetic and SRAM access); the default parameters of DNN+NeuroSim V1.3
(github.com/neurosim/DNN_NeuroSim_V1.3, ``Param.cpp``: cell dimensions, feature size, read
pulse). Everything else is marked illustrative at its field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from devices.fields import param, validate_config

HiddenReadout = Literal["as_simulated", "adc"]

#: Conductances are given in µS; the model computes in S.
SIEMENS_PER_US = 1e-6


@dataclass(frozen=True)
class CostConfig:
    """What each operation of the chip costs (module docstring for the model).

    ``hidden_readout``: ``"as_simulated"`` charges each hidden (binary) layer's decisions as the
    periphery takes them (comparators on the analog path, ADCs where the periphery has them);
    ``"adc"`` charges an ADC conversion of ``periphery.adc_bits`` plus a digital compare instead
    of every analog comparator decision (an ADC-based readout of the same network; it changes
    the cost only, not the simulated decisions).
    ``parallel_copies``: chip copies sharing the MC samples (latency ÷ copies, area x copies).
    """

    # Technology and array
    # NeuroSim V1.3 Param.cpp: featuresize = 40e-9 (wire width of its 22 nm node).
    feature_size_m: float = param(
        40e-9,
        gt=0.0,
        le=1e-3,
        unit="m",
        doc="technology feature size F (cell pitch with cell_area_f2)",
    )
    # NeuroSim V1.3 Param.cpp: cross-point cell 2F x 2F = 4F² (a 1S1R cell: selector on the
    # memory device); its 1T1R cell is 4F x 12F = 48F².
    cell_area_f2: float = param(
        4.0, gt=0.0, le=1e6, unit="F²", doc="area of one cell in F² (4 = cross-point 1S1R cell)"
    )
    # Illustrative: ~0.2 fF/µm, a typical on-chip wire capacitance per length.
    c_wire_f_per_m: float = param(
        0.2e-9, ge=0.0, le=1.0, unit="F/m", doc="wire capacitance per length (line-charging energy)"
    )
    # NeuroSim V1.3 Param.cpp: readPulseWidth = 10e-9 s.
    t_read_s: float = param(
        10e-9, gt=0.0, le=1.0, unit="s", doc="duration of one read pulse (read energy and latency)"
    )

    # Comparators (threshold neurons)
    e_comparator_j: float = param(
        20e-15, ge=0.0, le=1.0, unit="J", doc="energy of one comparator decision"
    )  # illustrative (latch)
    t_comparator_s: float = param(
        1e-9, ge=0.0, le=1.0, unit="s", doc="latency of one comparator decision"
    )  # illustrative
    comparator_area_m2: float = param(
        20e-12, ge=0.0, le=1.0, unit="m²", doc="area of one comparator"
    )  # illustrative 20 µm²

    # ADCs
    # Murmann's ADC survey: a representative Walden FOM of moderate-speed (10 MS/s-1 GS/s) SAR
    # converters, ~10 fJ/conversion-step (the survey's best designs reach ~1 fJ/step; this is
    # not a specific design).
    adc_fom_j_per_step: float = param(
        10e-15,
        ge=0.0,
        le=1.0,
        unit="J/step",
        doc="ADC Walden figure of merit: energy per conversion step",
    )
    t_adc_s: float = param(
        10e-9, ge=0.0, le=1.0, unit="s", doc="latency of one ADC conversion"
    )  # illustrative (100 MS/s)
    # Illustrative: 5 µm² per level (1280 µm² at 8 bits), area ∝ 2^bits (SAR capacitive DAC).
    adc_area_m2_per_level: float = param(
        5e-12, ge=0.0, le=1.0, unit="m²", doc="ADC area per level (area ∝ 2^bits)"
    )
    # Illustrative: one ADC per column (NeuroSim's default shares one among 8: numColMuxed = 8).
    cols_per_adc: int = param(
        1, ge=1, le=1 << 16, doc="columns sharing one ADC (their conversions in sequence)"
    )
    # docs/hardware-model.md §8: ADCs of 8-9 bits; charged for a converter or gain simulated as
    # ideal (0 bits).
    ideal_cost_bits: int = param(
        8, ge=1, le=24, doc="bits charged for an ADC or gain simulated as ideal (0 bits)"
    )

    # β gain and digital arithmetic
    e_gain_analog_j: float = param(
        50e-15, ge=0.0, le=1.0, unit="J", doc="energy of one analog β-gain operation (two_phase)"
    )  # illustrative
    # Horowitz, ISSCC 2014 (45 nm): 8-bit multiply 0.2 pJ + 32-bit add 0.1 pJ.
    e_mac_j: float = param(
        0.3e-12, ge=0.0, le=1.0, unit="J", doc="energy of one digital multiply-add"
    )
    # Horowitz, ISSCC 2014 (45 nm): 32-bit integer add 0.1 pJ.
    e_add_j: float = param(
        0.1e-12, ge=0.0, le=1.0, unit="J", doc="energy of one digital add or compare"
    )
    # Illustrative: one exponential by table and polynomial, about a 32-bit float multiply
    # (3.7 pJ at 45 nm, Horowitz, ISSCC 2014).
    e_exp_j: float = param(
        3.7e-12, ge=0.0, le=1.0, unit="J", doc="energy of one exponential (output softmax)"
    )
    t_digital_s: float = param(
        1e-9, ge=0.0, le=1.0, unit="s", doc="latency of one digital step (clock period)"
    )  # illustrative (1 GHz clock)
    # Horowitz, ISSCC 2014 (45 nm): 64-bit read of an 8 KB SRAM 10 pJ, i.e. ~0.16 pJ/bit.
    e_bit_j: float = param(
        0.16e-12, ge=0.0, le=1.0, unit="J", doc="energy to deliver one binary state to a row driver"
    )
    register_area_m2_per_bit: float = param(
        2e-12, ge=0.0, le=1.0, unit="m²", doc="area of one gain-register bit"
    )  # illustrative
    gain_area_m2: float = param(
        50e-12,
        ge=0.0,
        le=1.0,
        unit="m²",
        doc="area of one analog gain circuit (per neuron, two_phase)",
    )  # illustrative, per neuron

    # Cost-model options
    hidden_readout: HiddenReadout = param(
        "as_simulated", doc="charge hidden decisions as simulated, or as ADC readouts"
    )
    parallel_copies: int = param(
        1, ge=1, le=1 << 20, doc="chip copies sharing the MC samples (latency ÷, area ×)"
    )

    def __post_init__(self) -> None:
        validate_config(self)


# ------------------------------------------------------------------ energy terms


def array_read_energy_j(g_sum_us: float, v_read_v: float, t_read_s: float) -> float:
    """Expected energy (J) of one read of cells whose conducting conductance sums to
    ``g_sum_us`` (µS; Σ G·p for a stochastic phase, Σ G for a deterministic one):
    V²·t_read·Σ G."""
    return v_read_v**2 * t_read_s * g_sum_us * SIEMENS_PER_US


def cell_pitch_m(cost: CostConfig) -> float:
    """Cell pitch (m): √(cell area), the length of line one cell adds."""
    return math.sqrt(cost.cell_area_f2) * cost.feature_size_m


def cell_area_m2(cost: CostConfig) -> float:
    """Area of one cell (m²): cell_area_f2 x F²."""
    return cost.cell_area_f2 * cost.feature_size_m**2


def line_capacitance_f(cells: int, cost: CostConfig) -> float:
    """Capacitance (F) of a row or column line spanning ``cells`` cells: c_wire·cells·pitch."""
    return cost.c_wire_f_per_m * cells * cell_pitch_m(cost)


def line_charge_energy_j(capacitance_f: float, v_read_v: float) -> float:
    """Energy (J) of charging a line of ``capacitance_f`` to V_read once: C·V²."""
    return capacitance_f * v_read_v**2


def cost_bits(bits: int, cost: CostConfig) -> int:
    """The resolution charged for a converter or gain register of ``bits`` (0 = simulated as
    ideal: ``ideal_cost_bits``)."""
    return bits if bits > 0 else cost.ideal_cost_bits


def adc_energy_j(bits: int, cost: CostConfig) -> float:
    """Energy (J) of one ADC conversion: Walden FOM x 2^bits (bits 0: ideal_cost_bits)."""
    return cost.adc_fom_j_per_step * 2.0 ** cost_bits(bits, cost)


def adc_area_m2(bits: int, cost: CostConfig) -> float:
    """Area (m²) of one ADC: area per level x 2^bits (bits 0: ideal_cost_bits)."""
    return cost.adc_area_m2_per_level * 2.0 ** cost_bits(bits, cost)


def gain_register_area_m2(bits: int, analog: bool, cost: CostConfig) -> float:
    """Area (m²) of one neuron's β gain: a register of ``bits`` (0: ideal_cost_bits) plus the
    analog gain circuit when the gain is applied in the analog domain (two_phase)."""
    area = cost_bits(bits, cost) * cost.register_area_m2_per_bit
    return area + (cost.gain_area_m2 if analog else 0.0)


def output_logit_energy_j(cost: CostConfig) -> float:
    """Digital energy (J) per logit and MC sample: scale and bias (one multiply-add), the
    softmax exponential, and the accumulation of the MC average (one add)."""
    return cost.e_mac_j + cost.e_exp_j + cost.e_add_j


__all__ = [
    "SIEMENS_PER_US",
    "CostConfig",
    "adc_area_m2",
    "adc_energy_j",
    "array_read_energy_j",
    "cell_area_m2",
    "cell_pitch_m",
    "cost_bits",
    "gain_register_area_m2",
    "line_capacitance_f",
    "line_charge_energy_j",
    "output_logit_energy_j",
]
