"""The NSM unit as functions: noise models, moments of the pre-activation, sampling, training rules.

docs/model.md §1, with states z ∈ {−1, +1}::

    u_i = Σ_j (ξ_ij + a_i) w_ij z_j + b_i            z_i = sign(u_i)   (sign(0) = +1)
    E[u_i]   = (E[ξ] + a_i) F(z, w)_i + b_i
    Var[u_i] = Var[ξ] F(z², w²)_i                   (= Var[ξ] ‖w_i‖² for ±1 inputs)
    P(z_i = +1 | z) = ½ [1 + erf(s_i)],   s_i = β_i F(z, w)_i / n_i + b_i / (c n_i)

with ``F`` the layer's linear operation (dense product or 2-D convolution), ``n_i = √F(z², w²)_i``
the norm of the weights the input actually reaches (‖w_i‖ for ±1 inputs; smaller where a
convolution's zero padding blanks part of the kernel), ``c = √(2 Var[ξ])`` and
``β_i = (E[ξ] + a_i)/c``. Writing ``s = E[u]/√(2 Var[u])`` makes the sampled sign(u) and the
analytic P the same quantity, with no approximation in the CLT mode and for Gaussian noise.

Everything here is generic over the linear operation: an object with ``apply(z, w)`` (F),
``patches(z)`` and ``fold(y, out_shape)`` (for the exact per-synapse sampler), see
:class:`DenseOp` and :class:`Conv2dOp`. Randomness comes only from an explicit
``torch.Generator`` (``generator=None`` means the global RNG).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

NOISES = ("bernoulli", "gaussian")
STRUCTURES = ("per_synapse", "per_input")
MODES = ("clt", "exact")
RULES = ("sample", "binconcrete", "ste")

#: Upper bound on the elements of one explicit noise tensor in the exact per-synapse sampler
#: (2^22 float32 = 16 MiB); larger batches are processed in chunks so memory stays bounded.
EXACT_CHUNK_ELEMENTS = 1 << 22


def check_choice(field: str, value: object, allowed: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise a ValueError naming the field."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{field}={value!r} is not allowed; choose one of {list(allowed)}")
    return value


def check_positive(field: str, value: object) -> float:
    """Return ``value`` as float if it is a finite number > 0, else raise naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{field} must be a real number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{field}={value!r} is out of range; it must be finite and > 0")
    return float(value)


def check_pair(field: str, value: object, *, minimum: int) -> tuple[int, int]:
    """``value`` as a pair of ints >= ``minimum`` (an int means (value, value)); else ValueError."""
    pair = (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[arg-type]
    if len(pair) != 2 or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in pair
    ):
        raise ValueError(f"{field}={value!r} must be an int or a pair of ints >= {minimum}")
    return pair  # type: ignore[return-value]


