"""Tests of the rebuttal's baselines: BD, wBD, BN (sign layers) and SN (noisy rectifier)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

import nsm
from nsm import functional as fn


def pm1(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return fn.sign(torch.randn(shape, generator=torch.Generator().manual_seed(seed)))


def randomise(layer: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(0.1 * torch.randn(layer.weight.shape, generator=g))
        if layer.bias is not None:
            layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=g))
        if getattr(layer, "beta", None) is not None:
            layer.beta.copy_(0.5 + torch.rand(layer.beta.shape, generator=g))


def test_bd_is_sign_of_affine_with_clipped_straight_through():
    layer = nsm.SignLinear(30, 8)  # BD: no weight norm, STE
    randomise(layer, seed=1)
    z = pm1((16, 30), seed=2).requires_grad_()
    y = layer(z)
    a = z.detach() @ layer.weight.detach().T + layer.bias.detach()
    assert torch.equal(y.detach(), torch.where(a >= 0, 1.0, -1.0))
    g = torch.randn(16, 8, generator=torch.Generator().manual_seed(3))
    (y * g).sum().backward()
    inside = (a.abs() <= 1).float()
    torch.testing.assert_close(layer.bias.grad, (g * inside).sum(0))
    torch.testing.assert_close(layer.weight.grad, (g * inside).T @ z.detach())
    torch.testing.assert_close(z.grad, (g * inside) @ layer.weight.detach())
    assert layer.beta is None


@pytest.mark.parametrize("backward", ["ste", "erf"])
def test_weight_normalised_sign_layers(backward):
    layer = nsm.SignLinear(30, 8, weight_norm=True, backward=backward)  # wBD / BN
    randomise(layer, seed=4)
    z = pm1((16, 30), seed=5)
    w, beta, b = (t.detach() for t in (layer.weight, layer.beta, layer.bias))
    norm = w.norm(dim=1)
    s = beta * (z @ w.T) / norm + b / norm
    y = layer(z)
    assert torch.equal(y.detach(), torch.where(s >= 0, 1.0, -1.0))
    assert torch.equal(layer(z), y)  # deterministic
    layer.eval()
    assert torch.equal(layer(z), y)
    y.sum().backward()
    slope = (
        (s.abs() <= 1).float() if backward == "ste" else 2 * torch.exp(-s * s) / math.sqrt(math.pi)
    )
    torch.testing.assert_close(layer.beta.grad, (slope * (z @ w.T) / norm).sum(0))
    # Invariance: scaling a neuron's weights and bias together changes nothing.
    with torch.no_grad():
        layer.weight[0] *= 5.0
        layer.bias[0] *= 5.0
    torch.testing.assert_close(layer.preactivation(z), s)


def test_bn_backward_equals_the_nsm_mean_field():
    """BN (bias-free) has the NSM's forward mean field erf(s): same gradients, no forward noise."""
    bn = nsm.SignLinear(40, 6, weight_norm=True, backward="erf", bias=False)
    layer = nsm.NSMLinear(40, 6, bias=False)
    randomise(bn, seed=6)
    with torch.no_grad():
        layer.weight.copy_(bn.weight)
        layer.beta.copy_(bn.beta)
    z1 = pm1((10, 40), seed=7).requires_grad_()
    z2 = z1.detach().clone().requires_grad_()
    g = torch.randn(10, 6, generator=torch.Generator().manual_seed(8))
    (bn(z1) * g).sum().backward()
    (layer(z2) * g).sum().backward()
    torch.testing.assert_close(bn.weight.grad, layer.weight.grad)
    torch.testing.assert_close(bn.beta.grad, layer.beta.grad)
    torch.testing.assert_close(z1.grad, z2.grad)
    # The forward of BN is the sign of the mean: the NSM's most likely state.
    p = layer.firing_probability(z1.detach())
    assert torch.equal(bn(z1).detach(), torch.where(p >= 0.5, 1.0, -1.0))


