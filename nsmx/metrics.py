"""Calibration metrics of MC-averaged class probabilities (numpy), for the sweep and its report.

Accuracy and NLL live with the runtime's report (:func:`mapping.report.accuracy_nll`); the
torch side has its own (:func:`nsm.evaluate.accuracy_nll`).
"""

from __future__ import annotations

import numpy as np

from devices.fields import check_array, check_int

#: Number of equal-width confidence bins of the expected calibration error (Guo et al. 2017 use
#: 15; the sweeps' recorded ECE values depend on it).
ECE_BINS = 15


def expected_calibration_error(
    probabilities: np.ndarray, y: np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE (Guo et al. 2017): Σ_b (n_b/N)·|accuracy_b − confidence_b| over ``bins`` equal-width
    bins of the top-class confidence.

    Args:
        probabilities: (N, classes) class probabilities (rows sum to 1).
        y: (N,) integer labels.
        bins: number of confidence bins (>= 1).

    Returns:
        The ECE, a fraction in [0, 1].
    """
    prob = check_array("probabilities", probabilities, ndim=2)
    bins = check_int("bins", bins, ge=1)
    conf = prob.max(axis=1)
    correct = prob.argmax(axis=1) == np.asarray(y)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


__all__ = ["ECE_BINS", "expected_calibration_error"]
