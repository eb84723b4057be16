"""What a classification costs on the chip: energy, latency and area of a finished run.

:func:`cost_report` turns a programmed :class:`~mapping.runtime.ChipModel` and one of its runs
(:class:`~mapping.runtime.ChipRun`) into a :class:`CostReport`, per classification at the
run's number of MC samples S. It reads only the engine's operation counters of the run (cell
reads, tile reads, comparator decisions, digital decisions, ADC conversions, per layer) and the
programmed conductances and element probabilities at the run's read time; it never re-runs the
network. The terms and their parameters are :mod:`crossbar.cost` (its
:class:`~crossbar.cost.CostConfig` is the chip's ``cost`` section); docs/cost.md states the model.

Energy components (J per classification), per layer and summed:

=====================  ====================================================================
``array_stochastic``   V²·t_read·Σ G·p per stochastic-phase read of the driven cells
``array_deterministic`` V²·t_read·Σ G per deterministic-phase read (β phase, sign and output
                       layers)
``row_lines``          C_row·V² per driven row line and read
``column_lines``       C_col·V² per sensed column line and read
``comparators``        per analog comparator decision
``adcs``               FOM·2^bits per conversion
``gain``               the β gain: analog (two_phase) or a digital multiply-add (digital)
``partial_sums``       one digital add per extra converted value combined into a decision
``digital_decisions``  one compare per decision taken after ADCs
``output_digital``     per logit and sample: scale and bias, exponential, MC average
``data_movement``      one bit per binary state delivered to the row drivers (per input and
                       evaluation; conv patches re-deliver a state at every location reading it)
=====================  ====================================================================

Cell reads on conv layers with zero padding: the counters give the number of driven cells, not
which; the energy per driven cell read is then the layer's mean (Σ G·p / cells), exact when every
row is driven (dense layers and interior conv locations).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from crossbar import Counters, HardwareLayer
from crossbar.cost import (
    CostConfig,
    adc_area_m2,
    adc_energy_j,
    array_read_energy_j,
    cell_area_m2,
    gain_register_area_m2,
    line_capacitance_f,
    line_charge_energy_j,
    output_logit_energy_j,
)

if TYPE_CHECKING:
    from mapping.runtime import ChipModel, ChipRun

#: Energy components, in report order.
ENERGY_COMPONENTS = (
    "array_stochastic",
    "array_deterministic",
    "row_lines",
    "column_lines",
    "comparators",
    "adcs",
    "gain",
    "partial_sums",
    "digital_decisions",
    "output_digital",
    "data_movement",
)
#: Area components, in report order.
AREA_COMPONENTS = ("cells", "comparators", "adcs", "gain_registers")


def _zeros(names: tuple[str, ...]) -> dict[str, float]:
    return dict.fromkeys(names, 0.0)


def _component_sums(parts: list[dict[str, float]], names: tuple[str, ...]) -> dict[str, float]:
    """Per component of ``names``: the sum over the per-layer dicts ``parts`` (layer order)."""
    out = _zeros(names)
    for part in parts:
        for k, v in part.items():
            out[k] += v
    return out


@dataclass(frozen=True)
class LayerCost:
    """One crossbar layer's cost per classification.

    path: how decisions are taken (:attr:`crossbar.HardwareLayer.path`); phases: read phases per
    evaluation; locations: evaluations per MC sample (conv output positions, 1 for dense);
    energy_j / area_m2: by component (:data:`ENERGY_COMPONENTS`, :data:`AREA_COMPONENTS`);
    cycle_s: one read cycle (phases + sensing); latency_s: its cycles per classification;
    counts: operations per classification (cell reads, tile reads, decisions, conversions).
    """

    name: str
    kind: str
    path: str
    phases: int
    locations: float
    energy_j: dict[str, float]
    area_m2: dict[str, float]
    cycle_s: float
    latency_s: float
    counts: dict[str, float]

    @property
    def total_energy_j(self) -> float:
        return float(sum(self.energy_j.values()))

    @property
    def total_area_m2(self) -> float:
        return float(sum(self.area_m2.values()))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["total_energy_j"] = self.total_energy_j
        out["total_area_m2"] = self.total_area_m2
        return out


@dataclass(frozen=True)
class CostReport:
    """A run's cost per classification at its S (module docstring).

    energy_per_classification_j: total; energy_by_component_j / energy_by_layer_j: the breakdown;
    energy_per_sample_j: energy ÷ S; latency_s: per classification (layers, locations and samples
    in sequence, samples over ``parallel_copies`` copies); area_m2 (by component in
    area_by_component_m2); throughput_per_s = 1/latency; power_w = energy/latency;
    classifications_per_j: throughput per watt (classifications/s/W = classifications/J).
    """

    samples: int
    n: int
    layers: tuple[LayerCost, ...]
    cost: CostConfig

    @property
    def energy_by_component_j(self) -> dict[str, float]:
        return _component_sums([lc.energy_j for lc in self.layers], ENERGY_COMPONENTS)

    @property
    def energy_by_layer_j(self) -> dict[str, float]:
        return {lc.name: lc.total_energy_j for lc in self.layers}

    @property
    def energy_per_classification_j(self) -> float:
        return float(sum(lc.total_energy_j for lc in self.layers))

    @property
    def energy_per_sample_j(self) -> float:
        return self.energy_per_classification_j / self.samples

    @property
    def latency_s(self) -> float:
        return float(sum(lc.latency_s for lc in self.layers))

    @property
    def area_by_component_m2(self) -> dict[str, float]:
        return _component_sums([lc.area_m2 for lc in self.layers], AREA_COMPONENTS)

    @property
    def area_m2(self) -> float:
        return float(sum(lc.total_area_m2 for lc in self.layers))

    @property
    def throughput_per_s(self) -> float:
        return 1.0 / self.latency_s if self.latency_s > 0 else math.inf

    @property
    def power_w(self) -> float:
        return self.energy_per_classification_j / self.latency_s if self.latency_s > 0 else 0.0

    @property
    def classifications_per_j(self) -> float:
        e = self.energy_per_classification_j
        return 1.0 / e if e > 0 else math.inf

    def metrics(self) -> dict[str, float]:
        """The headline numbers (the sweep store's cost metrics)."""
        return {
            "energy_per_classification_j": self.energy_per_classification_j,
            "energy_per_sample_j": self.energy_per_sample_j,
            "latency_s": self.latency_s,
            "area_m2": self.area_m2,
            "throughput_per_s": self.throughput_per_s,
            "power_w": self.power_w,
            "classifications_per_j": self.classifications_per_j,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: :meth:`metrics`, the breakdowns, the layers and the cost parameters."""
        return {
            **self.metrics(),
            "samples": self.samples,
            "n": self.n,
            "energy_by_component_j": self.energy_by_component_j,
            "energy_by_layer_j": self.energy_by_layer_j,
            "area_by_component_m2": self.area_by_component_m2,
            "layers": [lc.to_dict() for lc in self.layers],
            "cost": dataclasses.asdict(self.cost),
        }


# ------------------------------------------------------------------------------ conductances


def conducting_sums_us(layer: HardwareLayer, t_s: float) -> tuple[float, float]:
    """(Σ G·p, Σ G) in µS over every programmed cell of ``layer`` at ``t_s``: the expected
    conducting conductance of a stochastic-phase read (Bernoulli p per cell or per row; a
    Gaussian element has E[ξ] = 1) and of a deterministic-phase read. Negative model
    conductances (none in the shipped models) count as 0. Sign and output layers: Σ G·p = 0."""
    cond = layer.chip.devices.conductance_model()
    elem = layer.chip.devices.element_model() if layer.stochastic else None
    g_s = g_d = 0.0
    for row in layer.tiles:
        for tile in row:
            gp = np.maximum(np.asarray(cond.mean(tile.g_plus, t_s), dtype=np.float64), 0.0)
            gm = np.maximum(np.asarray(cond.mean(tile.g_minus, t_s), dtype=np.float64), 0.0)
            g_d += float(gp.sum() + gm.sum())
            if elem is None:
                continue
            if elem.noise != "bernoulli":
                g_s += float(gp.sum() + gm.sum())
                continue
            p = np.asarray(elem.p(tile.element), dtype=np.float64)
            if elem.structure == "per_cell":
                r = gp.shape[0]
                g_s += float(np.sum(p[:r] * gp) + np.sum(p[r:] * gm))
            else:  # one driver per input gates both cells of its pair
                g_s += float(np.sum(p.reshape(-1, 1) * (gp + gm)))
    return g_s, g_d


# ------------------------------------------------------------------------------ one layer


def _adc_channels(layer: HardwareLayer, path: str, cost: CostConfig) -> int:
    """ADCs of the layer: per column (and per row-tile on the tile paths), ``cols_per_adc``
    columns of a column-tile sharing one."""
    per_tile = path in ("tile_adc", "digital_tile", "output_tile")
    if path == "analog" and not (layer.kind == "binary" and cost.hidden_readout == "adc"):
        return 0
    groups = len(layer.row_slices) if per_tile else 1
    m = cost.cols_per_adc
    return groups * sum(math.ceil((cs.stop - cs.start) / m) for cs in layer.col_slices)


def layer_cost(
    layer: HardwareLayer,
    counters: Counters,
    *,
    examples: int,
    samples: int,
    t_s: float,
    cost: CostConfig,
    name: str = "",
) -> LayerCost:
    """The cost of ``layer`` per classification from its ``counters`` over a run of
    ``examples`` examples x ``samples`` MC samples read at ``t_s`` (module docstring)."""
    if not isinstance(cost, CostConfig):
        raise TypeError(f"cost must be a crossbar.cost.CostConfig, got {type(cost).__name__}")
    chip = layer.chip
    per = chip.periphery
    v = chip.v_read_v
    path = layer.path
    fan_out = layer.fan_out
    n_rt, n_ct = len(layer.row_slices), len(layer.col_slices)
    phases = int(layer.stochastic) + int(layer.reads_deterministic)
    readout_adc = layer.kind == "binary" and path == "analog" and cost.hidden_readout == "adc"
    bits = per.output_adc_bits if layer.kind == "output" else per.adc_bits
    c = counters
    per_class = 1.0 / examples
    energy = _zeros(ENERGY_COMPONENTS)

    # Array reads: driven cell reads per phase x the mean conducting conductance per cell.
    cells = 2 * layer.fan_in * fan_out
    driven = c.device_reads / phases
    g_s, g_d = conducting_sums_us(layer, t_s)
    if layer.stochastic:
        energy["array_stochastic"] = array_read_energy_j(driven * g_s / cells, v, cost.t_read_s)
    if layer.reads_deterministic:
        energy["array_deterministic"] = array_read_energy_j(driven * g_d / cells, v, cost.t_read_s)
    # Lines: every column-tile has its own copy of each driven row (device_reads counts the
    # driven rows x the fan-out); every read senses the used columns of every tile.
    row_charges = c.device_reads * n_ct / fan_out
    col_charges = phases * c.evaluations * n_rt * fan_out
    e_row = line_charge_energy_j(line_capacitance_f(chip.tile.cols, cost), v)
    e_col = line_charge_energy_j(line_capacitance_f(chip.tile.rows, cost), v)
    energy["row_lines"] = row_charges * e_row
    energy["column_lines"] = col_charges * e_col

    # Sensing and periphery.
    decisions = c.comparator_decisions + c.digital_decisions
    if readout_adc:
        energy["adcs"] = c.comparator_decisions * adc_energy_j(per.adc_bits, cost)
        energy["digital_decisions"] = c.comparator_decisions * cost.e_add_j
    else:
        energy["comparators"] = c.comparator_decisions * cost.e_comparator_j
    energy["adcs"] += c.adc_conversions * adc_energy_j(bits, cost)
    energy["digital_decisions"] += c.digital_decisions * cost.e_add_j
    if layer.stochastic and per.beta_mode == "two_phase":
        ops = decisions * (n_rt if path == "tile_adc" else 1)  # a_i·I_d per row-tile there
        energy["gain"] = ops * cost.e_gain_analog_j
    elif layer.stochastic and per.beta_mode == "digital":
        energy["gain"] = decisions * cost.e_mac_j
    logits = c.evaluations * fan_out if layer.kind == "output" else 0
    streams = 2 if path.startswith("digital") else 1  # both phases combined by the gain's MAC
    results = logits if layer.kind == "output" else c.digital_decisions
    energy["partial_sums"] = max(c.adc_conversions - streams * results, 0) * cost.e_add_j
    energy["output_digital"] = logits * output_logit_energy_j(cost)
    # One bit per driven input and evaluation, read once and broadcast to the column-tiles.
    energy["data_movement"] = c.device_reads / (phases * 2 * fan_out) * cost.e_bit_j
    energy = {k: val * per_class for k, val in energy.items()}

    # Area (one copy x parallel_copies).
    n_adc = _adc_channels(layer, path, cost)
    area = _zeros(AREA_COMPONENTS)
    area["cells"] = n_rt * n_ct * chip.tile.rows * chip.tile.cols * cell_area_m2(cost)
    if path == "analog" and not readout_adc:
        area["comparators"] = fan_out * cost.comparator_area_m2
    area["adcs"] = n_adc * adc_area_m2(per.adc_bits if readout_adc else bits, cost)
    if layer.stochastic and per.beta_mode != "none":
        gains = fan_out * (n_rt if path == "tile_adc" else 1)
        analog = per.beta_mode == "two_phase"
        area["gain_registers"] = gains * gain_register_area_m2(per.gain_bits, analog, cost)
    area = {k: val * cost.parallel_copies for k, val in area.items()}

    # Latency: phases in sequence, then the sensing; locations and samples in sequence.
    if path == "analog" and not readout_adc:
        t_sense = cost.t_comparator_s
    else:
        conversions = (c.adc_conversions + (c.comparator_decisions if readout_adc else 0)) / max(
            c.evaluations, 1
        )
        t_sense = conversions / max(n_adc, 1) * cost.t_adc_s + cost.t_digital_s
    cycle = phases * cost.t_read_s + t_sense
    locations = c.evaluations / (examples * samples)
    latency = locations * math.ceil(samples / cost.parallel_copies) * cycle
    counts = {
        "evaluations": c.evaluations * per_class,
        "cell_reads": c.device_reads * per_class,
        "tile_reads": c.tile_reads * per_class,
        "comparator_decisions": c.comparator_decisions * per_class,
        "digital_decisions": c.digital_decisions * per_class,
        "adc_conversions": c.adc_conversions * per_class,
    }
    return LayerCost(
        name=name,
        kind=layer.kind,
        path=path,
        phases=phases,
        locations=locations,
        energy_j=energy,
        area_m2=area,
        cycle_s=cycle,
        latency_s=latency,
        counts=counts,
    )


# ------------------------------------------------------------------------------ the model


def cost_report(model: ChipModel, run: ChipRun, cost: CostConfig | None = None) -> CostReport:
    """The cost per classification of ``run`` (a :meth:`ChipModel.run` of ``model``) with the
    cost parameters ``cost`` (default: the chip's ``cost`` section)."""
    from mapping.runtime import ChipModel, ChipRun

    if not isinstance(model, ChipModel):
        raise TypeError(f"model must be a mapping.runtime.ChipModel, got {type(model).__name__}")
    if not isinstance(run, ChipRun):
        raise TypeError(f"run must be a mapping.runtime.ChipRun, got {type(run).__name__}")
    if cost is None:
        cost = getattr(model.chip, "cost", None) or CostConfig()
    missing = [pl.name for pl in model.layers if pl.name not in run.counters]
    if missing:
        raise ValueError(f"run has no counters for layers {missing}: not a run of this model")
    layers = tuple(
        layer_cost(
            pl.hardware,
            run.counters[pl.name],
            examples=run.n,
            samples=run.samples,
            t_s=run.t_s,
            cost=cost,
            name=pl.name,
        )
        for pl in model.layers
    )
    return CostReport(samples=run.samples, n=run.n, layers=layers, cost=cost)


def _si(value: float, unit: str) -> str:
    """``3.2e-9, "J"`` -> ``"3.2 nJ"``."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    prefixes = [(1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, "")]
    scale, prefix = prefixes[0]
    for s, p in prefixes:
        if abs(value) >= s:
            scale, prefix = s, p
    return f"{value / scale:.3g} {prefix}{unit}"


def format_cost(report: CostReport) -> list[str]:
    """Text lines of the report: headline numbers, energy by component and by layer."""
    total = report.energy_per_classification_j
    lines = [
        f"  cost per classification (S = {report.samples}): energy {_si(total, 'J')}, "
        f"latency {_si(report.latency_s, 's')}, area {report.area_m2 * 1e6:.4g} mm², "
        f"{report.classifications_per_j:.4g} classifications/s/W",
        f"  energy per MC sample {_si(report.energy_per_sample_j, 'J')}, average power "
        f"{_si(report.power_w, 'W')}, throughput {report.throughput_per_s:.4g} classifications/s",
        "  energy by component:",
    ]
    for k, val in report.energy_by_component_j.items():
        if val > 0:
            share = val / total if total > 0 else 0.0
            lines.append(f"    {k:<22}{_si(val, 'J'):>12}{share:>8.1%}")
    lines.append(f"  {'layer':<10}{'path':<14}{'energy':>12}{'latency':>12}{'area':>14}")
    for lc in report.layers:
        lines.append(
            f"  {lc.name:<10}{lc.path:<14}{_si(lc.total_energy_j, 'J'):>12}"
            f"{_si(lc.latency_s, 's'):>12}{lc.total_area_m2 * 1e6:>11.4g} mm²"
        )
    return lines


__all__ = [
    "AREA_COMPONENTS",
    "ENERGY_COMPONENTS",
    "CostReport",
    "LayerCost",
    "conducting_sums_us",
    "cost_report",
    "format_cost",
    "layer_cost",
]
