"""numba kernels of the exact samplers (private; the public API is :mod:`crossbar.sampling`).

All compiled code sits in this one module so that numba's on-disk cache (``cache=True``), which
only watches the file of the function it compiles, sees every change. The wrappers in
:mod:`crossbar.sampling` normalise dtypes, so each kernel compiles for exactly one signature.

Generator: see :mod:`crossbar.rng` (the numpy reference there is tested bit for bit against
:func:`mix64` / :func:`read_seed` here). Bernoulli draws: see :mod:`crossbar.probability`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_U = np.uint64
_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # constants: see crossbar/rng.py
_DELTA = np.uint64(0xD1B54A32D192ED03)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_ZERO = np.uint64(0)
_ONE = np.uint64(1)
_F0 = np.float32(0.0)

# Planes compared for every word in one vectorised pass. After m planes a 64-cell word is still
# undecided with probability 1 - (1 - 2^-m)^64: 22 % at m = 8, 6.1 % at m = 10, 1.6 % at m = 12.
# Undecided words are listed and finished one by one (scalar, stopping when decided).
_N_LEAD = 12
# Reads (sample, batch row) handled per parallel task: amortises the scratch allocations; the
# result of a read never depends on which task or thread runs it.
_ITEMS_PER_TASK = 8
# Reads (sample, batch row) per task in the per-cell kernel: they share each row's loads.
_READS_PER_TASK = 8
# Bit k of a 32-bit mask word as a vector: LLVM turns "bit set?" into one vptestmd per 16 cells.
_BIT32 = np.array([1 << k for k in range(32)], dtype=np.uint32)


@njit(cache=True, inline="always")
def mix64(x):
    """SplitMix64 finaliser (uint64 -> uint64)."""
    x = (x ^ (x >> _U(30))) * _C1
    x = (x ^ (x >> _U(27))) * _C2
    return x ^ (x >> _U(31))


@njit(cache=True, inline="always")
def read_seed(k0, k1, s, b):
    """seed(s, b) of crossbar.rng for global sample s and batch row b (int64 >= 0)."""
    hs = mix64(k0 + _U(s + 1) * _GAMMA)
    return mix64(hs ^ (k1 + _U(b + 1) * _DELTA))


@njit(cache=True)
def draw_words(k0, k1, s, b, n):
    """word(s, b, n) for n in 0..n-1 (used by the tests to check the compiled generator)."""
    seed = read_seed(k0, k1, s, b)
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        out[i] = mix64(seed + _U(i + 1) * _GAMMA)
    return out


@njit(cache=True, inline="always")
def _word(seed, counter):
    return mix64(seed + (counter + _ONE) * _GAMMA)


@njit(cache=True, inline="always")
def _leading_planes(masks, eq, seed, planes, kb, n_planes):
    """First ``n_planes`` planes of every word, word-outer so the planes stay in registers.

    Called with a literal n_planes (1, 2, 4 or 8): LLVM unrolls the plane loop and vectorises the
    loop over words. Planes beyond the last nonzero one are zero, so rounding n_planes up only
    spends random words, never changes a result.
    """
    for q in range(masks.shape[0]):
        # x = seed + (n + 1)·γ for counter n = q·bits + m, stepped by γ (the words of _word)
        x = seed + (_U(q) * kb + _ONE) * _GAMMA
        u = mix64(x)
        p = planes[0, q]
        lt = p & ~u
        e = ~(p ^ u)
        for m in range(1, n_planes):
            x += _GAMMA
            u = mix64(x)
            p = planes[m, q]
            lt |= e & p & ~u
            e &= ~(p ^ u)
        masks[q] = lt
        eq[q] = e


@njit(cache=True)
def fill_masks(masks, eq, tail, seed, planes, always, last_plane, bits, has_always):
    """Conduction masks of one read: masks[q] bit t = 1 iff cell (word q, bit t) conducts.

    Bit-sliced comparison U < q, most significant plane first; word q of plane m uses random word
    number q·bits + m of the read. ``lt`` collects the lanes decided "U < q", ``eq`` the lanes
    still equal; a word needs no more planes once eq = 0 or no later plane holds a 1 bit.
    ``eq`` and ``tail`` are scratch of masks' length.
    """
    nq = masks.shape[0]
    kb = _U(bits)
    n_lead = last_plane + 1
    if n_lead <= 0:
        for q in range(nq):
            masks[q] = _ZERO
    elif n_lead == 1:
        _leading_planes(masks, eq, seed, planes, kb, 1)
    elif n_lead == 2:
        _leading_planes(masks, eq, seed, planes, kb, 2)
    elif n_lead <= 4:
        _leading_planes(masks, eq, seed, planes, kb, 4)
    elif n_lead <= 8:
        _leading_planes(masks, eq, seed, planes, kb, 8)
    else:
        _leading_planes(masks, eq, seed, planes, kb, _N_LEAD)
    if last_plane >= _N_LEAD:
        nt = 0
        for q in range(nq):  # branch-free compaction of the undecided words
            tail[nt] = q
            nt += eq[q] != _ZERO
        for i in range(nt):
            q = tail[i]
            e = eq[q]
            m = _N_LEAD
            lt = masks[q]
            while e != _ZERO and m <= last_plane:
                u = _word(seed, _U(q) * kb + _U(m))
                p = planes[m, q]
                lt |= e & p & ~u
                e &= ~(p ^ u)
                m += 1
            masks[q] = lt
    if has_always:
        for q in range(nq):
            masks[q] |= always[q]


@njit(cache=True, inline="always")
def _driven_rows(z, b, pairs, idx, sg):
    """Rows read for batch row b, in the fixed accumulation order, with their input (±1; 0 for
    padding to whole groups of four). Returns the padded count.

    pairs 0: row j with input z[b, j]; 1: the stacked pair [G⁺; G⁻] of r = z.shape[1] inputs,
    rows j (input z_j) then rows r + j (input −z_j), each in ascending order; 2: merged pairs,
    row j with input z_j."""
    r = z.shape[1]
    n = 0
    for j in range(r):
        zj = z[b, j]
        if zj != 0:
            idx[n] = j
            sg[n] = np.float32(zj)
            n += 1
    if pairs == 1:
        for j in range(r):
            zj = z[b, j]
            if zj != 0:
                idx[n] = r + j
                sg[n] = np.float32(-zj)
                n += 1
    while n % 4 != 0:  # pad the last group with rows of weight 0
        idx[n] = 0
        sg[n] = _F0
        n += 1
    return n


@njit(cache=True, inline="always")
def _accumulate_reads(g, read_var, with_var, m32, t_lo, t_hi, idx, sg, n, acc, vacc):
    """acc[t] += Σ_rows ξ·z·G (and vacc[t] += Σ ξ·z²·R) for the reads t_lo <= t < t_hi, which
    share the row list idx[:n] (padded to whole groups of four); sg[t, i] is read t's input on
    row idx[i]. Four rows and 32 columns at a time: each read forms z·G in registers (an exact
    product: z = ±1 or 0) and adds ((t0 + t1) + (t2 + t3)) of its conducting entries, rows in
    list order; the rows' G (and R) stay in L1 for all the reads."""
    n_half = g.shape[1] // 32
    bit = _BIT32
    for grp in range(0, n, 4):
        r0 = idx[grp]
        r1 = idx[grp + 1]
        r2 = idx[grp + 2]
        r3 = idx[grp + 3]
        for h in range(n_half):
            if with_var:
                for t in range(t_lo, t_hi):
                    a0 = m32[t, r0 * n_half + h]
                    a1 = m32[t, r1 * n_half + h]
                    a2 = m32[t, r2 * n_half + h]
                    a3 = m32[t, r3 * n_half + h]
                    c0 = sg[t, grp]
                    c1 = sg[t, grp + 1]
                    c2 = sg[t, grp + 2]
                    c3 = sg[t, grp + 3]
                    d0 = c0 * c0  # z² (1 for ±1 inputs, 0 for padding rows)
                    d1 = c1 * c1
                    d2 = c2 * c2
                    d3 = c3 * c3
                    for k in range(32):
                        c = h * 32 + k
                        bk = bit[k]
                        e0 = (a0 & bk) != 0
                        e1 = (a1 & bk) != 0
                        e2 = (a2 & bk) != 0
                        e3 = (a3 & bk) != 0
                        t0 = c0 * g[r0, c] if e0 else _F0
                        t1 = c1 * g[r1, c] if e1 else _F0
                        t2 = c2 * g[r2, c] if e2 else _F0
                        t3 = c3 * g[r3, c] if e3 else _F0
                        acc[t, c] += (t0 + t1) + (t2 + t3)
                        v0 = d0 * read_var[r0, c] if e0 else _F0
                        v1 = d1 * read_var[r1, c] if e1 else _F0
                        v2 = d2 * read_var[r2, c] if e2 else _F0
                        v3 = d3 * read_var[r3, c] if e3 else _F0
                        vacc[t, c] += (v0 + v1) + (v2 + v3)
            else:
                for t in range(t_lo, t_hi):
                    a0 = m32[t, r0 * n_half + h]
                    a1 = m32[t, r1 * n_half + h]
                    a2 = m32[t, r2 * n_half + h]
                    a3 = m32[t, r3 * n_half + h]
                    c0 = sg[t, grp]
                    c1 = sg[t, grp + 1]
                    c2 = sg[t, grp + 2]
                    c3 = sg[t, grp + 3]
                    for k in range(32):
                        c = h * 32 + k
                        bk = bit[k]
                        t0 = c0 * g[r0, c] if (a0 & bk) != 0 else _F0
                        t1 = c1 * g[r1, c] if (a1 & bk) != 0 else _F0
                        t2 = c2 * g[r2, c] if (a2 & bk) != 0 else _F0
                        t3 = c3 * g[r3, c] if (a3 & bk) != 0 else _F0
                        acc[t, c] += (t0 + t1) + (t2 + t3)


