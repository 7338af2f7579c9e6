"""The grid plan: its tables, validation and GeoPackage storage.

A :class:`Plan` is what :func:`gridmap.plan_grids` returns and what every later step
(events, flood grading, evacuation, the web view, the planner's edits) works on. It is
stored as one GeoPackage: one layer per table plus a ``metadata`` table that holds the
parameters, notes, edit history, version and creation time, so that
:func:`read_plan` gives back the same plan.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from .crs import to_wgs84
from .errors import InputError

#: Version of the plan file layout; bumped when layers or columns change.
PLAN_FORMAT_VERSION = 1

GRID_COLUMNS = [
    "grid_code",
    "community_code",
    "street_code",
    "community_name",
    "kind",
    "households",
    "buildings",
    "range_min",
    "range_max",
    "difficult",
    "flags",
    "flag_reason",
    "name",
    "worker",
    "area_m2",
    "polsby_popper",
]

#: What each code of a grid's ``flags`` column means: code -> (Chinese, English). The
#: wall maps, the plan map and the web page show flags with these labels
#: (:func:`flag_labels`).
FLAG_LABELS: dict[str, tuple[str, str]] = {
    "out_of_range": ("户数超出范围", "Households out of range"),
    "below_floor": ("户数低于下限", "Below the household floor"),
    "infeasible_split": ("无法在范围内划分", "No in-range split possible"),
    "isolated_village": ("独立自然屯", "Isolated village"),
    "unbalanced": ("户数不均衡", "Unbalanced split"),
    "no_households": ("无住户", "No households"),
    "split_compound": ("小区被拆分", "Compound split between grids"),
    "crosses_barrier": ("跨越道路或河流", "Crosses a road or river"),
    "includes_residential": ("含住宅楼栋", "Includes homes"),
    "discontiguous": ("网格不连续", "In separate parts"),
    "crosses_community": ("跨越社区边界", "Crosses its community boundary"),
}


def flag_labels(flags: object, lang: str = "zh", sep: str | None = None) -> str:
    """The labels of a grid's ``flags`` (codes joined by ``;``) in `lang`.

    Parameters
    ----------
    flags : str or None
        E.g. ``"split_compound;below_floor"``.
    lang : {"zh", "en", "both"}
        Chinese, English, or both (``小区被拆分 Compound split between grids``).
    sep : str, optional
        Joins the labels (default ``"、"`` in Chinese, ``"; "`` otherwise).

    Returns
    -------
    str
        ``"小区被拆分、户数低于下限"``; an unknown code is shown as it is; ``""`` for no flags.
    """
    if lang not in ("zh", "en", "both"):
        raise InputError(f"lang must be 'zh', 'en' or 'both', not {lang!r}", source="flag_labels")
    if flags is None or (isinstance(flags, float) and np.isnan(flags)):
        return ""
    codes = [c.strip() for c in str(flags).split(";") if c.strip()]
    out = []
    for c in codes:
        zh, en = FLAG_LABELS.get(c, (c, c))
        out.append(zh if lang == "zh" else en if lang == "en" else f"{zh} {en}")
    return (sep if sep is not None else "、" if lang == "zh" else "; ").join(out)


SPLIT_COLUMNS = ["building_id", "part", "unit_from", "unit_to", "households", "grid_code"]
CROSSING_COLUMNS = ["grid_code", "barrier", "length_m", "reason"]

_LAYERS = ("grids", "buildings", "splits", "crossings", "communities", "barriers", "compounds")


def empty_splits() -> pd.DataFrame:
    """Return an empty unit-split table with the standard columns and dtypes."""
    return pd.DataFrame(
        {
            "building_id": pd.Series([], dtype=object),
            "part": pd.Series([], dtype="int64"),
            "unit_from": pd.Series([], dtype="int64"),
            "unit_to": pd.Series([], dtype="int64"),
            "households": pd.Series([], dtype="int64"),
            "grid_code": pd.Series([], dtype=object),
        }
    )


def empty_crossings() -> pd.DataFrame:
    """Return an empty barrier-crossing table with the standard columns and dtypes."""
    return pd.DataFrame(
        {
            "grid_code": pd.Series([], dtype=object),
            "barrier": pd.Series([], dtype=object),
            "length_m": pd.Series([], dtype="float64"),
            "reason": pd.Series([], dtype=object),
        }
    )


@dataclass
class Plan:
    """A grid plan.

    Attributes
    ----------
    grids : geopandas.GeoDataFrame
        One row per grid, in the metric CRS; columns in ``GRID_COLUMNS``.
    buildings : geopandas.GeoDataFrame
        The buildings with ``grid_code`` and ``community_code``.
    splits : pandas.DataFrame
        Which units of a split building go to which grid.
    crossings : pandas.DataFrame
        Every place a grid crosses a barrier, with the reason.
    crs : pyproj.CRS
        The metric CRS every layer is in.
    communities, barriers, compounds : geopandas.GeoDataFrame or None
        The layers the plan was built with (metric CRS).
    notes : list of str
        Plain-language notes on how the plan was made.
    params : dict
        The parameters of :func:`gridmap.plan_grids`.
    history : list of dict
        Edit operations (what, when, reason).
    undo_log, redo_log : list of dict
        What :func:`gridmap.edit.undo` and :func:`gridmap.edit.redo` apply: one record
        per edit (its history entry and two small patches, plain JSON); saved with the
        plan.
    created : str
        ISO 8601 creation time (UTC).
    """

    grids: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    crs: CRS
    splits: pd.DataFrame = field(default_factory=empty_splits)
    crossings: pd.DataFrame = field(default_factory=empty_crossings)
    communities: gpd.GeoDataFrame | None = None
    barriers: gpd.GeoDataFrame | None = None
    compounds: gpd.GeoDataFrame | None = None
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    undo_log: list[dict[str, Any]] = field(default_factory=list, repr=False)
    redo_log: list[dict[str, Any]] = field(default_factory=list, repr=False)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    # ------------------------------------------------------------------ views
    def __repr__(self) -> str:
        kinds = self.grids["kind"].value_counts().to_dict() if len(self.grids) else {}
        return (
            f"<Plan: {len(self.grids)} grids {kinds}, {len(self.buildings)} buildings, "
            f"{int(self.grids['households'].sum()) if len(self.grids) else 0} households, "
            f"CRS {self.crs.to_string()}>"
        )

    def grids_wgs84(self) -> gpd.GeoDataFrame:
        """Return the grids in WGS84 (EPSG:4326), for maps, GeoJSON and the API."""
        return to_wgs84(self.grids, "plan grids")

    def summary(self) -> dict[str, Any]:
        """Return headline figures: grids by kind, households, share in range, compactness."""
        g = self.grids
        res = g[g["kind"] != "special"]
        in_range = (res["households"] >= res["range_min"]) & (res["households"] <= res["range_max"])
        return {
            "grids": int(len(g)),
            "grids_by_kind": {k: int(v) for k, v in g["kind"].value_counts().items()},
            "households": int(g["households"].sum()),
            "residential_grids_in_range": int(in_range.sum()),
            "share_in_range": float(in_range.mean()) if len(res) else 1.0,
            "flagged_grids": int((g["flags"].fillna("") != "").sum()),
            "split_buildings": int(self.splits["building_id"].nunique()),
            "barrier_crossings": int(len(self.crossings)),
            "mean_polsby_popper": float(g["polsby_popper"].mean()) if len(g) else float("nan"),
        }

    def validate(self) -> pd.DataFrame:
        """Check the plan with the independent validator.

        Returns
        -------
        pandas.DataFrame
            One row per problem (``check``, ``grid_code``, ``severity``, ``detail``);
            empty when the plan is clean.
        """
        from .validate import validate_plan

        return validate_plan(
            self.grids,
            self.buildings,
            communities=self.communities,
            barriers=self.barriers,
            compounds=self.compounds,
            splits=self.splits,
        )

    # -------------------------------------------------------------------- I/O
    def to_file(self, path: str | os.PathLike) -> Path:
        """Write the plan to a GeoPackage, atomically.

        The file is written to a temporary name in the same folder and renamed over
        `path` only when complete, so an existing plan file is never left half-written.

        Parameters
        ----------
        path : path-like
            Output ``.gpkg`` path.

        Returns
        -------
        pathlib.Path
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".gpkg")
        os.close(fd)
        tmp = Path(tmp_name)
        tmp.unlink()
        try:
            for name in _LAYERS:
                table = getattr(self, name)
                if table is None:
                    continue
                _write_layer(table, tmp, name, self.crs)
            meta = pd.DataFrame(
                {
                    "key": [
                        "format_version",
                        "gridmap_version",
                        "created",
                        "saved",
                        "crs",
                        "params",
                        "notes",
                        "history",
                        "undo_log",
                        "redo_log",
                    ],
                    "value": [
                        str(PLAN_FORMAT_VERSION),
                        _gridmap_version(),
                        self.created,
                        datetime.now(UTC).isoformat(timespec="seconds"),
                        self.crs.to_wkt(),
                        json.dumps(self.params, ensure_ascii=False, default=_json_default),
                        json.dumps(self.notes, ensure_ascii=False),
                        json.dumps(self.history, ensure_ascii=False, default=_json_default),
                        json.dumps(self.undo_log, ensure_ascii=False, default=_json_default),
                        json.dumps(self.redo_log, ensure_ascii=False, default=_json_default),
                    ],
                }
            )
            pyogrio.write_dataframe(meta, tmp, layer="metadata")
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path


