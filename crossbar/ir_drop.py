"""IR drop in a crossbar tile: nodal analysis of the resistive network, exact and fast.

Network (one tile, ``rows`` word lines × ``cols`` bit lines):

- word line j is driven at its left end (column 0 side) by an ideal voltage source V_j (z_j·V_read)
  through one wire segment, and runs to the right through one segment per cell; its far end is
  open;
- bit line i runs from row 0 down to row rows − 1 through one segment per cell and ends, through
  one more segment, in the sense amplifier's virtual ground (0 V) at the bottom;
- cell (j, i) is a conductance G[j, i] between word-line node (j, i) and bit-line node (j, i).

Every segment has resistance r_wire_ohm (docs/hardware-model.md §8: ≈ 0.1–2 Ω per cell segment in
published crossbars). Unknowns: the 2·rows·cols node voltages; Kirchhoff's current law at every node
gives a sparse symmetric positive-definite system, solved with a sparse direct LU (SuperLU). Column
i's sensed current is the current into its virtual ground, which equals Σ_j G_ji (V_wl − V_bl)_ji.

**Exact mode** (:func:`solve_ir_drop`, :class:`TileNetwork`): the network for one conductance
pattern (for a stochastic read, the conducting cells of that read), any number of input vectors.

**Fast mode** (:func:`effective_conductance`): the network is linear, so for a fixed conductance
pattern the column currents are exactly I = V @ M, with M_ji = ∂I_i/∂V_j the transfer
conductances (one factorisation and one solve per row). Solve once for the programmed array with
its mean conducting pattern (cells scaled by p) and use G_eff = M/p, i.e. a per-cell attenuation
a = G_eff/G, in the exact sampler unchanged: every read's *mean* current is then exact for the
mean network and any inputs. The approximation: one read's mask changes the lines' loading (a
cell that does not conduct draws no current through the shared wires), which G_eff averages out.
The error is measured in tests/test_crossbar_ir_drop.py and docs/results/crossbar_benchmarks.md
(on a 64×64 tile with G in 1–25 µS and p = 0.5 it is ≈ 1/8 of the IR-drop effect itself). A
per-cell calibration that keeps only each cell's own drive (∂V_cell/∂V_j) leaves about half the
effect, because the bit-line drop scales with the whole column current, not the cell's own.

Units: conductance µS, resistance Ω, voltage V, current µA.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from devices.errors import ArgumentError
from devices.fields import check_array, check_real

__all__ = [
    "IRDropSolution",
    "TileNetwork",
    "effective_conductance",
    "ir_attenuation",
    "kcl_residual",
    "solve_ir_drop",
    "transfer_conductance",
]

_US = 1e-6  # µS -> S


def _check_conductance(g_us: np.ndarray) -> np.ndarray:
    """(rows, cols) conductances >= 0 µS as float64 (physical device values)."""
    g = check_array("g_us", g_us, ndim=2)
    if g.min() < 0:
        raise ArgumentError(
            "g_us",
            float(g.min()),
            "conductances >= 0 µS",
            message=f"g_us has a negative entry ({g.min():g} µS); expected conductances >= 0 µS",
        )
    return g


@dataclass(frozen=True)
class IRDropSolution:
    """Node voltages and currents of the tile for a batch of input vectors.

    Attributes:
        v_wl_v: float64 (batch, rows, cols) word-line node voltages (V).
        v_bl_v: float64 (batch, rows, cols) bit-line node voltages (V).
        column_currents_ua: float64 (batch, cols) currents into the virtual grounds (µA).
        driver_currents_ua: float64 (batch, rows) currents delivered by the row drivers (µA).
    """

    v_wl_v: np.ndarray
    v_bl_v: np.ndarray
    column_currents_ua: np.ndarray
    driver_currents_ua: np.ndarray

    @property
    def cell_voltage_v(self) -> np.ndarray:
        """Voltage across each cell, V_wl − V_bl, float64 (batch, rows, cols) (V)."""
        return self.v_wl_v - self.v_bl_v


class TileNetwork:
    """The tile's conductance matrix for one conductance pattern, factorised once.

    Args:
        g_us: (rows, cols) cell conductances (µS, ≥ 0); use 0 for cells that do not conduct.
        r_wire_ohm: wire resistance per cell segment (Ω, ≥ 0; 0 means ideal wires).
    """

    def __init__(self, g_us: np.ndarray, r_wire_ohm: float) -> None:
        self.g_us = _check_conductance(g_us)
        self.r_wire_ohm = check_real("r_wire_ohm", r_wire_ohm, ge=0.0, unit="Ω per cell segment")
        self.rows, self.cols = self.g_us.shape
        self._lu = None
        if self.r_wire_ohm > 0:
            self.matrix = self._assemble()
            # symmetric positive definite (a weakly diagonally dominant, irreducible M-matrix):
            # no pivoting is needed, and pivoting would wreck the fill-reducing ordering
            self._lu = spla.splu(
                self.matrix,
                permc_spec="MMD_AT_PLUS_A",
                diag_pivot_thresh=0.0,
                options={"SymmetricMode": True},
            )

    @property
    def n_nodes(self) -> int:
        """Number of unknown node voltages, 2·rows·cols."""
        return 2 * self.rows * self.cols

    def _wl(self, j: np.ndarray, i: np.ndarray) -> np.ndarray:
        return j * self.cols + i

    def _bl(self, j: np.ndarray, i: np.ndarray) -> np.ndarray:
        return self.rows * self.cols + j * self.cols + i

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Two-terminal elements between unknown nodes: (node_a, node_b, conductance_s)."""
        rows, cols = self.rows, self.cols
        g_w = 1.0 / self.r_wire_ohm
        jj, ii = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        a = [self._wl(jj, ii).ravel()]
        b = [self._bl(jj, ii).ravel()]
        g = [self.g_us.ravel() * _US]
        if cols > 1:  # word-line segments between neighbouring cells
            a.append(self._wl(jj[:, :-1], ii[:, :-1]).ravel())
            b.append(self._wl(jj[:, 1:], ii[:, 1:]).ravel())
            g.append(np.full(rows * (cols - 1), g_w))
        if rows > 1:  # bit-line segments between neighbouring cells
            a.append(self._bl(jj[:-1, :], ii[:-1, :]).ravel())
            b.append(self._bl(jj[1:, :], ii[1:, :]).ravel())
            g.append(np.full((rows - 1) * cols, g_w))
        return np.concatenate(a), np.concatenate(b), np.concatenate(g)

    def _assemble(self) -> sp.csc_matrix:
        a, b, g = self.edges()
        n = self.n_nodes
        g_w = 1.0 / self.r_wire_ohm
        diag = np.bincount(a, weights=g, minlength=n) + np.bincount(b, weights=g, minlength=n)
        diag[self._wl(np.arange(self.rows), 0)] += g_w  # driver segment to the source
        diag[self._bl(self.rows - 1, np.arange(self.cols))] += g_w  # segment to virtual ground
        idx = np.arange(n)
        # one COO build keeps the cells with G = 0 as explicit zeros: every conducting pattern
        # then has the same sparsity structure, which SuperLU factorises ~50x faster at 256x256
        # than the structure with those entries pruned (measured)
        return sp.csc_matrix(
            (
                np.concatenate([-g, -g, diag]),
                (np.concatenate([a, b, idx]), np.concatenate([b, a, idx])),
            ),
            shape=(n, n),
        )

    def source_vector(self, v_rows_v: np.ndarray) -> np.ndarray:
        """Right-hand side (n_nodes, batch) for driver voltages v_rows_v (batch, rows)."""
        batch = v_rows_v.shape[0]
        rhs = np.zeros((self.n_nodes, batch))
        rhs[self._wl(np.arange(self.rows), 0), :] = v_rows_v.T / self.r_wire_ohm
        return rhs

    def solve(self, v_rows_v: np.ndarray) -> IRDropSolution:
        """Solve for driver voltages ``v_rows_v`` (V), shape (rows,) or (batch, rows)."""
        v = np.asarray(v_rows_v, dtype=np.float64)
        single = v.ndim == 1
        v2 = v.reshape(1, -1) if single else v
        if v2.ndim != 2 or v2.shape[1] != self.rows or not np.all(np.isfinite(v2)):
            raise ValueError(
                f"v_rows_v must be finite with shape ({self.rows},) or (batch, {self.rows}), "
                f"got {v.shape}"
            )
        batch = v2.shape[0]
        shape = (batch, self.rows, self.cols)
        if self._lu is None:  # ideal wires
            v_wl = np.broadcast_to(v2[:, :, None], shape).copy()
            v_bl = np.zeros(shape)
            column = np.einsum("bj,ji->bi", v2, self.g_us)
            driver = v2 * self.g_us.sum(axis=1)[None, :]
        else:
            x = self._lu.solve(self.source_vector(v2))
            half = self.rows * self.cols
            v_wl = x[:half].T.reshape(shape)
            v_bl = x[half:].T.reshape(shape)
            column = v_bl[:, -1, :] / self.r_wire_ohm / _US
            driver = (v2 - v_wl[:, :, 0]) / self.r_wire_ohm / _US
        return IRDropSolution(
            v_wl_v=v_wl, v_bl_v=v_bl, column_currents_ua=column, driver_currents_ua=driver
        )


