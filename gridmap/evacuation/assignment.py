"""Step 5 of evacuation planning: who goes to which shelter (an optimal assignment).

Demand units ``u`` (``p_u`` persons, colour weight ``w_u``), shelters ``s`` (capacity
``C_s``), and every (unit, shelter) pair the walk (or drive) between them allows, with
time ``t_us`` (seconds, rounded to 0.1 s)::

    minimise   sum_us p_u t_us x_us + sum_u p_u w_u M y_u
    subject to sum_s x_us + y_u = 1          for every unit u
               sum_u p_u x_us  <= C_s        for every shelter s
               x_us in {0, 1}

``M`` is 0.1 s more than the longest allowed trip, so that leaving a person without a
place costs more than any trip, and the weights (:data:`PRIORITY_WEIGHT`) place red
households before orange ones when places are short. A unit is never split.

Solution
--------
1. **Transportation relaxation** (persons flow from buildings to shelters; units of a
   building share its trip times, so one supply per building gives the same relaxation),
   solved exactly by HiGHS (simplex) with **column generation**: the LP starts with the
   :data:`INITIAL_PAIRS` nearest shelters of each building; after each solve, every pair
   of the whole set is priced with the duals (reduced cost ``t - dual_building -
   dual_shelter``) and the pairs with a negative reduced cost join the LP, until none is
   left. The result is the optimum over **every** allowed pair, not a fixed k nearest;
   its value is a lower bound of the assignment. The matrix is totally unimodular, so
   the optimal vertex is integral in persons.
2. Buildings the flow sends whole to one shelter keep it. The units of buildings the
   flow splits are re-assigned whole by a small HiGHS MIP over the places left
   (warm-started by a greedy packing along the flows).
3. When there are at most :data:`EXACT_MAX_PAIRS` (unit, shelter) pairs and the
   solution is above the LP bound, the full MIP above is solved by HiGHS, warm-started
   with that solution, so small plans are optimal (to :data:`MIP_GAP`, within
   ``time_limit`` seconds; the result is never worse than the warm start).
4. Units still without a place go to the nearest allowed shelter with room for them,
   if any (a last greedy pass; normally there is none).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["EXACT_MAX_PAIRS", "INITIAL_PAIRS", "MIP_GAP", "PRIORITY_WEIGHT", "assign"]

#: Weight of an unplaced person by flood colour: when capacity is short, one red person
#: left without shelter costs as much as four orange persons (sixteen yellow ...).
PRIORITY_WEIGHT: dict[str, int] = {"red": 64, "orange": 16, "yellow": 4, "blue": 1, "none": 1}

#: Problems with at most this many (demand unit, shelter) pairs are also solved as one
#: exact mixed-integer programme (warm-started with the flow solution).
EXACT_MAX_PAIRS = 20_000

#: Time limit (s) of the MIP that re-assigns the units of the buildings the LP split
#: (warm-started by a greedy packing, so it always has a solution).
REPAIR_TIME_LIMIT = 2.0

#: Relative gap at which the MIPs stop (the LP bound and the gap are reported).
MIP_GAP = 1e-4

#: Pairs per building in the first LP of the column generation (and per round added).
INITIAL_PAIRS = 8

_MAX_ROUNDS = 100
_REPAIR_PAIRS = 16


def _highs() -> Any:
    import highspy

    # HiGHS prints its banner to the C stdout when the first solver is made, before any
    # option can silence it: keep it off the user's console
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no usable stdout: nothing to keep clean
        saved = None
    if saved is None:
        h = highspy.Highs()
    else:
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 1)
                h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    h.setOptionValue("output_flag", False)
    h.setOptionValue("log_to_console", False)
    h.setOptionValue("random_seed", 0)
    return h


def _first_per_group(group: np.ndarray, k: int) -> np.ndarray:
    """Mask of the first `k` rows of each group (rows sorted by group)."""
    if len(group) == 0:
        return np.zeros(0, dtype=bool)
    start = np.r_[True, group[1:] != group[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(len(group)), 0))
    return np.arange(len(group)) - first < k


def _transport(
    supply: np.ndarray,
    pen: np.ndarray,
    pg: np.ndarray,
    ps: np.ndarray,
    pc: np.ndarray,
    cap: np.ndarray,
    first_k: int,
) -> tuple[np.ndarray, float, int, int]:
    """Transportation LP over all pairs by column generation.

    ``min sum c*f + pen*y`` s.t. ``sum_s f[g, s] + y[g] = supply[g]``,
    ``sum_g f[g, s] <= cap[s]``. Pairs (``pg``, ``ps``, ``pc``) are sorted by building
    then cost. Returns the flow of every pair, the optimum, the LP rounds and the
    pairs that entered the LP.
    """
    import highspy

    g_n = len(supply)
    used, srow = np.unique(ps, return_inverse=True)
    s_n = len(used)
    h = _highs()
    lp = highspy.HighsLp()
    lp.num_col_ = g_n
    lp.num_row_ = g_n + s_n
    lp.col_cost_ = pen.astype(float)
    lp.col_lower_ = np.zeros(g_n)
    lp.col_upper_ = supply.astype(float)
    lp.row_lower_ = np.r_[supply.astype(float), np.full(s_n, -highspy.kHighsInf)]
    lp.row_upper_ = np.r_[supply.astype(float), cap[used].astype(float)]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.arange(g_n + 1, dtype=np.int32)
    lp.a_matrix_.index_ = np.arange(g_n, dtype=np.int32)
    lp.a_matrix_.value_ = np.ones(g_n)
    h.passModel(lp)
    h.setOptionValue("solver", "simplex")
    in_lp = np.zeros(len(pg), dtype=bool)
    col_of = np.full(len(pg), -1, dtype=np.int64)
    add = _first_per_group(pg, first_k)
    rounds = 0
    n_cols = g_n
    while add.any() and rounds < _MAX_ROUNDS:
        rounds += 1
        idx = np.flatnonzero(add)
        k = len(idx)
        starts = np.arange(0, 2 * k, 2, dtype=np.int32)
        index = np.empty(2 * k, dtype=np.int32)
        index[0::2], index[1::2] = pg[idx], g_n + srow[idx]
        h.addCols(
            k,
            pc[idx].astype(float),
            np.zeros(k),
            supply[pg[idx]].astype(float),
            2 * k,
            starts,
            index,
            np.ones(2 * k),
        )
        col_of[idx] = np.arange(n_cols, n_cols + k)
        n_cols += k
        in_lp[idx] = True
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"HiGHS LP failed: {h.modelStatusToString(h.getModelStatus())}")
        dual = np.asarray(h.getSolution().row_dual)
        rc = pc - dual[pg] - dual[g_n + srow]
        neg = (rc < -1e-7 * np.maximum(1.0, np.abs(pc))) & ~in_lp
        if not neg.any():
            break
        cand = np.flatnonzero(neg)
        order = np.lexsort((rc[cand], pg[cand]))
        cand = cand[order]
        add = np.zeros(len(pg), dtype=bool)
        add[cand[_first_per_group(pg[cand], first_k)]] = True
    x = np.asarray(h.getSolution().col_value)
    flows = np.zeros(len(pg), dtype=np.int64)
    flows[in_lp] = np.round(x[col_of[in_lp]]).astype(np.int64)
    return flows, float(h.getInfo().objective_function_value), rounds, int(in_lp.sum())


def _mip(
    persons: np.ndarray,
    pen: np.ndarray,
    mu: np.ndarray,
    ms: np.ndarray,
    mc: np.ndarray,
    cap: np.ndarray,
    start: np.ndarray | None,
    time_limit: float,
) -> np.ndarray | None:
    """Exact assignment MIP over unit pairs (``mu``, ``ms``, ``mc`` = persons x cost).

    Returns the chosen pair of each unit (-1 = unplaced), or None when HiGHS found no
    solution.
    """
    import highspy

    u_n = len(persons)
    fits = persons[mu] <= cap[ms]
    pair = np.flatnonzero(fits)
    mu, ms, mc = mu[pair], ms[pair], mc[pair]
    m = len(mu)
    used, srow = np.unique(ms, return_inverse=True)
    h = _highs()
    lp = highspy.HighsLp()
    lp.num_col_ = m + u_n
    lp.num_row_ = u_n + len(used)
    lp.col_cost_ = np.r_[mc, persons * pen].astype(float)
    lp.col_lower_ = np.zeros(m + u_n)
    lp.col_upper_ = np.ones(m + u_n)
    lp.row_lower_ = np.r_[np.ones(u_n), np.full(len(used), -highspy.kHighsInf)]
    lp.row_upper_ = np.r_[np.ones(u_n), cap[used].astype(float)]
    rows = np.empty(2 * m + u_n, dtype=np.int32)
    rows[0 : 2 * m : 2], rows[1 : 2 * m : 2], rows[2 * m :] = mu, u_n + srow, np.arange(u_n)
    vals = np.ones(2 * m + u_n)
    vals[1 : 2 * m : 2] = persons[mu]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.r_[0, np.cumsum(np.r_[np.full(m, 2), np.ones(u_n, int)])].astype(
        np.int32
    )
    lp.a_matrix_.index_ = rows
    lp.a_matrix_.value_ = vals
    lp.integrality_ = [highspy.HighsVarType.kInteger] * m + [highspy.HighsVarType.kContinuous] * u_n
    h.passModel(lp)
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", MIP_GAP)
    if start is not None:
        col = np.zeros(m + u_n)
        pos = pd.Series(np.arange(m), index=pair)
        hit = pos.reindex(np.maximum(start, 0)).to_numpy()
        ok = (start >= 0) & ~np.isnan(hit)
        col[hit[ok].astype(np.int64)] = 1.0
        col[m + np.flatnonzero(~ok)] = 1.0
        sol = highspy.HighsSolution()
        sol.col_value = col.tolist()
        h.setSolution(sol)
    h.run()
    sol = h.getSolution()
    if not sol.value_valid:
        return None
    x = np.asarray(sol.col_value)[:m] > 0.5
    choice = np.full(u_n, -1, dtype=np.int64)
    choice[mu[x]] = pair[x]
    return choice


def _objective(
    persons: np.ndarray, pen: np.ndarray, pair_cost: np.ndarray, choice: np.ndarray
) -> float:
    """Total cost of a choice (pair of each unit, -1 = unplaced)."""
    placed = choice >= 0
    c = np.where(placed, pair_cost[np.maximum(choice, 0)], pen)
    return float((persons * c).sum())


def _unit_pairs(
    group: np.ndarray, pg: np.ndarray, units: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(unit, pair) of every pair of the units' buildings (pairs sorted by building)."""
    g = group[units]
    lo = np.searchsorted(pg, g, side="left")
    hi = np.searchsorted(pg, g, side="right")
    count = hi - lo
    run = np.repeat(np.arange(len(units)), count)
    first = np.cumsum(count) - count
    pos = lo[run] + np.arange(int(count.sum())) - first[run]
    return run, pos


