"""Step 3 of evacuation planning, to where (转到哪): shelters and their capacities.

Shelters are points or polygons with a name, a type and a capacity (persons). A
missing capacity is estimated from the floor area (:data:`SHELTER_M2_PER_PERSON`).
A shelter that stands in water at least as deep as the impassable depth at the peak is
closed (``flooded``). A dry shelter stays open even when the roads around it flood: it
is flagged ``island_at_peak`` (people are safe there, but supplies come by boat).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from ..crs import require_crs, to_metric
from ..errors import InputError, SchemaError

__all__ = [
    "SHELTER_M2_PER_PERSON",
    "read_shelters",
    "shelter_points",
]

#: Default floor area per sheltered person (m²) used to estimate a shelter's capacity
#: when it is not given. GB 51143-2015 《防灾避难场所设计规范》 sets the minimum
#: effective area per person at 2.0 m² for short-term fixed shelters (短期固定避难场所;
#: 0.5 m² for emergency assembly places, more for medium and long stays), and
#: GB 21734-2008 asks for more than 1.5 m² per person; flood evacuees stay for days, so
#: the short-term value is used. Change it with ``shelter_m2_per_person``.
SHELTER_M2_PER_PERSON = 2.0

_NAME_COLUMNS = ("name", "名称", "shelter", "NAME")
_CAPACITY_COLUMNS = ("capacity", "容量", "容纳人数", "可容纳人数", "CAPACITY")
_LEVELS_COLUMNS = ("levels", "层数", "building:levels")
_AREA_COLUMNS = ("floor_area_m2", "area_m2", "建筑面积", "面积")
_TYPE_COLUMNS = ("type", "类型", "use")


def _pick(gdf: pd.DataFrame, names: Iterable[str]) -> str | None:
    return next((c for c in names if c in gdf.columns), None)


def _read(shelters: Any) -> gpd.GeoDataFrame:
    if isinstance(shelters, gpd.GeoDataFrame):
        require_crs(shelters, "shelters")
        return shelters
    if not isinstance(shelters, str | os.PathLike):
        raise InputError(
            f"shelters must be a GeoDataFrame or a path, got {type(shelters).__name__}",
            source="shelters",
        )
    import pyogrio

    from ..load import read_layer

    path = Path(shelters)
    if not path.exists():
        raise InputError("file not found", source=str(path), where="shelters")
    layers = [str(x) for x in pyogrio.list_layers(path)[:, 0]]
    layer = None
    if len(layers) > 1:
        if "shelters" not in layers:
            raise InputError(
                f"the file has several layers ({', '.join(layers)}) and none is named "
                "'shelters'; pass the shelters as a GeoDataFrame",
                source=str(path),
            )
        layer = "shelters"
    return read_layer(path, layer=layer, geom_types=("point", "polygon"))


def read_shelters(shelters: Any, crs: CRS, m2_per_person: float) -> gpd.GeoDataFrame:
    """Shelters in the metric CRS `crs` with ids, names, types and capacities.

    Parameters
    ----------
    shelters : geopandas.GeoDataFrame or path
        Points or polygons with ``name`` (名称), ``type`` (类型, or ``use``) and
        ``capacity`` (容量, persons). A missing capacity is ``floor area /
        m2_per_person``: a polygon's area times its ``levels`` (层数; 1 when missing), or a
        ``floor_area_m2`` column.
    crs : pyproj.CRS
        Metric CRS of the plan.
    m2_per_person : float
        Floor area per person for estimated capacities.

    Returns
    -------
    geopandas.GeoDataFrame
        ``shelter_id`` (``S001``...), ``name``, ``type``, ``capacity``,
        ``capacity_source`` (``given``/``area_estimate``), geometry.

    Raises
    ------
    InputError, SchemaError
        No shelters, a negative capacity, a point shelter without a capacity, or a
        geometry that is neither a point nor a polygon (the message names the row).
    """
    raw = _read(shelters)
    if len(raw) == 0:
        raise InputError("no shelters given", source="shelters")
    gdf = to_metric(raw, crs, "shelters").reset_index(drop=True)
    geoms = gdf.geometry.to_numpy()
    kind = shapely.get_type_id(geoms)
    ok = np.isin(kind, [0, 3, 4, 6])
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        raise SchemaError(
            "shelters must be points or polygons", source="shelters", where=f"row {bad}"
        )
    n = len(gdf)
    ids = np.array([f"S{i + 1:03d}" for i in range(n)], dtype=object)
    ncol = _pick(gdf, _NAME_COLUMNS)
    names = gdf[ncol].astype(object).to_numpy() if ncol else ids.copy()
    names = np.where(pd.isna(names), ids, names).astype(object)
    tcol = _pick(gdf, _TYPE_COLUMNS)
    types = gdf[tcol].astype(object).to_numpy() if tcol else np.full(n, None, dtype=object)
    ccol = _pick(gdf, _CAPACITY_COLUMNS)
    given = (
        pd.to_numeric(gdf[ccol], errors="coerce").to_numpy(dtype=float)
        if ccol
        else np.full(n, np.nan)
    )
    if (given < 0).any():
        bad = int(np.flatnonzero(given < 0)[0])
        raise SchemaError(
            f"negative capacity ({given[bad]:g})", source="shelters", where=f"{ccol}, row {bad}"
        )
    lcol = _pick(gdf, _LEVELS_COLUMNS)
    levels = (
        np.nan_to_num(pd.to_numeric(gdf[lcol], errors="coerce").to_numpy(dtype=float), nan=1.0)
        if lcol
        else np.ones(n)
    )
    acol = _pick(gdf, _AREA_COLUMNS)
    area = (
        pd.to_numeric(gdf[acol], errors="coerce").to_numpy(dtype=float)
        if acol
        else np.full(n, np.nan)
    )
    polygon = np.isin(kind, [3, 6])
    area = np.where(np.isnan(area) & polygon, shapely.area(geoms) * np.maximum(levels, 1), area)
    estimate = np.floor(area / m2_per_person)
    missing = np.isnan(given)
    if (missing & np.isnan(estimate)).any():
        bad = int(np.flatnonzero(missing & np.isnan(estimate))[0])
        raise SchemaError(
            "capacity is missing and cannot be estimated (a point shelter needs a "
            f"'capacity' or '{_AREA_COLUMNS[0]}' value)",
            source="shelters",
            where=f"row {bad} ({names[bad]})",
        )
    capacity = np.where(missing, estimate, np.floor(given)).astype(np.int64)
    return gpd.GeoDataFrame(
        {
            "shelter_id": ids,
            "name": names,
            "type": types,
            "capacity": capacity,
            "capacity_source": np.where(missing, "area_estimate", "given"),
        },
        geometry=geoms,
        crs=gdf.crs,
    )


def shelter_points(shelters: gpd.GeoDataFrame) -> np.ndarray:
    """Where each shelter is reached: the point, or a point inside the polygon."""
    return shapely.point_on_surface(shelters.geometry.to_numpy())