def read_plan(path: str | os.PathLike) -> Plan:
    """Read a plan written by :meth:`Plan.to_file`.

    Parameters
    ----------
    path : path-like
        The plan GeoPackage.

    Returns
    -------
    Plan

    Raises
    ------
    InputError
        If the file is missing or is not a gridmap plan.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("plan file not found", source=str(path))
    try:
        layers = {name for name, _ in pyogrio.list_layers(path)}
    except Exception as exc:  # noqa: BLE001 - GDAL raises many types
        raise InputError(f"cannot open as a GeoPackage ({exc})", source=str(path)) from exc
    missing = {"grids", "buildings", "metadata"} - layers
    if missing:
        raise InputError(
            f"not a gridmap plan: layer(s) {sorted(missing)} missing (found {sorted(layers)})",
            source=str(path),
        )
    meta_df = pyogrio.read_dataframe(path, layer="metadata")
    meta = dict(zip(meta_df["key"], meta_df["value"], strict=False))
    version = int(meta.get("format_version", "0"))
    if version > PLAN_FORMAT_VERSION:
        raise InputError(
            f"plan format version {version} is newer than this gridmap supports "
            f"({PLAN_FORMAT_VERSION}); upgrade gridmap",
            source=str(path),
        )
    crs = CRS.from_wkt(meta["crs"])

    def read_geo(name: str) -> gpd.GeoDataFrame | None:
        if name not in layers:
            return None
        gdf = gpd.read_file(path, layer=name, engine="pyogrio")
        # GDAL promotes a layer with any multipart feature to MultiPolygon: give
        # single-part features back their Polygon type.
        geoms = gdf.geometry.values
        single = (shapely.get_type_id(geoms) == 6) & (shapely.get_num_geometries(geoms) == 1)
        if single.any():
            geoms = geoms.copy()
            geoms[single] = shapely.get_geometry(geoms[single], 0)
            gdf = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs))
        return _restore_dtypes(gdf.set_crs(crs, allow_override=True))

    def read_table(name: str, empty) -> pd.DataFrame:
        if name not in layers:
            return empty()
        df = pyogrio.read_dataframe(path, layer=name, read_geometry=False)
        if len(df) == 0:
            return empty()
        return _restore_dtypes(pd.DataFrame(df))

    return Plan(
        grids=read_geo("grids"),
        buildings=read_geo("buildings"),
        crs=crs,
        splits=read_table("splits", empty_splits),
        crossings=read_table("crossings", empty_crossings),
        communities=read_geo("communities"),
        barriers=read_geo("barriers"),
        compounds=read_geo("compounds"),
        notes=json.loads(meta.get("notes", "[]")),
        params=json.loads(meta.get("params", "{}")),
        history=json.loads(meta.get("history", "[]")),
        undo_log=json.loads(meta.get("undo_log") or "[]"),
        redo_log=json.loads(meta.get("redo_log") or "[]"),
        created=meta.get("created", ""),
    )


# ---------------------------------------------------------------------- helpers
_CODE_COLUMNS = ("grid_code", "community_code", "street_code", "building_id", "compound_id")


def _write_layer(table: pd.DataFrame, path: Path, layer: str, crs: CRS) -> None:
    out = table.copy()
    for col in out.columns:
        if col == "geometry":
            continue
        dtype = out[col].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(object)
        elif pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            # GDAL wants one type per column: store mixed objects as text.
            vals = out[col]
            out[col] = vals.where(vals.isna(), vals.astype(str))
    if isinstance(out, gpd.GeoDataFrame):
        out = out.set_crs(crs, allow_override=True)
        # Arrow-based writing is about 1.5x faster for a city's buildings layer.
        out.to_file(path, layer=layer, driver="GPKG", engine="pyogrio", use_arrow=True)
    else:
        pyogrio.write_dataframe(pd.DataFrame(out), path, layer=layer)


def _restore_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    for col in _CODE_COLUMNS:
        if col in df.columns:
            s = df[col]
            df[col] = s.where(s.isna(), s.astype(str)).astype(object)
    for col in ("flags", "flag_reason", "name", "worker"):
        if col in df.columns:
            df[col] = df[col].fillna("").astype(object)
    if "difficult" in df.columns and df["difficult"].dtype != bool:
        df["difficult"] = df["difficult"].fillna(False).astype(bool)
    return df


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, (datetime, pd.Timestamp)):
        return obj.isoformat()
    return str(obj)


def _gridmap_version() -> str:
    from . import __version__

    return __version__
