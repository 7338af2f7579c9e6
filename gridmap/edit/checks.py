"""Rule checks of the grids an edit changed, and what every edit returns.

:func:`check_grids` looks only at the grids it is given (households against their
range, one polygon, inside their community, barrier crossings drawn by hand), so an edit
of a 1,000-grid plan is checked in milliseconds; :meth:`gridmap.Plan.validate` remains
the independent check of the whole plan.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pandas as pd
import shapely

from ..plan import Plan
from .common import EXPLAIN_FLAGS, MANUAL_CROSSING, TOL_M2

log = logging.getLogger("gridmap")

__all__ = ["RULES", "EditResult", "check_grids", "report_of"]

#: The rules :func:`check_grids` checks, with the validator's check name and severity.
RULES: dict[str, tuple[str, str]] = {
    "range": ("out_of_range", "error"),
    "contiguity": ("discontiguous", "error"),
    "community": ("crosses_community", "error"),
    "crossing": ("barrier_crossing", "warning"),
}
_CHECK_COLUMNS = [
    "code",
    "kind",
    "households",
    "buildings",
    "min",
    "max",
    "in_range",
    "violations",
    "details",
]


def check_grids(plan: Plan, codes: Iterable[str]) -> pd.DataFrame:
    """Check grids against the division rules: the figures a planner watches while editing.

    Parameters
    ----------
    plan : Plan
    codes : iterable of str
        Full grid codes; codes not in the plan are skipped.

    Returns
    -------
    pandas.DataFrame
        One row per grid, in the order given: ``code``, ``kind``, ``households``,
        ``buildings``, ``min``, ``max`` (the grid's household range), ``in_range``
        (always True for special grids, which have no household rule), ``violations``
        (list of the rules the grid breaks, from :data:`RULES`: ``range`` — households
        below ``min`` or above ``max``; ``contiguity`` — the grid is not one polygon;
        ``community`` — the grid reaches outside its community; ``crossing`` — a barrier
        runs through the grid where a manual edit drew it) and ``details`` (one
        plain-language sentence per violation, same order).
    """
    codes = [str(c) for c in dict.fromkeys(codes)]
    g = plan.grids
    rows = g[g["grid_code"].isin(codes)]
    order = {c: i for i, c in enumerate(codes)}
    rows = rows.iloc[np.argsort([order[c] for c in rows["grid_code"]], kind="stable")]
    comm = _community_geoms(plan)
    cross = plan.crossings
    manual = (
        cross[(cross["grid_code"].isin(codes)) & (cross["reason"] == MANUAL_CROSSING)]
        if cross is not None and len(cross)
        else None
    )
    out = []
    for r in rows.itertuples(index=False):
        hh, lo, hi = int(r.households), int(r.range_min), int(r.range_max)
        special = r.kind == "special"
        ok = special or lo <= hh <= hi
        rules: list[str] = []
        details: list[str] = []
        if not ok:
            side = "below" if hh < lo else "above"
            rules.append("range")
            details.append(f"{hh} households, {side} the range {lo}–{hi}")
        geom = r.geometry
        parts = shapely.get_parts(geom) if geom is not None else np.array([])
        big = int((shapely.area(parts) > TOL_M2).sum()) if len(parts) else 0
        if big > 1:
            rules.append("contiguity")
            details.append(f"the grid is in {big} separate parts")
        cg = comm.get((str(r.street_code), str(r.community_code)))
        if cg is not None and geom is not None:
            outside = float(shapely.area(shapely.difference(geom, cg)))
            if outside > TOL_M2:
                rules.append("community")
                details.append(f"{outside:,.0f} m² lie outside its community {r.community_code}")
        if manual is not None:
            mine = manual[manual["grid_code"] == r.grid_code]
            if len(mine):
                rules.append("crossing")
                details.append(
                    "crosses "
                    + ", ".join(
                        f"{b} ({m:,.0f} m)"
                        for b, m in zip(mine["barrier"], mine["length_m"], strict=True)
                    )
                )
        out.append(
            {
                "code": r.grid_code,
                "kind": r.kind,
                "households": hh,
                "buildings": int(r.buildings),
                "min": lo,
                "max": hi,
                "in_range": bool(ok),
                "violations": rules,
                "details": details,
            }
        )
    return pd.DataFrame(out, columns=_CHECK_COLUMNS)


def report_of(plan: Plan, checked: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`check_grids` as a validation report (``check``,
    ``grid_code``, ``severity``, ``detail``), one row per violation.

    An out-of-range grid is a warning when its flags explain it (a grid the planner
    drew, e.g. ``isolated_village``), else an error; a non-special grid without
    households also gets an ``empty_grid`` warning.
    """
    g = plan.grids
    m = g["grid_code"].isin(checked["code"]).to_numpy()
    flags = dict(
        zip(g["grid_code"].to_numpy()[m], g["flags"].fillna("").to_numpy()[m], strict=True)
    )
    rows = []
    for r in checked.itertuples(index=False):
        own = set(str(flags.get(r.code, "")).split(";"))
        for rule, detail in zip(r.violations, r.details, strict=True):
            check, severity = RULES[rule]
            if rule == "range" and own & set(EXPLAIN_FLAGS):
                severity = "warning"
            rows.append((check, r.code, severity, detail))
        if r.kind != "special" and r.households == 0:
            rows.append(("empty_grid", r.code, "warning", "no households in this grid"))
    return pd.DataFrame(rows, columns=["check", "grid_code", "severity", "detail"])


def _community_geoms(plan: Plan) -> dict[tuple[str, str], shapely.Geometry]:
    c = plan.communities
    if c is None or not len(c) or not {"street_code", "community_code"} <= set(c.columns):
        return {}
    return {
        (str(s), str(k)): g
        for s, k, g in zip(c["street_code"], c["community_code"], c.geometry.values, strict=True)
    }


class EditResult(NamedTuple):
    """What every edit returns: the new plan and the problems of the grids it changed.

    Unpacks as a pair: ``plan, report = move_buildings(plan, ...)``.

    Attributes
    ----------
    plan : Plan
        The edited plan (a new object; the input plan is unchanged).
    report : pandas.DataFrame
        The rules the grids of the edit break (``check``, ``grid_code``, ``severity``,
        ``detail``), from :func:`check_grids` of the changed and added grids only (the
        whole plan is not re-validated: call ``plan.validate()`` for that).
        ``report.attrs`` holds ``edited_grids``, ``changed``, ``added``, ``removed``
        (codes) and ``checks`` (the :func:`check_grids` table).
    """

    plan: Plan
    report: pd.DataFrame

    @property
    def problems(self) -> pd.DataFrame:
        """Rows of the report about the grids this edit touched."""
        edited = set(self.report.attrs.get("edited_grids", []))
        r = self.report
        return r[r["grid_code"].isin(edited)].reset_index(drop=True)

    @property
    def changed(self) -> pd.DataFrame:
        """:func:`check_grids` of the grids the edit changed or added: households
        against their range and the rules each now breaks."""
        checks = self.report.attrs.get("checks")
        if checks is None:
            checks = check_grids(self.plan, self.report.attrs.get("edited_grids", []))
        return checks

    @property
    def added(self) -> list[str]:
        """Codes of the grids the edit created."""
        return list(self.report.attrs.get("added", []))

    @property
    def removed(self) -> list[str]:
        """Codes of the grids the edit removed (retired)."""
        return list(self.report.attrs.get("removed", []))

    def __repr__(self) -> str:
        n_err = int((self.report["severity"] == "error").sum()) if len(self.report) else 0
        return (
            f"EditResult(plan={self.plan!r}, changed={len(self.changed)} grid(s), "
            f"added={self.added}, removed={self.removed}, report=<{len(self.report)} rows, "
            f"{n_err} errors>)"
        )