def check_count(field: str, value: object) -> int:
    """``value`` if it is an int >= 1; else ValueError naming the field."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field}={value!r} must be an int >= 1")
    return value


# --------------------------------------------------------------------------------------------
# Noise models ξ
# --------------------------------------------------------------------------------------------


class NoiseModel(Protocol):
    """The distribution of the multiplicative synaptic noise ξ (dimensionless)."""

    name: str

    @property
    def mean(self) -> float: ...

    @property
    def var(self) -> float: ...

    def sample(
        self,
        shape: tuple[int, ...],
        *,
        generator: torch.Generator | None,
        device: torch.device,
        dtype: torch.dtype,
    ) -> Tensor: ...


@dataclass(frozen=True)
class BernoulliNoise:
    """Blank-out noise ξ ~ Bernoulli(p): the synapse conducts (ξ = 1) with probability p."""

    p: float
    name: str = "bernoulli"

    def __post_init__(self) -> None:
        if isinstance(self.p, bool) or not isinstance(self.p, (int, float)):
            raise TypeError(f"p must be a real number, got {type(self.p).__name__} {self.p!r}")
        if not 0.0 < self.p < 1.0:
            raise ValueError(f"p={self.p!r} is out of range; Bernoulli noise needs 0 < p < 1")
        object.__setattr__(self, "p", float(self.p))

    @property
    def mean(self) -> float:
        return float(self.p)

    @property
    def var(self) -> float:
        return float(self.p * (1.0 - self.p))

    def sample(self, shape, *, generator, device, dtype) -> Tensor:
        u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        return (u < self.p).to(dtype)


@dataclass(frozen=True)
class GaussianNoise:
    """Multiplicative Gaussian noise ξ ~ N(1, σ²) (e.g. relative read noise of a conductance)."""

    sigma: float
    name: str = "gaussian"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", check_positive("sigma", self.sigma))

    @property
    def mean(self) -> float:
        return 1.0

    @property
    def var(self) -> float:
        return float(self.sigma) ** 2

    def sample(self, shape, *, generator, device, dtype) -> Tensor:
        eps = torch.randn(shape, generator=generator, device=device, dtype=dtype)
        return 1.0 + self.sigma * eps


def make_noise(noise: str, *, p: float = 0.5, sigma: float = 1.0) -> NoiseModel:
    """The noise model named ``noise`` ("bernoulli" uses ``p``, "gaussian" uses ``sigma``)."""
    check_choice("noise", noise, NOISES)
    return BernoulliNoise(p) if noise == "bernoulli" else GaussianNoise(sigma)


def noise_scale(noise: NoiseModel) -> float:
    """c = √(2 Var[ξ]): √(2p(1−p)) for Bernoulli, √2 σ for Gaussian (docs/model.md §1, table)."""
    return math.sqrt(2.0 * noise.var)


def offset_from_beta(beta: Tensor, noise: NoiseModel) -> Tensor:
    """a = β c − E[ξ]: Bernoulli a = β√(2p(1−p)) − p, Gaussian a = β√2σ − 1 (docs/model.md §1)."""
    return beta * noise_scale(noise) - noise.mean


def beta_from_offset(a: Tensor, noise: NoiseModel) -> Tensor:
    """β = (E[ξ] + a)/c, the inverse of :func:`offset_from_beta`."""
    return (a + noise.mean) / noise_scale(noise)


# --------------------------------------------------------------------------------------------
# Linear operations F(z, w)
# --------------------------------------------------------------------------------------------


class LinearOp(Protocol):
    """A linear map F(z, w), linear in each argument, with an im2col view for exact sampling."""

    def apply(self, z: Tensor, w: Tensor) -> Tensor: ...

    def patches(self, z: Tensor) -> Tensor:
        """The inputs each neuron sees: (B, L, K) with L output locations and fan-in K."""
        ...

    def fold(self, y: Tensor, out_shape: torch.Size) -> Tensor:
        """(B, L, out) back to the shape of ``apply``'s output ``out_shape``."""
        ...


@dataclass(frozen=True)
class DenseOp:
    """F(z, w) = z wᵀ for z (B, in) and w (out, in); output (B, out)."""

    def apply(self, z: Tensor, w: Tensor) -> Tensor:
        return F.linear(z, w)

    def patches(self, z: Tensor) -> Tensor:
        return z.unsqueeze(1)

    def fold(self, y: Tensor, out_shape: torch.Size) -> Tensor:
        return y.reshape(out_shape)


@dataclass(frozen=True)
class Conv2dOp:
    """F(z, w) = conv2d(z, w) with zero padding; z (B, C, H, W), w (out, C, kH, kW)."""

    kernel_size: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    def apply(self, z: Tensor, w: Tensor) -> Tensor:
        return F.conv2d(z, w, stride=self.stride, padding=self.padding)

    def patches(self, z: Tensor) -> Tensor:
        # Strided views instead of F.unfold (whose CPU im2col is very slow for many small
        # images); same layout: L row-major over (H', W'), K ordered (C, kH, kW).
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        zp = F.pad(z, (pw, pw, ph, ph))
        views = zp.unfold(2, kh, sh).unfold(3, kw, sw)  # (B, C, H', W', kH, kW)
        b, c, h_out, w_out = views.shape[:4]
        return views.permute(0, 2, 3, 1, 4, 5).reshape(b, h_out * w_out, c * kh * kw)

    def fold(self, y: Tensor, out_shape: torch.Size) -> Tensor:
        return y.transpose(1, 2).reshape(out_shape)