def assign(
    persons: np.ndarray,
    weight: np.ndarray,
    group: np.ndarray,
    pair_group: np.ndarray,
    pair_shelter: np.ndarray,
    pair_seconds: np.ndarray,
    capacity: np.ndarray,
    *,
    exact_max_pairs: int = EXACT_MAX_PAIRS,
    time_limit: float = 5.0,
    initial_pairs: int = INITIAL_PAIRS,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Assign whole demand units to shelters optimally (see the module notes).

    Parameters
    ----------
    persons, weight : numpy.ndarray
        Persons and priority weight of each unit.
    group : numpy.ndarray
        Building (0..G-1) of each unit; the units of a building share its pairs.
    pair_group, pair_shelter, pair_seconds : numpy.ndarray
        Every allowed (building, shelter) pair and its trip time (s), sorted by
        building then time.
    capacity : numpy.ndarray
        Places of every shelter.
    exact_max_pairs : int
        Largest number of (unit, shelter) pairs solved as one exact MIP.
    time_limit : float
        Time limit (s) of each MIP.
    initial_pairs : int
        Pairs per building in the first LP (and added per building and round).

    Returns
    -------
    (numpy.ndarray, dict)
        The shelter of each unit (-1 = unplaced) and solver facts: ``method``,
        ``objective`` and ``lower_bound`` (person-seconds plus penalties), ``gap``,
        ``units``, ``buildings``, ``pairs`` (allowed building-shelter pairs),
        ``lp_pairs`` (pairs that entered the LP), ``lp_rounds``, ``split_units``,
        ``seconds``.
    """
    t0 = time.perf_counter()
    n_units = len(persons)
    g_n = int(group.max()) + 1 if n_units else 0
    choice_s = np.full(n_units, -1, dtype=np.int64)
    info: dict[str, Any] = {
        "method": "none",
        "objective": 0.0,
        "lower_bound": 0.0,
        "gap": 0.0,
        "units": n_units,
        "buildings": g_n,
        "pairs": len(pair_group),
        "lp_pairs": 0,
        "lp_rounds": 0,
        "split_units": 0,
    }
    if n_units == 0 or len(pair_group) == 0:
        info["seconds"] = round(time.perf_counter() - t0, 3)
        return choice_s, info
    pc = np.round(np.asarray(pair_seconds, dtype=float) * 10)
    big = float(pc.max()) + 1.0
    g_weight = np.zeros(g_n, dtype=np.int64)
    np.maximum.at(g_weight, group, weight)
    pen_g = g_weight * big
    u_pen = pen_g[group]
    supply = np.bincount(group, weights=persons, minlength=g_n).astype(np.int64)
    cap = np.asarray(capacity, dtype=np.int64)
    flows, bound, rounds, lp_pairs = _transport(
        supply, pen_g, pair_group, pair_shelter, pc, cap, initial_pairs
    )
    method = "transportation LP over all pairs (HiGHS simplex, column generation)"

    # buildings sent whole to one shelter keep it
    whole = np.flatnonzero((flows == supply[pair_group]) & (flows > 0))
    g_pair = np.full(g_n, -1, dtype=np.int64)
    g_pair[pair_group[whole]] = whole
    g_flow = np.bincount(pair_group, weights=flows, minlength=g_n)
    g_split = (g_pair < 0) & (g_flow > 0)
    u_run, u_pos = _unit_pairs(group, pair_group, np.arange(n_units))
    # choice as a pair index per unit
    choice = g_pair[group].copy()
    split = np.flatnonzero(g_split[group])
    if len(split):
        done = choice >= 0
        load = np.bincount(
            pair_shelter[choice[done]], weights=persons[done], minlength=len(cap)
        ).astype(np.int64)
        residual = np.maximum(cap - load, 0)
        in_split = np.isin(u_run, split)
        su, sp = u_run[in_split], u_pos[in_split]
        # candidates: the pairs with flow plus the nearest pairs with room
        keep = (flows[sp] > 0) | _first_per_group(su, _REPAIR_PAIRS)
        su, sp = su[keep], sp[keep]
        local = np.searchsorted(split, su)
        start = _pack(persons[split], local, sp, flows, pair_shelter, pc, residual)
        got = _mip(
            persons[split],
            u_pen[split],
            local,
            pair_shelter[sp],
            persons[split][local] * pc[sp],
            residual,
            start,
            min(time_limit, REPAIR_TIME_LIMIT),
        )
        pick = got if got is not None else start
        choice[split] = np.where(pick >= 0, sp[np.maximum(pick, 0)], -1)
        method += " + MIP repair of split buildings (HiGHS)"
    obj = _objective(persons, u_pen, pc, choice)
    if 0 < len(u_run) <= exact_max_pairs and obj > bound + 0.5:
        start = _local_choice(choice, u_run, u_pos, n_units)
        got = _mip(
            persons,
            u_pen,
            u_run,
            pair_shelter[u_pos],
            persons[u_run] * pc[u_pos],
            cap,
            start,
            time_limit,
        )
        if got is not None:
            cand = np.where(got >= 0, u_pos[np.maximum(got, 0)], -1)
            if _objective(persons, u_pen, pc, cand) < obj:
                choice = cand
                obj = _objective(persons, u_pen, pc, choice)
        method += " + exact MIP (HiGHS)"
    # a last pass: the nearest allowed shelter with room, for units left over
    left = np.flatnonzero(choice < 0)
    if len(left):
        done = choice >= 0
        load = np.bincount(pair_shelter[choice[done]], weights=persons[done], minlength=len(cap))
        residual = (cap - load).astype(np.int64)
        filled = _fill(persons, u_pen, left, u_run, u_pos, pair_shelter, residual)
        if (filled >= 0).any():
            choice[left] = np.where(filled >= 0, filled, choice[left])
            obj = _objective(persons, u_pen, pc, choice)
            method += " + greedy fill"
    choice_s = np.where(choice >= 0, pair_shelter[np.maximum(choice, 0)], -1)
    info.update(
        method=method,
        objective=obj / 10,
        lower_bound=bound / 10,
        gap=(obj - bound) / max(abs(obj), 1.0),
        lp_pairs=lp_pairs,
        lp_rounds=rounds,
        split_units=len(split),
        seconds=round(time.perf_counter() - t0, 3),
    )
    return choice_s, info


def _local_choice(
    choice: np.ndarray, u_run: np.ndarray, u_pos: np.ndarray, n_units: int
) -> np.ndarray:
    """Position in the unit-pair list of each unit's chosen pair (-1 = none)."""
    out = np.full(n_units, -1, dtype=np.int64)
    hit = choice[u_run] == u_pos
    out[u_run[hit]] = np.flatnonzero(hit)
    return out


def _pack(
    persons: np.ndarray,
    local: np.ndarray,
    sp: np.ndarray,
    flows: np.ndarray,
    pair_shelter: np.ndarray,
    pc: np.ndarray,
    residual: np.ndarray,
) -> np.ndarray:
    """Greedy whole-unit packing along the flows (the MIP's warm start).

    Largest units first; each goes to the candidate pair with the most flow left that
    can still take it, else to the cheapest candidate with room. Returns the position in
    the candidate list (`local`/`sp`) of each unit's pair, -1 = none. Loops over the
    units of split buildings only (about one building per full shelter).
    """
    res = residual.copy()
    quota = flows.astype(np.int64).copy()
    out = np.full(len(persons), -1, dtype=np.int64)
    order_c = np.argsort(local, kind="stable")
    lo = np.searchsorted(local[order_c], np.arange(len(persons)), side="left")
    hi = np.searchsorted(local[order_c], np.arange(len(persons)), side="right")
    for u in np.argsort(-persons, kind="stable"):
        c = order_c[lo[u] : hi[u]]
        if len(c) == 0:
            continue
        p = persons[u]
        s = pair_shelter[sp[c]]
        fits = res[s] >= p
        if not fits.any():
            continue
        q = np.where(fits, quota[sp[c]], -1)
        j = int(q.argmax()) if q.max() > 0 else int(np.where(fits, pc[sp[c]], np.inf).argmin())
        out[u] = c[j]
        res[s[j]] -= p
        quota[sp[c[j]]] -= p
    return out


def _fill(
    persons: np.ndarray,
    pen: np.ndarray,
    left: np.ndarray,
    u_run: np.ndarray,
    u_pos: np.ndarray,
    pair_shelter: np.ndarray,
    residual: np.ndarray,
) -> np.ndarray:
    """Nearest pair with room for each unit of `left` (highest priority first)."""
    out = np.full(len(left), -1, dtype=np.int64)
    lo = np.searchsorted(u_run, left, side="left")
    hi = np.searchsorted(u_run, left, side="right")
    has = np.flatnonzero(hi > lo)
    if len(has) == 0 or residual.max(initial=0) <= 0:
        return out
    order = has[np.lexsort((persons[left[has]], -pen[left[has]]))]
    for i in order:
        pos = u_pos[lo[i] : hi[i]]
        s = pair_shelter[pos]
        fits = np.flatnonzero(residual[s] >= persons[left[i]])
        if len(fits):
            j = fits[0]  # pairs are sorted by time
            out[i] = pos[j]
            residual[s[j]] -= persons[left[i]]
    return out
