"""Tests of the NSM layers against docs/model.md: firing probability, gradients, weight
normalisation, noise structure, BinConcrete, convolution. Every stochastic check uses a fixed seed
and states its tolerance; binomial z-scores use the exact standard error √(P(1−P)/N)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import special, stats

import nsm
from nsm import functional as fn

# |z| < 4 per neuron: two-sided probability 6.3e-5 under the null, so the ~300 z-scores of this
# file have a family-wise false-alarm rate < 2 % (and the seeds are fixed, so results are stable).
Z_MAX = 4.0


def zscores(freq: np.ndarray, p: np.ndarray, n: int) -> np.ndarray:
    return (freq - p) / np.sqrt(p * (1.0 - p) / n)


def randomise(layer: torch.nn.Module, seed: int, *, bias_scale: float = 0.2) -> None:
    """Weights N(0, 1), β in [0.2, 0.6], raw bias with b̃ = b/(c‖w‖) of order ``bias_scale``.

    With v̂·z ~ N(0, 1) for random ±1 inputs this keeps most P within [0.1, 0.9]."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=g))
        layer.beta.copy_(0.2 + 0.4 * torch.rand(layer.beta.shape, generator=g))
        if layer.bias is not None:
            c = fn.noise_scale(layer.noise_model)
            norm = layer.weight.flatten(1).norm(dim=1)
            b_tilde = bias_scale * torch.randn(layer.bias.shape, generator=g)
            layer.bias.copy_(b_tilde * c * norm)