@njit(cache=True, inline="always")
def _accumulate_shared(g, read_var, with_var, m32, t0_, n_reads, idx, sg, n, acc, vacc, zg, zv):
    """As :func:`_accumulate_reads` for the reads t0_ .. t0_ + n_reads − 1 of one batch row
    (the same inputs sg[t0_]): z·G (and z²·R) of each group of four rows is formed once in
    the small buffers zg, zv and shared by the reads (the same products, so the same sums)."""
    n_half = g.shape[1] // 32
    bit = _BIT32
    for grp in range(0, n, 4):
        r0 = idx[grp]
        r1 = idx[grp + 1]
        r2 = idx[grp + 2]
        r3 = idx[grp + 3]
        c0 = sg[t0_, grp]
        c1 = sg[t0_, grp + 1]
        c2 = sg[t0_, grp + 2]
        c3 = sg[t0_, grp + 3]
        for h in range(n_half):
            for k in range(32):
                c = h * 32 + k
                zg[0, k] = c0 * g[r0, c]
                zg[1, k] = c1 * g[r1, c]
                zg[2, k] = c2 * g[r2, c]
                zg[3, k] = c3 * g[r3, c]
            if with_var:
                for k in range(32):  # z²·R (1 for ±1 inputs, 0 for padding rows)
                    c = h * 32 + k
                    zv[0, k] = (c0 * c0) * read_var[r0, c]
                    zv[1, k] = (c1 * c1) * read_var[r1, c]
                    zv[2, k] = (c2 * c2) * read_var[r2, c]
                    zv[3, k] = (c3 * c3) * read_var[r3, c]
                for t in range(t0_, t0_ + n_reads):
                    a0 = m32[t, r0 * n_half + h]
                    a1 = m32[t, r1 * n_half + h]
                    a2 = m32[t, r2 * n_half + h]
                    a3 = m32[t, r3 * n_half + h]
                    for k in range(32):
                        bk = bit[k]
                        e0 = (a0 & bk) != 0
                        e1 = (a1 & bk) != 0
                        e2 = (a2 & bk) != 0
                        e3 = (a3 & bk) != 0
                        t0 = zg[0, k] if e0 else _F0
                        t1 = zg[1, k] if e1 else _F0
                        t2 = zg[2, k] if e2 else _F0
                        t3 = zg[3, k] if e3 else _F0
                        acc[t, h * 32 + k] += (t0 + t1) + (t2 + t3)
                        v0 = zv[0, k] if e0 else _F0
                        v1 = zv[1, k] if e1 else _F0
                        v2 = zv[2, k] if e2 else _F0
                        v3 = zv[3, k] if e3 else _F0
                        vacc[t, h * 32 + k] += (v0 + v1) + (v2 + v3)
            else:
                for t in range(t0_, t0_ + n_reads):
                    a0 = m32[t, r0 * n_half + h]
                    a1 = m32[t, r1 * n_half + h]
                    a2 = m32[t, r2 * n_half + h]
                    a3 = m32[t, r3 * n_half + h]
                    for k in range(32):
                        bk = bit[k]
                        t0 = zg[0, k] if (a0 & bk) != 0 else _F0
                        t1 = zg[1, k] if (a1 & bk) != 0 else _F0
                        t2 = zg[2, k] if (a2 & bk) != 0 else _F0
                        t3 = zg[3, k] if (a3 & bk) != 0 else _F0
                        acc[t, h * 32 + k] += (t0 + t1) + (t2 + t3)