# --------------------------------------------------------------------------------------------
# Moments, normalised pre-activation, firing probability
# --------------------------------------------------------------------------------------------


def sign(u: Tensor) -> Tensor:
    """±1 states with sign(0) = +1 (a comparator that fires at threshold), same dtype as u."""
    one = torch.ones((), dtype=u.dtype, device=u.device)
    return torch.where(u >= 0, one, -one)


def is_binary(z: Tensor) -> bool:
    """True when every entry of z is ±1 (so z² = 1 and F(z², w²) needs no data pass)."""
    return bool(torch.all(z.detach().abs() == 1))


def weight_reach(z: Tensor, weight: Tensor, op: LinearOp) -> Tensor:
    """n_i = √F(z², w²)_i: the weight norm seen by each output neuron (same shape as F(z, w)).

    For ±1 inputs this is ‖w_i‖ except where zero padding blanks part of a kernel, and it carries no
    gradient w.r.t. z: z² ≡ 1 on the states, so the ∂P/∂z of docs/model.md §2 treats ‖w_i‖ as a
    constant (the weight gradient is kept). For real-valued inputs (a non-binarised image,
    BinConcrete's relaxed states) the variance truly depends on z and its gradient is kept.
    """
    w2 = weight * weight
    # For z² = 1 one input of ones gives the same result for the whole batch (cheap, exact, and
    # still honours zero padding because padding is applied to the ones as well).
    q = op.apply(torch.ones_like(z[:1]).detach() if is_binary(z) else z * z, w2)
    # sqrt has an infinite slope at 0: keep q = 0 (no input reaches the neuron) out of its path.
    reached = q > 0
    return torch.where(reached, torch.sqrt(torch.where(reached, q, torch.ones_like(q))), 0.0)


def normalized_preactivation(
    m: Tensor, n: Tensor, beta: Tensor, bias: Tensor | None, noise: NoiseModel
) -> Tensor:
    """s = β m/n + b/(c n) = E[u]/√(2 Var[u]), with m = F(z, w) and n = √F(z², w²).

    Where n = 0 (no input reaches the neuron, e.g. an all-zero patch of a non-binarised image)
    u = b is deterministic; s is then ±10 (erf(±10) = ±1 in floating point) so that P matches
    sign(b) with sign(0) = +1, and no gradient flows through the division.
    """
    c = noise_scale(noise)
    ok = n > 0
    n_safe = torch.where(ok, n, torch.ones_like(n))
    # The coefficients β/n and b/(c n) are small (per neuron) tensors when the input is ±1, so
    # only one multiply-add touches the full activation.
    k = beta / n_safe
    s = k * m if bias is None else torch.addcmul(bias / (c * n_safe), k, m)
    if bool(ok.all()):
        return s
    b = torch.zeros_like(s) if bias is None else bias.expand_as(s)
    fallback = torch.where(b >= 0, torch.full_like(s, 10.0), torch.full_like(s, -10.0))
    return torch.where(ok, s, fallback)


def probability_from_s(s: Tensor) -> Tensor:
    """P = ½ [1 + erf(s)]."""
    return 0.5 * (1.0 + torch.erf(s))


def logit_from_s(s: Tensor) -> Tensor:
    """logit P = log P − log(1 − P) for P = Φ(√2 s), computed stably with log Φ."""
    t = math.sqrt(2.0) * s
    return torch.special.log_ndtr(t) - torch.special.log_ndtr(-t)


# --------------------------------------------------------------------------------------------
# Sampling the noisy pre-activation
# --------------------------------------------------------------------------------------------


