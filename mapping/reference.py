"""Software semantics of a crossbar program in numpy: the reference the chip runtime is checked
against (imports numpy and scipy only, never torch).

Every binary layer is the NSM unit of docs/model.md §1 written on the program's arrays. With the
layer's inputs unrolled to patches x (B, L, K) (L = 1 for a dense layer, the im2col patches for a
convolution) and W the (K, N) matrix::

    m = x W                      n = √((x ⊙ x)(W ⊙ W))          c = √(2 Var[ξ])
    s = β m/n + b/(c n)          P(z = +1 | x) = ½ [1 + erf(s)]

(n = ‖W_:,i‖ for ±1 inputs; smaller at a convolution's zero-padded border, as in torch). Where
n = 0 no input reaches the neuron and u = b is deterministic: s = ±10 by the sign of b (sign(0)
= +1), exactly as :func:`nsm.functional.normalized_preactivation` (the numpy unit is
:mod:`crossbar.unit`; the digital steps are :mod:`mapping.digital`). Deterministic sign layers fire
1{s ≥ 0} with s = β m/‖W_:,i‖ + b/‖W_:,i‖ (weight-normalised) or s = β m + b.

:func:`program_forward_reference` samples each binary layer from its analytic P with independent
per-neuron draws: the CLT software model. For ``per_input`` noise the marginals are exact but the
neurons' correlations (a shared stochastic row driver) are not reproduced.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from crossbar import unit
from crossbar.unit import S_UNREACHED as S_UNREACHED  # re-exported: the reference's name
from devices.errors import ArgumentTypeError
from devices.fields import check_int, check_real
from mapping import digital
from mapping.program import Program
from mapping.records import (
    BinariseLayer,
    BinaryMatrixLayer,
    FlattenLayer,
    Layer,
    MaxPoolLayer,
    OutputLayer,
)


def _check_input(layer: Layer, z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != len(layer.in_shape) + 1 or tuple(z.shape[1:]) != layer.in_shape:
        raise ValueError(
            f"layer {layer.name!r} ({layer.kind}) expects input of shape (batch, "
            f"{', '.join(map(str, layer.in_shape))}); got {tuple(z.shape)}"
        )
    return z


def patches(layer: BinaryMatrixLayer, z: np.ndarray) -> np.ndarray:
    """The inputs each column reads: (B, L, K) float64 (:func:`mapping.digital.patches`).

    Dense: (B, 1, fan_in). Conv: im2col with zero padding, patch index l = h'·W' + w', entry
    index c·kH·kW + i·kW + j (``torch.nn.functional.unfold``'s order, the program's row order).
    """
    return digital.patches(layer, _check_input(layer, z), np.float64)


def fold(layer: BinaryMatrixLayer, y: np.ndarray) -> np.ndarray:
    """(B, L, N) per-location column outputs → (B, *layer.out_shape) (channels first for conv)."""
    return digital.fold(layer, y)


def beta_by_location(layer: BinaryMatrixLayer) -> np.ndarray:
    """β as (L, N) (or (1, N) when shared by all locations), broadcastable against (B, L, N)."""
    beta = layer.beta.astype(np.float64)
    if beta.ndim == 1:
        return beta[None, :]
    return beta.reshape(layer.fan_out, -1).T  # (C_out, H', W') → (L, C_out)


def offset_from_beta(
    beta: np.ndarray, *, noise: str, p: float | None = None, sigma: float | None = None
) -> np.ndarray:
    """Periphery gain a = β c − E[ξ]: β√(2p(1−p)) − p (Bernoulli), β√2σ − 1 (Gaussian).

    docs/model.md §1, table. Call with the *hardware's* p or σ to keep the trained β on a chip whose
    stochastic element differs from the one the network was trained with.
    """
    beta = np.asarray(beta, dtype=np.float64)
    if noise == "bernoulli":
        p = check_real("p", p, gt=0.0, lt=1.0)
        return beta * np.sqrt(2.0 * p * (1.0 - p)) - p
    if noise == "gaussian":
        sigma = check_real("sigma", sigma, gt=0.0)
        return beta * np.sqrt(2.0) * sigma - 1.0
    raise ValueError(f"noise={noise!r} has no offset; choose 'bernoulli' or 'gaussian'")


def _reach_squared(
    layer: BinaryMatrixLayer, z: np.ndarray, x: np.ndarray, w: np.ndarray
) -> np.ndarray:
    """n² = (x ⊙ x)(W ⊙ W). For ±1 states x ⊙ x is 1 except in the zero padding, the same for
    every example, so one example of ones gives it for the whole batch (as torch does)."""
    z = np.asarray(z)
    if np.all(np.abs(z) == 1):
        ones = patches(layer, np.ones((1, *layer.in_shape)))
        return ones @ (w * w)  # (1, L, N), broadcasts over the batch
    return (x * x) @ (w * w)


def normalised_preactivation(layer: BinaryMatrixLayer, z: np.ndarray) -> np.ndarray:
    """s = E[u]/√(2 Var[u]) per neuron (stochastic) or the sign layer's pre-activation,
    shape (B, *out_shape), float64."""
    x = patches(layer, z)
    w = layer.weight.astype(np.float64)
    m = x @ w  # (B, L, N)
    beta = beta_by_location(layer)
    b = layer.bias.astype(np.float64)
    if layer.deterministic:
        if not layer.weight_norm:
            return fold(layer, beta * m + b)
        # torch clamps the norm at the float32 tiny; only the sign matters downstream.
        norm = np.maximum(np.sqrt(np.sum(w * w, axis=0)), np.finfo(np.float32).tiny)
        return fold(layer, beta * m / norm + b / norm)
    n = np.sqrt(_reach_squared(layer, z, x, w))
    c = np.sqrt(2.0 * layer.noise_var)
    return fold(layer, unit.normalised_preactivation(m, n, beta, b, c))


def firing_probability(layer: BinaryMatrixLayer, z: np.ndarray) -> np.ndarray:
    """P(z_i = +1 | z) of every neuron, (B, *layer.out_shape) float64, from the program's arrays.

    Equals ``torch``'s ``firing_probability`` of the compiled layer; for deterministic sign
    layers it is 1{s ≥ 0} (their ``forward`` mapped to {0, 1}).
    """
    if not isinstance(layer, BinaryMatrixLayer):
        raise TypeError(f"firing_probability needs a dense or conv layer, got {layer.kind!r}")
    s = normalised_preactivation(layer, z)
    if layer.deterministic:
        return (s >= 0).astype(np.float64)
    return unit.firing_probability(s)


def binarise(layer: BinariseLayer, x: np.ndarray) -> np.ndarray:
    """+1 where x >= threshold, else −1 (float64)."""
    return digital.binarise(layer, _check_input(layer, x), np.float64)


def maxpool(layer: MaxPoolLayer, z: np.ndarray) -> np.ndarray:
    """Max over each window (padding never selected), (B, *layer.out_shape)."""
    return digital.maxpool(layer, _check_input(layer, z))


def flatten(layer: FlattenLayer, z: np.ndarray) -> np.ndarray:
    """(B, *in_shape) → (B, prod(in_shape)) float64."""
    return digital.flatten(_check_input(layer, z))


def output_logits(layer: OutputLayer, z: np.ndarray) -> np.ndarray:
    """logits = z W + b, (B, n_classes) float64."""
    z = _check_input(layer, z)
    return z @ layer.weight.astype(np.float64) + layer.bias.astype(np.float64)


def sample_states(layer: BinaryMatrixLayer, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One ±1 sample of the layer's outputs: +1 with probability P, independently per neuron.

    Deterministic layers return sign(s) and draw nothing from ``rng``.
    """
    if layer.deterministic:
        return np.where(normalised_preactivation(layer, z) >= 0, 1.0, -1.0)
    prob = firing_probability(layer, z)
    return np.where(rng.random(prob.shape) < prob, 1.0, -1.0)