def solve_ir_drop(g_us: np.ndarray, v_rows_v: np.ndarray, r_wire_ohm: float) -> IRDropSolution:
    """Exact nodal solve of a tile (see :class:`TileNetwork`); v_rows_v (rows,) or (batch, rows)."""
    return TileNetwork(g_us, r_wire_ohm).solve(v_rows_v)


def kcl_residual(network: TileNetwork, v_rows_v: np.ndarray, solution: IRDropSolution) -> float:
    """Largest |net current| into any node (µA), recomputed element by element (not from the LU).

    Sums, at every node, the currents of the cells, wire segments, driver segments and ground
    segments given the solved voltages: Kirchhoff's current law says each sum is zero.
    """
    v = np.asarray(v_rows_v, dtype=np.float64).reshape(-1, network.rows)
    if network.r_wire_ohm == 0:
        return 0.0
    half = network.rows * network.cols
    worst = 0.0
    a, b, g = network.edges()
    g_w = 1.0 / network.r_wire_ohm
    for k in range(v.shape[0]):
        x = np.concatenate([solution.v_wl_v[k].ravel(), solution.v_bl_v[k].ravel()])
        i_ab = g * (x[a] - x[b])  # current from a to b through each element
        net = np.bincount(b, weights=i_ab, minlength=2 * half) - np.bincount(
            a, weights=i_ab, minlength=2 * half
        )
        first = network._wl(np.arange(network.rows), 0)
        net[first] += g_w * (v[k] - x[first])  # from the driver
        last = network._bl(network.rows - 1, np.arange(network.cols))
        net[last] -= g_w * x[last]  # into the virtual ground
        worst = max(worst, float(np.max(np.abs(net))) / _US)
    return worst


