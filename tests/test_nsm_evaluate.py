"""Tests of Monte-Carlo evaluation: the average, the random stream, bounded blocks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import nsm
from nsm import functional as fn


def pm1(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return fn.sign(torch.randn(shape, generator=torch.Generator().manual_seed(seed)))


def small_model(seed: int = 0, rule: str = "sample") -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nsm.BinarizeInput(),
        nsm.NSMLinear(16, 12, rule=rule),
        nsm.NSMLinear(12, 12, rule=rule),
        nn.Linear(12, 3),
    )


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_mc_average_equals_the_analytic_mixture():
    """One stochastic neuron feeding a fixed readout: E[softmax] = P q₊ + (1 − P) q₋."""
    layer = nsm.NSMLinear(400, 1, bias=False)
    readout = nn.Linear(1, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(1, 400, generator=gen(1)))
        layer.beta.fill_(0.3)
        readout.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        readout.bias.zero_()
    model = nn.Sequential(layer, readout)
    x = pm1((4, 400), seed=2)
    samples = 1000
    prob = nsm.mc_predict(model, x, samples=samples, generator=gen(3))
    p = layer.firing_probability(x).detach()[:, 0]
    q_plus = torch.softmax(torch.tensor([2.0, -1.0]), 0)
    q_minus = torch.softmax(torch.tensor([-2.0, 1.0]), 0)
    expected = p[:, None] * q_plus + (1 - p[:, None]) * q_minus
    # The class-0 average is q₋ + (q₊ − q₋) × (fraction of +1 states): its standard error is
    # |q₊ − q₋| √(P(1−P)/S); allow 4 standard errors per example.
    se = (q_plus[0] - q_minus[0]).abs() * torch.sqrt(p * (1 - p) / samples)
    assert ((prob[:, 0] - expected[:, 0]).abs() / se).max() < 4.0
    torch.testing.assert_close(prob.sum(1), torch.ones(4))


def test_shapes_determinism_and_restored_mode():
    model = small_model()
    model.train()
    model[2].eval()  # a mixed state must come back as it was
    x = torch.rand(23, 16, generator=gen(4))
    a = nsm.mc_predict(model, x, samples=5, generator=gen(5), batch_size=10)
    b = nsm.mc_predict(model, x, samples=5, generator=gen(5), batch_size=10)
    c = nsm.mc_predict(model, x, samples=5, generator=gen(6), batch_size=10)
    assert a.shape == (23, 3) and a.dtype == torch.float32
    torch.testing.assert_close(a.sum(1), torch.ones(23))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert [m.training for m in model.modules()] == [True, True, True, False, True]
    assert all(m.generator is None for m in model.modules() if isinstance(m, nsm.Stochastic))
    torch.manual_seed(7)  # generator=None: reproducible through torch's global seed
    d = nsm.mc_predict(model, x, samples=3, batch_size=10)
    torch.manual_seed(7)
    assert torch.equal(d, nsm.mc_predict(model, x, samples=3, batch_size=10))


def test_stream_is_invariant_to_splitting_samples():
    """Samples 0..9 in one call equal samples 0..3 and 4..9 in two calls (same seed)."""
    model = small_model(seed=1)
    x = torch.rand(17, 16, generator=gen(8))
    whole = nsm.mc_predict(model, x, samples=10, generator=gen(9), batch_size=6)
    first = nsm.mc_predict(model, x, samples=4, generator=gen(9), batch_size=6)
    rest = nsm.mc_predict(model, x, samples=6, generator=gen(9), batch_size=6, sample_start=4)
    torch.testing.assert_close(whole, (4 * first + 6 * rest) / 10, rtol=0, atol=1e-6)
    # A block's noise depends only on its index and the sample: the first block of a shorter
    # input is the same as that of the full input.
    head = nsm.mc_predict(model, x[:6], samples=10, generator=gen(9), batch_size=6)
    torch.testing.assert_close(head, whole[:6], rtol=0, atol=0)
    # Consecutive calls with one generator draw fresh base seeds (independent evaluations).
    g = gen(9)
    one = nsm.mc_predict(model, x, samples=2, generator=g, batch_size=6)
    two = nsm.mc_predict(model, x, samples=2, generator=g, batch_size=6)
    assert not torch.equal(one, two)


def test_stream_seeds_are_distinct():
    seeds = {nsm.evaluate.stream_seed(123, b, s) for b in range(20) for s in range(50)}
    assert len(seeds) == 1000
    assert nsm.evaluate.stream_seed(123, 1, 2) == nsm.evaluate.stream_seed(123, 1, 2)


def test_evaluation_runs_binconcrete_as_binary_samples():
    model = small_model(seed=2, rule="binconcrete")
    seen: list[torch.Tensor] = []
    model[1].register_forward_hook(lambda m, i, o: seen.append(o))
    nsm.mc_predict(model, torch.rand(5, 16, generator=gen(10)), samples=3, generator=gen(11))
    assert len(seen) == 3
    assert all(set(torch.unique(o).tolist()) <= {-1.0, 1.0} for o in seen)


def test_mc_accuracy_on_a_deterministic_model():
    model = nn.Linear(5, 3)
    x = torch.randn(50, 5, generator=gen(12))
    y = torch.randint(0, 3, (50,), generator=gen(13))
    expected = float((model(x).argmax(1) == y).double().mean())
    acc = nsm.mc_accuracy(model, x, y, samples=2, generator=gen(14), batch_size=7)
    assert math.isclose(acc, expected)
    with pytest.raises(ValueError, match="differ in N"):
        nsm.mc_accuracy(model, x, y[:10], samples=1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"samples": 0}, "samples=0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"sample_start": -1}, "sample_start=-1"),
        ({"samples": 2.5}, "samples=2.5"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nsm.mc_predict(small_model(), torch.rand(2, 16), **kwargs)


def test_bad_inputs_and_outputs():
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        nsm.mc_predict(small_model(), [[0.0] * 16])
    with pytest.raises(ValueError, match="at least one example"):
        nsm.mc_predict(small_model(), torch.rand(0, 16))
    with pytest.raises(ValueError, match="not \\(batch=2, classes\\)"):
        nsm.mc_predict(nn.Flatten(0), torch.rand(2, 16), samples=1)


def test_deterministic_network_runs_once_and_matches_the_sample_average():
    # BN has no stochastic layer: one pass is the exact MC average (to float64 rounding).
    from nsm.models import build_model

    torch.manual_seed(0)
    model = build_model("digits-mlp", "bn")
    x = torch.rand(30, 1, 8, 8)
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    prob = nsm.mc_predict(model, x, samples=7, generator=torch.Generator().manual_seed(1))
    assert len(calls) == 1
    with torch.no_grad():
        direct = torch.softmax(model.eval()(x).double(), dim=1).float()
    torch.testing.assert_close(prob, direct, rtol=0, atol=1e-7)