def pm1(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return fn.sign(torch.randn(shape, generator=g))


def erf_formula(z: np.ndarray, w: np.ndarray, beta: np.ndarray, b: np.ndarray, c: float):
    """docs/model.md §1 written out independently: ½[1 + erf(β v̂·z + b/(c‖w‖))]."""
    norm = np.linalg.norm(w, axis=1)
    s = beta * (z @ w.T) / norm + b / (c * norm)
    return 0.5 * (1.0 + special.erf(s))


NOISE_CASES = [("bernoulli", 0.25, 1.0), ("bernoulli", 0.5, 1.0), ("gaussian", 0.5, 0.8)]


@pytest.mark.parametrize("mode", ["clt", "exact"])
@pytest.mark.parametrize("structure", ["per_synapse", "per_input"])
@pytest.mark.parametrize(("noise", "p", "sigma"), NOISE_CASES)
def test_firing_frequencies_match_erf(noise, p, sigma, structure, mode):
    fan_in, out, inputs, repeats = 400, 6, 3, 3000
    layer = nsm.NSMLinear(
        fan_in, out, noise=noise, p=p, sigma=sigma, structure=structure, mode=mode
    ).eval()
    randomise(layer, seed=1)
    layer.generator = torch.Generator().manual_seed(2)
    z = pm1((inputs, fan_in), seed=3)
    with torch.no_grad():
        y = layer(z.repeat(repeats, 1)).view(repeats, inputs, out)
        p_layer = layer.firing_probability(z).numpy()
    assert set(torch.unique(y).tolist()) <= {-1.0, 1.0}
    c = math.sqrt(2 * p * (1 - p)) if noise == "bernoulli" else math.sqrt(2) * sigma
    p_formula = erf_formula(
        z.numpy(),
        layer.weight.detach().numpy(),
        layer.beta.detach().numpy(),
        layer.bias.detach().numpy(),
        c,
    )
    np.testing.assert_allclose(p_layer, p_formula, rtol=1e-5, atol=1e-6)
    assert p_formula.min() > 0.02 and p_formula.max() < 0.98  # a non-degenerate test
    freq = (y == 1).double().mean(0).numpy()
    # Bernoulli sums of 400 terms deviate from the CLT by O(1/n) ~ 1e-3 (random signs of w z
    # cancel the skewness term), well below the standard error √(P(1−P)/3000) ≥ 0.0026.
    assert np.abs(zscores(freq, p_formula, repeats)).max() < Z_MAX


def test_pm1_states_are_required():
    """With {0,1} inputs the ±1 premise z_j² = 1 fails: the erf formula with ‖w‖ is wrong."""
    fan_in, out, repeats = 400, 6, 4000
    layer = nsm.NSMLinear(fan_in, out, p=0.5, mode="exact", beta_init=2.0).eval()
    randomise(layer, seed=4)
    with torch.no_grad():
        layer.beta.fill_(2.0)
    layer.generator = torch.Generator().manual_seed(5)
    z01 = (pm1((1, fan_in), seed=6) + 1) / 2
    w = layer.weight.detach()
    # The premise: F(z², w²) = ‖w‖² holds for ±1 states, not for {0, 1} states.
    z = 2 * z01 - 1
    torch.testing.assert_close(fn.weight_reach(z, w, fn.DenseOp())[0], w.norm(dim=1))
    reach01 = fn.weight_reach(z01, w, fn.DenseOp())[0]
    assert (reach01 < 0.8 * w.norm(dim=1)).all()
    with torch.no_grad():
        freq = (layer(z01.repeat(repeats, 1)) == 1).double().mean(0).numpy()
        p_true = layer.firing_probability(z01)[0].numpy()
    c = math.sqrt(2 * 0.25)
    p_premise = erf_formula(
        z01.numpy(), w.numpy(), layer.beta.detach().numpy(), layer.bias.detach().numpy(), c
    )[0]
    assert np.abs(zscores(freq, p_true, repeats)).max() < Z_MAX
    # The ‖w‖ formula misses by > 8 standard errors (the {0,1} variant fails the test above).
    assert np.abs(zscores(freq, p_premise, repeats)).max() > 8.0


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize(
    ("noise", "p", "sigma"), [("bernoulli", 0.25, 1.0), ("gaussian", 0.5, 0.7)]
)
def test_sample_rule_gradients_equal_design_formulas(noise, p, sigma, with_bias):
    torch.set_default_dtype(torch.float64)
    try:
        layer = nsm.NSMLinear(30, 5, noise=noise, p=p, sigma=sigma, bias=with_bias)
    finally:
        torch.set_default_dtype(torch.float32)
    randomise(layer, seed=7)
    z = pm1((4, 30), seed=8).double().requires_grad_()
    g = torch.randn(4, 5, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    y = layer(z)
    (y * g).sum().backward()

    w = layer.weight.detach()
    beta = layer.beta.detach()
    norm = w.norm(dim=1)
    v_hat = w / norm[:, None]
    c = math.sqrt(2 * p * (1 - p)) if noise == "bernoulli" else math.sqrt(2) * sigma
    b = layer.bias.detach() if with_bias else torch.zeros(5, dtype=torch.float64)
    vz = z.detach() @ v_hat.T  # (B, out) v̂_i·z
    s = beta * vz + b / (c * norm)
    # d(2P − 1) = 2 dP, with ∂P/∂s = e^{−s²}/√π (docs/model.md §2).
    k = g * 2 * torch.exp(-s * s) / math.sqrt(math.pi)
    d_beta = (k * vz).sum(0)
    proj = z.detach()[:, None, :] - vz[:, :, None] * v_hat[None]  # (I − v̂v̂ᵀ) z
    d_w = (k[:, :, None] * (beta / norm)[None, :, None] * proj).sum(0)
    # b̃ = b/(c‖w‖) adds ∂b̃/∂w_i = −b̃_i v̂_i/‖w_i‖ (zero without bias).
    d_w = d_w - (k * (b / (c * norm))).sum(0)[:, None] * v_hat / norm[:, None]
    d_z = (k[:, :, None] * (beta[:, None] * v_hat)[None]).sum(1)
    torch.testing.assert_close(layer.beta.grad, d_beta, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(layer.weight.grad, d_w, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(z.grad, d_z, rtol=1e-9, atol=1e-12)
    if with_bias:
        torch.testing.assert_close(layer.bias.grad, (k / (c * norm)).sum(0), rtol=1e-9, atol=1e-12)
    assert set(torch.unique(y.detach()).tolist()) <= {-1.0, 1.0}


def test_ste_rule_gradient_is_clipped_identity_of_s():
    layer = nsm.NSMLinear(40, 8, rule="ste", bias=False)
    randomise(layer, seed=10)
    with torch.no_grad():
        layer.beta.fill_(1.5)  # spreads s beyond ±1 so the clipping is exercised
    z = pm1((16, 40), seed=11).requires_grad_()
    y = layer(z)
    y.sum().backward()
    s = (
        layer.beta.detach()
        * (z.detach() @ layer.weight.detach().T)
        / layer.weight.detach().norm(dim=1)
    )
    inside = (s.abs() <= 1).double()
    assert 0 < inside.mean() < 1
    torch.testing.assert_close(
        layer.beta.grad.double(),
        (inside * s / layer.beta.detach()).sum(0).double(),
        rtol=1e-4,
        atol=1e-5,
    )
    assert set(torch.unique(y.detach()).tolist()) <= {-1.0, 1.0}


def test_weight_normalisation_invariance_linear_and_conv():
    lin = nsm.NSMLinear(50, 4)
    conv = nsm.NSMConv2d(3, 4, 3, padding=1)
    for layer, z in ((lin, pm1((5, 50), 12)), (conv, pm1((2, 3, 6, 6), 13))):
        randomise(layer, seed=14)
        before = layer.firing_probability(z).detach()
        with torch.no_grad():
            layer.weight[1] *= 3.7  # one neuron's weights scaled by c > 0 ...
            layer.bias[1] *= 3.7  # ... with its threshold (the raw b scales with the column)
        after = layer.firing_probability(z).detach()
        torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)
        layer.bias = None  # without a bias, scaling the weights alone leaves P unchanged
        before = layer.firing_probability(z).detach()
        with torch.no_grad():
            layer.weight[2] *= 0.05
        torch.testing.assert_close(
            layer.firing_probability(z).detach(), before, rtol=1e-5, atol=1e-6
        )


def _two_correlated_neurons(structure: str, mode: str) -> nsm.NSMLinear:
    layer = nsm.NSMLinear(400, 2, p=0.5, structure=structure, mode=mode, bias=False).eval()
    g = torch.Generator().manual_seed(15)
    w1 = torch.randn(400, generator=g)
    w2 = w1 + 0.4 * torch.randn(400, generator=g)  # cosine ≈ 0.93
    with torch.no_grad():
        layer.weight.copy_(torch.stack([w1, w2]))
        layer.beta.fill_(0.8)
    layer.generator = torch.Generator().manual_seed(16)
    return layer


@pytest.mark.parametrize(
    ("structure", "mode"), [("per_input", "clt"), ("per_synapse", "clt"), ("per_synapse", "exact")]
)
def test_per_input_correlates_neurons_per_synapse_does_not(structure, mode):
    n = 20000
    layer = _two_correlated_neurons(structure, mode)
    z = pm1((1, 400), seed=17)
    with torch.no_grad():
        y = (layer(z.repeat(n, 1)) == 1).double().numpy()
        p1, p2 = layer.firing_probability(z)[0].double().numpy()
    w = layer.weight.detach().double().numpy()
    # Shared ξ_j: Cov(u_1, u_2) = Var[ξ] Σ_j w_1j w_2j z_j², so the pre-activations are (CLT)
    # bivariate normal with correlation ρ = cos(w_1, w_2): P(both fire) = Φ₂(√2 s_1, √2 s_2; ρ).
    rho = float(w[0] @ w[1] / np.linalg.norm(w[0]) / np.linalg.norm(w[1]))
    h = np.sqrt(2) * special.erfinv(2 * np.array([p1, p2]) - 1)
    p_joint_input = float(stats.multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf(h))
    p_joint_synapse = float(p1 * p2)
    both = (y[:, 0] * y[:, 1]).mean()
    # Same marginals in both structures.
    assert np.abs(zscores(y.mean(0), np.array([p1, p2]), n)).max() < Z_MAX
    expected, other = (
        (p_joint_input, p_joint_synapse)
        if structure == "per_input"
        else (p_joint_synapse, p_joint_input)
    )
    assert abs(p_joint_input - p_joint_synapse) > 0.1  # the two predictions differ a lot
    assert abs(zscores(both, expected, n)) < Z_MAX
    assert abs(zscores(both, other, n)) > 20


def test_binconcrete_uses_logit_and_is_binary_in_eval():
    n = 20000
    layer = nsm.NSMLinear(400, 4, rule="binconcrete", temperature=0.02)
    randomise(layer, seed=18)
    layer.generator = torch.Generator().manual_seed(19)
    z = pm1((1, 400), seed=20)
    p = layer.firing_probability(z)[0].detach().double().numpy()
    assert (p > 0.1).all() and (p < 0.9).all()
    x = layer(z.repeat(n, 1)).detach().double().numpy()  # training mode: relaxed 2X − 1
    # With λ → 0 the relaxed sample is binary with P(X > ½) = σ(logit P) = P: mean 2P − 1 with
    # standard error ≤ √(4P(1−P)/n). Feeding log P instead would give P/(1 + P).
    se = np.sqrt(4 * p * (1 - p) / n)
    assert np.abs((x.mean(0) - (2 * p - 1)) / se).max() < Z_MAX
    wrong = 2 * p / (1 + p) - 1
    assert np.abs((x.mean(0) - wrong) / se).min() > 20
    layer.eval()
    assert set(torch.unique(layer(z.repeat(50, 1))).tolist()) <= {-1.0, 1.0}
    # λ = 1: a genuinely relaxed output in (−1, 1) with a gradient.
    layer.train()
    layer.temperature = 1.0
    zz = z.repeat(8, 1).requires_grad_()
    y = layer(zz)
    assert ((y > -1) & (y < 1)).all() and not set(torch.unique(y.detach()).tolist()) <= {-1, 1}
    y.sum().backward()
    assert torch.isfinite(layer.beta.grad).all() and layer.beta.grad.abs().sum() > 0


def test_logit_from_s_is_stable_and_correct():
    s = torch.tensor([-30.0, -3.0, -0.2, 0.0, 0.5, 3.0, 30.0], dtype=torch.float64)
    logit = fn.logit_from_s(s)
    assert torch.isfinite(logit).all()
    p = fn.probability_from_s(s[1:-1])
    torch.testing.assert_close(logit[1:-1], torch.log(p / (1 - p)))
    assert logit[0] < -400 and logit[-1] > 400  # no saturation at P = 0 or 1


def test_conv_padding_reaches_the_variance_exactly():
    # Gaussian ξ makes u exactly Gaussian at any fan-in, which isolates the padding logic.
    layer = nsm.NSMConv2d(2, 3, 3, padding=1, noise="gaussian", sigma=0.6, mode="exact").eval()
    randomise(layer, seed=21)
    with torch.no_grad():
        layer.beta.fill_(1.0)
    z = pm1((1, 2, 5, 5), seed=22)
    p = layer.firing_probability(z)[0].detach().double()
    # Independent computation: each output location sees its zero-padded patch.
    w = layer.weight.detach().double().reshape(3, -1)
    patches = F.unfold(z.double(), 3, padding=1)[0].T  # (25 locations, 18)
    c = math.sqrt(2) * 0.6
    m = patches @ w.T
    reach = torch.sqrt((patches**2) @ (w**2).T)
    b = layer.bias.detach().double()
    s = m / reach + b / (c * reach)
    torch.testing.assert_close(
        p, (0.5 * (1 + torch.erf(s))).T.reshape(3, 5, 5), rtol=1e-5, atol=1e-6
    )
    s_norm = m / w.norm(dim=1) + b / (c * w.norm(dim=1))
    gap = (0.5 * (1 + torch.erf(s)) - 0.5 * (1 + torch.erf(s_norm))).abs()
    assert gap.max() > 0.05  # using ‖w‖ at the borders would be measurably wrong
    # The exact sampler draws every ξ_ij of every patch and reproduces P everywhere.
    n = 3000
    layer.generator = torch.Generator().manual_seed(23)
    with torch.no_grad():
        freq = (layer(z.repeat(n, 1, 1, 1)) == 1).double().mean(0).numpy()
    keep = (p.numpy() > 1e-3) & (p.numpy() < 1 - 1e-3)
    assert keep.sum() > 50
    assert np.abs(zscores(freq[keep], p.numpy()[keep], n)).max() < Z_MAX


@pytest.mark.parametrize("structure", ["per_synapse", "per_input"])
def test_conv_frequencies_match(structure):
    # Fan-in 48·3·3 = 432 (192 at the padded corners) so that Bernoulli sums are near-Gaussian.
    layer = nsm.NSMConv2d(48, 2, 3, stride=2, padding=1, p=0.25, structure=structure).eval()
    randomise(layer, seed=24)
    layer.generator = torch.Generator().manual_seed(25)
    z = pm1((1, 48, 7, 7), seed=26)
    n = 4000
    with torch.no_grad():
        y = layer(z.repeat(n, 1, 1, 1))
        p = layer.firing_probability(z)[0].double().numpy()
    assert y.shape == (n, 2, 4, 4)
    freq = (y == 1).double().mean(0).numpy()
    keep = (p > 1e-3) & (p < 1 - 1e-3)
    assert keep.sum() > 20
    assert np.abs(zscores(freq[keep], p[keep], n)).max() < Z_MAX


def test_exact_noise_term_moments_with_padding():
    """Σ_j ξ_ij w_ij z_j has mean E[ξ] F(z, w) and variance Var[ξ] F(z², w²), corners included."""
    op = fn.Conv2dOp((3, 3), (1, 1), (1, 1))
    noise = fn.BernoulliNoise(0.25)
    g = torch.Generator().manual_seed(27)
    w = torch.randn(2, 1, 3, 3, generator=g, dtype=torch.float64)
    z = pm1((1, 1, 4, 4), seed=28).double()
    n = 20000
    zz = z.repeat(n, 1, 1, 1)
    m = op.apply(zz, w)
    reach = fn.weight_reach(zz, w, op)
    t = fn.sample_noise_term(
        zz, w, m, reach, op, noise, structure="per_synapse", mode="exact", generator=g
    )
    mean = noise.mean * m[0]
    var = noise.var * reach[0] ** 2
    # Mean within 4 standard errors √(Var/n); variance within 5 % (the sample variance of n =
    # 20000 near-Gaussian draws has relative standard error √(2/n) = 1 %).
    assert ((t.mean(0) - mean).abs() / torch.sqrt(var / n)).max() < Z_MAX
    torch.testing.assert_close(t.var(0), var, rtol=0.05, atol=0.0)
    # Padding removes part of the kernel at the borders: less variance than Var[ξ]‖w‖².
    assert (reach[0, :, 0, 0] < w.flatten(1).norm(dim=1)).all()


def test_conv_equals_linear_on_patches():
    conv = nsm.NSMConv2d(2, 3, 3)
    randomise(conv, seed=29)
    lin = nsm.NSMLinear(18, 3)
    with torch.no_grad():
        lin.weight.copy_(conv.weight.reshape(3, -1))
        lin.beta.copy_(conv.beta)
        lin.bias.copy_(conv.bias)
    z = pm1((2, 2, 5, 5), seed=30)
    p_conv = conv.firing_probability(z).detach()  # (2, 3, 3, 3)
    patches = F.unfold(z, 3).transpose(1, 2).reshape(-1, 18)
    p_lin = lin.firing_probability(patches).detach().reshape(2, 9, 3).transpose(1, 2)
    torch.testing.assert_close(p_conv.reshape(2, 3, 9), p_lin)


def test_conv_beta_per_location():
    layer = nsm.NSMConv2d(1, 2, 3, beta_per="location", input_size=(6, 6))
    assert layer.beta.shape == (2, 4, 4)
    randomise(layer, seed=31)
    z = pm1((1, 1, 6, 6), seed=32)
    before = layer.firing_probability(z).detach()
    with torch.no_grad():
        layer.beta[1, 2, 3] += 1.0
    diff = (layer.firing_probability(z).detach() - before).abs()[0]
    assert diff[1, 2, 3] > 0 and diff.sum() == diff[1, 2, 3]
    assert layer.hardware_params()["beta"].shape == (2, 4, 4)
    with pytest.raises(ValueError, match="input_size"):
        layer(pm1((1, 1, 7, 7), seed=33))
    with pytest.raises(ValueError, match="input_size"):
        nsm.NSMConv2d(1, 2, 3, beta_per="location")


def test_offset_formulas_and_hardware_params():
    lin = nsm.NSMLinear(10, 3, p=0.25, beta_init=1.3)
    a = lin.offset.detach()
    torch.testing.assert_close(a, torch.full((3,), 1.3 * math.sqrt(2 * 0.25 * 0.75) - 0.25))
    torch.testing.assert_close(fn.beta_from_offset(a, lin.noise_model), lin.beta.detach())
    gauss = nsm.NSMConv2d(2, 4, 3, noise="gaussian", sigma=0.3, beta_init=0.9, padding=1)
    a_gauss = torch.full((4,), 0.9 * math.sqrt(2) * 0.3 - 1)
    torch.testing.assert_close(gauss.offset.detach(), a_gauss)
    hp = lin.hardware_params()
    assert hp["kind"] == "nsm" and hp["op"] == "linear" and hp["noise"] == "bernoulli"
    assert hp["p"] == 0.25 and hp["sigma"] is None and hp["structure"] == "per_synapse"
    assert hp["weight"].shape == (3, 10) and hp["bias"].shape == (3,)
    hc = gauss.hardware_params()
    assert hc["op"] == "conv2d" and hc["p"] is None and hc["sigma"] == 0.3
    assert hc["kernel_size"] == (3, 3) and hc["padding"] == (1, 1) and hc["stride"] == (1, 1)
    assert isinstance(lin, nsm.BinaryLayer) and isinstance(gauss, nsm.Stochastic)
    nb = nsm.NSMLinear(4, 2, bias=False).hardware_params()
    assert torch.equal(nb["bias"], torch.zeros(2))


def test_sign_zero_is_plus_one_and_binarize_input():
    assert fn.sign(torch.tensor([0.0, -0.0, -1e-30, 2.0])).tolist() == [1.0, 1.0, -1.0, 1.0]
    layer = nsm.NSMLinear(5, 3)  # zero bias by default
    with torch.no_grad():
        layer.weight.zero_()  # u = b = 0 exactly: fires, and P says so
    z = pm1((4, 5), seed=34)
    assert (layer(z) == 1).all()
    assert (layer.firing_probability(z) == 1).all()
    x = torch.tensor([0.0, 0.3, 0.5, 0.7, 1.0], requires_grad=True)
    y = nsm.BinarizeInput()(x)
    assert y.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [2.0] * 5  # straight through sign(t), t = 2x − 1


def test_zero_patch_of_real_valued_input():
    """A real-valued input with an all-zero patch: u = b exactly, no NaN in P or gradients."""
    layer = nsm.NSMConv2d(1, 2, 3)
    randomise(layer, seed=35)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.3, -0.3]))
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 4, 4] = 0.7  # only the last patch sees a non-zero input
    p = layer.firing_probability(x)
    assert p[0, 0, 0, 0] == 1 and p[0, 1, 0, 0] == 0
    y = layer(x)
    assert y[0, 0, 0, 0] == 1 and y[0, 1, 0, 0] == -1
    y.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in layer.parameters())