def sample_noise_term(
    z: Tensor,
    weight: Tensor,
    m: Tensor,
    n: Tensor,
    op: LinearOp,
    noise: NoiseModel,
    *,
    structure: str,
    mode: str,
    generator: torch.Generator | None,
) -> Tensor:
    """One draw of Σ_j ξ_ij w_ij z_j for every neuron (shape of m), without gradient.

    ``per_synapse`` + ``clt``: E[ξ] m + √Var[ξ] n ε with one ε ~ N(0, 1) per neuron: exact for
    Gaussian ξ and the CLT limit for Bernoulli ξ, never materialising a mask.
    ``per_synapse`` + ``exact``: draws every ξ_ij (a (B, L, out, K) tensor, in bounded chunks).
    ``per_input``: ξ_j drawn per input entry and shared by every neuron reading it (one stochastic
    driver per crossbar row; in a convolution also shared by overlapping patches), then one
    product F(ξ⊙z, w); this is exact and cheap, so ``mode`` does not apply to it.
    """
    check_choice("structure", structure, STRUCTURES)
    check_choice("mode", mode, MODES)
    with torch.no_grad():
        if structure == "per_input":
            xi = noise.sample(tuple(z.shape), generator=generator, device=z.device, dtype=z.dtype)
            return op.apply(xi * z, weight)
        if mode == "clt":
            eps = torch.randn(m.shape, generator=generator, device=m.device, dtype=m.dtype)
            return noise.mean * m + math.sqrt(noise.var) * n * eps
        return _exact_per_synapse(z, weight, m.shape, op, noise, generator)