def transfer_conductance(g_us: np.ndarray, r_wire_ohm: float) -> np.ndarray:
    """Transfer conductances M_ji = ∂I_i/∂V_j of the network (µS, float64 (rows, cols)).

    The network is linear, so its column currents are I = V @ M exactly, for every input vector V
    (V). One factorisation, one solve per row (a unit drive on row j, every other driver at 0 V).
    """
    network = TileNetwork(g_us, r_wire_ohm)
    rows, cols = network.rows, network.cols
    if network.r_wire_ohm == 0:
        return network.g_us.copy()
    g_w = 1.0 / network.r_wire_ohm
    sense = network._bl(rows - 1, np.arange(cols))  # bottom bit-line nodes
    m = np.empty((rows, cols))
    rhs = np.zeros(network.n_nodes)
    for j in range(rows):
        # SuperLU is fastest with one right-hand side at a time (measured: 32 at once is slower)
        drive_node = network._wl(j, 0)
        rhs[drive_node] = g_w  # 1 V on driver j through its segment
        x = network._lu.solve(rhs)
        rhs[drive_node] = 0.0
        m[j] = x[sense] * g_w / _US
    return m


def effective_conductance(
    g_us: np.ndarray, r_wire_ohm: float, p: float | np.ndarray = 1.0
) -> np.ndarray:
    """Fast-mode effective conductances G_eff = M(p·G) / p (µS, float64 (rows, cols)).

    M(p·G) is the exact transfer-conductance matrix of the mean conducting pattern (cells scaled
    by their conducting probability p, scalar or per-cell). Feeding G_eff to the exact sampler
    makes every read's mean current exact for the mean network (E[Σ_j ξ_ji G_eff,ji V_j] =
    Σ_j M_ji V_j) for any inputs; what it leaves out is the change of the lines' loading from
    one read's mask to the next. Cells with p = 0 keep G (they never conduct).
    """
    g = _check_conductance(g_us)
    p_arr = np.broadcast_to(np.asarray(p, dtype=np.float64), g.shape)
    if not np.all(np.isfinite(p_arr)) or p_arr.min() < 0 or p_arr.max() > 1:
        raise ValueError("p must lie in [0, 1] (conducting probability)")
    m = transfer_conductance(g * p_arr, r_wire_ohm)
    safe_p = np.where(p_arr > 0, p_arr, 1.0)
    return np.where(p_arr > 0, m / safe_p, g)


def ir_attenuation(g_us: np.ndarray, r_wire_ohm: float, p: float | np.ndarray = 1.0) -> np.ndarray:
    """Per-cell attenuation G_eff / G of the fast mode (float64 (rows, cols); 1 where G = 0).

    Near 1 − (IR drop along the cell's word line and bit line)/V_read; it falls with distance from
    the row drivers and from the sense end. (Cross-coupling can make it slightly negative for a
    cell with tiny G in a heavily loaded column.)
    """
    g = _check_conductance(g_us)
    g_eff = effective_conductance(g, r_wire_ohm, p)
    safe_g = np.where(g > 0, g, 1.0)
    return np.where(g > 0, g_eff / safe_g, 1.0)