def test_use_generator_reproduces_and_restores():
    model = torch.nn.Sequential(nsm.NSMLinear(20, 10), nsm.NSMLinear(10, 10, structure="per_input"))
    own = torch.Generator().manual_seed(99)
    model[1].generator = own
    z = pm1((8, 20), seed=36)
    with nsm.use_generator(model, torch.Generator().manual_seed(1)) as m:
        assert m is model and model[1].generator is not own
        a = model(z)
    with nsm.use_generator(model, torch.Generator().manual_seed(1)):
        b = model(z)
    with nsm.use_generator(model, torch.Generator().manual_seed(2)):
        c = model(z)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert model[0].generator is None and model[1].generator is own


def test_state_dict_round_trip():
    a = nsm.NSMConv2d(2, 3, 3, p=0.25)
    randomise(a, seed=37)
    b = nsm.NSMConv2d(2, 3, 3, p=0.25)
    b.load_state_dict(a.state_dict())
    assert set(a.state_dict()) == {"weight", "beta", "bias"}
    z = pm1((1, 2, 5, 5), seed=38)
    torch.testing.assert_close(a.firing_probability(z), b.firing_probability(z))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"noise": "poisson"}, "noise='poisson'"),
        ({"p": 1.5}, "p=1.5"),
        ({"p": 0.0}, "p=0.0"),
        ({"noise": "gaussian", "sigma": -1.0}, "sigma=-1.0"),
        ({"structure": "per_row"}, "structure='per_row'"),
        ({"rule": "reinforce"}, "rule='reinforce'"),
        ({"mode": "fast"}, "mode='fast'"),
        ({"temperature": 0.0}, "temperature=0.0"),
        ({"beta_init": float("nan")}, "beta_init=nan"),
    ],
)
def test_bad_options_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nsm.NSMLinear(4, 2, **kwargs)


