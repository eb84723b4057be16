"""Threshold-switching selector in series with the cell (the NSM's Bernoulli ξ in hardware).

An Ag/HfO2 threshold-switching selector conducts on a read when the applied voltage exceeds
its threshold voltage V_T, which varies from cycle to cycle (std sigma_c) around a
device-specific mean mu_ij that varies from device to device (std sigma_d) (S. Dutta et al.,
"Neural sampling machine with stochastic synapse allows brain-like learning and inference",
Nature Communications 13, 2571 (2022), Fig. 3; docs/hardware-model.md §3):

    V_T = mu_ij + sigma_c * N(0, 1) per read,   mu_ij ~ N(mu, sigma_d²) per device,
    p_ij = P(V_T <= V_in) = Phi((V_in - mu_ij) / sigma_c).

The read voltage V_in (``v_read_v``) therefore sets p; the selector is taken as symmetric in
polarity (inputs ±V_read see the same |V_in|). The defaults are ILLUSTRATIVE: they reproduce
the qualitative picture of Dutta et al. (a V_T window of a few hundred mV, a device-to-device
spread of mean V_T smaller than the cycle-to-cycle spread) but are not read off their figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from .elements import ElementModel, Structure, check_n, check_shape, device_shape
from .errors import ConfigError
from .fields import check_real, param, validate_config
from .registry import register_element_model
from .rng import check_rng


@dataclass(frozen=True)
class SelectorConfig:
    """Selector parameters (volts). With v_read_v = mu_v the population mean p is 0.5."""

    v_read_v: float = param(
        0.5,
        ge=0.0,
        le=100.0,
        unit="V",
        doc="voltage across the selector on a read: p = Φ((V − μ_ij)/σ_c)",
    )  # illustrative
    mu_v: float = param(
        0.5, gt=0.0, le=100.0, unit="V", doc="mean threshold voltage μ of the selectors"
    )  # illustrative
    sigma_c_v: float = param(
        0.1,
        gt=0.0,
        le=100.0,
        unit="V",
        doc="cycle-to-cycle std σ_c of the threshold voltage (per read)",
    )  # illustrative
    sigma_d_v: float = param(
        0.03,
        ge=0.0,
        le=100.0,
        unit="V",
        doc="device-to-device std σ_d of the mean threshold μ_ij, drawn once",
    )  # illustrative
    structure: Structure = param(
        "per_cell", doc="'per_cell': one element per cell; 'per_row': one per row, shared"
    )

    def __post_init__(self) -> None:
        validate_config(self)


@dataclass(frozen=True, eq=False)
class SelectorState:
    """shape: (rows, cols) served; mu_v: realised mean threshold per device (V)."""

    shape: tuple[int, int]
    mu_v: np.ndarray


class Selector(ElementModel):
    """Threshold-switching selector: p_ij = Phi((V_in - mu_ij)/sigma_c)."""

    noise = "bernoulli"

    config: SelectorConfig

    def program(self, shape: tuple[int, int], *, rng: np.random.Generator) -> SelectorState:
        c = self.config
        shape = check_shape(shape)
        dev = device_shape(shape, self.structure)
        mu = c.mu_v + c.sigma_d_v * check_rng(rng).standard_normal(dev)
        return SelectorState(shape, mu)

    def p(self, state: SelectorState, v_read_v: float | None = None) -> np.ndarray:
        """Realised p per device at ``v_read_v`` (default: the configured read voltage).

        A different voltage serves e.g. the deterministic phase of a two-phase read
        (docs/hardware-model.md §4):
        ``p(state, v)`` close to 1 for v well above every mu_ij.
        """
        v = self._voltage(v_read_v)
        return ndtr((v - state.mu_v) / self.config.sigma_c_v)

    def sample(
        self,
        state: SelectorState,
        n: int,
        *,
        rng: np.random.Generator,
        v_read_v: float | None = None,
    ) -> np.ndarray:
        """``n`` boolean masks, drawn the physical way: a fresh V_T per device and read, and the
        selector conducts iff V_T <= V_in. Shapes (n, rows, cols) or (n, rows) per_row."""
        n = check_n(n)
        v = self._voltage(v_read_v)
        v_t = state.mu_v + self.config.sigma_c_v * check_rng(rng).standard_normal(
            (n, *state.mu_v.shape)
        )
        return v_t <= v

    def _voltage(self, v_read_v: float | None) -> float:
        """The read voltage (V): the configured one, or ``v_read_v`` (>= 0) when given."""
        if v_read_v is None:
            return self.config.v_read_v
        return check_real("v_read_v", v_read_v, ge=0.0, unit="V")

    def read_voltage_for(self, p_target: float, state: SelectorState | None = None) -> float:
        """Read voltage (V) giving mean conducting probability ``p_target``; see
        :func:`selector_read_voltage`."""
        return selector_read_voltage(self.config, p_target, state=state)


def selector_read_voltage(
    config: SelectorConfig, p_target: float, *, state: SelectorState | None = None
) -> float:
    """The read voltage V_in (V) at which the mean conducting probability is ``p_target``.

    Without ``state``: the expectation over the device population. Because mu_ij is Gaussian,
    E_mu[Phi((V - mu)/sigma_c)] = Phi((V - mu)/sqrt(sigma_c² + sigma_d²)), so
    V = mu + sqrt(sigma_c² + sigma_d²) Phi⁻¹(p_target) in closed form.
    With ``state``: the voltage at which the *realised* devices' mean p equals p_target
    (solved with Brent's method; mean p is strictly increasing in V).
    """
    p_target = float(p_target)
    if not 0.0 < p_target < 1.0:
        raise ConfigError("p_target", p_target, "(0, 1)", "is out of range")
    c = config
    if state is None:
        v = c.mu_v + np.hypot(c.sigma_c_v, c.sigma_d_v) * float(ndtri(p_target))
    else:
        from scipy.optimize import brentq  # imported here: scipy.optimize is slow to import

        mu = state.mu_v

        def gap(v: float) -> float:
            return float(np.mean(ndtr((v - mu) / c.sigma_c_v))) - p_target

        lo = float(mu.min()) - 40.0 * c.sigma_c_v
        hi = float(mu.max()) + 40.0 * c.sigma_c_v
        v = brentq(gap, lo, hi, xtol=1e-12, rtol=1e-12)
    if v < 0.0:
        raise ConfigError(
            "p_target",
            p_target,
            f"values reachable with V_in >= 0 (needs V_in = {v:.4g} V)",
            "is not reachable",
        )
    return float(v)


register_element_model("selector", SelectorConfig, Selector)