def _exact_per_synapse(
    z: Tensor,
    weight: Tensor,
    out_shape: torch.Size,
    op: LinearOp,
    noise: NoiseModel,
    generator: torch.Generator | None,
) -> Tensor:
    x = op.patches(z)  # (B, L, K)
    w = weight.reshape(weight.shape[0], -1)  # (out, K)
    batch, locations, fan_in = x.shape
    per_item = locations * w.shape[0] * fan_in
    chunk = max(1, EXACT_CHUNK_ELEMENTS // max(per_item, 1))
    parts = []
    for start in range(0, batch, chunk):
        xb = x[start : start + chunk]
        xi = noise.sample(
            (xb.shape[0], locations, w.shape[0], fan_in),
            generator=generator,
            device=z.device,
            dtype=z.dtype,
        )
        parts.append(torch.einsum("blok,ok,blk->blo", xi, w, xb))
    return op.fold(torch.cat(parts, dim=0), out_shape)


# --------------------------------------------------------------------------------------------
# The NSM activation: forward sample, backward by rule
# --------------------------------------------------------------------------------------------


def straight_through(y: Tensor, surrogate: Tensor) -> Tensor:
    """``y`` in the forward pass, the gradient of ``surrogate`` in the backward pass.

    Written y + (g − g.detach()) rather than (y − g).detach() + g so that the forward value is
    exactly y (g − g = 0 exactly in floating point): binary states stay exactly ±1.
    """
    return y.detach() + (surrogate - surrogate.detach())


def binconcrete(
    logit: Tensor, temperature: float, *, generator: torch.Generator | None = None
) -> Tensor:
    """Relaxed Bernoulli X = σ((logit P + log U − log(1−U))/λ) ∈ (0, 1) (Maddison et al. 2017).

    The argument is logit P, not log P (the authors' public code feeds log P, which makes
    P(X > ½) = P/(1+P) instead of P).
    """
    tiny = torch.finfo(logit.dtype).tiny
    with torch.no_grad():
        u = torch.rand(logit.shape, generator=generator, device=logit.device, dtype=logit.dtype)
        u = u.clamp(tiny, 1.0 - torch.finfo(logit.dtype).eps)
        logistic = torch.log(u) - torch.log1p(-u)
    return torch.sigmoid((logit + logistic) / temperature)


def apply_rule(
    u: Tensor | None,
    s: Tensor,
    *,
    rule: str,
    training: bool,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The layer's ±1 output from the sampled u and the normalised pre-activation s.

    ``sample``: y = sign(u) forward, gradient of 2P − 1 = erf(s) backward (docs/model.md §2).
    ``ste``: y = sign(u) forward, gradient of hardtanh(s) backward (1 for |s| ≤ 1, else 0).
    ``binconcrete``: in training y = 2X − 1 with X the relaxed sample of logit P; in evaluation
    y = sign(u), the binary sample (``u`` may be None only for binconcrete in training).
    """
    check_choice("rule", rule, RULES)
    if rule == "binconcrete" and training:
        return 2.0 * binconcrete(logit_from_s(s), temperature, generator=generator) - 1.0
    if u is None:
        raise ValueError(f"rule={rule!r} needs the sampled pre-activation u")
    surrogate = torch.erf(s) if rule == "sample" else F.hardtanh(s)  # erf(s) = 2P − 1
    return straight_through(sign(u), surrogate)


def nsm_activation(
    z: Tensor,
    weight: Tensor,
    beta: Tensor,
    bias: Tensor | None,
    op: LinearOp,
    noise: NoiseModel,
    *,
    structure: str = "per_synapse",
    mode: str = "clt",
    rule: str = "sample",
    training: bool = True,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One stochastic NSM layer: ±1 states of shape F(z, w), from inputs z.

    ``beta`` and ``bias`` broadcast against F(z, w)'s shape (e.g. (out,) for dense layers,
    (out, 1, 1) or (out, H', W') for convolutions). u = Σ_j ξ_ij w_ij z_j + a_i m_i + b_i.
    """
    m = op.apply(z, weight)
    n = weight_reach(z, weight, op)
    needs_s = torch.is_grad_enabled() or (rule == "binconcrete" and training)
    s = normalized_preactivation(m, n, beta, bias, noise) if needs_s else None
    if rule == "binconcrete" and training:
        assert s is not None
        return apply_rule(
            None, s, rule=rule, training=True, temperature=temperature, generator=generator
        )
    u = sample_preactivation(
        z, weight, m, n, beta, bias, op, noise, structure=structure, mode=mode, generator=generator
    )
    if s is None:  # no gradient wanted: the forward value alone, without the surrogate
        return sign(u)
    return apply_rule(
        u, s, rule=rule, training=training, temperature=temperature, generator=generator
    )


def sample_preactivation(
    z: Tensor,
    weight: Tensor,
    m: Tensor,
    n: Tensor,
    beta: Tensor,
    bias: Tensor | None,
    op: LinearOp,
    noise: NoiseModel,
    *,
    structure: str,
    mode: str,
    generator: torch.Generator | None,
) -> Tensor:
    """One draw of u_i = Σ_j (ξ_ij + a_i) w_ij z_j + b_i (shape of m = F(z, w)), no gradient.

    The CLT path is fused: u = (E[ξ] + a) m + b + √Var[ξ] n ε = β c m + b + √Var[ξ] n ε.
    """
    with torch.no_grad():
        if structure == "per_synapse" and mode == "clt":
            eps = torch.randn(m.shape, generator=generator, device=m.device, dtype=m.dtype)
            gain = beta * noise_scale(noise)  # E[ξ] + a
            mean = gain * m if bias is None else torch.addcmul(bias, gain, m)
            return torch.addcmul(mean, math.sqrt(noise.var) * n, eps)
        t = sample_noise_term(
            z, weight, m, n, op, noise, structure=structure, mode=mode, generator=generator
        )
        a = offset_from_beta(beta, noise)
        return torch.addcmul(t if bias is None else t + bias, a, m)


def firing_probability(
    z: Tensor,
    weight: Tensor,
    beta: Tensor,
    bias: Tensor | None,
    op: LinearOp,
    noise: NoiseModel,
) -> Tensor:
    """P(z_i = +1 | z) = ½[1 + erf(β_i m_i/n_i + b_i/(c n_i))], same shape as F(z, w)."""
    m = op.apply(z, weight)
    n = weight_reach(z, weight, op)
    return probability_from_s(normalized_preactivation(m, n, beta, bias, noise))
