"""The architectures in-situ learning can train: any network of the layers the compiler emits.

A learnable program is a binariser, then any sequence of stochastic NSM crossbar layers (dense,
or conv as im2col crossbars with one β per channel), max-pooling and flatten (the digital
periphery), then the real-valued output layer (:func:`check_learnable`). An architecture is
taken as the compiled program of its freshly built model (:func:`network_template`): a named
model of :data:`nsm.models.MODELS` or a user layer list (the dict form of
:class:`nsm.architecture.Architecture`, as ``nsmx train --model FILE.toml`` records it). The
template's arrays are placeholders (the chip learns its own); its shapes, names and records are
what :meth:`~mapping.learning.network.OnChipNetwork.to_program` fills in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from ..program import Program
from ..records import BinariseLayer, ConvLayer, DenseLayer, FlattenLayer, MaxPoolLayer, OutputLayer


def check_learnable(program: Program, what: str = "the program") -> None:
    """``ValueError`` naming the layer unless ``program`` is binarise, then stochastic dense /
    conv (β per channel), maxpool and flatten layers with at least one crossbar layer, then
    the output layer."""
    layers = program.layers
    kinds = [r.kind for r in layers]
    allowed = (
        "in-situ learning trains binarize, then stochastic dense / conv, maxpool and flatten "
        "layers, then output"
    )
    if len(layers) < 3 or not isinstance(layers[0], BinariseLayer):
        raise ValueError(f"{what} has layers {kinds}; {allowed}")
    if not isinstance(layers[-1], OutputLayer):
        raise ValueError(f"{what} ends in a {kinds[-1]} layer; {allowed}")
    hidden = 0
    for rec in layers[1:-1]:
        if isinstance(rec, (DenseLayer, ConvLayer)):
            if rec.deterministic:
                raise ValueError(
                    f"{what}: layer {rec.name!r} ({rec.kind}) is a deterministic sign layer; "
                    "in-situ learning trains stochastic NSM layers"
                )
            if isinstance(rec, ConvLayer) and rec.beta_per != "channel":
                raise ValueError(
                    f"{what}: layer {rec.name!r} has beta_per={rec.beta_per!r}; the periphery "
                    "holds one gain per channel (beta_per='channel')"
                )
            hidden += 1
        elif not isinstance(rec, (MaxPoolLayer, FlattenLayer)):
            raise ValueError(f"{what}: layer {rec.name!r} is a {rec.kind} layer; {allowed}")
    if not hidden:
        raise ValueError(f"{what} has no crossbar layer ({kinds}); {allowed}")


@cache
def _template(model: str, architecture_json: str) -> Program:
    import torch

    from nsm.architecture import Architecture, build, model_spec

    from ..compiler import compile_model

    architecture = json.loads(architecture_json) if architecture_json else None
    spec = model_spec(model, architecture)
    with torch.random.fork_rng(devices=[]):
        net = build(model, "nsm", architecture=architecture)
        program = compile_model(net, tuple(spec.input_shape))
    name = model if architecture is None else Architecture.from_dict(architecture).name
    check_learnable(program, f"model={name!r}")
    return program


def network_template(model: str, architecture: Mapping[str, Any] | None = None) -> Program:
    """The compiled program of the NSM built from a named model (``architecture`` None) or a
    user layer list (dict form; ``model`` is then ignored). ``ValueError`` if the model is
    unknown, the layer list is invalid (:class:`nsm.architecture.ArchitectureError`) or the
    network is not learnable (:func:`check_learnable`).

    The model is built under a forked torch RNG, so the global torch random state is untouched.
    """
    if architecture is None:
        from nsm.models import MODELS

        if model not in MODELS:
            raise ValueError(f"model={model!r} is not one of {sorted(MODELS)}")
        return _template(model, "")
    return _template("custom", json.dumps(dict(architecture), sort_keys=True))


@cache
def learnable_models() -> tuple[str, ...]:
    """The names in :data:`nsm.models.MODELS` that in-situ learning can train, sorted."""
    from nsm.models import MODELS

    names = []
    for name in sorted(MODELS):
        try:
            network_template(name)
        except ValueError:
            continue
        names.append(name)
    return tuple(names)


__all__ = ["check_learnable", "learnable_models", "network_template"]
