"""One hidden NSM layer on the chip for in-situ learning: :class:`ChipLayer`.

A pulse-programmed differential-pair array (:mod:`devices.pulse`) plus its periphery registers
(gain a_i, threshold t_i); its forward pass is the engine's ``clt`` read of the same arrays
(module docstring of :mod:`mapping.learning`).
"""

from __future__ import annotations

import numpy as np

from crossbar.config import ChipConfig
from crossbar.periphery import quantise_gain
from crossbar.probability import quantise_probability
from crossbar.tile import DEFAULT_BITS
from devices.conductance import ConductanceState
from devices.pulse import PulseConfig, PulseDevice


def _as_state(g_us: np.ndarray) -> ConductanceState:
    return ConductanceState(
        g_level_us=g_us,
        g0_us=g_us,
        nu=np.zeros(g_us.shape),
        stuck=np.zeros(g_us.shape, dtype=np.int8),
    )


class ChipLayer:
    """One hidden NSM layer on the chip: a pulse-programmed pair array plus its periphery."""

    def __init__(
        self,
        w0: np.ndarray,
        *,
        chip: ChipConfig,
        pulse: PulseConfig,
        pair_update: str,
        beta_init: float,
        init_fill: float,
        rng: np.random.Generator,
    ) -> None:
        per = chip.periphery
        if per.beta_mode != "two_phase" or per.partial_sums != "analog":
            raise ValueError(
                "in-situ learning needs chip.periphery.beta_mode='two_phase' and "
                f"partial_sums='analog' (got {per.beta_mode!r}, {per.partial_sums!r})"
            )
        self.chip, self.pulse, self.pair_update = chip, pulse, pair_update
        self.v = float(chip.v_read_v)
        self.cond = chip.devices.conductance_model()
        elem = chip.devices.element_model()
        n_in, n_out = w0.shape
        rng_p, rng_m, rng_el, rng_n = rng.spawn(4)
        span, g_min = pulse.span_us, pulse.g_min_us
        reach = np.max(np.abs(w0), axis=0)
        if pair_update == "set_only":
            kappa = init_fill * span / np.where(reach > 0, reach, 1.0)
            gp0, gm0 = g_min + kappa * np.maximum(w0, 0), g_min + kappa * np.maximum(-w0, 0)
        else:  # bidirectional: G⁻ is a reference at mid-window, G⁺ = G⁻ + w
            kappa = init_fill * 0.5 * span / np.where(reach > 0, reach, 1.0)
            gm0 = np.full(w0.shape, g_min + 0.5 * span)
            gp0 = gm0 + kappa * w0
        device = PulseDevice(pulse)
        self.g_minus = device.init(gm0, rng=rng_m)
        if pair_update == "bidirectional":
            # G⁺ = (the reference as realised, on the level grid) + w: a reference rounded to
            # another level than G⁺ would bias every weight by up to half a level.
            gp0 = np.clip(self.g_minus.g_us + (gp0 - gm0), g_min, pulse.g_max_us)
        self.g_plus = device.init(gp0, rng=rng_p)
        # Element moments per cell (constant: element variation is drawn once).
        if elem.structure == "per_cell":
            state = elem.program((2 * n_in, n_out), rng=rng_el)
            par = np.asarray(
                elem.p(state) if elem.noise == "bernoulli" else elem.sigma(state), dtype=np.float64
            )
            pp, pm = par[:n_in], par[n_in:]
        else:
            state = elem.program((n_in, n_out), rng=rng_el)
            par = np.asarray(
                elem.p(state) if elem.noise == "bernoulli" else elem.sigma(state), dtype=np.float64
            )
            pp = pm = np.broadcast_to(par[:, None], (n_in, n_out))
        self.noise, self.structure = elem.noise, elem.structure
        if elem.noise == "bernoulli":
            # p on the sampler's grid of DEFAULT_BITS bits, exactly as the engine reads it.
            pp = quantise_probability(pp, pp.shape, bits=DEFAULT_BITS).quantised()
            pm = quantise_probability(pm, pm.shape, bits=DEFAULT_BITS).quantised()
            self.alpha_p, self.alpha_m = pp, pm
            var_p, var_m = pp * (1 - pp), pm * (1 - pm)
        else:
            self.alpha_p = self.alpha_m = np.ones((n_in, n_out))
            var_p, var_m = pp**2, pm**2
        if elem.structure == "per_cell":  # independent elements on G⁺ and G⁻
            self.beta_p, self.beta_m, self.gamma = var_p, var_m, np.zeros((n_in, n_out))
        else:  # one driver per row: both devices share ξ_j
            self.beta_p = self.beta_m = np.zeros((n_in, n_out))
            self.gamma = var_p
        self.alpha_bar = float(0.5 * (self.alpha_p.mean() + self.alpha_m.mean()))
        self.xi_var = float(0.5 * (var_p.mean() + var_m.mean()))
        self.neuron = chip.devices.neuron_model()
        self.offsets_ua = self.neuron.program(n_out, rng=rng_n)
        self.noise_sigma_ua = float(self.neuron.config.noise_sigma_ua)
        self.gain_bits, self.gain_range = per.gain_bits, per.gain_range
        # Periphery registers: gain a_i from β_init on the programmed arrays, threshold t_i = 0.
        self.a = np.zeros(n_out)
        mom = self.moments()
        w_norm = self.v * np.linalg.norm(mom["m_s"], axis=0)
        ratio = np.sqrt(2.0) * np.sqrt(mom["var_s"]) / np.where(w_norm > 0, w_norm, 1.0)
        self.a = np.clip(
            beta_init * ratio * self.alpha_bar - self.alpha_bar,
            -0.9 * self.gain_range,
            0.9 * self.gain_range,
        )
        self.t = np.zeros(n_out)

    @property
    def shape(self) -> tuple[int, int]:
        return self.g_plus.shape  # type: ignore[return-value]

    def a_q(self) -> np.ndarray:
        return quantise_gain(self.a, self.gain_bits, self.gain_range)

    def moments(self) -> dict[str, np.ndarray]:
        """The read coefficients (as crossbar.tile.read_arrays, no IR drop) of the current G
        (cached until a pulse changes a conductance)."""
        key = (self.g_plus.version, self.g_minus.version)
        if getattr(self, "_moments_key", None) != key:
            self._moments = self._compute_moments()
            self._moments_key = key
        return self._moments

    def _compute_moments(self) -> dict[str, np.ndarray]:
        gp, gm = self.g_plus.g_us, self.g_minus.g_us
        sp = self.cond.read_sigma(_as_state(gp), 0.0)
        sm = self.cond.read_sigma(_as_state(gm), 0.0)
        m_s = self.alpha_p * gp - self.alpha_m * gm
        m_d = gp - gm
        v_el = self.beta_p * gp**2 + self.beta_m * gm**2 + self.gamma * m_d**2
        v_rd = self.alpha_p * sp**2 + self.alpha_m * sm**2
        v_d = sp**2 + sm**2
        var_s = self.v**2 * (v_el + v_rd).sum(axis=0) + self.noise_sigma_ua**2
        return dict(m_s=m_s, m_d=m_d, v_el=v_el, v_rd=v_rd, v_d=v_d, sp=sp, sm=sm, var_s=var_s)

    def forward(self, z: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One stochastic read of the layer for ±1 inputs z (batch, n_in)."""
        mom = self.moments()
        a = self.a_q()
        coef = mom["m_s"] + a * mom["m_d"]
        var = (
            self.v**2 * (mom["v_el"] + mom["v_rd"] + a**2 * mom["v_d"]).sum(axis=0)
            + self.noise_sigma_ua**2
        )
        sigma = np.sqrt(var)
        i_d = self.v * (z @ mom["m_d"])
        margin = self.v * (z @ coef) + self.offsets_ua - self.t * sigma
        u = margin + sigma * rng.standard_normal(margin.shape)
        return dict(
            z_in=z,
            z_out=np.where(u >= 0, 1.0, -1.0),
            margin=margin,
            sigma=sigma,
            u=u,
            i_d=i_d,
            a=a,
            mom=mom,
        )

    def effective(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(w (n_in, n_out) µS, β (n_out,), b̃ (n_out,)): the NSM the chip realises now."""
        mom = self.moments()
        a = self.a_q()
        w = mom["m_s"] + a * mom["m_d"]
        var = (
            self.v**2 * (mom["v_el"] + mom["v_rd"] + a**2 * mom["v_d"]).sum(axis=0)
            + self.noise_sigma_ua**2
        )
        sigma = np.sqrt(var)
        beta = self.v * np.linalg.norm(w, axis=0) / (np.sqrt(2.0) * sigma)
        b_tilde = (self.offsets_ua - self.t * sigma) / (np.sqrt(2.0) * sigma)
        return w, beta, b_tilde
