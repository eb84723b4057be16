"""The runtime (program → chip → MC prediction) and chip resolution.

Statistical tests use fixed seeds and state their tolerance where they assert. The main checks run
on small models trained on the bundled digits in the fixtures (a few seconds each): on the ideal
chip the chip's MC accuracy equals the software model's within MC error, per-neuron firing
frequencies of the hidden layers match torch's ``firing_probability``, and per-column conductance
scaling changes nothing.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import nsm
from crossbar import ChipConfig
from crossbar.presets import (
    ChipError,
    apply_sets,
    chip_preset,
    chip_toml,
    list_chips,
    parse_value,
    resolve_chip,
)
from mapping import digital
from mapping import reference as ref
from mapping.compiler import compile_model
from mapping.mc_stream import UNIT_EXAMPLES
from mapping.records import ConvLayer, DenseLayer, MaxPoolLayer
from mapping.report import accuracy_nll, chip_report, format_layers
from mapping.run_config import RunConfig
from mapping.runtime import (
    MappingError,
    program_chip,
    read_conditions,
    selector_mean_p,
)
from nsm.data import load_dataset

# --------------------------------------------------------------------------------- fixtures


def _train(model: nn.Module, epochs: int, seed: int) -> nn.Module:
    """A short Adam loop on the digits training split (sampled forward, the NSM rule)."""
    x, y = load_dataset("digits", split="train")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for m in model.modules():  # re-initialise under the seed
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(len(x))
            for i in range(0, len(x), 50):
                idx = perm[i : i + 50]
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    return model.eval()


def small_mlp(rule: str = "nsm") -> nn.Sequential:
    hidden = {
        "nsm": lambda i, o: nsm.NSMLinear(i, o, p=0.5),
        "bn": lambda i, o: nsm.SignLinear(i, o, weight_norm=True, backward="erf"),
    }[rule]
    return nn.Sequential(
        nsm.BinarizeInput(), nn.Flatten(), hidden(64, 48), hidden(48, 32), nn.Linear(32, 10)
    )


def small_conv() -> nn.Sequential:
    # 8x8 -> conv3 pad 1 -> 8x8 -> pool 2 -> 4x4 -> conv3 stride 1 -> 2x2 -> 8*2*2 = 32
    return nn.Sequential(
        nsm.BinarizeInput(),
        nsm.NSMConv2d(1, 6, 3, padding=1, p=0.25),
        nn.MaxPool2d(2),
        nsm.NSMConv2d(6, 8, 3, p=0.25),
        nn.Flatten(),
        nsm.NSMLinear(32, 24, p=0.5),
        nn.Linear(24, 10),
    )


# One numba, torch and BLAS thread (conftest.one_thread): on a shared 2-core machine parallel
# regions mostly wait for cores (the thread-count invariance test switches back to several).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits_test():
    x, y = load_dataset("digits", split="test")
    return x.numpy(), y.numpy()


@pytest.fixture(scope="module")
def mlp():
    model = _train(small_mlp(), epochs=12, seed=0)
    return model, compile_model(model, (1, 8, 8))


@pytest.fixture(scope="module")
def conv():
    model = _train(small_conv(), epochs=6, seed=1)
    return model, compile_model(model, (1, 8, 8))


def mcnemar_ok(pred_a: np.ndarray, pred_b: np.ndarray, y: np.ndarray) -> tuple[bool, str]:
    """Equal accuracy within MC error: under H0 the discordant counts b (only a right) and c
    (only b right) have b − c with mean 0 and variance b + c; accept |b − c| <= 3√(b + c) + 1
    (a 3-sigma band, +1 for discreteness)."""
    ra, rb = pred_a == y, pred_b == y
    b, c = int(np.sum(ra & ~rb)), int(np.sum(~ra & rb))
    return abs(b - c) <= 3 * np.sqrt(b + c) + 1, f"b={b} c={c}"


# --------------------------------------------------------------------------------- chips


def test_list_chips_has_ideal_and_device_presets():
    chips = list_chips()
    assert next(iter(chips)) == "ideal"
    assert {"rram-selector", "selector-fefet", "pcm-gaussian"} <= set(chips)
    for name, description in chips.items():
        assert description
        chip = chip_preset(name)
        assert isinstance(chip, ChipConfig)
        assert ChipConfig.from_toml(chip_toml(name)) == chip  # --show text round-trips
    ideal = chip_preset("ideal")
    assert ideal.periphery.adc_bits == 0 and ideal.periphery.gain_bits == 0


def test_resolve_chip_file_and_sets(tmp_path):
    path = tmp_path / "my.toml"
    path.write_text(ChipConfig.from_preset("rram-selector").to_toml())
    chip = resolve_chip(
        str(path),
        [
            "periphery.adc_bits=6",
            "devices.element.sigma_d_v=0.05",
            "tile.rows=128",
            "wires.r_wire_ohm=1",
            "periphery.beta_mode=digital",
            'periphery.partial_sums="adc"',
        ],
    )
    assert chip.periphery.adc_bits == 6
    assert chip.devices.element.sigma_d_v == 0.05
    assert chip.tile.rows == 128
    assert chip.wires.r_wire_ohm == 1.0
    assert chip.periphery.beta_mode == "digital"
    assert chip.periphery.partial_sums == "adc"
    # Values are TOML literals; anything else is a bare string.
    assert parse_value("6") == 6 and parse_value("1e-3") == 1e-3 and parse_value("true") is True
    assert parse_value("digital") == "digital" and parse_value('"x y"') == "x y"


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("periphery.adc_bits=100", ["periphery.adc_bits", "100", "[0, 24]"]),
        ("periphery.adc_bits=abc", ["periphery.adc_bits", "'abc'", "integer"]),
        ("periphery.nope=1", ["periphery.nope", "not a known field", "adc_bits"]),
        ("nothing.here=1", ["nothing.here", "not a known field", "periphery"]),
        ("devices.element.sigma_d_v=-1", ["devices.element.sigma_d_v", "-1"]),
        ("devices.element.p=1.5", ["devices.element.p", "1.5", "(0, 1]"]),
        ("tile.rows=3", ["tile.rows", "3", "even"]),
        ("periphery.beta_mode=fancy", ["periphery.beta_mode", "fancy", "two_phase"]),
        ("adc_bits", ["field=value"]),
        ("periphery.adc_bits=", ["field=value"]),
    ],
)
def test_bad_set_names_field_value_and_range(item, expected):
    with pytest.raises(ChipError) as info:
        apply_sets(chip_preset("ideal"), [item])
    for text in expected:
        assert text in str(info.value)


def test_bad_chip_specs(tmp_path):
    with pytest.raises(ChipError, match=r"unknown.*ideal"):
        resolve_chip("no-such-chip")
    with pytest.raises(ChipError, match="not found"):
        resolve_chip(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("format_version = 1\n[periphery]\nadc_bits = 99\n")
    with pytest.raises(ChipError, match=r"bad.toml.*periphery.adc_bits.*99"):
        resolve_chip(str(bad))
    with pytest.raises(TypeError):
        apply_sets(chip_preset("ideal"), "periphery.adc_bits=6")


# --------------------------------------------------------------------------------- digital steps


def test_digital_steps_are_the_same_in_int8_and_float64():
    rng = np.random.default_rng(0)
    conv = ConvLayer(
        name="c",
        in_shape=(3, 9, 7),
        weight=rng.standard_normal((3 * 3 * 2, 4)),
        beta=np.ones(4),
        bias=np.zeros(4),
        noise="bernoulli",
        p=0.5,
        kernel_size=(3, 2),
        stride=(2, 1),
        padding=(1, 1),
    )
    z = np.where(rng.random((5, 3, 9, 7)) < 0.5, 1, -1).astype(np.int8)
    np.testing.assert_array_equal(digital.patches(conv, z, np.int8), ref.patches(conv, z))
    y = rng.integers(-1, 2, size=(5, conv.n_locations, 4)).astype(np.int8)
    np.testing.assert_array_equal(digital.fold(conv, y), ref.fold(conv, y.astype(float)))
    pool = MaxPoolLayer(
        name="p", in_shape=(3, 9, 7), kernel_size=(3, 3), stride=(2, 2), padding=(1, 1)
    )
    np.testing.assert_array_equal(digital.maxpool(pool, z), ref.maxpool(pool, z))
    dense = DenseLayer(
        name="d",
        in_shape=(6,),
        weight=np.ones((6, 2)),
        beta=np.ones(2),
        bias=np.zeros(2),
        noise="bernoulli",
        p=0.5,
    )
    zd = z.reshape(5, -1)[:, :6]
    np.testing.assert_array_equal(digital.patches(dense, zd, np.int8), ref.patches(dense, zd))


# --------------------------------------------------------------------------------- programming


def test_read_conditions_per_policy(conv):
    _, program = conv
    layers = program.binary_layers
    ideal = chip_preset("ideal")
    for layer in layers:
        chip, read = read_conditions(ideal, layer, "trained")
        assert chip.devices.element.p == layer.p and read == f"p={layer.p:g}"
        chip, _ = read_conditions(ideal, layer, "chip")
        assert chip.devices.element.p == 0.5
    selector = chip_preset("rram-selector")
    for layer in layers:
        chip, read = read_conditions(selector, layer, "trained")
        assert selector_mean_p(chip.devices.element) == pytest.approx(layer.p, abs=1e-12)
        assert "V_in" in read
    conv_v = read_conditions(selector, layers[0], "trained")[0].devices.element.v_read_v
    fc_v = read_conditions(selector, layers[-1], "trained")[0].devices.element.v_read_v
    assert conv_v < fc_v  # p = 0.25 reads below the selectors' mean threshold, p = 0.5 at it
    with pytest.raises(MappingError, match=r"trained with bernoulli.*gaussian"):
        program_chip(program, chip_preset("pcm-gaussian"))


def test_structure_mismatch_is_noted():
    """Per-input noise (one driver per row) trained, per-cell elements on chip: same marginals,
    the chip runs as it is and the read conditions say so."""
    model = nn.Sequential(
        nsm.BinarizeInput(),
        nn.Flatten(),
        nsm.NSMLinear(64, 8, structure="per_input"),
        nn.Linear(8, 10),
    ).eval()
    program = compile_model(model, (1, 8, 8))
    assert program_chip(program, chip_preset("ideal")).layers[0].read == (
        "p=0.5 (per_cell elements; trained per_input)"
    )
    per_row = resolve_chip("ideal", ["devices.element.structure=per_row"])
    assert program_chip(program, per_row).layers[0].read == "p=0.5"


def test_programming_is_reproducible_and_seeded(mlp):
    _, program = mlp
    chip = chip_preset("rram-selector")
    a = program_chip(program, chip, seed=3)
    b = program_chip(program, chip, seed=3)
    c = program_chip(program, chip, seed=4)
    ga = a.layers[0].hardware.tiles[0][0].g_plus
    gb = b.layers[0].hardware.tiles[0][0].g_plus
    gc = c.layers[0].hardware.tiles[0][0].g_plus
    assert np.array_equal(ga.g0_us, gb.g0_us) and not np.array_equal(ga.g0_us, gc.g0_us)
    # The read conditions and the gain: the mapper keeps β close to the trained one; with
    # 8-bit gains, p spread and 2 % stuck cells, within 20 % for every neuron (mean within 3 %).
    for pl in a.binary_layers:
        ratio = pl.hardware.effective.beta / pl.record.beta
        assert abs(ratio.mean() - 1) < 0.03 and np.all(np.abs(ratio - 1) < 0.2), ratio


def test_bad_arguments(mlp, digits_test):
    _, program = mlp
    x, _ = digits_test
    model = program_chip(program, chip_preset("ideal"))
    with pytest.raises(ValueError, match="x has shape"):
        model.predict(x[:, 0], 1)
    with pytest.raises(ValueError, match="samples=0"):
        model.predict(x[:2], 0)
    with pytest.raises(ValueError, match="mode='fast'"):
        model.predict(x[:2], 1, mode="fast")
    with pytest.raises(ValueError, match="t_s=-1"):
        model.predict(x[:2], 1, t_s=-1)
    with pytest.raises(ValueError, match="p_policy='x'"):
        program_chip(program, chip_preset("ideal"), p_policy="x")
    with pytest.raises(ValueError, match="seed=-1"):
        program_chip(program, chip_preset("ideal"), seed=-1)
    with pytest.raises(TypeError, match="Program"):
        program_chip("model.nsmx", chip_preset("ideal"))


def test_run_config_and_keyword_settings_are_the_same_run(mlp, digits_test):
    """run(x, RunConfig(...)) is run(x, samples, mode=..., ...): the same stream, bit for bit;
    the settings are validated by RunConfig and p_policy belongs to programming."""
    _, program = mlp
    x, _ = digits_test
    config = RunConfig(samples=4, mode="clt", t_s=60.0, seed=3, p_policy="chip")
    model = program_chip(program, chip_preset("rram-selector"), seed=1, config=config)
    assert model.p_policy == "chip"
    by_config = model.run(x[:30], config)
    by_keywords = model.run(x[:30], 4, mode="clt", t_s=60.0, seed=3)
    assert np.array_equal(by_config.probabilities, by_keywords.probabilities)
    assert by_config.config == by_keywords.config == config
    assert (by_config.samples, by_config.mode, by_config.t_s, by_config.seed) == (4, "clt", 60, 3)
    changed = model.run(x[:30], config, seed=4)  # keyword changes apply on top of a config
    assert changed.config.seed == 4
    assert not np.array_equal(changed.probabilities, by_config.probabilities)
    states = model.sample_states(x[:3], config)
    assert states[-1].shape == (4, 3, 10)
    assert model.sample_states(x[:3], seed=3)[-1].shape == (1, 3, 10)  # one sample by default
    with pytest.raises(TypeError, match="p_policy"):
        model.run(x[:2], 1, p_policy="trained")
    with pytest.raises(TypeError, match="samples given twice"):
        model.run(x[:2], 1, samples=2)
    with pytest.raises(TypeError, match="config"):
        model.run(x[:2], "exact")
    with pytest.raises(ValueError, match="contradicts"):
        program_chip(program, chip_preset("ideal"), p_policy="trained", config=config)


def test_unsupported_layers_are_named():
    torch.manual_seed(0)
    model = nn.Sequential(
        nsm.BinarizeInput(),
        nsm.NSMConv2d(1, 2, 3, beta_per="location", input_size=(8, 8)),
        nn.Flatten(),
        nn.Linear(72, 10),
    ).eval()
    program = compile_model(model, (1, 8, 8))
    with pytest.raises(MappingError, match=r"'1'.*per-location beta"):
        program_chip(program, chip_preset("ideal"))
    program = compile_model(small_mlp().eval(), (1, 8, 8), encoding="reference_column")
    with pytest.raises(MappingError, match="reference_column"):
        program_chip(program, chip_preset("ideal"))


# --------------------------------------------------------------------------------- acceptance


@pytest.mark.parametrize("mode", ["exact", "clt"])
def test_ideal_chip_accuracy_equals_software(mlp, digits_test, mode):
    """Issue 5 acceptance (small digits model): chip MC accuracy = software MC accuracy within
    MC error (McNemar 3-sigma band on the 450 test digits, 100 samples each)."""
    _, program = mlp
    x, y = digits_test
    software = ref.predict_reference(program, x, samples=100, rng=np.random.default_rng(7))
    chip = program_chip(program, chip_preset("ideal"), seed=0)
    run = chip.run(x, 100, mode=mode, seed=1)
    acc_sw = np.mean(software.argmax(1) == y)
    acc_chip, nll = accuracy_nll(run.probabilities, y)
    ok, detail = mcnemar_ok(run.probabilities.argmax(1), software.argmax(1), y)
    assert ok, (acc_chip, acc_sw, detail)
    assert acc_sw > 0.8 and acc_chip > 0.8  # a trained model, not chance
    # The averaged probabilities agree example by example: each is a mean of 100 softmax
    # draws whose per-draw spread is at most 1, so the mean |difference| over examples is
    # bounded by ~2 x 0.5/√100 = 0.1; it is far smaller in practice (measured ~0.02).
    assert np.mean(np.abs(run.probabilities - software)) < 0.05
    assert np.isfinite(nll) and nll < 1.0


def _chi_square_p(freq_counts: np.ndarray, expected: np.ndarray, var: np.ndarray) -> float:
    """p-value of Σ (k − E)²/Var over the informative neurons (Var > 0.5: at least a few
    draws' worth of randomness), as χ² with that many degrees of freedom."""
    ok = var > 0.5
    z2 = (freq_counts[ok] - expected[ok]) ** 2 / var[ok]
    return float(stats.chi2.sf(z2.sum(), ok.sum())), int(ok.sum())


@pytest.mark.parametrize("mode", ["exact", "clt"])
def test_hidden_firing_frequencies_match_torch(mlp, digits_test, mode):
    """Per-neuron firing frequencies on the ideal chip vs torch's firing_probability.

    Layer 1 (input fixed): counts of +1 over S samples are Binomial(S, P). Layer 2: given the
    sampled layer-1 states z1_s, the count is a sum of Bernoulli(P(z1_s)) with mean Σ P and
    variance Σ P(1 − P). χ² over all neurons of 4 examples; fixed seed; reject below p = 1e-3.
    """
    model, program = mlp
    x, _ = digits_test
    x = x[:4]
    chip = program_chip(program, chip_preset("ideal"), seed=0)
    samples = 2000
    states = chip.sample_states(x, samples, mode=mode, seed=5)
    z0 = torch.from_numpy(states[1][0].astype(np.float32))  # flattened ±1 inputs
    z1 = states[2]  # (S, B, 48)
    with torch.no_grad():
        p1 = model[2].firing_probability(z0).double().numpy()
        p2 = (
            model[3]
            .firing_probability(torch.from_numpy(z1.reshape(-1, 48).astype(np.float32)))
            .double()
            .numpy()
            .reshape(samples, len(x), 32)
        )
    k1 = (z1 > 0).sum(axis=0)
    pval, dof = _chi_square_p(k1, samples * p1, samples * p1 * (1 - p1))
    assert pval > 1e-3 and dof > 50, (pval, dof)
    k2 = (states[3] > 0).sum(axis=0)
    pval, dof = _chi_square_p(k2, p2.sum(0), (p2 * (1 - p2)).sum(0))
    assert pval > 1e-3 and dof > 30, (pval, dof)


def _exact_conv_probability(pl, z: np.ndarray) -> np.ndarray:
    """P(+1) of every (example, channel, location) of a conv layer on the ideal chip, exactly:
    the sum over all 2^K' conduction patterns of the K' driven inputs of a patch (zero padding
    drives nothing) of Π p^ξ (1 − p)^(1−ξ) 1[V κ_i Σ_j z_j w_ji (ξ_j + a_i) ≥ θ_i]. With
    g_min = 0 each weight has one conducting device (the other is 0 µS), so one ξ per input."""
    layer, hl = pl.record, pl.hardware
    p = pl.chip.devices.element.p
    zp = digital.patches(layer, z, np.float64)  # (B, L, K)
    w = layer.weight.astype(np.float64)
    scale = pl.chip.v_read_v * hl.kappa_us
    out = np.empty((*zp.shape[:2], layer.fan_out))
    for b in range(zp.shape[0]):
        for loc in range(zp.shape[1]):
            active = np.flatnonzero(zp[b, loc])
            c = zp[b, loc, active, None] * w[active]  # (K', N)
            k = len(active)
            xi = (np.arange(2**k)[:, None] >> np.arange(k)) & 1  # (2^K', K')
            weight = np.prod(np.where(xi == 1, p, 1 - p), axis=1)
            u = scale * (xi @ c + hl.gain * c.sum(axis=0))
            out[b, loc] = weight @ (u >= hl.threshold_ua)
    return digital.fold(layer, out)


def test_conv_model_on_ideal_chip(conv, digits_test):
    """im2col order, zero padding (undriven rows), max-pool and flatten on the ideal chip.

    clt mode: conv-layer firing frequencies per (channel, location) match torch's
    firing_probability (binomial χ², reject below p = 1e-3). exact mode: they match the exact
    distribution of the per-cell Bernoulli sum (enumerated), which for a fan-in of 9 is far from
    the Gaussian the software model assumes (measured |Δp| up to 0.25): the CLT-trained network
    and an exact-sampling chip differ at small fan-in, a physical effect, not a mapping error.
    The MC accuracy equals the software's within MC error in clt mode (McNemar 3-sigma)."""
    model, program = conv
    x, y = digits_test
    chip = program_chip(program, chip_preset("ideal"), seed=2)
    samples = 1000
    for mode in ("clt", "exact"):
        states = chip.sample_states(x[:3], samples, mode=mode, seed=3)
        if mode == "clt":
            with torch.no_grad():
                p1 = (
                    model[1]
                    .firing_probability(torch.from_numpy(states[0][0].astype(np.float32)))
                    .double()
                    .numpy()
                )  # (B, 6, 8, 8)
        else:
            p1 = _exact_conv_probability(chip.layers[0], states[0][0])
        k1 = (states[1] > 0).sum(axis=0)
        pval, dof = _chi_square_p(k1, samples * p1, samples * p1 * (1 - p1))
        assert pval > 1e-3 and dof > 100, (mode, pval, dof)
    software = ref.predict_reference(program, x, samples=30, rng=np.random.default_rng(1))
    prob = chip.predict(x, 30, mode="clt", seed=4)
    ok, detail = mcnemar_ok(prob.argmax(1), software.argmax(1), y)
    assert ok, detail
    assert np.mean(prob.argmax(1) == y) > 0.6


def test_p_policy_chip_compensates_on_ideal_chip(conv):
    """Trained at p = 0.25, read at the ideal chip's p = 0.5: the gain a_i alone restores β."""
    _, program = conv
    chip = program_chip(program, chip_preset("ideal"), p_policy="chip")
    for pl in chip.binary_layers:
        assert pl.read == "p=0.5"
        np.testing.assert_allclose(pl.hardware.effective.beta, pl.record.beta, rtol=1e-9)


def test_gaussian_nsm_on_gaussian_element(digits_test):
    """A Gaussian NSM (σ = 0.7, random β and biases) on the ideal chip with a Gaussian element:
    the mapper sets the element's σ to the trained one, β is realised exactly, and the firing
    frequencies match torch (binomial χ², reject below p = 1e-3). On pcm-gaussian the noise is
    the cells' read noise and a_i compensates as far as the 8-bit gain allows."""
    x, _ = digits_test
    torch.manual_seed(0)
    model = nn.Sequential(
        nsm.BinarizeInput(),
        nn.Flatten(),
        nsm.NSMLinear(64, 32, noise="gaussian", sigma=0.7),
        nn.Linear(32, 10),
    ).eval()
    with torch.no_grad():
        model[2].beta.uniform_(0.5, 2.0)
        model[2].bias.normal_(0.0, 0.5)
    program = compile_model(model, (1, 8, 8))
    chip = program_chip(program, resolve_chip("ideal", ["devices.element.model=gaussian"]))
    pl = chip.layers[0]
    assert pl.read == "sigma=0.7" and pl.chip.devices.element.sigma == 0.7
    np.testing.assert_allclose(pl.hardware.effective.beta, pl.record.beta, rtol=1e-9)
    samples = 2000
    states = chip.sample_states(x[:3], samples, mode="exact", seed=1)
    with torch.no_grad():
        p = (
            model[2]
            .firing_probability(torch.from_numpy(states[1][0].astype(np.float32)))
            .double()
            .numpy()
        )
    k = (states[2] > 0).sum(axis=0)
    pval, dof = _chi_square_p(k, samples * p, samples * p * (1 - p))
    assert pval > 1e-3 and dof > 30, (pval, dof)
    pcm = program_chip(program, chip_preset("pcm-gaussian"))
    assert pcm.layers[0].read == "sigma=read noise"
    assert np.all(np.isfinite(pcm.predict(x[:20], 3, seed=0)))


def test_per_column_scaling_changes_nothing_on_ideal_chip(mlp, digits_test):
    model, _ = mlp
    x, _ = digits_test
    ideal = chip_preset("ideal")
    per_column = program_chip(compile_model(model, (1, 8, 8), scale_policy="per_column"), ideal)
    global_ = program_chip(compile_model(model, (1, 8, 8), scale_policy="global"), ideal)
    zin = np.where(np.random.default_rng(0).random((20, 64)) < 0.5, 1, -1)
    for a, b in zip(per_column.binary_layers, global_.binary_layers, strict=True):
        assert not np.allclose(a.hardware.kappa_us, b.hardware.kappa_us)  # scales do differ
        np.testing.assert_allclose(a.hardware.effective.beta, a.record.beta, rtol=1e-9)
        np.testing.assert_allclose(b.hardware.effective.beta, b.record.beta, rtol=1e-9)
        z = zin[:, : a.hardware.fan_in]
        np.testing.assert_allclose(
            a.hardware.hardware_probability(z),
            b.hardware.hardware_probability(z),
            rtol=0,
            atol=1e-12,
        )
    # The same draws decide the same way: identical MC probabilities in clt mode (one uniform
    # per decision, compared with the same Φ up to rounding).
    pa = per_column.predict(x[:200], 20, mode="clt", seed=3)
    pb = global_.predict(x[:200], 20, mode="clt", seed=3)
    np.testing.assert_allclose(pa, pb, rtol=0, atol=1e-6)
    # exact mode: the same cells conduct; float32 sums may flip a decision at a tie.
    pa = per_column.predict(x[:200], 20, mode="exact", seed=3)
    pb = global_.predict(x[:200], 20, mode="exact", seed=3)
    assert np.mean(np.abs(pa - pb)) < 1e-3


def test_sign_baseline_is_deterministic_on_ideal_chip(digits_test):
    """A BN sign network (random weights) on the ideal chip: deterministic reads reproduce the
    torch forward pass (logits equal to float32 rounding), whatever the read seed."""
    x, _ = digits_test
    torch.manual_seed(3)
    model = small_mlp("bn").eval()
    program = compile_model(model, (1, 8, 8))
    chip = program_chip(program, chip_preset("ideal"))
    states = chip.sample_states(x[:50], 2, seed=0)
    with torch.no_grad():
        logits = model(torch.from_numpy(x[:50])).double().numpy()
    np.testing.assert_allclose(states[-1][0], logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(states[-1][0], states[-1][1])


# --------------------------------------------------------------------------------- streaming


def test_results_do_not_depend_on_chunking_or_threads(mlp, digits_test):
    _, program = mlp
    x, _ = digits_test
    chip = program_chip(program, chip_preset("rram-selector"), seed=0)
    base = chip.run(x[:150], 15, mode="exact", seed=9)
    small = chip.run(x[:150], 15, mode="exact", seed=9, chunk_values=997)
    np.testing.assert_array_equal(base.probabilities, small.probabilities)
    previous = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        two = chip.run(x[:150], 15, mode="exact", seed=9)
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(base.probabilities, two.probabilities)
    # The first unit block of examples does not depend on how many examples follow.
    head = chip.run(x[:UNIT_EXAMPLES], 15, mode="exact", seed=9)
    np.testing.assert_array_equal(base.probabilities[:UNIT_EXAMPLES], head.probabilities)
    other = chip.run(x[:150], 15, mode="exact", seed=10)
    assert not np.array_equal(base.probabilities, other.probabilities)
    # run's firing counts are those of sample_states on the same stream.
    states = chip.sample_states(x[:150], 15, mode="exact", seed=9)
    for pl in chip.binary_layers:
        np.testing.assert_array_equal(
            base.firing_counts[pl.name], (states[pl.index] > 0).sum(axis=(0, 1))
        )


def test_report_on_realistic_chip(mlp, digits_test):
    _, program = mlp
    x, y = digits_test
    chip = resolve_chip(
        "rram-selector", ["periphery.partial_sums=adc", "tile.rows=64", "periphery.adc_bits=5"]
    )
    model = program_chip(program, chip, seed=0)
    run = model.run(x[:100], 10, mode="clt", seed=0, progress=False)
    report = chip_report(model, run, y[:100])
    d = report.to_dict()
    assert d["n"] == 100 and d["samples"] == 10 and d["mode"] == "clt"
    assert 0 <= d["accuracy"] <= 1 and d["nll"] > 0
    assert d["adc_conversions"] > 0 and 0 < d["adc_saturations"] < d["adc_conversions"]
    hidden = d["layers"][0]
    assert hidden["tiles"] == [2, 1]  # 64 inputs on 32-input row tiles
    assert 0.2 < hidden["firing_rate"] < 0.8
    assert 0.8 < hidden["beta_ratio"]["mean"] < 1.2
    assert hidden["alignment"]["max"] <= 1.0 + 1e-12
    assert d["layers"][-1]["beta"] is None and d["layers"][-1]["firing_rate"] is None
    lines = format_layers(report)
    assert len(lines) == 1 + len(model.layers) and "ADC sat" in lines[0]


# --------------------------------------------------------------------------------- MNIST


@pytest.mark.mnist
@pytest.mark.parametrize(("name", "n"), [("mnist-mlp-nsm", 300), ("mnist-conv-nsm", 100)])
def test_mnist_checkpoint_on_ideal_chip(name, n):
    """Issue 5 acceptance on MNIST (the committed checkpoints; skipped without them or without
    NSMX_MNIST_DIR): the ideal chip's MC accuracy equals the software model's within MC error
    (McNemar 3-sigma) on the first n test digits, 10 samples, clt mode (the full test set with 100
    samples is in docs/results/hardware.md)."""
    import os
    from pathlib import Path

    from mapping.compiler import compile_checkpoint

    folder = os.environ.get("NSMX_MNIST_DIR", "").strip()
    if not folder:
        pytest.skip("NSMX_MNIST_DIR is not set: no folder with the MNIST IDX files")
    ckpt = Path(__file__).resolve().parents[1] / "examples" / "checkpoints" / f"{name}.pt"
    if not ckpt.exists():
        pytest.skip(f"{ckpt} is not committed")
    x, y = load_dataset("mnist", split="test", root=folder)
    x, y = x[:n].numpy(), y[:n].numpy()
    program = compile_checkpoint(ckpt)
    software = ref.predict_reference(program, x, samples=10, rng=np.random.default_rng(0))
    prob = program_chip(program, chip_preset("ideal")).predict(x, 10, mode="clt", seed=0)
    ok, detail = mcnemar_ok(prob.argmax(1), software.argmax(1), y)
    assert ok, detail
    assert np.mean(prob.argmax(1) == y) > 0.95