def test_bad_shapes_and_sizes():
    with pytest.raises(ValueError, match="in_features=0"):
        nsm.NSMLinear(0, 2)
    with pytest.raises(ValueError, match="in_features=4"):
        nsm.NSMLinear(4, 2)(torch.ones(3, 5))
    with pytest.raises(ValueError, match="kernel_size"):
        nsm.NSMConv2d(1, 2, 0)
    with pytest.raises(ValueError, match="beta_per='row'"):
        nsm.NSMConv2d(1, 2, 3, beta_per="row")
    with pytest.raises(ValueError, match="in_channels=1"):
        nsm.NSMConv2d(1, 2, 3)(torch.ones(1, 2, 5, 5))
    with pytest.raises(TypeError, match="p must be a real number"):
        nsm.NSMLinear(4, 2, p="0.5")


def test_real_valued_inputs_get_the_full_gradient():
    """For real z (e.g. BinConcrete's relaxed states) P's z-gradient includes the variance term."""
    torch.set_default_dtype(torch.float64)
    try:
        layer = nsm.NSMLinear(7, 3)
    finally:
        torch.set_default_dtype(torch.float32)
    randomise(layer, seed=39)
    z = (
        torch.rand(2, 7, generator=torch.Generator().manual_seed(40), dtype=torch.float64) * 2 - 1
    ).requires_grad_()
    assert torch.autograd.gradcheck(layer.firing_probability, (z,))


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"), [((3, 3), (1, 1), (1, 1)), ((5, 3), (2, 1), (0, 2))]
)
def test_conv_patches_match_unfold(kernel, stride, padding):
    op = fn.Conv2dOp(kernel, stride, padding)
    z = torch.randn(2, 3, 9, 7, generator=torch.Generator().manual_seed(41))
    ref = F.unfold(z, kernel, padding=padding, stride=stride).transpose(1, 2)
    assert torch.equal(op.patches(z), ref)
    y = torch.randn(2, ref.shape[1], 4, generator=torch.Generator().manual_seed(42))
    out = F.conv2d(z, torch.zeros(4, 3, *kernel), stride=stride, padding=padding)
    assert torch.equal(op.fold(y, out.shape), y.transpose(1, 2).reshape(out.shape))


