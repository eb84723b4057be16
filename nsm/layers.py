"""PyTorch NSM layers: ``NSMLinear``, ``NSMConv2d``, the input binariser and ``use_generator``.

Both layers are thin shells around :func:`nsm.functional.nsm_activation`, which implements the
NSM unit of docs/model.md §1 once, generic over the linear operation (dense product or convolution).
The layers are stochastic in training *and* evaluation (an NSM samples at test time too); draw
reproducible samples by setting ``layer.generator`` or with :func:`use_generator`.

Parameters (all trainable): ``weight`` in PyTorch layout, ``beta`` (one gain per output neuron,
or per output channel / per channel and location for convolutions) and ``bias`` (the raw b_i of
docs/model.md §1: the threshold shift added to u; the probability uses b̃_i = b_i/(c ‖w_i‖)).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, Protocol, TypedDict, Unpack, runtime_checkable

import torch
from torch import Tensor, nn

from nsm import functional as fn
from nsm.geometry import Conv2dGeometry, DenseGeometry

#: Initialisations of the raw bias b_i: "zero" (default) or "uniform" in ±1/√fan_in.
BIAS_INITS = ("zero", "uniform")


@runtime_checkable
class Stochastic(Protocol):
    """A module that draws noise from ``self.generator`` (None: torch's global RNG)."""

    generator: torch.Generator | None


@runtime_checkable
class BinaryLayer(Protocol):
    """A layer with ±1 outputs that the hardware mapper can compile.

    ``hardware_params()`` returns a dict of CPU tensors, strings, numbers and int pairs:

    - ``kind``: "nsm" (stochastic NSM layer) or "sign" (deterministic sign baseline);
    - ``op``: "linear" or "conv2d" (then also ``kernel_size``, ``stride``, ``padding``);
    - ``weight``: (out, in) or (out, C_in, kH, kW); ``bias``: raw b_i (out,) (zeros if none);
    - ``beta``: β_i, (out,) or, for per-location conv gains, (out, H', W');
    - ``noise``: "bernoulli", "gaussian" or "none"; ``p`` / ``sigma``: the trained noise level
      (None when not applicable); ``structure``: "per_synapse", "per_input" or "none";
    - ``offset``: a_i at the trained p/σ (NSM layers only; recompute with
      :func:`nsm.functional.offset_from_beta` for the hardware's p);
    - ``weight_norm``: whether the output depends on w_i only through its direction.

    The hardware computes u_i = Σ_j (ξ_ij + a_i) w_ij z_j + b_i and fires z_i = sign(u_i)
    (sign(0) = +1). For ``noise == "none"`` there is no ξ and the deterministic gain E[ξ] + a_i is
    replaced by β_i: u_i = β_i w_i·z + b_i (β_i = 1 for the plain sign net BD).
    """

    def hardware_params(self) -> dict[str, Any]: ...


@contextlib.contextmanager
def use_generator(model: nn.Module, generator: torch.Generator | None) -> Iterator[nn.Module]:
    """Within the block, every stochastic layer of ``model`` draws from ``generator``.

    The previous generators are restored on exit (also on error). Yields the model.
    """
    layers = [m for m in model.modules() if isinstance(m, Stochastic)]
    previous = [m.generator for m in layers]
    for m in layers:
        m.generator = generator
    try:
        yield model
    finally:
        for m, g in zip(layers, previous, strict=True):
            m.generator = g


class NSMOptions(TypedDict, total=False):
    """The keyword options of every NSM layer (:class:`NSMLinear`, :class:`NSMConv2d`); their
    defaults: noise "bernoulli", p 0.5, sigma 1.0, structure "per_synapse", rule "sample", mode
    "clt", bias True, temperature 1.0, beta_init 1.0, bias_init "zero" (``_NSMBase._init_nsm``)."""

    noise: str
    p: float
    sigma: float
    structure: str
    rule: str
    mode: str
    bias: bool
    temperature: float
    beta_init: float
    bias_init: str


class _NSMBase(nn.Module):
    """What NSMLinear and NSMConv2d share: options, noise model, forward and the derived a."""

    weight: nn.Parameter
    beta: nn.Parameter
    bias: nn.Parameter | None

    def _init_nsm(
        self,
        weight_shape: tuple[int, ...],
        beta_shape: tuple[int, ...],
        *,
        noise: str = "bernoulli",
        p: float = 0.5,
        sigma: float = 1.0,
        structure: str = "per_synapse",
        rule: str = "sample",
        mode: str = "clt",
        bias: bool = True,
        temperature: float = 1.0,
        beta_init: float = 1.0,
        bias_init: str = "zero",
    ) -> None:
        """Check the options of :class:`NSMOptions` (the defaults of every NSM layer live here)
        and create the parameters: weight ``weight_shape``, β ``beta_shape``, bias (out,)."""
        self.noise = fn.check_choice("noise", noise, fn.NOISES)
        self.noise_model: fn.NoiseModel = fn.make_noise(noise, p=p, sigma=sigma)
        self.structure = fn.check_choice("structure", structure, fn.STRUCTURES)
        self.rule = fn.check_choice("rule", rule, fn.RULES)
        self.mode = fn.check_choice("mode", mode, fn.MODES)
        self.temperature = fn.check_positive("temperature", temperature)
        if (
            isinstance(beta_init, bool)
            or not isinstance(beta_init, (int, float))
            or not (math.isfinite(beta_init))
        ):
            raise ValueError(f"beta_init={beta_init!r} must be a finite real number")
        self.generator: torch.Generator | None = None
        self._init_parameters(weight_shape, beta_shape, bias, beta_init, bias_init)

    def _init_parameters(
        self,
        weight_shape: tuple[int, ...],
        beta_shape: tuple[int, ...],
        bias: bool,
        beta_init: float,
        bias_init: str,
    ) -> None:
        """Create ``weight``, ``beta`` and (with ``bias``) ``bias`` and initialise them."""
        self.weight = nn.Parameter(torch.empty(weight_shape))
        self.beta = nn.Parameter(torch.empty(beta_shape))
        self.bias = nn.Parameter(torch.empty(beta_shape[0])) if bias else None
        self._reset(beta_init, bias_init)

    def _reset(self, beta_init: float, bias_init: str = "zero") -> None:
        # Same initialisation as nn.Linear / nn.Conv2d; the scale is irrelevant to the forward
        # pass (weight normalisation) but sets the effective step size of the optimiser.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        nn.init.constant_(self.beta, float(beta_init))
        if self.bias is None:
            return
        if fn.check_choice("bias_init", bias_init, BIAS_INITS) == "zero":
            nn.init.zeros_(self.bias)
        else:
            # "uniform": U(±1/√fan_in), nn.Linear's bias initialisation (the authors' code).
            fan_in = self.weight[0].numel()
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    # The shapes β and b need to broadcast against F(z, w); set by the subclasses.
    def _beta_b(self) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    # op_name, _op(), _geometry_params() and _geometry_repr() come from the geometry mixin
    # (nsm.geometry) that the concrete layer lists first.

    @property
    def p(self) -> float | None:
        """Bernoulli conduction probability p (None for Gaussian noise); read-only."""
        return self.noise_model.p if isinstance(self.noise_model, fn.BernoulliNoise) else None

    @property
    def sigma(self) -> float | None:
        """Gaussian relative noise σ (None for Bernoulli noise); read-only."""
        return self.noise_model.sigma if isinstance(self.noise_model, fn.GaussianNoise) else None

    @property
    def offset(self) -> Tensor:
        """a = β√(2p(1−p)) − p (Bernoulli) or β√2σ − 1 (Gaussian), shape of ``beta``."""
        return fn.offset_from_beta(self.beta, self.noise_model)

    def firing_probability(self, z: Tensor) -> Tensor:
        """Analytic P(z_i = +1 | z), same shape as the layer's output."""
        beta, bias = self._beta_b()
        return fn.firing_probability(z, self.weight, beta, bias, self._op(), self.noise_model)

    def forward(self, z: Tensor) -> Tensor:
        beta, bias = self._beta_b()
        return fn.nsm_activation(
            z,
            self.weight,
            beta,
            bias,
            self._op(),
            self.noise_model,
            structure=self.structure,
            mode=self.mode,
            rule=self.rule,
            training=self.training,
            temperature=self.temperature,
            generator=self.generator,
        )

    def _common_params(self, op: str) -> dict[str, Any]:
        w = self.weight.detach().cpu().clone()
        bias = (
            self.bias.detach().cpu().clone()
            if self.bias is not None
            else torch.zeros(w.shape[0], dtype=w.dtype)
        )
        return {
            "kind": "nsm",
            "op": op,
            "weight": w,
            "beta": self.beta.detach().cpu().clone(),
            "bias": bias,
            "offset": self.offset.detach().cpu().clone(),
            "noise": self.noise,
            "p": self.p,
            "sigma": self.sigma,
            "structure": self.structure,
            "weight_norm": True,
        }

    def hardware_params(self) -> dict[str, Any]:
        """Everything a mapper needs (keys described in :class:`BinaryLayer`): op "linear"
        (weight (out, in)) or "conv2d" (weight (out, C, kH, kW), plus kernel_size, stride,
        padding as pairs of ints), beta (out,) or, per location, (out, H', W'), bias (out,),
        offset a (shape of beta)."""
        d = self._common_params(self.op_name)
        d.update(self._geometry_params())
        return d

    def _options_repr(self) -> str:
        level = f"p={self.p}" if self.noise == "bernoulli" else f"sigma={self.sigma}"
        return (
            f"noise={self.noise}, {level}, structure={self.structure}, rule={self.rule}, "
            f"mode={self.mode}, bias={self.bias is not None}"
        )

    def extra_repr(self) -> str:
        return f"{self._geometry_repr()}, {self._options_repr()}"


class NSMLinear(DenseGeometry, _NSMBase):
    """Fully connected NSM layer: (B, in_features) ±1 states → (B, out_features) ±1 states.

    ``noise``: "bernoulli" (blank-out, probability ``p`` of conducting) or "gaussian" (ξ ~ N(1,
    σ²), ``sigma``). ``structure``: "per_synapse" (independent ξ_ij, one stochastic element per
    crossbar cell) or "per_input" (ξ_j shared along a row). ``rule``: "sample" (the paper's),
    "ste" or "binconcrete" (``temperature`` λ). ``mode``: "clt" (one Gaussian per neuron from the
    exact mean and variance; default) or "exact" (every ξ_ij drawn; small layers and tests).
    ``bias_init``: "zero" (default) or "uniform" in ±1/√fan_in (``nn.Linear``'s initialisation).
    """

    def __init__(self, in_features: int, out_features: int, **options: Unpack[NSMOptions]) -> None:
        super().__init__()
        weight_shape = self._init_geometry(in_features, out_features)
        self._init_nsm(weight_shape, (self.out_features,), **options)

    def _beta_b(self) -> tuple[Tensor, Tensor | None]:
        return self.beta, self.bias

    def forward(self, z: Tensor) -> Tensor:
        """z: (B, in_features) → (B, out_features) in {−1, +1}."""
        self._check_input(z)
        return super().forward(z)


class NSMConv2d(Conv2dGeometry, _NSMBase):
    """2-D convolutional NSM layer: (B, C_in, H, W) → (B, C_out, H', W') ±1 states.

    Same noise/rule/mode options as :class:`NSMLinear`. Each output location of each channel is
    a neuron reading one patch (im2col, docs/model.md); zero padding reaches the variance
    exactly (border neurons see a smaller ‖w‖). ``beta_per``: "channel" (one β per output
    channel, default) or "location" (one β per channel and output location; needs
    ``input_size=(H, W)`` to size it).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        *,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        beta_per: str = "channel",
        input_size: tuple[int, int] | None = None,
        **options: Unpack[NSMOptions],
    ) -> None:
        super().__init__()
        weight_shape = self._init_geometry(in_channels, out_channels, kernel_size, stride, padding)
        self.beta_per = fn.check_choice("beta_per", beta_per, ("channel", "location"))
        self.input_size: tuple[int, int] | None = None
        if beta_per == "location":
            if input_size is None:
                raise ValueError("beta_per='location' needs input_size=(H, W) to size beta")
            self.input_size = fn.check_pair("input_size", input_size, minimum=1)
            beta_shape: tuple[int, ...] = (out_channels, *self.output_size(self.input_size))
        else:
            beta_shape = (out_channels,)
        self._init_nsm(weight_shape, beta_shape, **options)

    def _beta_b(self) -> tuple[Tensor, Tensor | None]:
        beta = self.beta if self.beta_per == "location" else self.beta.view(-1, 1, 1)
        bias = None if self.bias is None else self.bias.view(-1, 1, 1)
        return beta, bias

    def forward(self, z: Tensor) -> Tensor:
        """z: (B, C_in, H, W) → (B, C_out, H', W') in {−1, +1}."""
        self._check_input(z)
        if self.input_size is not None and tuple(z.shape[2:]) != self.input_size:
            raise ValueError(
                f"input size {tuple(z.shape[2:])} differs from input_size={self.input_size} "
                "that sized the per-location beta"
            )
        return super().forward(z)

    def extra_repr(self) -> str:
        return f"{self._geometry_repr()}, beta_per={self.beta_per}, {self._options_repr()}"


class BinarizeInput(nn.Module):
    """x ∈ [0, 1] → sign(2x − 1) ∈ {−1, +1} (sign(0) = +1), straight-through gradient.

    Backward passes the gradient of 2x − 1 (i.e. 2 · grad), as if the sign were the identity.
    """

    def forward(self, x: Tensor) -> Tensor:
        t = 2.0 * x - 1.0
        return fn.straight_through(fn.sign(t), t)