def program_forward_reference(
    program: Program,
    x: np.ndarray,
    rng: np.random.Generator,
    *,
    return_states: bool = False,
) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
    """One Monte-Carlo pass of the program's software semantics on inputs x (B, *input_shape).

    Returns the logits (B, n_classes) float64; with ``return_states`` also the list of every
    layer's output (the last entry is the logits).
    """
    if not isinstance(rng, np.random.Generator):
        raise ArgumentTypeError("rng", rng, "a numpy.random.Generator")
    x = np.asarray(x, dtype=np.float64)
    if tuple(x.shape[1:]) != program.input_shape or x.ndim != len(program.input_shape) + 1:
        raise ValueError(
            f"x has shape {tuple(x.shape)}; the program expects (batch, "
            f"{', '.join(map(str, program.input_shape))})"
        )
    states: list[np.ndarray] = []
    z = x
    for layer in program.layers:
        if isinstance(layer, BinariseLayer):
            z = binarise(layer, z)
        elif isinstance(layer, BinaryMatrixLayer):
            z = sample_states(layer, z, rng)
        elif isinstance(layer, MaxPoolLayer):
            z = maxpool(layer, z)
        elif isinstance(layer, FlattenLayer):
            z = flatten(layer, z)
        else:
            z = output_logits(layer, z)
        if return_states:
            states.append(z)
    return (z, states) if return_states else z


def predict_reference(
    program: Program,
    x: np.ndarray,
    *,
    samples: int = 100,
    rng: np.random.Generator,
    batch_size: int = 256,
) -> np.ndarray:
    """Monte-Carlo class probabilities (B, n_classes): the softmax averaged over ``samples``
    passes of :func:`program_forward_reference`, streamed in batches of ``batch_size`` examples
    (memory bounded by one batch). Draws come from ``rng`` in order, so the result for a seed
    depends on ``batch_size`` (not on anything else)."""
    samples = check_int("samples", samples, ge=1)
    batch_size = check_int("batch_size", batch_size, ge=1)
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    out = np.zeros((n, program.n_classes))
    for start in range(0, n, batch_size):
        xb = x[start : start + batch_size]
        acc = np.zeros((xb.shape[0], program.n_classes))
        for _ in range(samples):
            acc += special.softmax(program_forward_reference(program, xb, rng), axis=1)
        out[start : start + batch_size] = acc / samples
    return out
