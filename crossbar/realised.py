"""The realised device parameters of a programmed layer, assembled from its tiles.

What programming left in each device, as the layer's (fan_in, fan_out) matrices (the tiles put
back in place), so that a user need not reach into the tiles or repeat the sampler's rounding:

==================================  ====================================================
key                                 value
==================================  ====================================================
``g0_plus_us``, ``g0_minus_us``     programmed G₀ of the pair's G⁺ and G⁻ devices (µS)
``g_plus_us``, ``g_minus_us``       their mean conductance G(t_s) at the read time (drift)
``nu_plus``, ``nu_minus``           drift exponents ν
``stuck_plus``, ``stuck_minus``     int8 fault codes (0 healthy, +1 stuck ON, −1 stuck OFF)
``p_plus``, ``p_minus``             per-cell Bernoulli elements: each device's conducting
                                    probability at the layer's read conditions, quantised to
                                    16 bits exactly as the samplers realise it
``p_row``                           per-row Bernoulli elements: (fan_in,), one p_j per input
                                    row (the driver shared by every column-tile)
``sigma_plus``, ``sigma_minus``     per-cell Gaussian elements' σ (as realised)
``sigma_row``                       per-row Gaussian elements: (fan_in,)
==================================  ====================================================

Element keys are present only when the layer reads a stochastic element (binary NSM layers).
Units: µS; the rest dimensionless.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .probability import DEFAULT_BITS, quantise_probability

if TYPE_CHECKING:  # the layer imports this module
    from .layer import HardwareLayer

__all__ = ["device_parameters"]


def device_parameters(layer: HardwareLayer, t_s: float) -> dict[str, np.ndarray]:
    """The table of the module docstring for ``layer`` at read time ``t_s`` (s)."""
    fan_in, fan_out = layer.fan_in, layer.fan_out
    out: dict[str, np.ndarray] = {}

    def put(name: str, rs: slice, cs: slice, value: np.ndarray, dtype=np.float64) -> None:
        if name not in out:
            out[name] = np.zeros((fan_in, fan_out), dtype=dtype)
        out[name][rs, cs] = value

    mean = layer.conductance.mean
    element = layer.element if layer.stochastic else None
    for row in layer.tiles:
        for tile in row:
            rs, cs = tile.rows, tile.cols
            for sign, state in (("plus", tile.g_plus), ("minus", tile.g_minus)):
                put(f"g0_{sign}_us", rs, cs, state.g0_us)
                put(f"g_{sign}_us", rs, cs, mean(state, t_s))
                put(f"nu_{sign}", rs, cs, state.nu)
                put(f"stuck_{sign}", rs, cs, state.stuck, np.int8)
            if element is None:
                continue
            r = rs.stop - rs.start
            if element.noise == "bernoulli":
                p = np.asarray(element.p(tile.element), dtype=np.float64)
                if element.structure == "per_cell":  # as crossbar.tile.read_arrays quantises
                    q = quantise_probability(p, p.shape, bits=DEFAULT_BITS).quantised()
                    put("p_plus", rs, cs, q[:r])
                    put("p_minus", rs, cs, q[r:])
                else:
                    q = quantise_probability(p.reshape(1, -1), (1, r), bits=DEFAULT_BITS)
                    out.setdefault("p_row", np.zeros(fan_in))[rs] = q.quantised()[0]
            else:
                sigma = np.asarray(element.sigma(tile.element), dtype=np.float64)
                if element.structure == "per_cell":
                    put("sigma_plus", rs, cs, sigma[:r])
                    put("sigma_minus", rs, cs, sigma[r:])
                else:
                    out.setdefault("sigma_row", np.zeros(fan_in))[rs] = sigma
    return out