def test_clt_mode_never_allocates_a_mask():
    """CLT training allocates O(batch × out) memory, never a (batch × out × in) noise tensor."""
    from torch.profiler import ProfilerActivity, profile

    layer = nsm.NSMLinear(512, 512)
    z = pm1((64, 512), seed=43)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        layer(z).sum().backward()
    # Per-operator allocation totals (summed over calls, so an over-estimate of any single one).
    largest = max(e.cpu_memory_usage for e in prof.key_averages())
    mask_bytes = 64 * 512 * 512 * 4
    assert largest < mask_bytes / 8


def test_conv_gradients_equal_linear_on_patches():
    """The convolution shares the dense layer's unit: its gradients are the patch-wise sums."""
    conv = nsm.NSMConv2d(2, 3, 3, stride=2)
    randomise(conv, seed=44)
    lin = nsm.NSMLinear(18, 3)
    with torch.no_grad():
        lin.weight.copy_(conv.weight.reshape(3, -1))
        lin.beta.copy_(conv.beta)
        lin.bias.copy_(conv.bias)
    z = pm1((2, 2, 7, 7), seed=45)
    g = torch.randn(2, 3, 3, 3, generator=torch.Generator().manual_seed(46))
    (conv.firing_probability(z) * g).sum().backward()
    patches = F.unfold(z, 3, stride=2).transpose(1, 2).reshape(-1, 18)
    g_lin = g.reshape(2, 3, 9).transpose(1, 2).reshape(-1, 3)
    (lin.firing_probability(patches) * g_lin).sum().backward()
    torch.testing.assert_close(conv.weight.grad.reshape(3, -1), lin.weight.grad)
    torch.testing.assert_close(conv.beta.grad, lin.beta.grad)
    torch.testing.assert_close(conv.bias.grad, lin.bias.grad)
