"""Flood-risk four-colour grading (洪涝风险四色分级) of buildings, households and grids.

Communities grade houses and people by flood danger in the Chinese warning palette
(red / orange / yellow / blue, red highest) from the water depth of past or design
floods, then move people out first from the ground and low floors of red and orange
buildings. :func:`grade_flood` grades every building, works out which floors and how
many households lie under water, and rolls the result up to grids and communities.
:func:`flood_map` and :func:`write_flood_outputs` publish it.

Hazard sources
--------------
Any combination of the following; per building the worst case wins and its source is
recorded in ``hazard_source``:

* ``depth`` -- flood-depth rasters (GeoTIFF, any CRS), e.g. ``depth:flood_2013.tif``.
  No-data, NaN and negative cells are dry. The building footprints are reprojected into
  the raster's CRS; the raster is never warped.
* ``extent`` -- historical flood extent polygons (``extent:<name>``). A building that
  intersects a polygon takes the polygon's ``depth_m`` (or ``depth``) value; without a
  depth it is graded blue ("inside a historical flood extent, depth unknown").
* ``dem`` + ``water_level`` (``dem+water_level``) or ``dem`` + ``rivers`` with a
  ``stage`` column (``dem+river_stage``) -- depth = water surface - ground, but only on
  ground hydraulically connected to the river (no "bathtub" filling of closed basins),
  see :func:`grade_flood`.

Zonal statistics
----------------
A building's cells are the raster cells whose centres lie inside its footprint, plus
the cell under its centroid (so a footprint smaller than a cell still gets the cell it
sits in, and the result is never lower than centroid sampling). ``depth_max_m`` is the
maximum depth over these cells, ``depth_mean_m`` the mean over the centre-inside cells
(dry cells count as 0; the centroid cell when there are none). The grading depth
``depth_m`` is ``depth_max_m`` rounded to the millimetre: the worst water anywhere on
the footprint decides, as a flood reaching one wall reaches the ground-floor homes.
Rasters are read in windows, one per 2048 x 2048-cell tile that holds buildings
(:mod:`gridmap._raster`), so a city-size raster never has to fit in memory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from affine import Affine
from pyproj import CRS
from scipy import ndimage

from . import _raster
from .crs import require_crs, to_wgs84
from .errors import CRSError, InputError, PlanError, SchemaError
from .households.regions import persons_per_household as _region_persons_per_household
from .io import write_table

__all__ = [
    "COLOURS",
    "COLOUR_ZH",
    "DEFAULT_THRESHOLDS",
    "DEM_MAX_CELLS",
    "DEPTH_RAMP",
    "PALETTE",
    "PERSONS_PER_HOUSEHOLD",
    "FloodGrading",
    "flood_map",
    "grade_flood",
    "write_flood_outputs",
]

#: Default lower depth bounds (m) of the colours: red d >= 1.5, orange 0.5 <= d < 1.5,
#: yellow 0.2 <= d < 0.5, blue 0 < d < 0.2 (the blue bound is strict: d > blue).
DEFAULT_THRESHOLDS: dict[str, float] = {"red": 1.5, "orange": 0.5, "yellow": 0.2, "blue": 0.0}

#: The four colours, worst first.
COLOURS: tuple[str, ...] = ("red", "orange", "yellow", "blue")

#: Chinese warning palette used on maps ("none" buildings are grey).
PALETTE: dict[str, str] = {
    "red": "#e60000",
    "orange": "#ff8c00",
    "yellow": "#ffd700",
    "blue": "#1e6fd9",
    "none": "#9e9e9e",
}

#: Chinese names of the colours.
COLOUR_ZH: dict[str, str] = {
    "red": "红",
    "orange": "橙",
    "yellow": "黄",
    "blue": "蓝",
    "none": "无",
}

#: Persons per household of the default region (China, 2020 census: 2.62); the one
#: setting is :func:`gridmap.households.persons_per_household`.
PERSONS_PER_HOUSEHOLD = _region_persons_per_household()

#: Largest DEM (in cells) analysed for connectivity at native resolution. A larger DEM
#: is aggregated by the integer factor ``ceil(sqrt(cells / DEM_MAX_CELLS))`` taking the
#: block minimum (keeps narrow channels open), e.g. a 20,000 x 20,000 DEM by 3.
DEM_MAX_CELLS = 64_000_000

#: Without river lines, water enters the DEM across its edge, at the edge cells whose
#: ground lies within this many metres of the lowest edge cell.
SEED_TOLERANCE_M = 1.0

_BY_RANK = np.array(["none", "blue", "yellow", "orange", "red"], dtype=object)
_RANK = {c: i for i, c in enumerate(_BY_RANK)}
_DEPTH_COLUMNS = ("depth_m", "depth")


# --------------------------------------------------------------------------- result


@dataclass
class FloodGrading:
    """Result of :func:`grade_flood`.

    Attributes
    ----------
    buildings : geopandas.GeoDataFrame
        The input buildings plus ``ground_m``, ``depth_max_m``, ``depth_mean_m``,
        ``depth_m``, ``hazard_source``, ``colour``, ``colour_zh``, ``flooded_floors``,
        ``households_at_risk``, ``persons_at_risk``.
    grids : geopandas.GeoDataFrame or None
        One row per grid (when the input is a plan or has a ``grid_code`` column):
        ``buildings``, ``households``, ``buildings_<colour>``, ``households_<colour>``,
        ``households_at_risk_<colour>``, ``households_at_risk``, ``persons_at_risk``
        (persons to move), ``grade``, ``grade_zh``, ``grade_share``.
    communities : pandas.DataFrame or None
        The same per ``community_code``.
    sources : list of dict
        The hazard inputs used (``kind``, ``name`` and the paths or layers), so that
        evacuation planning can reuse them.
    thresholds : dict
        The colour thresholds used (metres).
    floor_height, persons_per_household, grid_share : float
        The other settings used.
    splits : pandas.DataFrame or None
        The plan's unit splits of large buildings (to give each unit its grid).
    """

    buildings: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame | None
    communities: pd.DataFrame | None
    sources: list[dict[str, Any]]
    thresholds: dict[str, float]
    floor_height: float = 3.0
    persons_per_household: float = PERSONS_PER_HOUSEHOLD
    grid_share: float = 0.10
    splits: pd.DataFrame | None = field(default=None, repr=False)

    def summary(self) -> pd.DataFrame:
        """Buildings, households, households and persons at risk per colour."""
        b = self.buildings
        table = (
            pd.DataFrame(
                {
                    "colour": b["colour"],
                    "buildings": 1,
                    "households": b["households"].astype("int64"),
                    "households_at_risk": b["households_at_risk"],
                    "persons_at_risk": b["persons_at_risk"],
                }
            )
            .groupby("colour")
            .sum()
            .reindex([*COLOURS, "none"], fill_value=0)
        )
        table.insert(0, "colour_zh", [COLOUR_ZH[c] for c in table.index])
        return table.reset_index()

    def households_to_move(self) -> pd.DataFrame:
        """Households to move, by building, unit (单元) and floor.

        Households are spread evenly over units and floors: a building (or, for a
        building split between grids, each part of it) with ``h`` households and ``n``
        units gives ``h // n + 1`` households to the first ``h % n`` units and ``h // n``
        to the others; a unit with ``u`` households on ``L`` floors has
        ``round(u * f / L)`` households on floors ``1..f`` (half up), so floor ``f``
        holds the difference. Floors ``1..flooded_floors`` are listed; rows with no
        household are left out. The rows of a building sum to its
        ``households_at_risk``.

        Returns
        -------
        pandas.DataFrame
            ``building_id``, ``grid_code``, ``community_code`` (when known), ``unit``,
            ``floor``, ``households``, ``persons``, ``colour``, ``colour_zh``,
            ``depth_m``, ``floor_depth_m`` (water above the floor's level: depth minus
            ``(floor - 1) * floor_height``), sorted by grid, colour (worst first),
            building, unit and floor.
        """
        b = self.buildings
        at = np.flatnonzero(b["households_at_risk"].to_numpy() > 0)
        columns = [
            "building_id",
            "grid_code",
            "community_code",
            "unit",
            "floor",
            "households",
            "persons",
            "colour",
            "colour_zh",
            "depth_m",
            "floor_depth_m",
        ]
        if len(at) == 0:
            return pd.DataFrame({c: [] for c in columns})
        sub = b.iloc[at]
        ids = sub["building_id"].astype(str).to_numpy()
        grid = _column_or_none(sub, "grid_code")
        seg = _segments(
            ids,
            grid,
            sub["households"].to_numpy(dtype=np.int64),
            _units_int(sub),
            self.splits,
        )
        levels = _levels_int(sub)[seg.pos]
        floors = sub["flooded_floors"].to_numpy(dtype=np.int64)[seg.pos]
        # units of every segment
        s_idx, unit = _raster.expand_runs(seg.unit_first, seg.n_units)
        j = unit - seg.unit_first[s_idx]
        base, extra = (
            seg.households[s_idx] // seg.n_units[s_idx],
            seg.households[s_idx] % seg.n_units[s_idx],
        )
        unit_h = base + (j < extra)
        # floors 1..k of every unit
        u_idx, floor = _raster.expand_runs(np.ones(len(unit), np.int64), floors[s_idx])
        lv = levels[s_idx][u_idx]
        hh = _cum_households(unit_h[u_idx], floor, lv) - _cum_households(
            unit_h[u_idx], floor - 1, lv
        )
        pos = seg.pos[s_idx][u_idx]
        depth = sub["depth_m"].to_numpy(dtype=float)[pos]
        colour = sub["colour"].to_numpy(dtype=object)[pos]
        out = pd.DataFrame(
            {
                "building_id": ids[pos],
                "grid_code": seg.grid_code[s_idx][u_idx],
                "community_code": _column_or_none(sub, "community_code")[pos],
                "unit": unit[u_idx],
                "floor": floor,
                "households": hh,
                "persons": np.round(hh * self.persons_per_household, 2),
                "colour": colour,
                "colour_zh": None,
                "depth_m": depth,
                "floor_depth_m": np.round(
                    np.maximum(depth - (floor - 1) * self.floor_height, 0.0), 3
                ),
            }
        )
        out["colour_zh"] = out["colour"].map(COLOUR_ZH)
        out = out[out["households"] > 0]
        out["_rank"] = out["colour"].map(_RANK)
        out = out.sort_values(
            ["grid_code", "_rank", "building_id", "unit", "floor"],
            ascending=[True, False, True, True, True],
            na_position="last",
            kind="stable",
        ).drop(columns="_rank")
        return out.reset_index(drop=True)


# --------------------------------------------------------------------------- inputs


def _unpack(
    buildings_or_plan: Any,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None, pd.DataFrame | None]:
    """Return (buildings, grids, splits) from a buildings GeoDataFrame or a Plan.

    A plan is anything with ``.buildings`` and ``.grids`` (and optionally ``.splits``
    and ``.crs``), as :class:`gridmap.Plan`.
    """
    if isinstance(buildings_or_plan, gpd.GeoDataFrame):
        return buildings_or_plan, None, None
    if hasattr(buildings_or_plan, "buildings") and hasattr(buildings_or_plan, "grids"):
        buildings = buildings_or_plan.buildings
        grids = buildings_or_plan.grids
        splits = getattr(buildings_or_plan, "splits", None)
        if not isinstance(buildings, gpd.GeoDataFrame):
            raise PlanError("plan has no buildings layer", source="plan", where="buildings")
        crs = getattr(buildings_or_plan, "crs", None)
        if buildings.crs is None and crs is not None:
            buildings = buildings.set_crs(crs)
        if isinstance(grids, gpd.GeoDataFrame) and grids.crs is None and crs is not None:
            grids = grids.set_crs(crs)
        if splits is not None and not isinstance(splits, pd.DataFrame):
            splits = None
        return buildings, grids, splits
    raise InputError(
        f"expected a buildings GeoDataFrame or a Plan, got {type(buildings_or_plan).__name__}",
        source="grade_flood",
    )


def _check_buildings(buildings: gpd.GeoDataFrame) -> None:
    require_crs(buildings, "buildings")
    for col in ("building_id", "households"):
        if col not in buildings.columns:
            hint = " (run gridmap.estimate_households first)" if col == "households" else ""
            raise SchemaError(f"required column is missing{hint}", source="buildings", where=col)
    hh = pd.to_numeric(buildings["households"], errors="coerce").astype("float64")
    bad = hh.isna() | (hh < 0)
    if bad.any():
        first = buildings["building_id"][bad].iloc[0]
        raise SchemaError(
            f"{int(bad.sum())} buildings have no or a negative household count "
            f"(first: building_id {first}); run gridmap.estimate_households first",
            source="buildings",
            where="households",
        )
    if not buildings["building_id"].is_unique:
        dup = buildings["building_id"][buildings["building_id"].duplicated()].iloc[0]
        raise SchemaError(f"building_id is not unique (e.g. {dup})", source="buildings")


def _levels_int(buildings: pd.DataFrame) -> np.ndarray:
    """Storeys as int >= 1 (missing or < 1 storeys count as 1)."""
    if "levels" not in buildings.columns:
        return np.ones(len(buildings), dtype=np.int64)
    lv = pd.to_numeric(buildings["levels"], errors="coerce").to_numpy(dtype=float, na_value=1.0)
    return np.maximum(1, np.round(np.nan_to_num(lv, nan=1.0))).astype(np.int64)


def _units_int(buildings: pd.DataFrame) -> np.ndarray:
    """Units (单元) as int >= 1 (missing or 0 units count as 1).

    Without a ``units`` column, units are ``households / households_per_unit`` when
    that column exists.
    """
    if "units" in buildings.columns:
        u = pd.to_numeric(buildings["units"], errors="coerce")
    elif "households_per_unit" in buildings.columns:
        hpu = pd.to_numeric(buildings["households_per_unit"], errors="coerce")
        u = pd.to_numeric(buildings["households"], errors="coerce") / hpu.where(hpu > 0)
    else:
        return np.ones(len(buildings), dtype=np.int64)
    u = u.astype("float64").to_numpy(dtype=float, na_value=1.0)
    return np.maximum(1, np.round(np.nan_to_num(u, nan=1.0))).astype(np.int64)


def _column_or_none(df: pd.DataFrame, col: str) -> np.ndarray:
    if col in df.columns:
        return df[col].astype(object).where(df[col].notna(), None).to_numpy(dtype=object)
    return np.full(len(df), None, dtype=object)


def _thresholds(thresholds: dict[str, float] | None) -> dict[str, float]:
    thr = dict(DEFAULT_THRESHOLDS)
    for key, value in (thresholds or {}).items():
        if key not in thr:
            raise InputError(
                f"unknown colour {key!r}; use {', '.join(COLOURS)}", source="thresholds"
            )
        thr[key] = float(value)
    if not thr["red"] > thr["orange"] > thr["yellow"] > thr["blue"] >= 0:
        raise InputError(
            f"thresholds must satisfy red > orange > yellow > blue >= 0, got {thr}",
            source="thresholds",
        )
    return thr


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


_PREFERRED_LAYERS = {"extent": "flood_extent", "rivers": "rivers"}


def _read_vector(layer: Any, what: str) -> tuple[gpd.GeoDataFrame, str]:
    """Return (GeoDataFrame, name) from a GeoDataFrame or a path.

    A GeoDataFrame is named by ``attrs["name"]`` (empty when unset). A file with several
    layers must hold a layer named ``flood_extent`` (extents) or ``rivers`` (rivers), as
    the sample town does; otherwise pass a GeoDataFrame
    (``gridmap.read_layer(path, layer=...)``).
    """
    if isinstance(layer, gpd.GeoDataFrame):
        name = str(layer.attrs.get("name", ""))
        require_crs(layer, name or what)
        return layer, name
    import pyogrio

    path = Path(layer)
    if not path.exists():
        raise InputError("file not found", source=str(path), where=what)
    try:
        layers = [str(x) for x in pyogrio.list_layers(path)[:, 0]]
        name, chosen = path.stem, None
        if len(layers) > 1:
            chosen = _PREFERRED_LAYERS.get(what)
            if chosen not in layers:
                raise InputError(
                    f"the file has several layers ({', '.join(layers)}); pass the {what} "
                    "layer as a GeoDataFrame (gridmap.read_layer(path, layer=...))",
                    source=str(path),
                )
            name = chosen
        gdf = gpd.read_file(path, layer=chosen)
    except InputError:
        raise
    except Exception as exc:  # pyogrio raises several types
        raise InputError(f"cannot read {what} layer: {exc}", source=str(path)) from exc
    require_crs(gdf, str(path))
    return gdf, name


def _open_raster(path: Any, what: str):
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", source=str(path), where=what)
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"cannot read {what} raster: {exc}", source=str(path)) from exc
    if src.crs is None:
        src.close()
        raise CRSError("raster has no coordinate reference system", source=str(path))
    return src


class _GeomCache:
    """Building geometries reprojected once per raster CRS."""

    def __init__(self, geoms: gpd.GeoSeries):
        self.geoms = geoms
        self.crs = CRS.from_user_input(geoms.crs)
        self._cache: dict[str, np.ndarray] = {}

    def in_crs(self, crs: Any) -> np.ndarray:
        target = CRS.from_user_input(crs.to_wkt() if hasattr(crs, "to_wkt") else crs)
        if target == self.crs:
            return self.geoms.to_numpy()
        key = target.to_wkt()
        if key not in self._cache:
            self._cache[key] = self.geoms.to_crs(target).to_numpy()
        return self._cache[key]


# --------------------------------------------------------------------------- hazards


@dataclass
class _Hazard:
    name: str
    depth_max: np.ndarray
    depth_mean: np.ndarray
    extent_flag: np.ndarray | None = None  # inside an extent polygon with no depth


def _depth_hazard(path: Any, cache: _GeomCache) -> tuple[_Hazard, dict[str, Any]]:
    src = _open_raster(path, "depth")
    name = f"depth:{Path(path).name}"
    with src:
        positive_nodata = src.nodata is not None and src.nodata > 0

        def read(window):
            # a negative no-data value needs no mask: fmax below makes it dry
            arr = _raster.read_band(src, window, mask_nodata=positive_nodata)
            np.fmax(arr, 0.0, out=arr)  # no data (< 0), NaN and negative cells are dry
            return {"depth": arr}

        res = _raster.zonal_stats(
            cache.in_crs(src.crs),
            src.transform,
            src.shape,
            read,
            {"depth": ("max", "mean")},
            desc=name,
        )
        info = {
            "kind": "depth",
            "name": name,
            "path": Path(path),
            "crs": src.crs.to_string(),
            "cell_size": tuple(src.res),
        }
    return (
        _Hazard(name, np.nan_to_num(res["depth_max"]), np.nan_to_num(res["depth_mean"])),
        info,
    )


def _extent_hazard(layer: Any, geoms: gpd.GeoSeries) -> tuple[_Hazard, dict[str, Any]]:
    gdf, stem = _read_vector(layer, "extent")
    name = f"extent:{stem}" if stem else "extent"
    gdf = gdf.to_crs(geoms.crs) if CRS.from_user_input(gdf.crs) != CRS(geoms.crs) else gdf
    col = next((c for c in _DEPTH_COLUMNS if c in gdf.columns), None)
    n = len(geoms)
    poly = gdf.geometry.to_numpy()
    invalid = ~shapely.is_valid(poly)
    if invalid.any():
        poly = poly.copy()
        poly[invalid] = shapely.make_valid(poly[invalid])
    if col is not None:
        depth = pd.to_numeric(gdf[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    else:
        depth = np.full(len(gdf), np.nan)
    tree = shapely.STRtree(poly)
    b_idx, e_idx = tree.query(geoms.to_numpy(), predicate="intersects")
    d = depth[e_idx]
    known = ~np.isnan(d)
    dmax = np.zeros(n)
    np.maximum.at(dmax, b_idx[known], np.maximum(d[known], 0.0))
    flag = np.zeros(n, dtype=bool)
    flag[b_idx[~known]] = True
    info = {"kind": "extent", "name": name, "layer": gdf, "depth_column": col}
    if not isinstance(layer, gpd.GeoDataFrame):
        info["path"] = Path(layer)
    return _Hazard(name, dmax, dmax.copy(), flag), info


def _edge_seeds(ground: np.ndarray) -> np.ndarray:
    """Edge cells within SEED_TOLERANCE_M of the lowest edge cell (water entry points)."""
    edge = np.zeros(ground.shape, dtype=bool)
    edge[0, :] = edge[-1, :] = True
    edge[:, 0] = edge[:, -1] = True
    edge &= ~np.isnan(ground)
    if edge.any():
        lowest = ground[edge].min()
        edge &= ground <= lowest + SEED_TOLERANCE_M
    return edge


def _river_grid(
    rivers: gpd.GeoDataFrame, values: np.ndarray, shape: tuple[int, int], transform: Affine
) -> np.ndarray:
    """Burn river lines (all touched cells) with `values`; NaN elsewhere."""
    from rasterio.features import rasterize

    order = np.argsort(values, kind="stable")  # higher stages burnt last win
    geoms = rivers.geometry.to_numpy()[order]
    vals = values[order]
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    shapes = list(zip(geoms[ok], vals[ok], strict=True))
    if not shapes:
        return np.full(shape, np.nan, dtype="float32")
    return rasterize(
        shapes,
        out_shape=shape,
        transform=transform,
        fill=np.nan,
        all_touched=True,
        dtype="float32",
    )


def _numeric_column(gdf: pd.DataFrame, col: str, source: str) -> np.ndarray:
    values = pd.to_numeric(gdf[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if np.isnan(values).any():
        raise SchemaError(
            f"{int(np.isnan(values).sum())} rows have no numeric value", source=source, where=col
        )
    return values


def _river_stage_grid(
    rivers: gpd.GeoDataFrame, shape: tuple[int, int], transform: Affine
) -> np.ndarray:
    """River cells carrying their water level (stage); NaN elsewhere.

    ``stage``: one level per line. ``stage_start`` and ``stage_end``: a level varying
    linearly along the line from its first to its last vertex (a sloping river).
    """
    cols = set(rivers.columns)
    if "stage" in cols:
        return _river_grid(rivers, _numeric_column(rivers, "stage", "rivers"), shape, transform)
    if not {"stage_start", "stage_end"} <= cols:
        raise SchemaError(
            "rivers need a stage column (water level, m), or stage_start and stage_end, "
            "when no water_level is given",
            source="rivers",
            where="stage",
        )
    s0 = _numeric_column(rivers, "stage_start", "rivers")
    s1 = _numeric_column(rivers, "stage_end", "rivers")
    geoms = rivers.geometry.to_numpy()
    return _raster.sloping_line_grid(geoms, s0, s1, shape, transform)


def _dem_surface(
    src,
    water_level: Any,
    rivers: Any,
    *,
    max_cells: int,
) -> dict[str, Any]:
    """Connected water surface on the (possibly aggregated) DEM grid.

    Returns a dict with ``factor``, ``transform``, ``ground`` (block-minimum ground),
    ``surface`` (water surface where connected to the river, NaN elsewhere),
    ``name``, ``flooded_cells`` and ``bathtub_cells``.
    """
    factor = max(1, math.ceil(math.sqrt(src.height * src.width / max_cells)))
    with _raster.raster_env():
        ground = _raster.block_min(src, factor)
    transform = src.transform @ Affine.scale(factor)
    shape = ground.shape
    dem_crs = CRS.from_user_input(src.crs.to_wkt())

    river_gdf = None
    if rivers is not None:
        river_gdf, _ = _read_vector(rivers, "rivers")
        if CRS.from_user_input(river_gdf.crs) != dem_crs:
            river_gdf = river_gdf.to_crs(dem_crs)

    name = "dem+water_level"
    if water_level is None:
        if river_gdf is None:
            raise InputError("dem needs water_level or rivers with a stage column", source="dem")
        river = _river_stage_grid(river_gdf, shape, transform)
        seeds = ~np.isnan(river)
        if not seeds.any():
            raise InputError("no river line crosses the DEM", source="rivers")
        # water surface: the stage of the nearest river cell
        idx = ndimage.distance_transform_edt(~seeds, return_distances=False, return_indices=True)
        surface = river[idx[0], idx[1]]
        del idx
        name = "dem+river_stage"
    else:
        if isinstance(water_level, str | os.PathLike):
            surface = _surface_raster(water_level, shape, transform, dem_crs)
        else:
            try:
                level = float(water_level)
            except (TypeError, ValueError) as exc:
                raise InputError(
                    f"water_level must be a number or a raster path, got {water_level!r}",
                    source="water_level",
                ) from exc
            surface = np.full(shape, level, dtype="float32")
        if river_gdf is not None:
            seeds = ~np.isnan(_river_grid(river_gdf, np.ones(len(river_gdf)), shape, transform))
            if not seeds.any():
                raise InputError("no river line crosses the DEM", source="rivers")
        else:
            seeds = _edge_seeds(ground)

    with np.errstate(invalid="ignore"):
        wet = surface > ground
    labels, _ = ndimage.label(wet)
    near_seed = ndimage.binary_dilation(seeds, structure=np.ones((3, 3), dtype=bool))
    keep = np.zeros(labels.max() + 1, dtype=bool)
    keep[np.unique(labels[near_seed])] = True
    keep[0] = False
    connected = keep[labels]
    del labels, near_seed
    surface = np.where(connected, surface, np.nan).astype("float32")
    return {
        "factor": factor,
        "transform": transform,
        "ground": ground,
        "surface": surface,
        "name": name,
        "flooded_cells": int(connected.sum()),
        "bathtub_cells": int(wet.sum()),
    }


def _surface_raster(path: Any, shape: tuple[int, int], transform: Affine, crs: CRS) -> np.ndarray:
    from rasterio.warp import Resampling, reproject

    src = _open_raster(path, "water_level")
    with src:
        out = np.full(shape, np.nan, dtype="float32")
        reproject(
            source=rasterio.band(src, 1),
            destination=out,
            src_nodata=src.nodata,
            dst_transform=transform,
            dst_crs=crs.to_wkt(),
            dst_nodata=np.nan,
            resampling=Resampling.bilinear,
        )
    return out


def _dem_hazard(
    dem: Any, water_level: Any, rivers: Any, cache: _GeomCache
) -> tuple[_Hazard | None, np.ndarray, dict[str, Any]]:
    src = _open_raster(dem, "dem")
    with src:
        info: dict[str, Any] = {
            "kind": "dem",
            "dem": Path(dem),
            "water_level": water_level,
            "rivers": rivers,
            "crs": src.crs.to_string(),
            "cell_size": tuple(src.res),
        }
        stats: dict[str, tuple[str, ...]] = {"ground": ("median",)}
        model = None
        if water_level is not None or rivers is not None:
            model = _dem_surface(src, water_level, rivers, max_cells=DEM_MAX_CELLS)
            stats["depth"] = ("max", "mean")
            info.update(
                name=model["name"],
                downsample_factor=model["factor"],
                analysis_cell_size=(src.res[0] * model["factor"], src.res[1] * model["factor"]),
                flooded_cells=model["flooded_cells"],
                bathtub_cells=model["bathtub_cells"],
            )
        else:
            info["name"] = "dem"
        factor = model["factor"] if model else 1

        def read(window):
            ground = _raster.read_band(src, window)
            out = {"ground": ground}
            if model is not None:
                rows = np.arange(window.row_off, window.row_off + window.height) // factor
                cols = np.arange(window.col_off, window.col_off + window.width) // factor
                depth = model["surface"][np.ix_(rows, cols)] - ground
                depth[~(depth > 0)] = 0.0
                out["depth"] = depth
            return out

        res = _raster.zonal_stats(
            cache.in_crs(src.crs), src.transform, src.shape, read, stats, desc=info["name"]
        )
    hazard = None
    if model is not None:
        hazard = _Hazard(
            info["name"], np.nan_to_num(res["depth_max"]), np.nan_to_num(res["depth_mean"])
        )
    return hazard, res["ground_median"], info


# --------------------------------------------------------------------------- grading


def _rank(depth: np.ndarray, thr: dict[str, float]) -> np.ndarray:
    return np.select(
        [depth >= thr["red"], depth >= thr["orange"], depth >= thr["yellow"], depth > thr["blue"]],
        [4, 3, 2, 1],
        0,
    )


def _cum_households(h: np.ndarray, floors: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Households on floors 1..floors of a unit with `h` households on `levels` floors."""
    return np.floor(h * floors / levels + 0.5).astype(np.int64)


