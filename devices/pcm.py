"""Phase-change memory (PCM): the published statistical model of a doped-GST mushroom cell.

Sources (all fitted on a ~1-million-device PCM array, programmed with iterative
program-and-verify):
- S. R. Nandakumar et al., "Phase-change memory models for deep learning training and
  inference", IEEE ICECS 2019; and J. Appl. Phys. 124, 152135 (2018) for the drift/noise data;
- V. Joshi et al., "Accurate deep neural network inference using computational phase-change
  memory", Nature Communications 11, 2473 (2020) (Methods and Supplementary Information):
  programming-noise polynomial, conductance-dependent drift exponent, 1/f read noise.
The same forms are implemented in IBM's aihwkit (``PCMLikeNoiseModel``); we checked ours
against that description. With ĝ = G/g_max (g_max = 25 µS in the publications):

    sigma_prog(ĝ) = 0.2635 + 1.965 ĝ - 1.1731 ĝ²                  [µS at g_max = 25 µS]
    mu_nu(ĝ)      = clip(-0.0155 ln ĝ + 0.0244, 0.049, 0.1)
    sigma_nu(ĝ)   = clip(-0.0125 ln ĝ - 0.0059, 0.008, 0.045)
    G(t)          = G0 (t/t0)^-nu,  t0 = 20 s
    Q_s(ĝ)        = min(0.0088 / ĝ^0.65, 0.2)
    sigma_read(t) = G(t) Q_s(ĝ0) sqrt(ln((t + t_read) / (2 t_read))),  t_read = 250 ns

Since the polynomial was measured after program-and-verify, ``write_verify_iterations``
defaults to 0 (the published sigma already is the post-verify error).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conductance import (
    HEALTHY,
    CellModel,
    ConductanceState,
    cell_param,
    check_time,
)
from .errors import ConfigError
from .fields import param, validate_cell_config
from .registry import register_conductance_model

#: g_max of the published fits (Joshi et al. 2020): the polynomial below is in µS at this g_max.
G_MAX_REFERENCE_US = 25.0
#: programming-noise polynomial coefficients c0 + c1 ĝ + c2 ĝ² in µS (Joshi et al. 2020).
PROG_COEFFS_US = (0.2635, 1.965, -1.1731)
#: drift exponent mean: a ln ĝ + b, clipped (Joshi et al. 2020).
NU_MEAN_LOG, NU_MEAN_CONST, NU_MEAN_CLIP = -0.0155, 0.0244, (0.049, 0.1)
#: drift exponent spread: a ln ĝ + b, clipped (Joshi et al. 2020).
NU_SIGMA_LOG, NU_SIGMA_CONST, NU_SIGMA_CLIP = -0.0125, -0.0059, (0.008, 0.045)
#: 1/f read-noise amplitude Q_s = min(Q_COEFF / ĝ^Q_EXP, Q_MAX) (Joshi et al. 2020).
Q_COEFF, Q_EXP, Q_MAX = 0.0088, 0.65, 0.2
#: smallest ĝ used inside logarithms (a RESET device at exactly 0 µS would give ln 0).
_G_HAT_FLOOR = 1e-7


@dataclass(frozen=True)
class PCMConfig:
    """PCM device parameters; defaults are the published model (see the module docstring).

    The ``*_scale`` fields multiply one effect each (1 = published, 0 = off) so that a sweep can
    vary one non-ideality at a time: ``drift_scale`` scales the mean drift exponent,
    ``drift_spread_scale`` its device-to-device spread (docs/hardware-model.md §7: only the spread
    of nu matters to a weight-normalised NSM). Changing ``g_max_us`` rescales the whole model (all
    errors in proportion to the window), as the fits are in ĝ = G/g_max.
    ``write_verify_tol_us`` is illustrative (used only when ``write_verify_iterations`` > 0).
    """

    g_min_us: float = cell_param("g_min_us", 0.0)
    g_max_us: float = param(
        25.0, gt=0.0, unit="µS", doc="top of the weight window (the published model scales with it)"
    )  # Joshi et al. 2020
    n_levels: int = cell_param("n_levels", 0)  # 0 = analog (continuous), as published
    prog_noise_scale: float = param(
        1.0, ge=0.0, doc="factor on the published programming-noise std (0 = none)"
    )
    write_verify_iterations: int = cell_param("write_verify_iterations", 0)
    write_verify_tol_us: float = cell_param("write_verify_tol_us", 0.5)  # illustrative
    p_stuck_on: float = cell_param("p_stuck_on", 0.0)
    p_stuck_off: float = cell_param("p_stuck_off", 0.0)
    t0_s: float = cell_param("t0_s", 20.0)  # Joshi et al. 2020
    t_read_s: float = param(
        250e-9, gt=0.0, unit="s", doc="read duration t_read in the 1/f read-noise growth with time"
    )  # Joshi et al. 2020
    drift_scale: float = param(
        1.0, ge=0.0, doc="factor on the published mean drift exponent ν (0 = no drift)"
    )
    drift_spread_scale: float = param(
        1.0, ge=0.0, doc="factor on the published device-to-device std of ν"
    )
    read_noise_scale: float = param(
        1.0, ge=0.0, doc="factor on the published 1/f read-noise amplitude (0 = none)"
    )

    def __post_init__(self) -> None:
        validate_cell_config(self)
        owner = type(self).__name__
        if not self.t_read_s < self.t0_s:
            # ln((t + t_read)/(2 t_read)) must be positive from t0 on.
            raise ConfigError(
                f"{owner}.t_read_s",
                self.t_read_s,
                f"(0, t0_s = {self.t0_s:g}) s",
                "is out of range",
            )


def sigma_prog_us(g_us: np.ndarray, g_max_us: float, scale: float = 1.0) -> np.ndarray:
    """Programming-noise std (µS) at target ``g_us`` (published polynomial, rescaled to g_max)."""
    g_hat = np.asarray(g_us, dtype=np.float64) / g_max_us
    c0, c1, c2 = PROG_COEFFS_US
    sigma = (c0 + c1 * g_hat + c2 * g_hat**2) * (g_max_us / G_MAX_REFERENCE_US)
    return scale * np.maximum(sigma, 0.0)


def nu_mean(g_us: np.ndarray, g_max_us: float) -> np.ndarray:
    """Mean drift exponent mu_nu at target ``g_us``."""
    g_hat = np.maximum(np.asarray(g_us, dtype=np.float64) / g_max_us, _G_HAT_FLOOR)
    return np.clip(NU_MEAN_LOG * np.log(g_hat) + NU_MEAN_CONST, *NU_MEAN_CLIP)


def nu_sigma(g_us: np.ndarray, g_max_us: float) -> np.ndarray:
    """Device-to-device std of the drift exponent, sigma_nu, at target ``g_us``."""
    g_hat = np.maximum(np.asarray(g_us, dtype=np.float64) / g_max_us, _G_HAT_FLOOR)
    return np.clip(NU_SIGMA_LOG * np.log(g_hat) + NU_SIGMA_CONST, *NU_SIGMA_CLIP)


def q_s(g_us: np.ndarray, g_max_us: float) -> np.ndarray:
    """1/f read-noise amplitude Q_s = min(0.0088/ĝ^0.65, 0.2) (dimensionless)."""
    g_hat_pow = np.abs(np.asarray(g_us, dtype=np.float64) / g_max_us) ** Q_EXP
    # Written as a division by max(ĝ^0.65, Q_COEFF/Q_MAX) to stay finite at ĝ = 0.
    return Q_COEFF / np.maximum(g_hat_pow, Q_COEFF / Q_MAX)


class PCM(CellModel):
    """The PCM statistical model (Nandakumar et al. 2019; Joshi et al. 2020)."""

    config: PCMConfig

    def sigma_prog_us(self, g_level_us: np.ndarray) -> np.ndarray:
        c = self.config
        return sigma_prog_us(g_level_us, c.g_max_us, c.prog_noise_scale)

    def drifts(self) -> bool:
        return True  # level-dependent drift is part of the model (drift_scale = 0 turns it off)

    def draw_nu(self, g_level_us: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        mu = c.drift_scale * nu_mean(g_level_us, c.g_max_us)
        sd = c.drift_spread_scale * nu_sigma(g_level_us, c.g_max_us)
        # Amorphous-phase drift only lowers the conductance; the rare negative draws are set to 0.
        return np.maximum(mu + sd * rng.standard_normal(g_level_us.shape), 0.0)

    def read_sigma(self, state: ConductanceState, t_s: float) -> np.ndarray:
        c = self.config
        t_eff = max(check_time(t_s), c.t0_s)
        growth = np.sqrt(np.log((t_eff + c.t_read_s) / (2.0 * c.t_read_s)))
        sigma = c.read_noise_scale * np.abs(self.mean(state, t_s)) * q_s(state.g0_us, c.g_max_us)
        # Stuck devices are modelled as fixed conductances (no drift, no read noise).
        return np.where(state.stuck == HEALTHY, sigma * growth, 0.0)


register_conductance_model("pcm", PCMConfig, PCM)