@njit(cache=True, parallel=True)
def exact_cell_kernel(
    g,
    z,
    read_var,
    with_var,
    planes,
    always,
    has_always,
    last_plane,
    bits,
    k0,
    k1,
    s0,
    b0,
    n_samples,
    n_cols,
    pairs,
    select,
    out,
    var_out,
    scale,
    var_scale,
    add,
):
    """Exact per-cell sampler.

    g: float32 (rows, n_words·64) conductances, zero-padded columns; z: int8 (batch, inputs) in
    {-1, 0, 1}; read_var: float32 like g (ignored unless with_var). ``pairs`` (see
    :func:`_driven_rows`): 0 plain (inputs = rows); 1 stacked differential pairs (rows = 2·inputs,
    the second half read with −z); 2 merged pairs (rows = inputs; the planes hold the 2·inputs
    stacked cells, and ``select`` (inputs·n_words,) has bit set where the G⁺ cell is the one
    that can carry current, so the merged cell conducts with ξ⁺ there and ξ⁻ elsewhere).
    Writes float32 (n_samples, batch, n_cols) currents into ``out`` (scaled by ``scale``;
    added to the values there when ``add``) and, with_var, the read-noise variances into
    ``var_out`` (scaled by ``var_scale``).

    A task is up to _READS_PER_TASK reads: up to 8 samples of one batch row, or with fewer
    samples per call all the samples of ⌊8/n_samples⌋ batch rows. It draws every read's masks,
    then the reads that share a row list accumulate together, sharing each row's loads: the
    samples of one batch row (:func:`_accumulate_shared`), or with one sample per call the
    batch rows without undriven inputs (:func:`_accumulate_reads`).
    A read's sum is ((t0 + t1) + (t2 + t3)) per group of its own rows, groups in ascending row
    order, in float32, then out = scale·acc (+ out): it depends on nothing but the read, so the
    result is the same for any task split, chunking or thread count.
    """
    rows, ncp = g.shape
    batch = z.shape[0]
    r_in = z.shape[1]
    if n_samples == 0 or batch == 0:
        return
    if n_samples >= _READS_PER_TASK:
        rows_per_task = 1
        n_blocks = (n_samples + _READS_PER_TASK - 1) // _READS_PER_TASK
    else:
        rows_per_task = _READS_PER_TASK // max(n_samples, 1)
        n_blocks = 1
    n_row_blocks = (batch + rows_per_task - 1) // rows_per_task
    n_merged = select.shape[0]
    for task in prange(n_row_blocks * n_blocks):
        rb = task // n_blocks
        first = (task - rb * n_blocks) * _READS_PER_TASK
        ns = min(_READS_PER_TASK, n_samples - first)
        bl = rb * rows_per_task
        nb = min(rows_per_task, batch - bl)
        nq = planes.shape[1]
        n_reads = ns * nb
        masks = np.empty((_READS_PER_TASK, nq), dtype=np.uint64)
        eq = np.empty(nq, dtype=np.uint64)
        tail = np.empty(nq, dtype=np.int64)
        idx = np.empty(rows + 4, dtype=np.int64)
        sg = np.empty((_READS_PER_TASK, rows + 4), dtype=np.float32)
        acc = np.zeros((_READS_PER_TASK, ncp), dtype=np.float32)
        vacc = np.zeros((_READS_PER_TASK, ncp), dtype=np.float32)
        zg = np.empty((4, 32), dtype=np.float32)
        zv = np.empty((4, 32), dtype=np.float32)
        # Slots: the reads' order in the task. Several samples of a batch row share its inputs
        # (z·G formed once per row: _accumulate_shared). One sample per row: the rows with every
        # input driven come first and share one row list (all rows: _accumulate_reads).
        slot_b = np.empty(_READS_PER_TASK, dtype=np.int64)
        slot_s = np.empty(_READS_PER_TASK, dtype=np.int64)
        n_full = 0
        if ns == 1:
            for j in range(nb):
                full = True
                for i in range(r_in):
                    full &= z[bl + j, i] != 0
                if full:
                    slot_b[n_full] = bl + j
                    n_full += 1
            k = n_full
            for j in range(nb):
                full = True
                for i in range(r_in):
                    full &= z[bl + j, i] != 0
                if not full:
                    slot_b[k] = bl + j
                    k += 1
            for t in range(nb):
                slot_s[t] = first
        else:
            for t in range(n_reads):
                slot_b[t] = bl + t // ns
                slot_s[t] = first + t % ns
        for t in range(n_reads):
            seed = read_seed(k0, k1, s0 + slot_s[t], b0 + slot_b[t])
            mt = masks[t]
            fill_masks(mt, eq, tail, seed, planes, always, last_plane, bits, has_always)
            if pairs == 2:  # merged cell q: ξ⁺ where select, else ξ⁻ (word q + n_merged)
                for q in range(n_merged):
                    sq = select[q]
                    mt[q] = (mt[q] & sq) | (mt[q + n_merged] & ~sq)
        m32 = masks.view(np.uint32)
        n = 0
        for t in range(n_full):
            n = _driven_rows(z, slot_b[t], pairs, idx, sg[t])
        if n_full > 0:
            _accumulate_reads(g, read_var, with_var, m32, 0, n_full, idx, sg, n, acc, vacc)
        for t in range(n_full, n_reads, ns):  # one batch row (its ns samples) at a time
            n = _driven_rows(z, slot_b[t], pairs, idx, sg[t])
            _accumulate_shared(g, read_var, with_var, m32, t, ns, idx, sg, n, acc, vacc, zg, zv)
        for t in range(n_reads):
            o = out[slot_s[t], slot_b[t]]
            if add:
                for c in range(n_cols):
                    o[c] = o[c] + scale * acc[t, c]
            else:
                for c in range(n_cols):
                    o[c] = scale * acc[t, c]
            if with_var:
                vo = var_out[slot_s[t], slot_b[t]]
                if add:
                    for c in range(n_cols):
                        vo[c] = vo[c] + var_scale * vacc[t, c]
                else:
                    for c in range(n_cols):
                        vo[c] = var_scale * vacc[t, c]