@dataclass
class _Segments:
    """Runs of units of a building sharing a grid (a whole building, or a split part)."""

    pos: np.ndarray  # building position
    unit_first: np.ndarray
    n_units: np.ndarray
    households: np.ndarray
    grid_code: np.ndarray


def _segments(
    ids: np.ndarray | None,
    grid_code: np.ndarray,
    households: np.ndarray,
    units: np.ndarray,
    splits: pd.DataFrame | None,
) -> _Segments:
    n = len(households)
    pos = np.arange(n)
    seg = _Segments(pos, np.ones(n, np.int64), units.astype(np.int64), households, grid_code)
    needed = {"building_id", "unit_from", "unit_to", "households", "grid_code"}
    if ids is None or splits is None or len(splits) == 0 or not needed <= set(splits.columns):
        return seg
    index = pd.Index(ids)
    where = index.get_indexer(splits["building_id"].astype(str))
    ok = where >= 0
    if not ok.any():
        return seg
    sp = splits[ok]
    where = where[ok]
    split_b = np.zeros(n, dtype=bool)
    split_b[where] = True
    keep = ~split_b
    u_from = sp["unit_from"].to_numpy(dtype=np.int64)
    return _Segments(
        np.r_[pos[keep], where],
        np.r_[seg.unit_first[keep], u_from],
        np.r_[
            seg.n_units[keep], np.maximum(1, sp["unit_to"].to_numpy(dtype=np.int64) - u_from + 1)
        ],
        np.r_[households[keep], sp["households"].to_numpy(dtype=np.int64)],
        np.r_[grid_code[keep], sp["grid_code"].astype(object).to_numpy()],
    )


