"""PyTorch NSM layers: ``NSMLinear``, ``NSMConv2d``, the input binariser and ``use_generator``.

Both layers are thin shells around :func:`nsm.functional.nsm_activation`, which implements the
NSM unit of DESIGN §2 once, generic over the linear operation (dense product or convolution).
The layers are stochastic in training *and* evaluation (an NSM samples at test time too); draw
reproducible samples by setting ``layer.generator`` or with :func:`use_generator`.

Parameters (all trainable): ``weight`` in PyTorch layout, ``beta`` (one gain per output neuron,
or per output channel / per channel and location for convolutions) and ``bias`` (the raw b_i of
DESIGN §2: the threshold shift added to u; the probability uses b̃_i = b_i/(c ‖w_i‖)).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from nsm import functional as fn

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


class _NSMBase(nn.Module):
    """What NSMLinear and NSMConv2d share: options, noise model, forward and the derived a."""

    weight: nn.Parameter
    beta: nn.Parameter
    bias: nn.Parameter | None

    def _init_options(
        self,
        *,
        noise: str,
        p: float,
        sigma: float,
        structure: str,
        rule: str,
        mode: str,
        temperature: float,
        beta_init: float,
    ) -> None:
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

    def _op(self) -> fn.LinearOp:
        raise NotImplementedError

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

    def _options_repr(self) -> str:
        level = f"p={self.p}" if self.noise == "bernoulli" else f"sigma={self.sigma}"
        return (
            f"noise={self.noise}, {level}, structure={self.structure}, rule={self.rule}, "
            f"mode={self.mode}, bias={self.bias is not None}"
        )


class NSMLinear(_NSMBase):
    """Fully connected NSM layer: (B, in_features) ±1 states → (B, out_features) ±1 states.

    ``noise``: "bernoulli" (blank-out, probability ``p`` of conducting) or "gaussian" (ξ ~ N(1,
    σ²), ``sigma``). ``structure``: "per_synapse" (independent ξ_ij, one stochastic element per
    crossbar cell) or "per_input" (ξ_j shared along a row). ``rule``: "sample" (the paper's),
    "ste" or "binconcrete" (``temperature`` λ). ``mode``: "clt" (one Gaussian per neuron from the
    exact mean and variance; default) or "exact" (every ξ_ij drawn; small layers and tests).
    ``bias_init``: "zero" (default) or "uniform" in ±1/√fan_in (``nn.Linear``'s initialisation).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
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
        super().__init__()
        self.in_features = fn.check_count("in_features", in_features)
        self.out_features = fn.check_count("out_features", out_features)
        self._init_options(
            noise=noise,
            p=p,
            sigma=sigma,
            structure=structure,
            rule=rule,
            mode=mode,
            temperature=temperature,
            beta_init=beta_init,
        )
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.beta = nn.Parameter(torch.empty(out_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self._reset(beta_init, bias_init)

    def _op(self) -> fn.LinearOp:
        return fn.DenseOp()

    def _beta_b(self) -> tuple[Tensor, Tensor | None]:
        return self.beta, self.bias

    def forward(self, z: Tensor) -> Tensor:
        """z: (B, in_features) → (B, out_features) in {−1, +1}."""
        if z.dim() != 2 or z.shape[1] != self.in_features:
            raise ValueError(
                f"input shape {tuple(z.shape)} does not match (batch, in_features="
                f"{self.in_features})"
            )
        return super().forward(z)

    def hardware_params(self) -> dict[str, Any]:
        """Everything a mapper needs (keys described in :class:`BinaryLayer`): op "linear",
        weight (out, in), beta (out,), bias (out,), offset a (out,)."""
        return self._common_params("linear")

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, {self._options_repr()}"


class NSMConv2d(_NSMBase):
    """2-D convolutional NSM layer: (B, C_in, H, W) → (B, C_out, H', W') ±1 states.

    Same noise/rule/mode options as :class:`NSMLinear`. Each output location of each channel is
    a neuron reading one patch (im2col, DESIGN §3); zero padding reaches the variance exactly
    (border neurons see a smaller ‖w‖). ``beta_per``: "channel" (one β per output channel,
    default) or "location" (one β per channel and output location; needs ``input_size=(H, W)``
    to size it).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        *,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
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
        beta_per: str = "channel",
        input_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = fn.check_count("in_channels", in_channels)
        self.out_channels = fn.check_count("out_channels", out_channels)
        self.kernel_size = fn.check_pair("kernel_size", kernel_size, minimum=1)
        self.stride = fn.check_pair("stride", stride, minimum=1)
        self.padding = fn.check_pair("padding", padding, minimum=0)
        self.beta_per = fn.check_choice("beta_per", beta_per, ("channel", "location"))
        self._init_options(
            noise=noise,
            p=p,
            sigma=sigma,
            structure=structure,
            rule=rule,
            mode=mode,
            temperature=temperature,
            beta_init=beta_init,
        )
        self.input_size: tuple[int, int] | None = None
        if beta_per == "location":
            if input_size is None:
                raise ValueError("beta_per='location' needs input_size=(H, W) to size beta")
            self.input_size = fn.check_pair("input_size", input_size, minimum=1)
            beta_shape: tuple[int, ...] = (out_channels, *self.output_size(self.input_size))
        else:
            beta_shape = (out_channels,)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.beta = nn.Parameter(torch.empty(beta_shape))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self._reset(beta_init, bias_init)

    def output_size(self, input_size: tuple[int, int]) -> tuple[int, int]:
        """(H', W') for an input of (H, W)."""
        out = []
        for size, k, s, pad in zip(
            input_size, self.kernel_size, self.stride, self.padding, strict=True
        ):
            n = (size + 2 * pad - k) // s + 1
            if n < 1:
                raise ValueError(
                    f"input size {tuple(input_size)} is smaller than kernel_size "
                    f"{self.kernel_size} with padding {self.padding}"
                )
            out.append(n)
        return out[0], out[1]

    def _op(self) -> fn.LinearOp:
        return fn.Conv2dOp(self.kernel_size, self.stride, self.padding)

    def _beta_b(self) -> tuple[Tensor, Tensor | None]:
        beta = self.beta if self.beta_per == "location" else self.beta.view(-1, 1, 1)
        bias = None if self.bias is None else self.bias.view(-1, 1, 1)
        return beta, bias

    def forward(self, z: Tensor) -> Tensor:
        """z: (B, C_in, H, W) → (B, C_out, H', W') in {−1, +1}."""
        if z.dim() != 4 or z.shape[1] != self.in_channels:
            raise ValueError(
                f"input shape {tuple(z.shape)} does not match (batch, in_channels="
                f"{self.in_channels}, H, W)"
            )
        if self.input_size is not None and tuple(z.shape[2:]) != self.input_size:
            raise ValueError(
                f"input size {tuple(z.shape[2:])} differs from input_size={self.input_size} "
                "that sized the per-location beta"
            )
        return super().forward(z)

    def hardware_params(self) -> dict[str, Any]:
        """Keys of :meth:`NSMLinear.hardware_params` with op "conv2d", weight (out, C, kH, kW),
        beta (out,) or (out, H', W'), plus kernel_size, stride, padding (pairs of ints)."""
        d = self._common_params("conv2d")
        d.update(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)
        return d

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, beta_per={self.beta_per}, "
            f"{self._options_repr()}"
        )


class BinarizeInput(nn.Module):
    """x ∈ [0, 1] → sign(2x − 1) ∈ {−1, +1} (sign(0) = +1), straight-through gradient.

    Backward passes the gradient of 2x − 1 (i.e. 2 · grad), as if the sign were the identity.
    """

    def forward(self, x: Tensor) -> Tensor:
        t = 2.0 * x - 1.0
        return fn.straight_through(fn.sign(t), t)
