"""Step 1 of evacuation planning, who moves (转移谁): demand units and persons.

A demand unit is one unit group (单元) of one building: the households to move of that
unit go together and are never split between shelters. ``persons`` is
``ceil(households * persons_per_household)`` per unit (a shelter place is not shared),
with the persons per household of the households setting
(:func:`gridmap.households.persons_per_household`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["DEMAND_COLUMNS", "demand_units", "household_persons", "who_label"]

#: Columns of the demand table (one row per demand unit).
DEMAND_COLUMNS = (
    "building_id",
    "unit",
    "grid_code",
    "community_code",
    "colour",
    "depth_m",
    "floor_from",
    "floor_to",
    "households",
    "persons",
)

Who = Callable[[gpd.GeoDataFrame], Any] | Iterable[str] | str | None


def household_persons(
    graded: Any, persons_per_household: float | None, region: str | None
) -> float:
    """Persons per household for the plan.

    The explicit `persons_per_household` wins; else the households setting of `region`
    (:func:`gridmap.households.persons_per_household`; ``"auto"``: the region holding
    the centre of the buildings); else the grading's value, which comes from the same
    setting (:attr:`gridmap.FloodGrading.persons_per_household`).
    """
    from ..households import persons_per_household as setting
    from ..households import region_of

    if persons_per_household is not None:
        pph = float(persons_per_household)
    elif region is not None:
        code = region
        if str(region).lower() == "auto":
            from ..crs import to_wgs84

            b = graded.buildings
            c = to_wgs84(gpd.GeoDataFrame(geometry=[b.union_all().centroid], crs=b.crs))
            code = region_of(float(c.geometry.x.iloc[0]), float(c.geometry.y.iloc[0]))
        try:
            pph = float(setting(code))
        except ValueError as exc:
            raise InputError(str(exc), source="region") from exc
    else:
        pph = float(getattr(graded, "persons_per_household", None) or setting())
    if not pph > 0:
        raise InputError(
            f"persons_per_household must be > 0, got {pph}", source="persons_per_household"
        )
    return pph


def who_label(who: Who) -> Any:
    """A printable description of `who` (for the plan's ``params``)."""
    if who is None:
        return "households on flooded floors"
    if callable(who):
        return f"callable {getattr(who, '__name__', '')}".strip()
    return sorted({who} if isinstance(who, str) else set(who))


def _levels_int(b: pd.DataFrame) -> np.ndarray:
    if "levels" not in b.columns:
        return np.ones(len(b), dtype=np.int64)
    lv = pd.to_numeric(b["levels"], errors="coerce").to_numpy(dtype=float, na_value=1.0)
    return np.maximum(1, np.round(np.nan_to_num(lv, nan=1.0))).astype(np.int64)


def _rows_for_counts(graded: Any, counts: Any) -> pd.DataFrame:
    """``households_to_move()``-style rows for `counts` households per building.

    Households are taken from the lowest floor up (all units of a floor before the next
    floor), as the flood grading spreads households over units and floors.
    """
    b = graded.buildings
    if isinstance(counts, pd.Series):
        if not counts.index.equals(b.index):
            counts = counts.reindex(b.index)
        counts = counts.to_numpy()
    h = pd.to_numeric(pd.Series(np.asarray(counts).ravel()), errors="coerce")
    if len(h) != len(b):
        raise InputError(f"who() returned {len(h)} values for {len(b)} buildings", source="who")
    total = b["households"].to_numpy(dtype=np.int64)
    h = np.clip(np.round(h.fillna(0).to_numpy(dtype=float)), 0, total).astype(np.int64)
    moved = h > 0
    b2 = b.copy()
    b2["flooded_floors"] = np.where(moved, _levels_int(b), 0)
    b2["households_at_risk"] = np.where(moved, total, 0)
    rows = replace(graded, buildings=b2).households_to_move()
    if rows.empty:
        return rows
    rows = rows.sort_values(["building_id", "floor", "unit"], kind="stable")
    want = pd.Series(h, index=b["building_id"].astype(str).to_numpy())
    hh = rows["households"].to_numpy(dtype=np.int64)
    before = rows.groupby("building_id", sort=False)["households"].cumsum().to_numpy() - hh
    take = np.clip(rows["building_id"].map(want).to_numpy(dtype=np.int64) - before, 0, hh)
    rows = rows.assign(households=take)
    return rows[take > 0]


def _empty() -> pd.DataFrame:
    dtypes = {
        "building_id": object,
        "unit": np.int64,
        "grid_code": object,
        "community_code": object,
        "colour": object,
        "depth_m": float,
        "floor_from": np.int64,
        "floor_to": np.int64,
        "households": np.int64,
        "persons": np.int64,
    }
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in dtypes.items()})


def demand_units(graded: Any, who: Who, persons_per_household: float) -> pd.DataFrame:
    """Demand units: one row per (building, unit) with households to move.

    Parameters
    ----------
    graded : gridmap.FloodGrading
        The flood grading.
    who : None, colour(s) or callable
        None: every household on a flooded floor
        (:meth:`gridmap.FloodGrading.households_to_move`). Colours (``"red"`` or a set):
        the households at risk in buildings of those colours. A callable
        ``who(buildings)``: that many households per building, lowest floor first.
    persons_per_household : float
        Persons per household.

    Returns
    -------
    pandas.DataFrame
        :data:`DEMAND_COLUMNS`.
    """
    from ..flood import COLOURS

    if who is None:
        rows = graded.households_to_move()
    elif callable(who):
        rows = _rows_for_counts(graded, who(graded.buildings))
    else:
        colours = {who} if isinstance(who, str) else set(who)
        unknown = colours - set(COLOURS)
        if unknown:
            raise InputError(
                f"unknown colour(s) {sorted(unknown)}; use {', '.join(COLOURS)}", source="who"
            )
        rows = graded.households_to_move()
        rows = rows[rows["colour"].isin(colours)]
    if rows is None or len(rows) == 0:
        return _empty()
    rows = rows.astype({"building_id": str})
    g = rows.groupby(["building_id", "unit"], sort=False)
    d = g.agg(
        grid_code=("grid_code", "first"),
        community_code=("community_code", "first"),
        colour=("colour", "first"),
        depth_m=("depth_m", "first"),
        floor_from=("floor", "min"),
        floor_to=("floor", "max"),
        households=("households", "sum"),
    ).reset_index()
    d["unit"] = d["unit"].astype(np.int64)
    d["households"] = d["households"].astype(np.int64)
    d["persons"] = np.ceil(d["households"].to_numpy() * persons_per_household - 1e-9).astype(
        np.int64
    )
    d = d[d["households"] > 0].reset_index(drop=True)
    for c in ("grid_code", "community_code"):
        d[c] = d[c].astype(object).where(d[c].notna(), None)
    return d[list(DEMAND_COLUMNS)]