def _segment_risk(seg: _Segments, floors: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Households on flooded floors of each segment (units filled evenly)."""
    k, lv = floors[seg.pos], levels[seg.pos]
    base, extra = seg.households // seg.n_units, seg.households % seg.n_units
    return extra * _cum_households(base + 1, k, lv) + (seg.n_units - extra) * _cum_households(
        base, k, lv
    )


def _grade(use: pd.DataFrame, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Worst colour whose cumulative share (that colour or worse) reaches `share`."""
    total = use[[*COLOURS, "none"]].sum(axis=1).to_numpy(dtype=float)
    cum = use[list(COLOURS)].cumsum(axis=1).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = cum / total[:, None]
    ok = (frac >= share - 1e-12) & (cum > 0)
    first = np.where(ok.any(axis=1), ok.argmax(axis=1), -1)
    grade = np.where(first >= 0, np.array(COLOURS, dtype=object)[np.maximum(first, 0)], "none")
    gshare = np.where(first >= 0, frac[np.arange(len(frac)), np.maximum(first, 0)], 0.0)
    return grade.astype(object), np.round(np.nan_to_num(gshare), 4)


def _aggregate(
    key_b: np.ndarray,
    key_seg: np.ndarray,
    colour: np.ndarray,
    seg: _Segments,
    seg_risk: np.ndarray,
    key: str,
    share: float,
    pph: float,
) -> pd.DataFrame:
    """Per-key counts by colour and the grade."""
    bt = pd.DataFrame({key: key_b, "colour": colour})
    st = pd.DataFrame(
        {
            key: key_seg,
            "colour": colour[seg.pos],
            "households": seg.households,
            "households_at_risk": seg_risk,
        }
    )
    cols = [*COLOURS, "none"]
    b_count = bt.groupby([key, "colour"]).size().unstack(fill_value=0).reindex(columns=cols)
    hh = st.groupby([key, "colour"])["households"].sum().unstack(fill_value=0)
    hh = hh.reindex(columns=cols)
    risk = st.groupby([key, "colour"])["households_at_risk"].sum().unstack(fill_value=0)
    risk = risk.reindex(columns=cols)
    keys = b_count.index.union(hh.index)
    b_count, hh, risk = (t.reindex(keys).fillna(0).astype("int64") for t in (b_count, hh, risk))
    out = pd.DataFrame(index=keys)
    out["buildings"] = b_count.sum(axis=1)
    out["households"] = hh.sum(axis=1)
    for c in COLOURS:
        out[f"buildings_{c}"] = b_count[c]
    for c in COLOURS:
        out[f"households_{c}"] = hh[c]
    for c in COLOURS:
        out[f"households_at_risk_{c}"] = risk[c]
    out["households_at_risk"] = risk.sum(axis=1)
    out["persons_at_risk"] = np.round(out["households_at_risk"] * pph, 1)
    # share by households; a key without households is graded by its buildings
    use = hh.copy()
    no_households = (hh.sum(axis=1) == 0).to_numpy()
    use.loc[no_households] = b_count.loc[no_households]
    grade, gshare = _grade(use, share)
    out["grade"] = grade
    out["grade_zh"] = [COLOUR_ZH[g] for g in grade]
    out["grade_share"] = gshare
    out.index.name = key
    return out.reset_index()


def grade_flood(
    buildings_or_plan: Any,
    *,
    depth: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    extent: Any = None,
    dem: str | os.PathLike | None = None,
    water_level: float | str | os.PathLike | None = None,
    rivers: Any = None,
    floor_height: float = 3.0,
    thresholds: dict[str, float] | None = None,
    grid_share: float = 0.10,
    persons_per_household: float = PERSONS_PER_HOUSEHOLD,
) -> FloodGrading:
    """Grade buildings, households, grids and communities in four flood colours.

    Parameters
    ----------
    buildings_or_plan : geopandas.GeoDataFrame or gridmap.Plan
        Buildings after :func:`gridmap.estimate_households` (``building_id``,
        ``households``, ``levels``, ``units``; optional ``grid_code``,
        ``community_code``), or a plan (its buildings, grids and unit splits are used).
    depth : path or list of paths, optional
        Flood-depth rasters in metres (historical or design events), any CRS. No-data,
        NaN and negative cells are dry.
    extent : GeoDataFrame, path or list of them, optional
        Historical flood extents, optionally with a ``depth_m`` (or ``depth``) column.
        A building intersecting a polygon takes its depth (the largest, if several);
        a polygon without depth makes the building at least blue.
    dem : path, optional
        Digital elevation model (m). Gives ``ground_m`` (median of the footprint
        cells) and, with `water_level` or `rivers`, a flood depth.
    water_level : float or path, optional
        Water surface (m, same datum as the DEM): a number, or a water-surface raster
        (any grid; resampled bilinearly onto the DEM). Needs `dem`.
    rivers : GeoDataFrame or path, optional
        River lines. With `water_level`, the water enters from the river cells; without
        it, they need a ``stage`` column (one level per line) or ``stage_start`` and
        ``stage_end`` (level varying linearly along the line, for a sloping river), and
        the water surface at every cell is the stage of the nearest river cell.
    floor_height : float
        Storey height (m) for counting flooded floors (default 3.0).
    thresholds : dict, optional
        Overrides of :data:`DEFAULT_THRESHOLDS` (keys ``red``, ``orange``, ``yellow``,
        ``blue``; must decrease from red to blue).
    grid_share : float
        Share of a grid's households a colour class (with the worse classes) must hold
        for the grid to take that colour (default 0.10).
    persons_per_household : float
        Persons per household (default 2.62, China 2020 census).

    Returns
    -------
    FloodGrading

    Notes
    -----
    **Colours** (defaults, ``d`` = ``depth_m``): red ``d >= 1.5``; orange
    ``0.5 <= d < 1.5``; yellow ``0.2 <= d < 0.5``; blue ``0 < d < 0.2`` or inside a
    historical extent without depth; ``none`` otherwise. Depths are rounded to the
    millimetre before grading, so a float32 raster value of 0.2 grades yellow.

    **Zonal statistics.** A building's cells are the cells whose centres lie inside its
    footprint, plus the cell under its centroid (a footprint smaller than a cell thus
    takes the cell it sits in, and the result is never lower than centroid sampling).
    ``depth_max_m`` is the maximum depth over those cells and is the grading depth
    ``depth_m``; ``depth_mean_m`` is the mean over the centre-inside cells (dry = 0;
    the centroid cell when there is none); ``ground_m`` is the median DEM elevation
    over the same cells. Rasters (band 1) are read window by window, one window per
    2048 x 2048-cell tile that holds building centroids (:mod:`gridmap._raster`).

    **Worst case wins.** Each source gives a colour and a depth per building; the
    building takes the worst colour (ties: the larger depth, then the first source in
    the order depth rasters, extents, DEM) and ``hazard_source`` names it
    (``depth:<file>``, ``extent:<layer>``, ``dem+water_level``, ``dem+river_stage``;
    None for ``none`` buildings). ``depth_max_m``/``depth_mean_m`` come from that
    source.

    **Floors and households.** ``flooded_floors`` = ``ceil(depth_m / floor_height)``
    capped at ``levels`` (missing or < 1 storeys count as 1): the floors from the ground
    floor up whose floor level lies below the water surface. It is 0 for ``none``
    buildings and 1 for a building inside a historical extent without depth.
    ``households_at_risk`` = households on the flooded floors, households spread evenly
    over units and floors (see :meth:`FloodGrading.households_to_move`); for a single
    unit it is ``round(households * flooded_floors / levels)``, so a 6-storey building
    with 12 households and 4 m of water has 4 at risk, and a one-storey house with any
    water has all its households at risk. ``persons_at_risk`` = ``households_at_risk *
    persons_per_household``.

    **Grid grade.** For each grid the households living in buildings of each colour are
    summed; the grade is the worst colour ``c`` for which the households in buildings
    coloured ``c`` *or worse* make up at least ``grid_share`` of the grid's households
    (and are more than zero); ``none`` if no colour qualifies. Example with the default
    10 %: 6 % red + 5 % orange households -> orange (11 % orange or worse). A grid
    without households is graded the same way by building counts. Communities are
    graded the same way. Buildings split between grids by units (``plan.splits``)
    count each part's households in its own grid; the building itself is counted in
    the grid of its ``grid_code``.

    **DEM flooding (no bathtub).** Cells where the water surface is above the ground
    are labelled into 4-connected components (:func:`scipy.ndimage.label`); only
    components touching a river cell (the cells the ``rivers`` lines cross, all touched,
    plus their 8 neighbours) are flooded. Without ``rivers`` the water enters across
    the DEM's edge at its lowest edge cells (within :data:`SEED_TOLERANCE_M` = 1 m),
    as a river or sea crossing the map does; a closed basin inside the map stays dry
    even when lower than the water level. (The DEM's global minimum is not used as the
    entry point: pits are common, e.g. Lyon's lowest cell lies in a closed depression.)
    The connectivity analysis needs the whole
    DEM: it runs at native resolution up to :data:`DEM_MAX_CELLS` (64 million cells,
    about 1.5 GB of working memory); a larger DEM is aggregated by an integer factor
    taking the block minimum. Depths are then computed at native resolution, window by
    window: ``surface - ground`` on cells whose aggregated block is connected.
    """
    buildings, grids, splits = _unpack(buildings_or_plan)
    _check_buildings(buildings)
    thr = _thresholds(thresholds)
    if floor_height <= 0:
        raise InputError(f"floor_height must be > 0, got {floor_height}", source="floor_height")
    if not 0 <= grid_share <= 1:
        raise InputError(f"grid_share must be in [0, 1], got {grid_share}", source="grid_share")
    if dem is None and (water_level is not None or rivers is not None):
        raise InputError("water_level and rivers need a dem", source="grade_flood")
    depth_paths, extents = _as_list(depth), _as_list(extent)
    if (
        not depth_paths
        and not extents
        and (dem is None or (water_level is None and rivers is None))
    ):
        raise InputError(
            "no hazard source: give depth rasters, flood extents, or dem with water_level "
            "or rivers",
            source="grade_flood",
        )

    n = len(buildings)
    geoms = buildings.geometry
    cache = _GeomCache(geoms)
    hazards: list[_Hazard] = []
    sources: list[dict[str, Any]] = []
    for path in depth_paths:
        hz, info = _depth_hazard(path, cache)
        hazards.append(hz)
        sources.append(info)
    for layer in extents:
        hz, info = _extent_hazard(layer, geoms)
        hazards.append(hz)
        sources.append(info)
    ground = np.full(n, np.nan)
    if dem is not None:
        hz, ground, info = _dem_hazard(dem, water_level, rivers, cache)
        if hz is not None:
            hazards.append(hz)
        sources.append(info)

    # worst case over the sources
    depth_all = np.round(np.vstack([h.depth_max for h in hazards]), 3)
    mean_all = np.vstack([h.depth_mean for h in hazards])
    rank_all = _rank(depth_all, thr)
    for i, h in enumerate(hazards):
        if h.extent_flag is not None:
            rank_all[i] = np.where(h.extent_flag, np.maximum(rank_all[i], 1), rank_all[i])
    win = np.argmax(rank_all * 1e7 + depth_all, axis=0)
    cols = np.arange(n)
    rank = rank_all[win, cols]
    depth_m = depth_all[win, cols]
    names = np.array([h.name for h in hazards], dtype=object)
    source = np.where(rank > 0, names[win], None)

    levels = _levels_int(buildings)
    floors = np.where(
        rank > 0, np.maximum(1, np.ceil(np.round(depth_m / floor_height, 6))), 0
    ).astype(np.int64)
    floors = np.minimum(floors, levels)
    has_splits = splits is not None and len(splits) > 0
    ids = buildings["building_id"].astype(str).to_numpy() if has_splits else None
    grid_code = _column_or_none(buildings, "grid_code")
    households = pd.to_numeric(buildings["households"]).to_numpy(dtype=np.int64)
    seg = _segments(ids, grid_code, households, _units_int(buildings), splits)
    seg_risk = _segment_risk(seg, floors, levels)
    at_risk = np.bincount(seg.pos, weights=seg_risk, minlength=n).astype(np.int64)
    colour = _BY_RANK[rank]

    out = buildings.copy()
    out["ground_m"] = np.round(ground, 2)
    out["depth_max_m"] = np.round(np.vstack([h.depth_max for h in hazards])[win, cols], 3)
    out["depth_mean_m"] = np.round(mean_all[win, cols], 3)
    out["depth_m"] = depth_m
    out["hazard_source"] = source
    out["colour"] = colour
    out["colour_zh"] = pd.Series(colour, index=out.index).map(COLOUR_ZH)
    out["flooded_floors"] = floors
    out["households_at_risk"] = at_risk
    out["persons_at_risk"] = np.round(at_risk * persons_per_household, 2)

    grid_table = None
    if grids is not None or "grid_code" in buildings.columns:
        agg = _aggregate(
            grid_code,
            seg.grid_code,
            colour,
            seg,
            seg_risk,
            "grid_code",
            grid_share,
            persons_per_household,
        )
        agg = agg[agg["grid_code"].notna()]
        grid_table = _grid_frame(agg, grids, buildings.crs)

    community_table = None
    community = None
    if "community_code" in buildings.columns:
        community = _column_or_none(buildings, "community_code")
    elif isinstance(grids, pd.DataFrame) and {"grid_code", "community_code"} <= set(grids.columns):
        lookup = grids.set_index("grid_code")["community_code"]
        community = pd.Series(grid_code).map(lookup).to_numpy(dtype=object)
    if community is not None:
        community_table = _aggregate(
            community,
            community[seg.pos],
            colour,
            seg,
            seg_risk,
            "community_code",
            grid_share,
            persons_per_household,
        )
        if isinstance(grids, pd.DataFrame) and "community_name" in grids.columns:
            names_by_code = grids.drop_duplicates("community_code").set_index("community_code")[
                "community_name"
            ]
            community_table.insert(
                1, "community_name", community_table["community_code"].map(names_by_code)
            )

    return FloodGrading(
        buildings=out,
        grids=grid_table,
        communities=community_table,
        sources=sources,
        thresholds=thr,
        floor_height=float(floor_height),
        persons_per_household=float(persons_per_household),
        grid_share=float(grid_share),
        splits=splits,
    )


_GRID_KEEP = ("grid_code", "community_code", "street_code", "community_name", "name", "kind")


def _grid_frame(agg: pd.DataFrame, grids: gpd.GeoDataFrame | None, crs: Any) -> gpd.GeoDataFrame:
    if isinstance(grids, gpd.GeoDataFrame) and "grid_code" in grids.columns:
        keep = [c for c in _GRID_KEEP if c in grids.columns]
        base = grids[[*keep, grids.geometry.name]]
        if base.geometry.name != "geometry":
            base = base.rename_geometry("geometry")
        merged = base.merge(agg, on="grid_code", how="outer")
        numeric = [c for c in agg.columns if c not in ("grid_code", "grade", "grade_zh")]
        merged[numeric] = merged[numeric].fillna(0)
        for c in numeric:
            if c not in ("persons_at_risk", "grade_share"):
                merged[c] = merged[c].astype("int64")
        merged["grade"] = merged["grade"].fillna("none")
        merged["grade_zh"] = merged["grade"].map(COLOUR_ZH)
        return gpd.GeoDataFrame(merged, geometry="geometry", crs=grids.crs)
    return gpd.GeoDataFrame(agg, geometry=[None] * len(agg), crs=crs)


# --------------------------------------------------------------------------- outputs


#: Water depth on the maps: light to dark teal (blue is the colour of a flood grade).
DEPTH_RAMP: tuple[str, str] = ("#c7eae5", "#01665e")
#: Depth shown in the darkest colour of :data:`DEPTH_RAMP` (m).
DEPTH_RAMP_MAX_M = 3.0


def _depth_rgba(depth: np.ndarray, vmax: float = DEPTH_RAMP_MAX_M) -> np.ndarray:
    """Colour depths light teal (shallow) to dark teal (>= vmax); dry cells transparent."""
    wet = np.isfinite(depth) & (depth > 0)
    t = np.clip(np.nan_to_num(depth) / vmax, 0, 1)[..., None]
    light = np.array([int(DEPTH_RAMP[0][i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    dark = np.array([int(DEPTH_RAMP[1][i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    rgb = (1 - t) * light + t * dark
    rgba = np.zeros((*depth.shape, 4), dtype=np.uint8)
    rgba[..., :3] = rgb.astype(np.uint8)
    rgba[..., 3] = np.where(wet, 200, 0)
    return rgba


def _overlay(
    source: Any,
    src_crs: Any,
    src_transform: Affine,
    src_nodata: float | None,
    width: int,
    height: int,
    max_px: int,
) -> tuple[np.ndarray, list[list[float]]]:
    """Warp a depth band or array to Web Mercator (<= max_px) for an ImageOverlay."""
    from pyproj import Transformer
    from rasterio.transform import array_bounds
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    left, bottom, right, top = array_bounds(height, width, src_transform)
    dst_tr, dst_w, dst_h = calculate_default_transform(
        src_crs, "EPSG:3857", width, height, left, bottom, right, top
    )
    scale = max(dst_w, dst_h) / max_px
    if scale > 1:
        dst_w, dst_h = max(1, math.ceil(dst_w / scale)), max(1, math.ceil(dst_h / scale))
        dst_tr = dst_tr @ Affine.scale(scale)
    dst = np.full((dst_h, dst_w), np.nan, dtype="float32")
    reproject(
        source=source,
        destination=dst,
        src_transform=src_transform,
        src_crs=src_crs,
        src_nodata=src_nodata,
        dst_transform=dst_tr,
        dst_crs="EPSG:3857",
        dst_nodata=np.nan,
        resampling=Resampling.max,
    )
    w, s, e, n = array_bounds(dst_h, dst_w, dst_tr)
    to_ll = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    lon0, lat0 = to_ll.transform(w, s)
    lon1, lat1 = to_ll.transform(e, n)
    # Web Mercator keeps the image rectangle exact in Leaflet (an EPSG:4326 image would
    # be stretched linearly in latitude)
    return _depth_rgba(dst), [[lat0, lon0], [lat1, lon1]]


def _depth_overlay_image(
    grading: FloodGrading, depth: Any, max_px: int = 1024
) -> tuple[np.ndarray, list[list[float]], str] | None:
    if depth is None:
        for s in grading.sources:
            if s["kind"] == "depth":
                depth = s["path"]
                break
    if depth is not None:
        src = _open_raster(depth, "depth")
        with src:
            img, bounds = _overlay(
                rasterio.band(src, 1),
                src.crs,
                src.transform,
                src.nodata,
                src.width,
                src.height,
                max_px,
            )
        return img, bounds, f"水深 depth: {Path(depth).name}"
    for s in grading.sources:
        if s["kind"] == "dem" and s["name"] != "dem":
            src = _open_raster(s["dem"], "dem")
            with src:
                model = _dem_surface(src, s["water_level"], s["rivers"], max_cells=max_px**2)
                d = model["surface"] - model["ground"]
                img, bounds = _overlay(
                    d, src.crs, model["transform"], None, d.shape[1], d.shape[0], max_px
                )
            return img, bounds, f"水深 depth: {s['name']}"
    return None


def _legend_html(grading: FloodGrading, depth_layer: str | None) -> str:
    from .maps import legend_box, legend_row

    t = grading.thresholds

    def fmt(v: float) -> str:
        return f"{v:g}"

    labels = {
        "red": f"红 Red ≥ {fmt(t['red'])} m",
        "orange": f"橙 Orange {fmt(t['orange'])}–{fmt(t['red'])} m",
        "yellow": f"黄 Yellow {fmt(t['yellow'])}–{fmt(t['orange'])} m",
        "blue": f"蓝 Blue {fmt(t['blue'])}–{fmt(t['yellow'])} m 或历史淹没范围 / "
        "or historical flood extent",
        "none": "无风险 No risk",
    }
    share = f"{grading.grid_share:.0%}"
    rows = ["<div>楼栋 Buildings</div>"]
    rows += [legend_row(f"background:{PALETTE[c]}", labels[c]) for c in (*COLOURS, "none")]
    rows.append(
        legend_row(
            f"border:2px solid {PALETTE['red']};background:#fff",
            f"网格轮廓：至少 {share} 住户所在的最高等级 / Grid outline: worst colour "
            f"holding ≥ {share} of its households",
        )
    )
    if depth_layer is not None:
        rows.append(
            legend_row(
                f"background:linear-gradient(90deg,{DEPTH_RAMP[0]},{DEPTH_RAMP[1]});width:28px",
                f"水深 Water depth 0 – ≥{DEPTH_RAMP_MAX_M:g} m",
            )
        )
    return legend_box("洪涝风险四色分级 Flood risk (water depth)", rows, element_id="flood-legend")


def flood_map(
    grading: FloodGrading,
    *,
    depth: str | os.PathLike | None = None,
    tiles: str | None = None,
    attribution: str | None = None,
):
    """Folium map of a flood grading.

    Shows the buildings in the four colours (red #e60000, orange #ff8c00,
    yellow #ffd700, blue #1e6fd9; ``none`` buildings in grey only when there are at most
    20,000 buildings), the grid outlines coloured by grade, the depth raster as a
    semi-transparent teal overlay (warped to Web Mercator and reduced to at most 1024 pixels
    a side, in memory), and a legend in Chinese and English.

    Parameters
    ----------
    grading : FloodGrading
        Result of :func:`grade_flood`.
    depth : path, optional
        Depth raster to overlay; by default the first depth raster of the grading, or
        the connected DEM flood when the grading used only a DEM.
    tiles : str or None
        Base map: a preset of :data:`gridmap.maps.TILES` (``"osm"``), a tile URL
        template, or None for no base map (usable offline).
    attribution : str, optional
        Attribution of a custom tile URL.

    Returns
    -------
    folium.Map
    """
    import folium

    b = to_wgs84(grading.buildings, "buildings")
    from .maps import add_tiles

    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    add_tiles(m, tiles, attribution)
    overlay = _depth_overlay_image(grading, depth)
    depth_layer = None if overlay is None else overlay[2]
    if overlay is not None:
        img, bounds, name = overlay
        folium.raster_layers.ImageOverlay(
            image=img, bounds=bounds, opacity=0.6, name=name, origin="upper"
        ).add_to(m)

    grids = grading.grids
    if grids is not None and grids.geometry.notna().any():
        g = to_wgs84(grids[grids.geometry.notna()], "grids")
        for grade in [*COLOURS, "none"]:
            sub = g[g["grade"] == grade]
            if sub.empty:
                continue
            fg = folium.FeatureGroup(name=f"网格 grids: {COLOUR_ZH[grade]} {grade}")
            colour = PALETTE[grade]
            fields = ["grid_code", "grade", "households", "households_at_risk", "persons_at_risk"]
            folium.GeoJson(
                sub[[*fields, "geometry"]],
                style_function=lambda _f, c=colour: {
                    "color": c,
                    "weight": 2.5,
                    "fillColor": c,
                    "fillOpacity": 0.05,
                },
                tooltip=folium.GeoJsonTooltip(
                    fields=fields,
                    aliases=[
                        "网格 grid",
                        "等级 grade",
                        "户 households",
                        "受威胁户 at risk",
                        "需转移人 persons",
                    ],
                ),
            ).add_to(fg)
            fg.add_to(m)

    show = [*COLOURS] + (["none"] if len(b) <= 20_000 else [])
    fields = [
        "building_id",
        "colour",
        "depth_m",
        "flooded_floors",
        "households_at_risk",
        "hazard_source",
    ]
    for c in show:
        sub = b[b["colour"] == c]
        if sub.empty:
            continue
        sub = sub[[*fields, "geometry"]].copy()
        sub["hazard_source"] = sub["hazard_source"].fillna("")
        sub["building_id"] = sub["building_id"].astype(str)
        fg = folium.FeatureGroup(name=f"楼栋 buildings: {COLOUR_ZH[c]} {c} ({len(sub)})")
        folium.GeoJson(
            sub,
            style_function=lambda _f, col=PALETTE[c]: {
                "color": col,
                "weight": 1,
                "fillColor": col,
                "fillOpacity": 0.7,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=fields,
                aliases=[
                    "楼栋 building",
                    "颜色 colour",
                    "水深 depth (m)",
                    "受淹楼层 floors",
                    "受威胁户 households",
                    "来源 source",
                ],
            ),
        ).add_to(fg)
        fg.add_to(m)

    m.get_root().html.add_child(folium.Element(_legend_html(grading, depth_layer)))
    folium.LayerControl(collapsed=True).add_to(m)
    if len(b) and not b.geometry.is_empty.all():
        w, s, e, n = b.total_bounds
        m.fit_bounds([[s, w], [n, e]])
    return m


def write_flood_outputs(
    grading: FloodGrading, out_dir: str | os.PathLike, *, depth: str | os.PathLike | None = None
) -> list[Path]:
    """Write the flood map and tables to `out_dir`.

    Files: ``flood_map.html``; ``flood_grids.csv/.xlsx`` (when there are grids);
    ``flood_communities.csv/.xlsx`` (when there are communities);
    ``flood_buildings.csv/.xlsx`` (buildings with a colour other than ``none``, worst
    first, with centroid ``lon``/``lat``); ``flood_households_to_move.csv/.xlsx``
    (:meth:`FloodGrading.households_to_move`). Tables are written with
    :func:`gridmap.io.write_table` (CSV with BOM + XLSX).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    html = out / "flood_map.html"
    from .maps import save_html

    save_html(flood_map(grading, depth=depth), html)
    paths.append(html)
    if grading.grids is not None:
        grids = pd.DataFrame(grading.grids.drop(columns="geometry", errors="ignore"))
        paths += write_table(grids, out / "flood_grids", sheet_name="flood_grids")
    if grading.communities is not None:
        paths += write_table(
            grading.communities, out / "flood_communities", sheet_name="flood_communities"
        )
    paths += write_table(
        _buildings_table(grading), out / "flood_buildings", sheet_name="flood_buildings"
    )
    paths += write_table(
        grading.households_to_move(),
        out / "flood_households_to_move",
        sheet_name="households_to_move",
    )
    return paths


def _buildings_table(grading: FloodGrading) -> pd.DataFrame:
    b = grading.buildings
    b = b[b["colour"] != "none"]
    first = [
        "building_id",
        "grid_code",
        "community_code",
        "name",
        "use",
        "levels",
        "households",
        "units",
        "ground_m",
        "depth_max_m",
        "depth_mean_m",
        "depth_m",
        "hazard_source",
        "colour",
        "colour_zh",
        "flooded_floors",
        "households_at_risk",
        "persons_at_risk",
    ]
    cols = [c for c in first if c in b.columns]
    table = pd.DataFrame(b[cols])
    if len(b):
        cent = to_wgs84(gpd.GeoDataFrame(geometry=b.geometry.centroid, crs=b.crs))
        table["lon"] = np.round(cent.geometry.x.to_numpy(), 6)
        table["lat"] = np.round(cent.geometry.y.to_numpy(), 6)
    else:
        table["lon"] = table["lat"] = []
    table["_rank"] = table["colour"].map(_RANK)
    table = table.sort_values(["_rank", "depth_m"], ascending=False, kind="stable")
    return table.drop(columns="_rank").reset_index(drop=True)
