"""The cost model: each term against a hand calculation on a tiny chip, proportionality to the
samples and to the cells read, zero-conductance cells, validation, the program-level report.

The tiny chip: a 4x3 layer on 4x2 tiles (two weight rows per tile: 2 row-tiles x 2 column-tiles)
of ideal devices (G± = κ·max(±w, 0) exactly, κ = 25 µS / max|w| per column), Bernoulli p = 0.5.
The hand calculations below write every term out with numbers, not with the model's functions.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from crossbar import ChipConfig, HardwareLayer, PeripheryConfig, TileConfig, replace_field
from crossbar.cost import CostConfig
from devices import ConfigError
from mapping.cost import conducting_sums_us, layer_cost

W = np.array([[0.5, -1.0, 0.0], [-0.25, 0.5, 0.0], [1.0, 0.0, 0.0], [0.0, -0.5, 0.0]])
BETA = np.array([1.0, 1.5, 0.5])
SUM_ABS_W = 3.75  # Σ|w|: the third column is all zeros
G_SUM_US = 25.0 * SUM_ABS_W  # Σ (G⁺ + G⁻) over the layer, µS
V = 0.2  # ChipConfig default read voltage
F = 40e-9  # CostConfig default feature size
PITCH = 2 * F  # √(4 F²)
C_WIRE = 0.2e-9  # F/m


def tiny_chip(**periphery) -> ChipConfig:
    per = dict(gain_bits=0, adc_bits=0, output_adc_bits=0)
    per.update(periphery)
    return ChipConfig.ideal(tile=TileConfig(4, 2), periphery=PeripheryConfig(**per))


def run_layer(chip, samples, batch=5, kind="binary", z=None, weight=W, seed=0):
    if kind == "binary":
        layer = HardwareLayer.build(
            weight,
            BETA[: weight.shape[1]],
            noise="bernoulli",
            p=0.5,
            chip=chip,
            rng=np.random.default_rng(seed),
        )
    else:
        layer = HardwareLayer.build(
            weight, kind="output", chip=chip, rng=np.random.default_rng(seed)
        )
    if z is None:
        z = np.where(np.random.default_rng(1).random((batch, weight.shape[0])) < 0.5, -1, 1)
    rng = np.random.default_rng(2)
    if kind == "binary":
        layer.sample(z, samples, rng=rng)
    else:
        layer.logits(z, samples, rng=rng)
    return layer


def cost_of(layer, samples, batch=5, cost=None):
    return layer_cost(
        layer, layer.counters, examples=batch, samples=samples, t_s=0.0, cost=cost or CostConfig()
    )


# --------------------------------------------------------------------------- hand calculations


def test_two_phase_layer_terms_by_hand():
    s = 3
    lc = cost_of(run_layer(tiny_chip(), s), s)
    e = lc.energy_j
    t_read = 10e-9
    # Array: every cell of the layer read s times per classification in each phase.
    assert e["array_stochastic"] == pytest.approx(s * V**2 * t_read * 0.5 * G_SUM_US * 1e-6)
    assert e["array_deterministic"] == pytest.approx(s * V**2 * t_read * G_SUM_US * 1e-6)
    # Row lines: 8 physical rows x 2 column-tiles x 2 phases per sample; a row spans 2 cells.
    assert e["row_lines"] == pytest.approx(s * 8 * 2 * 2 * C_WIRE * 2 * PITCH * V**2)
    # Column lines: 3 neurons x 2 row-tiles x 2 phases per sample; a column spans 4 cells.
    assert e["column_lines"] == pytest.approx(s * 3 * 2 * 2 * C_WIRE * 4 * PITCH * V**2)
    assert e["comparators"] == pytest.approx(s * 3 * 20e-15)
    assert e["gain"] == pytest.approx(s * 3 * 50e-15)  # analog a_i·I_d, one per decision
    assert e["data_movement"] == pytest.approx(s * 4 * 0.16e-12)  # 4 input bits per sample
    for k in ("adcs", "partial_sums", "digital_decisions", "output_digital"):
        assert e[k] == 0.0
    assert lc.phases == 2 and lc.locations == 1.0
    assert lc.cycle_s == pytest.approx(2 * t_read + 1e-9)
    assert lc.latency_s == pytest.approx(s * (2 * t_read + 1e-9))
    a = lc.area_m2
    assert a["cells"] == pytest.approx(4 * 4 * 2 * 4 * F**2)  # 4 whole tiles of 4x2 cells
    assert a["comparators"] == pytest.approx(3 * 20e-12)
    assert a["gain_registers"] == pytest.approx(3 * (8 * 2e-12 + 50e-12))  # 0 bits -> 8
    assert a["adcs"] == 0.0
    assert lc.counts["cell_reads"] == pytest.approx(s * 2 * 24)


def test_output_layer_terms_by_hand():
    s = 4
    lc = cost_of(run_layer(tiny_chip(output_adc_bits=6), s, kind="output"), s)
    e = lc.energy_j
    assert lc.phases == 1 and lc.path == "output_analog"
    assert e["array_stochastic"] == 0.0
    assert e["array_deterministic"] == pytest.approx(s * V**2 * 10e-9 * G_SUM_US * 1e-6)
    assert e["adcs"] == pytest.approx(s * 3 * 10e-15 * 2**6)  # Walden FOM x 2^bits
    assert e["output_digital"] == pytest.approx(s * 3 * (0.3e-12 + 3.7e-12 + 0.1e-12))
    assert e["comparators"] == e["gain"] == e["partial_sums"] == 0.0
    assert lc.area_m2["adcs"] == pytest.approx(3 * 5e-12 * 2**6)
    # One ADC per column: its single conversion per sample, then a digital step.
    assert lc.cycle_s == pytest.approx(10e-9 + 10e-9 + 1e-9)


def test_digital_beta_with_tile_adcs_by_hand():
    s = 3
    chip = tiny_chip(beta_mode="digital", partial_sums="adc", adc_bits=4)
    lc = cost_of(run_layer(chip, s), s)
    e = lc.energy_j
    assert lc.path == "digital_tile"
    conversions = s * 3 * 2 * 2  # per decision: 2 phases x 2 row-tiles
    assert lc.counts["adc_conversions"] == conversions
    assert e["adcs"] == pytest.approx(conversions * 10e-15 * 2**4)
    assert e["gain"] == pytest.approx(s * 3 * 0.3e-12)  # u = u_s + a·u_d, a digital MAC
    assert e["partial_sums"] == pytest.approx((conversions - 2 * s * 3) * 0.1e-12)
    assert e["digital_decisions"] == pytest.approx(s * 3 * 0.1e-12)
    assert e["comparators"] == 0.0
    # 6 ADCs (3 columns x 2 row-tiles) convert 12 values per sample: 2 conversions each.
    assert lc.cycle_s == pytest.approx(2 * 10e-9 + 2 * 10e-9 + 1e-9)
    assert lc.area_m2["adcs"] == pytest.approx(6 * 5e-12 * 2**4)
    assert lc.area_m2["gain_registers"] == pytest.approx(3 * 8 * 2e-12)  # no analog gain


def test_hidden_adc_readout_option_replaces_comparators():
    s = 2
    layer = run_layer(tiny_chip(), s)
    base = cost_of(layer, s)
    alt = cost_of(layer, s, cost=CostConfig(hidden_readout="adc", cols_per_adc=2))
    assert alt.energy_j["comparators"] == 0.0
    assert alt.energy_j["adcs"] == pytest.approx(s * 3 * 10e-15 * 2**8)  # 0 bits -> 8
    assert alt.energy_j["digital_decisions"] == pytest.approx(s * 3 * 0.1e-12)
    for k in ("array_stochastic", "array_deterministic", "row_lines", "gain"):
        assert alt.energy_j[k] == base.energy_j[k]
    # Columns per column-tile (2 and 1) share ADCs in pairs: 1 + 1 converters.
    assert alt.area_m2["adcs"] == pytest.approx(2 * 5e-12 * 2**8)
    assert alt.area_m2["comparators"] == 0.0


def test_one_phase_without_beta_gain():
    s = 2
    lc = cost_of(run_layer(tiny_chip(beta_mode="none"), s), s)
    assert lc.phases == 1
    assert lc.energy_j["array_deterministic"] == 0.0
    assert lc.energy_j["array_stochastic"] == pytest.approx(
        s * V**2 * 10e-9 * 0.5 * G_SUM_US * 1e-6
    )
    assert lc.energy_j["gain"] == 0.0 and lc.area_m2["gain_registers"] == 0.0


def test_parallel_copies_trade_area_for_latency():
    s = 10
    layer = run_layer(tiny_chip(), s)
    one, four = cost_of(layer, s), cost_of(layer, s, cost=CostConfig(parallel_copies=4))
    assert four.latency_s == pytest.approx(one.latency_s * math.ceil(s / 4) / s)
    assert four.total_area_m2 == pytest.approx(4 * one.total_area_m2)
    assert four.total_energy_j == pytest.approx(one.total_energy_j)


# --------------------------------------------------------------------------- proportionality


def test_energy_is_proportional_to_samples():
    chip = tiny_chip()
    e2 = cost_of(run_layer(chip, 2), 2)
    e4 = cost_of(run_layer(chip, 4), 4)
    for k, v in e2.energy_j.items():
        assert e4.energy_j[k] == pytest.approx(2 * v, rel=1e-12), k
    assert e4.latency_s == pytest.approx(2 * e2.latency_s)


def test_energy_is_proportional_to_cells_read():
    # Half the inputs undriven (0, as conv zero padding) in half the batch: 3/4 of the reads.
    z = np.ones((4, 4), dtype=np.int8)
    z[:2, :2] = 0
    full = cost_of(run_layer(tiny_chip(), 3, batch=4), 3, batch=4)
    part = cost_of(run_layer(tiny_chip(), 3, batch=4, z=z), 3, batch=4)
    assert part.counts["cell_reads"] == pytest.approx(0.75 * full.counts["cell_reads"])
    for k in ("array_stochastic", "array_deterministic", "row_lines", "data_movement"):
        assert part.energy_j[k] == pytest.approx(0.75 * full.energy_j[k]), k
    assert part.energy_j["column_lines"] == full.energy_j["column_lines"]  # all still sensed


def test_zero_conductance_cells_draw_no_read_energy():
    s = 2
    with_zero_column = cost_of(run_layer(tiny_chip(), s), s)
    without = cost_of(run_layer(tiny_chip(), s, weight=W[:, :2]), s)
    assert with_zero_column.counts["cell_reads"] > without.counts["cell_reads"]
    for k in ("array_stochastic", "array_deterministic"):
        assert with_zero_column.energy_j[k] == pytest.approx(without.energy_j[k])
    zero = cost_of(run_layer(tiny_chip(), s, weight=np.zeros((4, 3))), s)
    assert zero.energy_j["array_stochastic"] == zero.energy_j["array_deterministic"] == 0.0
    assert zero.energy_j["row_lines"] > 0.0  # the lines are still charged


@pytest.mark.parametrize("structure", ["per_cell", "per_row"])
def test_expected_read_energy_matches_element_draws(structure):
    """Σ G·p equals the MC mean of Σ ξ·G over the element's own reference sampler (selector
    with device-to-device p spread), within 4 standard errors."""
    chip = ChipConfig.from_preset("selector-fefet", tile=TileConfig(8, 4))
    chip = replace_field(chip, "devices.element.structure", structure)
    w = np.random.default_rng(3).standard_normal((6, 5))
    layer = HardwareLayer.build(
        w, np.ones(5), noise="bernoulli", p=0.5, chip=chip, rng=np.random.default_rng(4)
    )
    g_s, g_d = conducting_sums_us(layer, 0.0)
    cond, elem = chip.devices.conductance_model(), chip.devices.element_model()
    rng = np.random.default_rng(5)
    n = 4000
    draws = np.zeros(n)
    total_g = 0.0
    for row in layer.tiles:
        for tile in row:
            gp, gm = cond.mean(tile.g_plus, 0.0), cond.mean(tile.g_minus, 0.0)
            total_g += gp.sum() + gm.sum()
            xi = elem.sample(tile.element, n, rng=rng).astype(np.float64)
            if structure == "per_cell":
                r = gp.shape[0]
                draws += (xi[:, :r] * gp).sum(axis=(1, 2)) + (xi[:, r:] * gm).sum(axis=(1, 2))
            else:
                draws += xi @ (gp + gm).sum(axis=1)
    assert g_d == pytest.approx(total_g)
    assert abs(draws.mean() - g_s) < 4 * draws.std() / math.sqrt(n)
    assert 0.2 * g_d < g_s < 0.8 * g_d  # p around 0.5


# --------------------------------------------------------------------------- configuration


def test_cost_section_round_trips_and_replaces():
    chip = replace_field(ChipConfig(), "cost.adc_fom_j_per_step", 5e-15)
    chip = replace_field(chip, "cost.hidden_readout", "adc")
    assert chip.cost.adc_fom_j_per_step == 5e-15
    back = ChipConfig.from_toml(chip.to_toml())
    assert back == chip and back.cost.hidden_readout == "adc"
    assert ChipConfig.from_dict({"format_version": 1}).cost == CostConfig()  # omitted: defaults


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("cost.t_read_s", -1, "cost.t_read_s = -1.0 is out of range; allowed: (0, 1] s"),
        ("cost.cols_per_adc", 0, "cost.cols_per_adc = 0 is out of range"),
        ("cost.hidden_readout", "dac", "cost.hidden_readout = 'dac' is not a known choice"),
        ("cost.volts", 1.0, "cost.volts"),
    ],
)
def test_bad_cost_field_is_refused_by_name(field, value, expected):
    with pytest.raises(ConfigError) as info:
        replace_field(ChipConfig(), field, value)
    assert expected in str(info.value)
    table = {"format_version": 1, "cost": {field.split(".")[1]: value}}
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        ChipConfig.from_dict(table)


def test_cost_config_direct_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"CostConfig\.t_read_s"):
        CostConfig(t_read_s=-1)
    with pytest.raises(TypeError, match="CostConfig"):
        layer_cost(run_layer(tiny_chip(), 1), None, examples=1, samples=1, t_s=0.0, cost=None)


# --------------------------------------------------------------------------- a whole program


@pytest.fixture(scope="module")
def programs():
    import torch
    from torch import nn

    import nsm
    from mapping.compiler import compile_model

    torch.manual_seed(0)
    out = {}
    for rule, hidden in (
        ("nsm", lambda i, o: nsm.NSMLinear(i, o, p=0.5)),
        ("bn", lambda i, o: nsm.SignLinear(i, o, weight_norm=True, backward="erf")),
    ):
        model = nn.Sequential(
            nsm.BinarizeInput(), nn.Flatten(), hidden(64, 24), hidden(24, 16), nn.Linear(16, 10)
        ).eval()
        out[rule] = compile_model(model, (1, 8, 8))
    return out


def _report(program, chip, samples, cost=None):
    from mapping.cost import cost_report
    from mapping.runtime import program_chip

    x = np.random.default_rng(0).random((12, 1, 8, 8))
    model = program_chip(program, chip, seed=0)
    run = model.run(x, samples, mode="clt", seed=0)
    return cost_report(model, run, cost)


def test_report_of_a_program(programs):
    chip = ChipConfig.ideal(tile=TileConfig(32, 16))
    r2 = _report(programs["nsm"], chip, 2)
    r4 = _report(programs["nsm"], chip, 4)
    assert r4.energy_per_classification_j == pytest.approx(2 * r2.energy_per_classification_j)
    assert r4.energy_per_sample_j == pytest.approx(r2.energy_per_sample_j)
    assert r4.area_m2 == pytest.approx(r2.area_m2)
    d = json.loads(json.dumps(r4.to_dict()))
    assert set(d["energy_by_component_j"]) >= {"array_stochastic", "comparators", "adcs"}
    assert sum(d["energy_by_component_j"].values()) == pytest.approx(
        d["energy_per_classification_j"]
    )
    assert sum(d["energy_by_layer_j"].values()) == pytest.approx(d["energy_per_classification_j"])
    assert d["classifications_per_j"] == pytest.approx(1 / d["energy_per_classification_j"])
    assert d["power_w"] == pytest.approx(d["energy_per_classification_j"] / d["latency_s"])
    assert d["cost"] == dataclasses.asdict(chip.cost)
    # The chip's cost section is the default; another one can be given.
    cheap = _report(programs["nsm"], chip, 2, CostConfig(t_read_s=5e-9))
    assert cheap.energy_by_component_j["array_stochastic"] == pytest.approx(
        0.5 * r2.energy_by_component_j["array_stochastic"]
    )


def test_sign_network_reads_one_phase(programs):
    chip = ChipConfig.ideal(tile=TileConfig(32, 16))
    r = _report(programs["bn"], chip, 1)
    assert all(lc.phases == 1 for lc in r.layers)
    assert r.energy_by_component_j["array_stochastic"] == 0.0
    assert r.energy_by_component_j["gain"] == 0.0
    nsm_ = _report(programs["nsm"], chip, 1)
    assert r.energy_by_component_j["array_deterministic"] < nsm_.energy_per_classification_j


def _cli_cost(path, capsys, *extra):
    from nsmx.cli import main

    args = ["run", str(path), "--chip", "rram-selector", "--dataset", "digits", "--limit", "20"]
    args += ["--mode", "clt", "--no-software", "--no-progress", "--cost", "--json", *extra]
    assert main(args) == 0
    captured = capsys.readouterr()  # --json: stdout is the JSON alone, the report on stderr
    return captured.err, json.loads(captured.out)["cost"]


def test_cli_run_cost_json(programs, tmp_path, capsys):
    from mapping.program import save_program

    path = save_program(programs["nsm"], tmp_path / "mlp.nsmx")
    text, c2 = _cli_cost(path, capsys, "--samples", "2")
    assert "cost per classification (S = 2)" in text and "energy by component" in text
    for key in ("energy_per_classification_j", "latency_s", "area_m2", "energy_by_component_j"):
        assert key in c2
    _, c4 = _cli_cost(path, capsys, "--samples", "4")
    assert c4["energy_per_classification_j"] == pytest.approx(2 * c2["energy_per_classification_j"])
    _, cheap = _cli_cost(path, capsys, "--samples", "2", "--set", "cost.adc_fom_j_per_step=5e-15")
    assert cheap["energy_by_component_j"]["adcs"] == pytest.approx(
        0.5 * c2["energy_by_component_j"]["adcs"]
    )
    assert cheap["cost"]["adc_fom_j_per_step"] == 5e-15


def test_sweep_stores_costs_and_plots_them(programs, tmp_path, capsys):
    from mapping.program import save_program
    from nsmx.cli import main
    from nsmx.store import open_store
    from nsmx.sweep import SweepSpec, run_sweep
    from nsmx.sweep_plots import pareto_front

    path = save_program(programs["nsm"], tmp_path / "mlp.nsmx")
    spec = SweepSpec(
        program=str(path),
        chip="rram-selector",
        dataset="digits",
        limit=20,
        mode="clt",
        vary=(("run.samples", (1, 2)),),
        name="cost",
    )
    out = tmp_path / "sweep"
    run_sweep(spec, out, progress=False)
    with open_store(out) as store:
        rows = {r["samples"]: r["extra"]["cost"] for r in store.rows()}
    assert rows[2]["energy_per_classification_j"] == pytest.approx(
        2 * rows[1]["energy_per_classification_j"]
    )
    assert rows[1]["latency_s"] > 0 and rows[1]["area_m2"] > 0
    args = ["plot", str(out), "--metric", "energy_per_classification_j", "--pareto"]
    assert main([*args, "--out", str(tmp_path / "fig")]) == 0
    written = capsys.readouterr().out
    assert "sweep_sweep_energy_per_classification_j.png" in written
    assert "sweep_sweep_accuracy_vs_energy_per_classification_j.png" in written
    # (cost, accuracy): the cheaper of two equal accuracies and the costlier better one stay.
    assert pareto_front([(2.0, 0.9), (1.0, 0.9), (3.0, 0.95), (4.0, 0.93)]) == [1, 2]