@njit(cache=True, parallel=True)
def row_mask_kernel(z, planes, always, has_always, last_plane, bits, k0, k1, s0, b0, n_samples):
    """Per-row stochastic elements: masked inputs ξ[s,b,j]·z[b,j], float32 (samples·batch, rows).

    One draw per (read, row), shared by every cell of the row; planes hold p per row packed as one
    row of cells (word q = j // 64). The caller multiplies by G with a dense product.
    """
    batch, rows = z.shape
    n_items = n_samples * batch
    n_tasks = (n_items + _ITEMS_PER_TASK - 1) // _ITEMS_PER_TASK
    out = np.empty((n_items, rows), dtype=np.float32)
    for task in prange(n_tasks):
        nq = planes.shape[1]
        masks = np.empty(nq, dtype=np.uint64)
        eq = np.empty(nq, dtype=np.uint64)
        tail = np.empty(nq, dtype=np.int64)
        for item in range(task * _ITEMS_PER_TASK, min((task + 1) * _ITEMS_PER_TASK, n_items)):
            s = item // batch
            b = item - s * batch
            seed = read_seed(k0, k1, s0 + s, b0 + b)
            fill_masks(masks, eq, tail, seed, planes, always, last_plane, bits, has_always)
            for j in range(rows):
                on = (masks[j >> 6] >> _U(j & 63)) & _ONE
                out[item, j] = np.float32(z[b, j]) if on != _ZERO else _F0
    return out
