"""The reference architectures and training rules of the rebuttal, as ``nn.Sequential`` models.

One architecture, many rules: ``build_model(name, rule)`` swaps only the hidden layers' type, so
the NSM and its baselines (BD, wBD, SN, BN, NSM-STE, NSM-BinConcrete) are compared like for like.

Architectures (docs/model.md §4):

``digits-mlp``  8x8 digits, 64-128-128-10 (Bernoulli p = 0.5); the offline demo's embedded default.
``mnist-mlp``   784-300-300-300-10 (p = 0.5).
``mnist-conv``  32c5-p2-64c5-p2-512-10 (p = 0.25 in the convs, 0.5 in the fully connected layer).

Every model starts with the input binariser sign(2x - 1) and ends in a real-valued ``nn.Linear``
(the logits); max-pooling acts on ±1 states (a logical OR), so it runs in digital periphery on chip.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields

from torch import nn

from nsm.baselines import NoisyReLU, SignConv2d, SignLinear
from nsm.layers import BIAS_INITS, BinarizeInput, NSMConv2d, NSMLinear

#: Training rules, as named on the command line (``nsmx train --rule``).
RULES: dict[str, str] = {
    "nsm": "NSM, sampled forward, backward through the firing probability (the paper's rule)",
    "binconcrete": "NSM trained with BinConcrete relaxation (logit P, temperature 1)",
    "nsm-ste": "NSM, sampled forward, straight-through backward",
    "bn": "deterministic binary sign net, weight-normalised, erf backward",
    "wbd": "deterministic binary sign net with weight normalisation, straight-through backward",
    "bd": "deterministic binary sign net, straight-through backward",
    "sn": "noisy rectifier relu(x + N(0, 0.1^2)) stochastic net, identity backward",
}


@dataclass(frozen=True)
class ModelSpec:
    """What a named model is and how the paper trains it (lr halves every ``lr_step_epochs``).

    A user architecture's spec (:func:`nsm.architecture.model_spec`) has ``dataset`` None when
    it names none, and its own input shape."""

    name: str
    dataset: str | None
    input_shape: tuple[int, ...]
    description: str
    lr: float = 3e-4  # Adam lr of the paper (docs/model.md §2)
    weight_decay: float = 1e-6  # docs/model.md §2
    batch_size: int = 100  # docs/model.md §2
    lr_step_epochs: int = 50  # lr halved every 50 epochs (docs/model.md §2)


MODELS: dict[str, ModelSpec] = {
    "digits-mlp": ModelSpec(
        "digits-mlp",
        "digits",
        (1, 8, 8),
        "64-128-128-10 MLP on the bundled 8x8 digits (p = 0.5)",
        # Faster schedule for the one-minute offline demo; the MNIST models keep the paper's.
        lr=1e-3,
        batch_size=50,
        lr_step_epochs=20,
    ),
    "mnist-mlp": ModelSpec("mnist-mlp", "mnist", (1, 28, 28), "784-300-300-300-10 MLP (p = 0.5)"),
    "mnist-conv": ModelSpec(
        "mnist-conv",
        "mnist",
        (1, 28, 28),
        "32c5-p2-64c5-p2-512-10 conv net (p = 0.25 conv, 0.5 fc)",
    ),
}


@dataclass(frozen=True)
class ModelOptions:
    """Variants of the NSM hidden layers of a named architecture (baselines ignore them).

    ``beta_per``: "channel" (one β per conv output channel; what the chip's periphery holds) or
    "location" (one β per channel and output location, as the authors' MNIST code).
    ``bias_init``: "zero" or "uniform" in ±1/√fan_in (the authors' code).
    ``structure``: the training noise, "per_synapse" (independent ξ_ij) or "per_input" (one ξ_j
    per input, shared by all neurons; the authors' code). ``mode``: "clt" (one Gaussian per
    neuron) or "exact" (every ξ drawn; the authors' code).
    """

    beta_per: str = "channel"
    bias_init: str = "zero"
    structure: str = "per_synapse"
    mode: str = "clt"

    def __post_init__(self) -> None:
        allowed = {
            "beta_per": ("channel", "location"),
            "bias_init": BIAS_INITS,
            "structure": ("per_synapse", "per_input"),
            "mode": ("clt", "exact"),
        }
        for name, choices in allowed.items():
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(f"{name}={value!r} is not one of {list(choices)}")

    @classmethod
    def from_config(cls, config: dict) -> ModelOptions:
        """The options recorded in a training config (``nsm.train.TrainConfig`` as a dict, where
        the noise mode is ``noise_mode``); missing keys take the defaults (old checkpoints)."""
        keys = {"beta_per": "beta_per", "bias_init": "bias_init", "structure": "structure"}
        keys["mode"] = "noise_mode"
        return cls(**{f.name: config[keys[f.name]] for f in fields(cls) if keys[f.name] in config})

    def nsm_kwargs(self) -> dict[str, str]:
        """Keyword arguments of NSMLinear/NSMConv2d (``beta_per`` is conv-only)."""
        return {"bias_init": self.bias_init, "structure": self.structure, "mode": self.mode}


def _nsm_rule(rule: str) -> str | None:
    """The NSM layer rule of a training rule, or None for the baselines."""
    return {"nsm": "sample", "nsm-ste": "ste", "binconcrete": "binconcrete"}.get(rule)


def _hidden_linear(
    rule: str, n_in: int, n_out: int, p: float, options: ModelOptions = ModelOptions()
) -> nn.Module:
    if _nsm_rule(rule) is not None:
        return NSMLinear(n_in, n_out, p=p, rule=_nsm_rule(rule), **options.nsm_kwargs())
    if rule == "bd":
        return SignLinear(n_in, n_out, weight_norm=False, backward="ste")
    if rule == "wbd":
        return SignLinear(n_in, n_out, weight_norm=True, backward="ste")
    if rule == "bn":
        return SignLinear(n_in, n_out, weight_norm=True, backward="erf")
    if rule == "sn":
        return nn.Sequential(nn.Linear(n_in, n_out), NoisyReLU(std=0.1))
    raise ValueError(f"rule={rule!r} is not one of {sorted(RULES)}")


def _hidden_conv(
    rule: str,
    c_in: int,
    c_out: int,
    k: int,
    p: float,
    input_size: tuple[int, int],
    options: ModelOptions = ModelOptions(),
) -> nn.Module:
    if _nsm_rule(rule) is not None:
        return NSMConv2d(
            c_in,
            c_out,
            k,
            p=p,
            rule=_nsm_rule(rule),
            beta_per=options.beta_per,
            input_size=input_size,
            **options.nsm_kwargs(),
        )
    if rule == "bd":
        return SignConv2d(c_in, c_out, k, weight_norm=False, backward="ste")
    if rule == "wbd":
        return SignConv2d(c_in, c_out, k, weight_norm=True, backward="ste")
    if rule == "bn":
        return SignConv2d(c_in, c_out, k, weight_norm=True, backward="erf")
    if rule == "sn":
        return nn.Sequential(nn.Conv2d(c_in, c_out, k), NoisyReLU(std=0.1))
    raise ValueError(f"rule={rule!r} is not one of {sorted(RULES)}")


def _mlp(rule: str, sizes: tuple[int, ...], o: ModelOptions) -> nn.Sequential:
    """Binariser, flatten, hidden layers sizes[0] → … → sizes[-2] of the rule (p = 0.5) and a
    real-valued output layer sizes[-2] → sizes[-1], created in that order."""
    hidden = [_hidden_linear(rule, a, b, 0.5, o) for a, b in itertools.pairwise(sizes[:-1])]
    return nn.Sequential(BinarizeInput(), nn.Flatten(), *hidden, nn.Linear(sizes[-2], sizes[-1]))


def build_model(name: str, rule: str = "nsm", options: ModelOptions | None = None) -> nn.Sequential:
    """Build the named architecture with hidden layers of the given training rule.

    ``options`` selects NSM layer variants (:class:`ModelOptions`; default: the project's).
    Input: images (N, 1, H, W) in [0, 1]; output: logits (N, 10).
    """
    o = ModelOptions() if options is None else options
    if name not in MODELS:
        raise ValueError(f"model={name!r} is not one of {sorted(MODELS)}")
    if rule not in RULES:
        raise ValueError(f"rule={rule!r} is not one of {sorted(RULES)}")
    if name == "digits-mlp":
        return _mlp(rule, (64, 128, 128, 10), o)
    if name == "mnist-mlp":
        return _mlp(rule, (784, 300, 300, 300, 10), o)
    # mnist-conv: 28 -> conv5 -> 24 -> pool -> 12 -> conv5 -> 8 -> pool -> 4; 64 * 4 * 4 = 1024.
    return nn.Sequential(
        BinarizeInput(),
        _hidden_conv(rule, 1, 32, 5, 0.25, (28, 28), o),
        nn.MaxPool2d(2),
        _hidden_conv(rule, 32, 64, 5, 0.25, (12, 12), o),
        nn.MaxPool2d(2),
        nn.Flatten(),
        _hidden_linear(rule, 1024, 512, 0.5, o),
        nn.Linear(512, 10),
    )