def test_sign_conv_matches_conv2d():
    layer = nsm.SignConv2d(2, 3, 3, padding=1, stride=2, weight_norm=True, backward="erf")
    randomise(layer, seed=9)
    z = pm1((2, 2, 7, 7), seed=10)
    m = F.conv2d(z, layer.weight.detach(), stride=2, padding=1)
    norm = layer.weight.detach().flatten(1).norm(dim=1).view(-1, 1, 1)
    s = layer.beta.detach().view(-1, 1, 1) * m / norm + layer.bias.detach().view(-1, 1, 1) / norm
    y = layer(z)
    assert y.shape == (2, 3, 4, 4)
    assert torch.equal(y.detach(), torch.where(s >= 0, 1.0, -1.0))
    bd = nsm.SignConv2d(2, 3, 3)
    a = F.conv2d(z, bd.weight.detach(), bd.bias.detach())
    assert torch.equal(bd(z).detach(), torch.where(a >= 0, 1.0, -1.0))


def test_noisy_relu_noise_and_gradient():
    layer = nsm.NoisyReLU(std=0.1)
    layer.generator = torch.Generator().manual_seed(11)
    n = 40000
    x = torch.full((n,), 5.0, requires_grad=True)  # far from 0: y = x + noise exactly
    y = layer(x)
    noise = (y - x).detach().double().numpy()
    # Mean within 4 standard errors (0.1/√n); variance inside the two-sided 99.99 % chi-square
    # interval of n − 1 degrees of freedom.
    assert abs(noise.mean()) < 4 * 0.1 / math.sqrt(n)
    chi2 = (n - 1) * noise.var(ddof=1) / 0.01
    lo, hi = stats.chi2.ppf([5e-5, 1 - 5e-5], n - 1)
    assert lo < chi2 < hi
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones(n))  # identity through the noise
    # Near zero the rectifier gates the gradient by the noisy sign, and it stays noisy in eval.
    x0 = torch.zeros(2000, requires_grad=True)
    layer.eval()
    y0 = layer(x0)
    y0.sum().backward()
    assert torch.equal(x0.grad, (y0.detach() > 0).float())
    frac = float((y0 > 0).float().mean())
    assert abs(frac - 0.5) < 4 * math.sqrt(0.25 / 2000)  # P(n > 0) = ½, 4 standard errors
    a = nsm.NoisyReLU()
    with nsm.use_generator(a, torch.Generator().manual_seed(3)):
        r1 = a(x0)
    with nsm.use_generator(a, torch.Generator().manual_seed(3)):
        r2 = a(x0)
    assert torch.equal(r1, r2)


def test_hardware_params_common_interface():
    layers = [
        nsm.NSMLinear(6, 4),
        nsm.NSMConv2d(2, 4, 3),
        nsm.SignLinear(6, 4),
        nsm.SignLinear(6, 4, weight_norm=True, backward="erf"),
        nsm.SignConv2d(2, 4, 3, weight_norm=True, bias=False),
    ]
    keys = {
        "kind",
        "op",
        "weight",
        "beta",
        "bias",
        "noise",
        "p",
        "sigma",
        "structure",
        "weight_norm",
    }
    for layer in layers:
        assert isinstance(layer, nsm.BinaryLayer)
        hp = layer.hardware_params()
        assert keys <= set(hp)
        assert hp["beta"].shape[0] == hp["bias"].shape[0] == hp["weight"].shape[0] == 4
        for k in ("weight", "beta", "bias"):
            assert isinstance(np.asarray(hp[k]), np.ndarray)
        if hp["op"] == "conv2d":
            assert hp["kernel_size"] == (3, 3)
    bd = layers[2].hardware_params()
    assert bd["noise"] == "none" and torch.equal(bd["beta"], torch.ones(4))
    assert not bd["weight_norm"] and layers[3].hardware_params()["weight_norm"]


def test_baseline_bad_arguments():
    with pytest.raises(ValueError, match="backward='sigmoid'"):
        nsm.SignLinear(4, 2, backward="sigmoid")
    with pytest.raises(ValueError, match="std=0"):
        nsm.NoisyReLU(std=0)
    with pytest.raises(ValueError, match="out_features=0"):
        nsm.SignLinear(4, 0)
    with pytest.raises(ValueError, match="stride"):
        nsm.SignConv2d(1, 2, 3, stride=0)
