"""Mapping a trained layer onto tiles: column scales, differential targets, tiling, programming.

The steps of :meth:`crossbar.HardwareLayer.build` before calibration:

1. per-column scale κ_i = (g_max − g_min)/max_j |w_ij| (µS per weight unit; weight normalisation
   makes it free, β absorbs it) or one global κ (:func:`column_scale_us`);
2. differential targets G± = g_min + κ_i·max(±w, 0) (:func:`differential_targets`);
3. split into row-tiles (<= tile.rows/2 inputs: a weight takes two rows) x column-tiles
   (<= tile.cols neurons) (:func:`tile_slices`) and program every tile with its own child
   generator (:func:`program_tiles`).

Units: conductance µS. The trained parameters are checked (and copied) by
:func:`trained_parameters`, the trained noise against the chip's stochastic element by
:func:`trained_noise`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from devices.fields import check_array, check_choice, check_real

from .config import ChipConfig
from .tile import Tile, program_tile

#: what a layer's outputs are: ±1 through comparators, or real-valued logits through an ADC
KINDS = ("binary", "output")
#: the trained noise of a binary layer ("none": a deterministic sign layer)
NOISES = ("bernoulli", "gaussian", "none")
#: how the conductance scale κ is chosen: per neuron, or one for the layer
SCALES = ("per_column", "global")


def column_scale_us(weight: np.ndarray, g_min_us: float, g_max_us: float, scale: str) -> np.ndarray:
    """κ_i in µS per weight unit, (fan_out,): the largest |w_ij| of column i (``"per_column"``) or
    of the layer (``"global"``) maps to the full window g_max − g_min."""
    reach = np.max(np.abs(weight), axis=0)
    if scale == "global":
        reach = np.full(weight.shape[1], reach.max())
    # A column of zeros has no scale of its own; any κ maps it to G⁺ = G⁻ = g_min.
    return (g_max_us - g_min_us) / np.where(reach > 0, reach, 1.0)


def differential_targets(
    weight: np.ndarray, kappa_us: np.ndarray, g_min_us: float, g_max_us: float
) -> tuple[np.ndarray, np.ndarray]:
    """Target conductances (G⁺, G⁻) in µS, (fan_in, fan_out) each: G± = g_min + κ_i max(±w, 0),
    clipped to the window (so G⁺ − G⁻ = κ_i w_ij)."""
    plus = np.clip(g_min_us + kappa_us * np.maximum(weight, 0.0), g_min_us, g_max_us)
    minus = np.clip(g_min_us + kappa_us * np.maximum(-weight, 0.0), g_min_us, g_max_us)
    return plus, minus


def tile_slices(n: int, size: int) -> list[slice]:
    """Consecutive slices of at most ``size`` covering ``range(n)`` (the tiles along one axis)."""
    return [slice(j, min(j + size, n)) for j in range(0, n, size)]


def program_tiles(
    target_plus_us: np.ndarray,
    target_minus_us: np.ndarray,
    row_slices: list[slice],
    col_slices: list[slice],
    *,
    conductance: Any,
    element: Any | None,
    rng: np.random.Generator,
) -> list[list[Tile]]:
    """Program every tile, ``tiles[row_tile][column_tile]``; tile (t, c) draws from child
    ``t·len(col_slices) + c`` of ``rng`` (so a tile's draws do not depend on the others).

    Per-row stochastic elements are one physical driver per input row: they are programmed once
    per row-tile, by its first column-tile (t, 0), and that state is shared by every column-tile
    of the row-tile (the same p_j or σ_j for all neurons of input j, and one draw per row and
    read, see :mod:`crossbar.readout`). Per-cell elements belong to their tile.
    """
    tile_rngs = rng.spawn(len(row_slices) * len(col_slices))
    per_row = element is not None and element.structure == "per_row"
    tiles: list[list[Tile]] = []
    for t, rs in enumerate(row_slices):
        row: list[Tile] = []
        for c, cs in enumerate(col_slices):
            row.append(
                program_tile(
                    target_plus_us[rs, cs],
                    target_minus_us[rs, cs],
                    rows=rs,
                    cols=cs,
                    conductance=conductance,
                    element=element,
                    rng=tile_rngs[t * len(col_slices) + c],
                    element_state=row[0].element if per_row and c > 0 else None,
                )
            )
        tiles.append(row)
    return tiles


def trained_noise(
    noise: str, p: Any, sigma: Any, chip: ChipConfig
) -> tuple[Any | None, float | None, float | None]:
    """(the chip's element model or None, p, σ) for a binary layer trained with ``noise``.

    The chip's stochastic element must have the trained kind of noise; ``p`` (Bernoulli, in
    (0, 1)) or ``sigma`` (Gaussian, > 0) is required for it and the other must be None. A sign
    layer (``"none"``) takes neither and reads no element.
    """
    element = None
    if noise != "none":
        element = chip.devices.element_model()
        if element.noise != noise:
            raise ValueError(
                f"noise={noise!r} (as trained) needs a {noise} stochastic element, "
                f"but chip.devices.element is a {element.noise} element "
                f"({type(chip.devices.element).__name__})"
            )
    if noise == "bernoulli":
        p_trained = check_real("p", p, gt=0.0, lt=1.0)
        if sigma is not None:
            raise ValueError(f"sigma={sigma!r} must be None for noise='bernoulli'")
        return element, p_trained, None
    if noise == "gaussian":
        sigma_trained = check_real("sigma", sigma, gt=0.0)
        if p is not None:
            raise ValueError(f"p={p!r} must be None for noise='gaussian'")
        return element, None, sigma_trained
    if p is not None or sigma is not None:
        raise ValueError("p and sigma must be None for noise='none' (a deterministic layer)")
    return None, None, None


def trained_parameters(
    weight: Any,
    beta: Any,
    bias: Any,
    *,
    kind: str,
    noise: str,
    p: Any,
    sigma: Any,
    chip: ChipConfig,
) -> dict[str, Any]:
    """The checked trained parameters of a layer, as keywords of ``HardwareLayer(...)``: kind,
    noise, weight (fan_in, fan_out), beta and bias (fan_out,) float64 copies (the layer keeps
    them whatever the caller does with theirs), p_trained, sigma_trained and the chip's element
    model (None when the layer reads none). An output layer takes no β (it is 1) and no noise.
    """
    kind = check_choice("kind", kind, KINDS)
    w = check_array("weight", weight, ndim=2).copy()
    fan_out = w.shape[1]
    b = np.zeros(fan_out) if bias is None else check_array("bias", bias, shape=(fan_out,))
    b = b.copy()
    element = p_trained = sigma_trained = None
    if kind == "output":
        if beta is not None:
            raise ValueError("beta must be None for kind='output' (a real-valued layer)")
        noise, beta_arr = "none", np.ones(fan_out)
    else:
        if beta is None:
            raise ValueError("beta is required for kind='binary' (shape (fan_out,))")
        beta_arr = check_array("beta", beta, shape=(fan_out,)).copy()
        noise = check_choice("noise", noise, NOISES)
        element, p_trained, sigma_trained = trained_noise(noise, p, sigma, chip)
    return {
        "kind": kind,
        "noise": noise,
        "weight": w,
        "beta": beta_arr,
        "bias": b,
        "p_trained": p_trained,
        "sigma_trained": sigma_trained,
        "element": element,
    }
