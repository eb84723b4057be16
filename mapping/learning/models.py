"""The architectures in-situ learning can train: the MLPs of :data:`nsm.models.MODELS`.

An architecture is taken from ``nsm.models`` as the compiled program of its freshly built
model (:func:`mlp_template`): binariser (with its threshold), flatten, dense layers, output
layer. The template's arrays are placeholders (the chip learns its own); its shapes, names and
records are what :meth:`~mapping.learning.network.OnChipNetwork.to_program` fills in.
"""

from __future__ import annotations

from functools import cache

from ..program import Program
from ..records import BinariseLayer, DenseLayer, FlattenLayer, OutputLayer


@cache
def mlp_template(model: str) -> Program:
    """The compiled program of ``nsm.models.build_model(model)``; ``ValueError`` if ``model``
    is unknown or not an MLP (binarise, flatten, stochastic dense layers, output).

    The model is built under a forked torch RNG, so the global torch random state is untouched.
    """
    import torch

    from nsm.models import MODELS, build_model

    from ..compiler import compile_model

    if model not in MODELS:
        raise ValueError(f"model={model!r} is not one of {sorted(MODELS)}")
    with torch.random.fork_rng(devices=[]):
        program = compile_model(build_model(model), MODELS[model].input_shape)
    layers = program.layers
    body = layers[2:-1] if isinstance(layers[1], FlattenLayer) else layers[1:-1]
    if (
        not isinstance(layers[0], BinariseLayer)
        or not isinstance(layers[-1], OutputLayer)
        or not body
        or not all(isinstance(r, DenseLayer) and not r.deterministic for r in body)
    ):
        kinds = [r.kind for r in layers]
        raise ValueError(
            f"model={model!r} is not an MLP of stochastic dense layers ({kinds}); in-situ "
            "learning trains binarize, flatten, dense..., output"
        )
    return program


@cache
def mlp_models() -> tuple[str, ...]:
    """The names in :data:`nsm.models.MODELS` that in-situ learning can train, sorted."""
    from nsm.models import MODELS

    names = []
    for name in sorted(MODELS):
        try:
            mlp_template(name)
        except ValueError:
            continue
        names.append(name)
    return tuple(names)


__all__ = ["mlp_models", "mlp_template"]
