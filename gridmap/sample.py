"""The embedded sample town: a synthetic forestry town in Heilongjiang.

gridmap ships a small, fully synthetic town so that every step of the pipeline (reading
footprints, estimating households, drawing grids, events, flood grading, evacuation) can
be run and tested without real data. The town is modelled on a district of a Yichun-like
forestry city (district code ``230717``): two urban streets (街道) of four communities
each on both banks of a river, a township (镇) of four villages (村) in the outer ring,
residential compounds (小区) with walk-up slabs and towers, a district of one-storey old
houses (棚户区), institutions, natural villages (自然屯), a noded road network, a DEM
with a closed basin, a historical (2013) flood-depth raster, shelters and one year of
grid events.

Every feature is a deterministic function of the seed. The geometry is built in local
metres, shifted to EPSG:32652 (UTM 52N) and stored in EPSG:4326 (vector layers); the
rasters are stored in EPSG:32652.

Examples
--------
>>> import gridmap
>>> layers = gridmap.load_sample()                    # doctest: +SKIP
>>> layers["buildings"].head()                        # doctest: +SKIP
>>> from gridmap.sample import sample_paths
>>> sample_paths()["dem"]                             # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import shapely
from rasterio import features
from rasterio.transform import from_origin
from scipy import ndimage
from scipy.spatial import cKDTree
from shapely import affinity
from shapely.geometry import shape

from .errors import GeometryError, InputError

__all__ = ["DISTRICT_CODE", "LAYERS", "METRIC_CRS", "load_sample", "sample_paths", "sample_town"]

DISTRICT_CODE = "230717"
"""Administrative division code (GB/T 2260) of the sample district."""

METRIC_CRS = "EPSG:32652"
"""Metric CRS of the sample town (UTM zone 52N); the rasters are stored in it."""

LAYERS: tuple[str, ...] = (
    "streets",
    "communities",
    "compounds",
    "buildings",
    "difficult_areas",
    "institutions",
    "roads",
    "rivers",
    "water",
    "flood_extent",
    "shelters",
    "events",
)
"""Layers of ``sample_town.gpkg``, in the order they are written."""

_FILES = {
    "gpkg": "sample_town.gpkg",
    "dem": "sample_dem.tif",
    "flood_depth": "sample_flood_depth.tif",
}
_REPO_DATA = Path(__file__).resolve().parents[1] / "data"
_GPKG_DATE = "2025-12-31T16:00:00.000Z"  # last_change of every layer (2026-01-01 00:00 +08:00)

# --- frame and grid --------------------------------------------------------------------
_ORIGIN = np.array([486_500.0, 5_278_500.0])  # UTM 52N of local (0, 0); town at 128.9E 47.7N
_CELL = 20.0  # raster cell size (m)
_MARGIN = 500.0  # raster margin around the study area (m)
_NODATA = -9999.0
_YC = 4500.0  # mean river line (local y)
_TOWN_X = (4500.0, 7500.0)
_TOWN_H = 1000.0  # town reaches _YC +- _TOWN_H
_ARTERIAL_DY = 600.0
_RIVERSIDE_DY = 110.0
_PERSONS_PER_HOUSEHOLD = 2.5  # used only to size the shelters

# half road width + pavement: compounds and blocks stay this far from the centre line
_EDGE = {"primary": 18.0, "secondary": 15.0, "tertiary": 10.0, "residential": 8.0}
_EDGE.update({"service": 5.0, "track": 5.0})
# buildings outside compounds stay this far from the centre line (always >= 5 m)
_CLEAR = {"primary": 22.0, "secondary": 18.0, "tertiary": 12.0, "residential": 9.0}
_CLEAR.update({"service": 6.0, "track": 8.0})
_LANE_CLEAR = 6.0  # compound lanes
_ALLEY_CLEAR = 5.05  # alleys (胡同) of the old-house district

_STREETS = (("001", "旭日街道"), ("002", "朝阳街道"), ("003", "林源镇"))
_URBAN = (
    ("001", "001", "林都社区"),
    ("002", "001", "红星社区"),
    ("003", "001", "青山社区"),
    ("004", "001", "光明社区"),
    ("005", "002", "朝阳社区"),
    ("006", "002", "建设社区"),
    ("007", "002", "东升社区"),
    ("008", "002", "前进社区"),
)
_VILLAGES = (  # code, street, name: north-west, south-west, north-east, south-east
    ("201", "003", "永胜村"),
    ("202", "003", "双河村"),
    ("203", "003", "五一村"),
    ("204", "003", "长青村"),
)
_OLD_DISTRICT_COMMUNITY = "006"
_TUN_NAMES = (
    "王家屯",
    "李家屯",
    "张家屯",
    "赵家屯",
    "刘家屯",
    "东岗屯",
    "西沟屯",
    "北山屯",
    "南岔屯",
    "三道河屯",
    "五道沟屯",
    "太平屯",
    "兴隆屯",
    "长发屯",
    "新发屯",
    "靠山屯",
)
_COMPOUND_PREFIX = (
    "林海",
    "青松",
    "红松",
    "金桥",
    "翠峰",
    "绿洲",
    "兴安",
    "桦林",
    "松涛",
    "鹿鸣",
    "丽景",
    "东方",
    "阳光",
    "和谐",
    "锦绣",
    "幸福",
    "嘉禾",
    "明珠",
    "汇丰",
    "天鹅",
    "林苑",
    "望江",
    "滨江",
    "美溪",
    "秀水",
    "康乐",
    "祥和",
    "福民",
)
_COMPOUND_SUFFIX = ("小区", "家园", "花园", "嘉园", "苑", "新城", "雅居")

# name, use, target point (dx from town west edge, dy from _YC), buildings (w, d, levels, name)
_INSTITUTIONS = (
    (
        "伊美区第一中学",
        "school",
        (370.0, 900.0),
        ((64, 16, 4, "教学楼"), (48, 14, 4, "实验楼"), (36, 24, 2, "风雨操场")),
    ),
    (
        "伊美区人民政府",
        "government",
        (1120.0, 470.0),
        ((72, 20, 5, "办公楼"), (40, 16, 3, "附楼")),
    ),
    (
        "林都农贸市场",
        "market",
        (1630.0, 470.0),
        ((90, 40, 2, "交易大厅"), (60, 12, 1, "摊位棚一"), (60, 12, 1, "摊位棚二")),
    ),
    (
        "伊美区人民医院",
        "hospital",
        (2620.0, 470.0),
        ((70, 22, 9, "门诊住院楼"), (44, 18, 4, "医技楼"), (30, 16, 3, "后勤楼")),
    ),
    (
        "朝阳小学",
        "school",
        (1880.0, -470.0),
        ((56, 15, 4, "教学楼"), (40, 14, 3, "综合楼"), (30, 20, 1, "食堂")),
    ),
    (
        "伊春林业局木材加工厂",
        "enterprise",
        (2650.0, -880.0),
        (
            (110, 32, 1, "一号车间"),
            (110, 32, 1, "二号车间"),
            (80, 30, 1, "原木库"),
            (40, 15, 3, "办公楼"),
        ),
    ),
)
# buildings of vacant blocks: use, w, d, levels, name
_OTHER_SPECS = (
    ("commercial", 48, 20, 3, "商业楼"),
    ("commercial", 36, 16, 2, "超市"),
    ("other", 40, 24, 1, "仓库"),
    ("garage", 30, 8, 1, "车库"),
    ("other", 24, 14, 2, "物流站"),
)
_GYM = ("伊美区体育馆", (370.0, -880.0), ((80, 56, 2, ""),))

_CATEGORIES = (
    "information_collection",
    "opinion_survey",
    "policy_publicity",
    "key_population",
    "errand_service",
    "safety_hazard",
    "dispute_mediation",
)
_DEADLINE_DAYS = np.array([7, 10, 15, 3, 5, 2, 7])
# monthly weights per category (Jan..Dec): flood season Jun-Aug, heating season Oct-Apr
_MONTH_WEIGHTS = np.array(
    [
        [1.0, 0.8, 1.1, 1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 1.2, 1.3, 1.2],
        [0.8, 0.6, 1.0, 1.0, 1.2, 1.0, 0.9, 0.9, 1.2, 1.1, 1.0, 0.8],
        [0.9, 0.8, 1.4, 1.1, 1.0, 1.2, 1.0, 0.9, 1.4, 1.0, 0.9, 0.9],
        [1.3, 1.4, 1.0, 0.9, 0.9, 1.0, 1.0, 1.0, 0.9, 1.0, 1.2, 1.4],
        [1.3, 1.5, 1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 1.0, 1.0, 1.1, 1.3],
        [1.4, 1.2, 1.0, 1.0, 0.9, 1.8, 2.3, 2.0, 1.0, 1.1, 1.3, 1.5],
        [0.8, 1.0, 0.9, 1.0, 1.2, 1.3, 1.3, 1.2, 1.0, 0.9, 0.8, 0.8],
    ]
)
# event location components: households, market, old houses, hot compounds, anywhere
_EVENT_COMPONENTS = np.array([0.55, 0.10, 0.17, 0.14, 0.04])
_EVENT_CATEGORY_MIX = np.array(
    [
        [0.30, 0.06, 0.11, 0.10, 0.16, 0.17, 0.10],
        [0.15, 0.05, 0.08, 0.04, 0.08, 0.32, 0.28],
        [0.20, 0.04, 0.08, 0.18, 0.18, 0.24, 0.08],
        [0.28, 0.06, 0.10, 0.10, 0.18, 0.16, 0.12],
        [0.25, 0.05, 0.15, 0.05, 0.10, 0.30, 0.10],
    ]
)


# =======================================================================================
# public API
# =======================================================================================
def sample_town(seed: int = 0, path: str | Path | None = None) -> dict[str, gpd.GeoDataFrame]:
    """Build the sample town, write it to `path` and return its layers.

    The GeoPackage ``sample_town.gpkg`` and the rasters ``sample_dem.tif`` and
    ``sample_flood_depth.tif`` are written to temporary files in `path` first and then
    moved into place with :func:`os.replace`, so an interrupted run never leaves a
    half-written sample behind.

    Parameters
    ----------
    seed : int
        Seed of :func:`numpy.random.default_rng`. The same seed gives the same town.
    path : str or pathlib.Path, optional
        Folder to write to. Defaults to the repository's ``data/`` folder.

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        The layers of :data:`LAYERS` as read back from the GeoPackage (EPSG:4326).
    """
    folder = Path(path) if path is not None else _REPO_DATA
    built = _build(int(seed))
    _write(built, folder)
    return _read_layers(folder / _FILES["gpkg"])


def load_sample(path: str | Path | None = None) -> dict[str, gpd.GeoDataFrame]:
    """Read the layers of the sample town.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        Folder holding the sample files. By default the repository's ``data/`` folder is
        used; when it does not hold the sample (an installed package), the sample is
        generated once with seed 0 into the cache folder ``$GRIDMAP_CACHE/sample``
        (default ``~/.cache/gridmap/sample``) and read from there.

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        One GeoDataFrame (EPSG:4326) per layer of :data:`LAYERS`. Times of the events
        are ISO 8601 strings with the +08:00 offset. Use :func:`sample_paths` for the
        raster files.

    Raises
    ------
    InputError
        If an explicit `path` does not hold the sample files.
    """
    return _read_layers(_ensure(path)["gpkg"])


def sample_paths(path: str | Path | None = None) -> dict[str, Path]:
    """Paths of the sample files, generating the sample first if it is missing.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        Folder holding the sample files; see :func:`load_sample` for the default.

    Returns
    -------
    dict of str to pathlib.Path
        Keys ``gpkg`` (the GeoPackage), ``dem`` (DEM GeoTIFF, EPSG:32652) and
        ``flood_depth`` (historical flood depth GeoTIFF, same grid).

    Raises
    ------
    InputError
        If an explicit `path` does not hold the sample files.
    """
    return _ensure(path)


# =======================================================================================
# files
# =======================================================================================
def _paths(folder: Path) -> dict[str, Path]:
    return {key: folder / name for key, name in _FILES.items()}


def _complete(folder: Path) -> bool:
    return all(p.is_file() for p in _paths(folder).values())


def _cache_folder() -> Path:
    root = os.environ.get("GRIDMAP_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "gridmap"
    return base / "sample"


def _ensure(path: str | Path | None) -> dict[str, Path]:
    if path is not None:
        folder = Path(path)
        if not _complete(folder):
            missing = [p.name for p in _paths(folder).values() if not p.is_file()]
            raise InputError(
                f"sample files missing: {', '.join(missing)}; create them with "
                f"gridmap.sample_town(path={str(folder)!r})",
                source=str(folder),
            )
        return _paths(folder)
    if _complete(_REPO_DATA):
        return _paths(_REPO_DATA)
    cache = _cache_folder()
    if not _complete(cache):
        _write(_build(0), cache)
    return _paths(cache)


def _read_layers(gpkg: Path) -> dict[str, gpd.GeoDataFrame]:
    try:
        return {name: pyogrio.read_dataframe(gpkg, layer=name) for name in LAYERS}
    except pyogrio.errors.DataSourceError as exc:  # pragma: no cover - corrupt file
        raise InputError(f"cannot read the sample GeoPackage: {exc}", source=str(gpkg)) from exc
    except pyogrio.errors.DataLayerError as exc:  # pragma: no cover - foreign file
        raise InputError(f"not a gridmap sample: {exc}", source=str(gpkg)) from exc


def _write(built: _Built, folder: Path) -> None:
    """Write the sample atomically: temp folder inside `folder`, then os.replace."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".sample-tmp-", dir=folder))
    # a fixed GeoPackage timestamp makes the file byte-for-byte reproducible
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": _GPKG_DATE})
    quiet = logging.getLogger("pyogrio")  # no "Created N records" per layer
    level = quiet.level
    quiet.setLevel(max(level, logging.WARNING))
    try:
        targets = _paths(tmp)
        for name in LAYERS:
            pyogrio.write_dataframe(built.layers[name], targets["gpkg"], layer=name, driver="GPKG")
        _write_raster(targets["dem"], built.dem, built.transform)
        _write_raster(targets["flood_depth"], built.depth, built.transform)
        for key, src in targets.items():
            os.replace(src, folder / _FILES[key])
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})
        quiet.setLevel(level)
        shutil.rmtree(tmp, ignore_errors=True)


def _write_raster(path: Path, array: np.ndarray, transform) -> None:
    """Write one float32 band, deflate-compressed, in the sample's metric CRS."""
    profile = {
        "driver": "GTiff",
        "dtype": "float32",
        "width": array.shape[1],
        "height": array.shape[0],
        "count": 1,
        "crs": METRIC_CRS,
        "transform": transform,
        "nodata": _NODATA,
        "compress": "deflate",
        "predictor": 3,
        "zlevel": 9,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array.astype("float32"), 1)


# =======================================================================================
# geometry helpers
# =======================================================================================
def _smoothstep(x, a: float, b: float) -> np.ndarray:
    """0 below `a`, 1 above `b`, smooth in between."""
    t = np.clip((np.asarray(x, dtype=float) - a) / (b - a), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _rotate(x, y, angle):
    """Rotate offsets (x, y) counter-clockwise by `angle` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return x * c - y * s, x * s + y * c


def _rects(cx, cy, w, h, angle=0.0) -> np.ndarray:
    """Rectangles centred on (cx, cy), `w` along the rotated x axis, as Polygons."""
    cx, cy, w, h, angle = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (cx, cy, w, h, angle))
    )
    sx = np.array([-0.5, 0.5, 0.5, -0.5, -0.5])
    sy = np.array([-0.5, -0.5, 0.5, 0.5, -0.5])
    lx, ly = w.ravel()[:, None] * sx, h.ravel()[:, None] * sy
    rx, ry = _rotate(lx, ly, angle.ravel()[:, None])
    coords = np.stack([cx.ravel()[:, None] + rx, cy.ravel()[:, None] + ry], axis=-1)
    return shapely.polygons(coords)


def _lattice(
    geom, angle: float, px: float, py: float, ox: float = 0.0, oy: float = 0.0, centre=None
):
    """Cell centres of a rotated lattice covering `geom`.

    Returns world x, y and the local lattice column and row indices (rows go north in
    the rotated frame). The lattice passes through ``centre + R(angle) (ox, oy)``.
    """
    if centre is None:
        c = shapely.centroid(geom)
        centre = (c.x, c.y)
    xy = shapely.get_coordinates(geom) - np.asarray(centre)
    lx, ly = _rotate(xy[:, 0], xy[:, 1], -angle)
    i = np.arange(np.floor((lx.min() - ox) / px) - 1, np.ceil((lx.max() - ox) / px) + 2)
    j = np.arange(np.floor((ly.min() - oy) / py) - 1, np.ceil((ly.max() - oy) / py) + 2)
    ii, jj = np.meshgrid(i, j)
    ux, uy = ox + ii.ravel() * px, oy + jj.ravel() * py
    wx, wy = _rotate(ux, uy, angle)
    return wx + centre[0], wy + centre[1], ii.ravel().astype(int), jj.ravel().astype(int)


def _line(x, y) -> shapely.LineString:
    """LineString through the points (x, y)."""
    return shapely.linestrings(np.column_stack([np.asarray(x, float), np.asarray(y, float)]))


def _seg(x0, y0, x1, y1) -> shapely.LineString:
    """Straight segment from (x0, y0) to (x1, y1)."""
    return shapely.LineString([(x0, y0), (x1, y1)])


def _parts(geom) -> list:
    """Non-empty single parts of `geom`."""
    return [g for g in shapely.get_parts(geom) if not g.is_empty]


def _reading_order(geoms: np.ndarray, row: float = 30.0) -> np.ndarray:
    """Indices sorting `geoms` north to south (rows of `row` m), then west to east."""
    c = shapely.centroid(geoms)
    x, y = shapely.get_x(c), shapely.get_y(c)
    return np.lexsort((x, -np.round(y / row)))


def _drop_overlaps(geoms: np.ndarray, gap: float) -> np.ndarray:
    """Mask keeping geometries that are at least `gap` from every earlier one."""
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="dwithin", distance=gap)
    later = j[j > i]
    keep = np.ones(len(geoms), bool)
    keep[np.unique(later)] = False
    return keep


# =======================================================================================
# river, study area, terrain
# =======================================================================================
@dataclass(frozen=True)
class _River:
    """Centre line y(x) and width of the river (local metres)."""

    a1: float
    l1: float
    p1: float
    a2: float
    l2: float
    p2: float
    pw: float

    def y(self, x):
        x = np.asarray(x, dtype=float)
        taper = 0.25 + 0.75 * _smoothstep(np.abs(x - 6000.0), 1700.0, 3200.0)
        wave = self.a1 * np.sin(2 * np.pi * x / self.l1 + self.p1) + self.a2 * np.sin(
            2 * np.pi * x / self.l2 + self.p2
        )
        return _YC + taper * wave

    def width(self, x):
        return 52.0 + 12.0 * np.sin(2 * np.pi * np.asarray(x, dtype=float) / 3100.0 + self.pw)

    def xs(self, step: float = 10.0) -> np.ndarray:
        return np.arange(-1000.0, 13000.0 + step, step)

    def line(self) -> shapely.LineString:
        x = self.xs()
        return _line(x, self.y(x))

    def water(self) -> shapely.Polygon:
        x = self.xs()
        y = self.y(x)
        tx, ty = np.gradient(x), np.gradient(y)
        norm = np.hypot(tx, ty)
        nx_, ny_ = -ty / norm, tx / norm
        half = self.width(x) / 2
        left = np.column_stack([x + nx_ * half, y + ny_ * half])
        right = np.column_stack([x - nx_ * half, y - ny_ * half])
        ring = np.vstack([left, right[::-1], left[:1]])
        return shapely.make_valid(shapely.Polygon(ring))

    def north_region(self) -> shapely.Polygon:
        x = self.xs()
        ring = np.vstack([np.column_stack([x, self.y(x)]), [[x[-1], 1e5], [x[0], 1e5]]])
        return shapely.Polygon(ring)


def _make_river(rng: np.random.Generator) -> _River:
    """A river meandering west to east through the middle of the town."""
    return _River(
        a1=rng.uniform(230.0, 290.0),
        l1=rng.uniform(6500.0, 8000.0),
        p1=rng.uniform(0, 2 * np.pi),
        a2=rng.uniform(40.0, 70.0),
        l2=rng.uniform(1300.0, 1800.0),
        p2=rng.uniform(0, 2 * np.pi),
        pw=rng.uniform(0, 2 * np.pi),
    )


def _study_area(rng: np.random.Generator) -> shapely.Polygon:
    """The district outline: a wobbly ellipse about 11.5 km x 8.5 km."""
    th = np.linspace(0, 2 * np.pi, 721)[:-1]
    k = np.arange(2, 6)[:, None]
    amp = rng.uniform(0.01, 0.035, size=4)[:, None]
    ph = rng.uniform(0, 2 * np.pi, size=4)[:, None]
    r = 1 + (amp * np.sin(k * th + ph)).sum(axis=0)
    x = 6000.0 + 5650.0 * r * np.cos(th)
    y = _YC + 4150.0 * r * np.sin(th)
    return shapely.Polygon(np.column_stack([x, y]))


@dataclass
class _Terrain:
    """The DEM and the 2013 flood depth on one grid, in local metres."""

    dem: np.ndarray  # float32, rows north to south
    depth: np.ndarray  # float32, _NODATA outside the study area
    x0: float
    y1: float
    z0: float
    slope: float
    stage: float  # water surface above the bank
    basin: tuple[float, float]
    stream: shapely.LineString

    def index(self, x, y):
        col = np.floor((np.asarray(x) - self.x0) / _CELL).astype(int)
        row = np.floor((self.y1 - np.asarray(y)) / _CELL).astype(int)
        row = np.clip(row, 0, self.dem.shape[0] - 1)
        col = np.clip(col, 0, self.dem.shape[1] - 1)
        return row, col

    def elevation(self, x, y) -> np.ndarray:
        return self.dem[self.index(x, y)].astype(float)

    def flood_depth(self, x, y) -> np.ndarray:
        d = self.depth[self.index(x, y)].astype(float)
        return np.where(d == _NODATA, 0.0, d)

    def water_surface(self, x) -> np.ndarray:
        return self.z0 - self.slope * np.asarray(x, dtype=float) + self.stage


def _floodplain_width(x, north, params) -> np.ndarray:
    """Width (m) of the low flat floodplain beyond the river bank."""
    a, l_, p = params
    rural = 310.0 + a * np.sin(2 * np.pi * x / l_ + p)
    town = _smoothstep(x, _TOWN_X[0] - 400, _TOWN_X[0]) * (
        1 - _smoothstep(x, _TOWN_X[1], _TOWN_X[1] + 400)
    )
    old = _smoothstep(x, 5150.0, 5300.0) * (1 - _smoothstep(x, 6000.0, 6150.0))
    town_w = np.where(north, 190.0, 200.0 + 120.0 * old)
    return rural * (1 - town) + town_w * town


def _distance_along(river: _River, pts: np.ndarray, xmin: float, xmax: float):
    """Distance of `pts` to the river line and x of the nearest river point.

    A coarse search (20 m samples) for all points is refined with 2 m samples near
    the river; a single fine search is slow because the samples are collinear.
    """
    cx = np.arange(xmin, xmax, 20.0)
    dist, idx = cKDTree(np.column_stack([cx, river.y(cx)])).query(pts)
    near_x = cx[idx]
    close = dist < 300.0
    fx = np.arange(xmin, xmax, 2.0)
    fd, fi = cKDTree(np.column_stack([fx, river.y(fx)])).query(pts[close])
    dist[close], near_x[close] = fd, fx[fi]
    return dist, near_x


def _terrain(rng: np.random.Generator, river: _River, study: shapely.Polygon, water) -> _Terrain:
    """DEM of the valley and depth of the 2013 flood.

    Elevation = a bank level falling downstream + a cross profile (channel, flat
    floodplain, hills) + smooth noise + a tributary valley + a closed basin. The flood
    water surface is the bank level plus a stage; cells below it are wet only when they
    are connected (4-neighbours) to the river.
    """
    minx, miny, maxx, maxy = study.bounds
    x0 = np.floor((minx - _MARGIN) / _CELL) * _CELL
    x1 = np.ceil((maxx + _MARGIN) / _CELL) * _CELL
    y0 = np.floor((miny - _MARGIN) / _CELL) * _CELL
    y1 = np.ceil((maxy + _MARGIN) / _CELL) * _CELL
    nx_, ny_ = int(round((x1 - x0) / _CELL)), int(round((y1 - y0) / _CELL))
    xc = x0 + (np.arange(nx_) + 0.5) * _CELL
    yc = y1 - (np.arange(ny_) + 0.5) * _CELL
    gx, gy = np.meshgrid(xc, yc)
    pts = np.column_stack([gx.ravel(), gy.ravel()])

    dist, near_x = _distance_along(river, pts, x0 - 400.0, x1 + 400.0)
    dist, near_x = dist.reshape(gx.shape), near_x.reshape(gx.shape)
    north = gy > river.y(near_x)
    half = river.width(near_x) / 2

    z0, slope = 246.0 + rng.uniform(-2.0, 2.0), rng.uniform(0.0012, 0.0016)
    stage = 2.6 + rng.uniform(-0.1, 0.1)
    fp = _floodplain_width(
        gx,
        north,
        (rng.uniform(80.0, 130.0), rng.uniform(4000.0, 5500.0), rng.uniform(0, 2 * np.pi)),
    )
    t = dist - half
    channel = -3.5 * (1 - np.clip(dist / half, 0, 1) ** 2)
    plain = 3.0 * np.clip(t / fp, 0, 1) ** 1.2
    hills = 0.015 * np.clip(t - fp, 0, None) + 0.035 * np.clip(t - fp - 800.0, 0, None)
    rel = np.where(t < 0, channel, plain + hills)

    smooth = ndimage.gaussian_filter(rng.standard_normal(gx.shape), 15.0)
    smooth /= smooth.std()
    fine = ndimage.gaussian_filter(rng.standard_normal(gx.shape), 2.0)
    fine /= fine.std()
    amp = 0.2 + 7.8 * _smoothstep(t, fp, fp + 1500.0)
    rel = rel + np.where(t < 0, 0.0, amp * smooth + 0.08 * fine)

    # a tributary stream from the northern hills
    sx = 2600.0 + rng.uniform(-300.0, 300.0)
    sy = np.arange(float(river.y(sx)), y1 + 200.0, 10.0)
    stream_x = sx + 120.0 * np.sin(2 * np.pi * (sy - sy[0]) / 1800.0)
    stream = _line(stream_x, sy)
    ds, _ = cKDTree(np.column_stack([stream_x, sy])).query(pts)
    ds = ds.reshape(gx.shape)
    above = np.clip(rel, 0, None)
    rel = rel - np.minimum(0.6 * above, 10.0) * np.exp(-((ds / 220.0) ** 2))
    rel = rel - np.where(t > 0, 1.5 * np.exp(-((ds / 14.0) ** 2)), 0.0)

    z = z0 - slope * gx + rel

    # a closed basin (洼地) on the north bank, well above the river but below the flood
    bx = 6550.0 + rng.uniform(-60.0, 60.0)
    by = float(river.y(bx)) + 820.0 + rng.uniform(-30.0, 30.0)
    row, col = int((y1 - by) // _CELL), int((bx - x0) // _CELL)
    ws_b = z0 - slope * bx + stage
    deepen = z[row, col] - (ws_b - 3.0)
    z = z - deepen * np.exp(-((gx - bx) ** 2 + (gy - by) ** 2) / (2 * 140.0**2))

    dem = np.round(z, 2).astype("float32")

    transform = from_origin(x0, y1, _CELL, _CELL)
    inside = features.rasterize([study], out_shape=gx.shape, transform=transform) == 1
    in_water = features.rasterize([water], out_shape=gx.shape, transform=transform) == 1
    raw = (z0 - slope * gx + stage) - dem.astype(float)
    wet = (raw > 0.005) & inside
    labels, _ = ndimage.label(wet)
    seeds = np.unique(labels[in_water & wet])
    connected = np.isin(labels, seeds[seeds > 0])
    depth = np.where(connected, np.round(raw, 2), 0.0)
    depth = np.where(inside, depth, _NODATA).astype("float32")

    terrain = _Terrain(dem, depth, x0, y1, z0, slope, stage, (bx, by), stream)
    basin_depth = terrain.water_surface(bx) - terrain.elevation(bx, by)[()]
    if terrain.flood_depth(bx, by)[()] != 0.0 or basin_depth < 1.0:  # pragma: no cover
        raise GeometryError("the closed basin of the sample DEM is flooded", source="sample")
    return terrain


def _flood_polygons(terrain: _Terrain) -> list:
    """Outline of the flooded cells as polygons (the 2013 flood extent)."""
    mask = (terrain.depth > 0).astype("uint8")
    transform = from_origin(terrain.x0, terrain.y1, _CELL, _CELL)
    shapes = [
        shape(g) for g, v in features.shapes(mask, mask=mask == 1, transform=transform) if v == 1
    ]
    merged = shapely.union_all(shapes)
    parts = [p for p in _parts(shapely.simplify(merged, 5.0)) if p.area >= 4 * _CELL * _CELL]
    return parts


# =======================================================================================
# communities
# =======================================================================================
def _town_box() -> shapely.Polygon:
    """The built-up town: both streets together (local metres)."""
    return shapely.box(_TOWN_X[0], _YC - _TOWN_H, _TOWN_X[1], _YC + _TOWN_H)


def _partition(study, river: _River) -> gpd.GeoDataFrame:
    """Communities and villages as a tiling of the study area (local metres)."""
    town = _town_box()
    miny, maxy = study.bounds[1] - 10, study.bounds[3] + 10
    lines = [
        study.exterior,
        town.exterior,
        river.line(),
        _seg(5250.0, _YC - _TOWN_H, 5250.0, _YC + _TOWN_H),
        _seg(6750.0, _YC - _TOWN_H, 6750.0, _YC + _TOWN_H),
        _seg(6000.0, miny, 6000.0, maxy),
    ]
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.union_all(lines))))
    rep = shapely.point_on_surface(faces)
    faces = faces[shapely.contains(study, rep)]
    rep = shapely.point_on_surface(faces)
    x = shapely.get_x(rep)
    north = shapely.contains(river.north_region(), rep)
    in_town = shapely.contains(town, rep)
    col = np.searchsorted([5250.0, 6000.0, 6750.0], x)
    codes = np.where(
        in_town,
        np.char.zfill((col + 1 + 4 * (~north)).astype(str), 3),
        np.where(x < 6000.0, np.where(north, "201", "202"), np.where(north, "203", "204")),
    )
    rows = []
    meta = {c: (s, n, "community") for c, s, n in _URBAN}
    meta.update({c: (s, n, "village") for c, s, n in _VILLAGES})
    for code in sorted(meta):
        geom = shapely.union_all(faces[codes == code])
        street, name, kind = meta[code]
        rows.append((code, street, name, kind, geom))
    df = pd.DataFrame(rows, columns=["community_code", "street_code", "name", "kind", "geometry"])
    return gpd.GeoDataFrame(df, geometry="geometry")


# =======================================================================================
# roads
# =======================================================================================
@dataclass
class _Roads:
    """Road lines with their OSM ``highway`` class and name."""

    geoms: list = field(default_factory=list)
    highway: list = field(default_factory=list)
    names: list = field(default_factory=list)

    def add(self, geom, highway: str, name: str | None = None) -> None:
        for part in _parts(geom):
            if part.geom_type == "LineString" and part.length > 1.0:
                self.geoms.append(part)
                self.highway.append(highway)
                self.names.append(name)

    def extend(self, other: _Roads) -> None:
        self.geoms += other.geoms
        self.highway += other.highway
        self.names += other.names

    def array(self) -> np.ndarray:
        return np.array(self.geoms, dtype=object)

    def zone(self, widths: dict[str, float], extra: float = 0.0):
        dist = np.array([widths[h] for h in self.highway]) + extra
        return shapely.union_all(shapely.buffer(self.array(), dist))


def _town_roads(rng: np.random.Generator, study, river: _River) -> _Roads:
    """Arterials, ring, riverside and local streets of the town (not yet noded)."""
    roads = _Roads()
    minx, miny, maxx, maxy = study.bounds
    tx0, tx1 = _TOWN_X
    top, bot = _YC + _TOWN_H, _YC - _TOWN_H
    roads.add(
        shapely.intersection(
            _seg(minx - 10, _YC + _ARTERIAL_DY, maxx + 10, _YC + _ARTERIAL_DY), study
        ),
        "primary",
        "林都大街",
    )
    roads.add(
        shapely.intersection(
            _seg(minx - 10, _YC - _ARTERIAL_DY, maxx + 10, _YC - _ARTERIAL_DY), study
        ),
        "secondary",
        "朝阳大街",
    )
    roads.add(
        shapely.intersection(_seg(6000.0, miny - 10, 6000.0, maxy + 10), study),
        "secondary",
        "青山路",
    )
    roads.add(_seg(5250.0, bot, 5250.0, top), "secondary", "新兴路")
    roads.add(_seg(6750.0, bot, 6750.0, top), "secondary", "红星路")
    roads.add(_seg(tx0, top, tx1, top), "tertiary", "北环路")
    roads.add(_seg(tx0, bot, tx1, bot), "tertiary", "南环路")
    xs = np.arange(tx0, tx1 + 1.0, 20.0)
    ys = river.y(xs)
    roads.add(_line(xs, ys + _RIVERSIDE_DY), "tertiary", "滨河北路")
    roads.add(_line(xs, ys - _RIVERSIDE_DY), "tertiary", "滨河南路")
    for x, name in ((tx0, "西环路"), (tx1, "东环路")):
        yr = float(river.y(x))
        roads.add(_seg(x, top, x, yr + _RIVERSIDE_DY), "tertiary", name)
        roads.add(_seg(x, yr - _RIVERSIDE_DY, x, bot), "tertiary", name)
    ew = (("光明街", 330.0), ("育才街", 800.0), ("建设街", -330.0), ("工农街", -800.0))
    for name, dy in ew:
        y = _YC + dy + rng.uniform(-15.0, 15.0)
        roads.add(_seg(tx0, y, tx1, y), "tertiary", name)
    base = (4750.0, 5000.0, 5500.0, 5750.0, 6250.0, 6500.0, 7000.0, 7250.0)
    numerals = "一二三四五六七八"
    for k, x in enumerate(base):
        x = x + rng.uniform(-15.0, 15.0)
        yr = float(river.y(x))
        name = f"{numerals[k]}道街"
        roads.add(_seg(x, yr + _RIVERSIDE_DY, x, top), "residential", name)
        roads.add(_seg(x, yr - _RIVERSIDE_DY, x, bot), "residential", name)
    return roads


def _extend_to(seg_end, direction, network, reach: float):
    """Point where a ray from `seg_end` along `direction` first meets `network`."""
    ray = _seg(
        seg_end[0], seg_end[1], seg_end[0] + direction[0] * reach, seg_end[1] + direction[1] * reach
    )
    hit = shapely.intersection(ray, network)
    if hit.is_empty:
        return None
    pts = shapely.get_coordinates(hit)
    d = np.hypot(pts[:, 0] - seg_end[0], pts[:, 1] - seg_end[1])
    return tuple(pts[np.argmin(d)])


def _connect_line(line: shapely.LineString, network, reach: float):
    """Extend both ends of a straight `line` to the first road within `reach`."""
    xy = shapely.get_coordinates(line)
    a, b = xy[0], xy[-1]
    u = (b - a) / np.hypot(*(b - a))
    hit_a = _extend_to(a, -u, network, reach)
    hit_b = _extend_to(b, u, network, reach)
    if hit_a is None and hit_b is None:
        return None
    start = hit_a if hit_a is not None else tuple(a)
    end = hit_b if hit_b is not None else tuple(b)
    return shapely.LineString([start, end])


def _node(roads: _Roads) -> gpd.GeoDataFrame:
    """Split the roads at every junction; keep the largest connected network."""
    geoms = roads.array()
    geoms = shapely.set_precision(geoms, 0.01)
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    n = len(geoms)
    first = np.searchsorted(idx, np.arange(n), "left")
    last = np.searchsorted(idx, np.arange(n), "right") - 1
    tree = shapely.STRtree(geoms)
    coords = coords.copy()
    for ends, nxt in ((first, first + 1), (last, last - 1)):
        pts = shapely.points(coords[ends])
        pi, gi = tree.query(pts, predicate="dwithin", distance=0.5)
        touching = np.unique(pi[gi != pi])
        d = coords[ends[touching]] - coords[nxt[touching]]
        d /= np.hypot(d[:, 0], d[:, 1])[:, None]
        coords[ends[touching]] += d * 1.0
    extended = shapely.linestrings(coords, indices=idx)
    edges = shapely.get_parts(shapely.union_all(extended, grid_size=0.01))
    edges = edges[shapely.length(edges) > 0]

    def _graph(e):
        ends = np.round(shapely.get_coordinates(shapely.boundary(e)), 2)
        a, b = ends[0::2], ends[1::2]
        return a, b

    a, b = _graph(edges)
    keys = np.vstack([a, b])
    _, inv, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    deg = counts[inv.ravel()]
    da, db = deg[: len(edges)], deg[len(edges) :]
    stub = (shapely.length(edges) < 1.5) & ((da == 1) | (db == 1))
    edges = edges[~stub]

    a, b = _graph(edges)
    g = nx.Graph()
    for k, (p, q) in enumerate(zip(map(tuple, a), map(tuple, b), strict=True)):
        g.add_edge(p, q, k=k)
    main = max(nx.connected_components(g), key=len)
    keep = np.array([tuple(p) in main for p in a])
    edges = edges[keep]

    mid = shapely.line_interpolate_point(edges, 0.5, normalized=True)
    src = shapely.STRtree(roads.array())
    parent = src.query_nearest(mid, return_distance=False, all_matches=False)[1]
    highway = np.array(roads.highway, dtype=object)[parent]
    names = np.array(roads.names, dtype=object)[parent]
    rank = {
        h: i
        for i, h in enumerate(
            ("primary", "secondary", "tertiary", "residential", "service", "track")
        )
    }
    order = np.lexsort((shapely.get_x(mid), -shapely.get_y(mid), [rank[h] for h in highway]))
    df = pd.DataFrame({"highway": highway[order], "name": names[order]})
    return gpd.GeoDataFrame(df, geometry=edges[order])


# =======================================================================================
# villages
# =======================================================================================
@dataclass
class _Village:
    """A natural village (自然屯): centre, households and its ellipse."""

    name: str
    centre: tuple[float, float]
    households: int
    isolated: bool
    angle: float = 0.0
    a: float = 0.0
    b: float = 0.0


def _village_sites(
    rng: np.random.Generator, study, river: _River, terrain: _Terrain
) -> list[_Village]:
    """Natural villages (自然屯): in the valleys, away from the town and from each other.

    The first two are isolated: more than 2.6 km from the town and 2.3 km from any other
    village.
    """
    town = _town_box()
    inner = study.buffer(-450.0)
    cand = np.column_stack([rng.uniform(0, 12000, 6000), rng.uniform(0, 9000, 6000)])
    pts = shapely.points(cand)
    ok = shapely.contains(inner, pts)
    ok &= shapely.distance(town, pts) >= 800.0
    ok &= np.abs(cand[:, 1] - river.y(cand[:, 0])) >= 420.0
    ok &= np.abs(cand[:, 0] - 6000.0) >= 450.0
    ok &= np.abs(np.abs(cand[:, 1] - _YC) - _ARTERIAL_DY) >= 120.0
    ok &= terrain.elevation(cand[:, 0], cand[:, 1]) <= 288.0
    cand = cand[ok]
    dtown = shapely.distance(town, shapely.points(cand))
    chosen: list[np.ndarray] = []
    isolated: list[np.ndarray] = []
    for p, dt in zip(cand, dtown, strict=True):
        if len(isolated) < 2 and dt > 2600.0:
            if all(np.hypot(*(p - q)) > 2600.0 for q in isolated):
                isolated.append(p)
            continue
        if len(isolated) < 2:
            continue
        if len(chosen) >= 12:
            break
        if all(np.hypot(*(p - q)) > 2300.0 for q in isolated) and all(
            np.hypot(*(p - q)) > 1000.0 for q in chosen
        ):
            chosen.append(p)
    names = list(_TUN_NAMES)
    villages = []
    for k, p in enumerate(isolated + chosen):
        iso = k < len(isolated)
        hh = int(rng.integers(32, 58)) if iso else int(rng.integers(60, 240))
        villages.append(_Village(names[k], (float(p[0]), float(p[1])), hh, iso))
    return villages


def _village_roads(
    rng: np.random.Generator, villages: list[_Village], major: _Roads, river: _River, water
) -> _Roads:
    """A main street through every village and a track from it to the network."""
    out = _Roads()
    plot = 28.0 * 34.0
    town = _town_box()
    north_region = river.north_region()
    order = sorted(
        range(len(villages)),
        key=lambda k: shapely.distance(town, shapely.Point(villages[k].centre)),
    )
    for k in order:
        v = villages[k]
        v.angle = rng.uniform(0, np.pi)
        aspect = rng.uniform(1.6, 2.4)
        area = 1.9 * (v.households + 1) * plot
        v.b = np.sqrt(area / (np.pi * aspect))
        v.a = v.b * aspect
        cx, cy = v.centre
        network = shapely.union_all(np.array(major.geoms + out.geoms, dtype=object))
        if shapely.contains(north_region, shapely.Point(cx, cy)):
            bank = shapely.intersection(network, north_region)
        else:
            bank = shapely.difference(network, north_region)
        ex, ey = _rotate(np.array([-v.a - 25.0, v.a + 25.0]), np.zeros(2), v.angle)
        main = _dry(_seg(cx + ex[0], cy + ey[0], cx + ex[1], cy + ey[1]), v.centre, water)
        out.add(main, "residential", v.name)
        rows = np.arange(68.0, 1.1 * v.b, 68.0)
        if v.households > 140 or len(rows):
            ex, ey = _rotate(np.zeros(2), np.array([-v.b - 20.0, v.b + 20.0]), v.angle)
            cross = _seg(cx + ex[0], cy + ey[0], cx + ex[1], cy + ey[1])
            out.add(_dry(cross, v.centre, water), "residential", v.name)
        # back lanes between every second row of houses, crossing the cross street
        for off in np.concatenate([rows, -rows]):
            half = v.a * np.sqrt(max(1.0 - (off / (1.25 * v.b)) ** 2, 0.0)) * 1.2
            ex, ey = _rotate(np.array([-half, half]), np.full(2, off), v.angle)
            lane = _seg(cx + ex[0], cy + ey[0], cx + ex[1], cy + ey[1])
            out.add(_dry(lane, v.centre, water), "service", None)
        # track from the nearer end of the main street to the nearest road on the same bank
        links = shapely.shortest_line(shapely.points(shapely.get_coordinates(main)), bank)
        best = links[np.argmin(shapely.length(links))]
        track = _wiggle(rng, best)
        if shapely.intersects(track, water):
            track = best
        if shapely.intersects(track, water):
            y_art = _YC + (_ARTERIAL_DY if cy > river.y(cx) else -_ARTERIAL_DY)
            track = _seg(cx, cy, cx, y_art)
        out.add(track, "track", None)
    return out


def _dry(line: shapely.LineString, centre, water) -> shapely.LineString:
    """The part of `line` nearest `centre` that stays 30 m off the river."""
    parts = _parts(shapely.difference(line, water.buffer(30.0)))
    return min(parts, key=lambda g: g.distance(shapely.Point(centre)))


def _wiggle(rng: np.random.Generator, line: shapely.LineString) -> shapely.LineString:
    """Bend a long straight track a little; the ends stay in place."""
    xy = shapely.get_coordinates(line)
    a, b = xy[0], xy[-1]
    length = float(np.hypot(*(b - a)))
    if length < 150.0:
        return line
    s = np.linspace(0, 1, max(int(length // 60.0), 3))
    amp = rng.uniform(-0.06, 0.06) * length
    off = amp * np.sin(np.pi * s) * np.sin(np.pi * s * rng.uniform(0.8, 2.2))
    u = (b - a) / length
    n = np.array([-u[1], u[0]])
    pts = a + s[:, None] * (b - a) + off[:, None] * n
    pts[0], pts[-1] = a, b
    return _line(pts[:, 0], pts[:, 1])


def _village_houses(
    rng: np.random.Generator, villages, clear_zone, communities: gpd.GeoDataFrame, water
):
    """Rural houses (one household each) and village service centres."""
    geoms, uses, levels, village_of = [], [], [], []
    comm_geoms = communities.geometry.values
    block = shapely.union_all([clear_zone, water.buffer(20.0)])
    shapely.prepare(block)
    biggest = {}
    for k, v in enumerate(villages):
        home = int(np.flatnonzero(shapely.contains(comm_geoms, shapely.Point(v.centre)))[0])
        code = communities["community_code"].iloc[home]
        if code not in biggest or v.households > villages[biggest[code]].households:
            biggest[code] = k
    for k, v in enumerate(villages):
        cx, cy = v.centre
        ellipse = affinity.rotate(
            affinity.scale(shapely.Point(cx, cy).buffer(1.0, 32), v.a * 1.25, v.b * 1.25),
            v.angle,
            origin=(cx, cy),
            use_radians=True,
        )
        x, y, _, _ = _lattice(ellipse, v.angle, 28.0, 34.0, ox=14.0, oy=17.0, centre=(cx, cy))
        n = len(x)
        w = rng.uniform(10.0, 13.0, n)
        d = np.clip(rng.uniform(8.0, 11.5, n), 80.0 / w, 150.0 / w)
        jx = rng.uniform(-1.5, 1.5, n)
        jy = rng.uniform(-2.0, 2.0, n)
        jx, jy = _rotate(jx, jy, v.angle)
        rects = _rects(x + jx, y + jy, w, d, v.angle + rng.normal(0, 0.02, n))
        home = shapely.contains(comm_geoms, shapely.Point(cx, cy))
        region = shapely.difference(
            comm_geoms[home][0], shapely.clip_by_rect(block, *ellipse.buffer(50.0).bounds)
        )
        shapely.prepare(region)
        ok = shapely.contains(region, rects)
        ok &= shapely.contains(ellipse, shapely.centroid(rects))
        cand = np.flatnonzero(ok)
        lx, ly = _rotate(x[cand] - cx, y[cand] - cy, -v.angle)
        score = (lx / v.a) ** 2 + (ly / v.b) ** 2 + rng.uniform(0, 0.25, len(cand))
        with_centre = k in biggest.values()
        take = cand[np.argsort(score)[: v.households + int(with_centre)]]
        use = np.full(len(take), "rural_house", dtype=object)
        lv = np.ones(len(take))
        chosen = rects[take]
        if with_centre:
            # the village party-mass service centre replaces the most central fitting plot
            c = shapely.centroid(chosen)
            pub = _rects(shapely.get_x(c), shapely.get_y(c), 20.0, 11.0, v.angle)
            m = int(np.flatnonzero(shapely.contains(region, pub))[0])
            chosen[m], use[m], lv[m] = pub[m], "public", 2.0
        geoms += list(chosen)
        uses += list(use)
        levels += list(lv)
        village_of += [k] * len(take)
    return (
        np.array(geoms, dtype=object),
        np.array(uses, dtype=object),
        np.array(levels),
        np.array(village_of),
    )


# =======================================================================================
# town fabric: blocks, old houses, institutions, compounds
# =======================================================================================
@dataclass
class _Buildings:
    """Buildings collected step by step; ``_hh`` holds the true households."""

    geoms: list = field(default_factory=list)
    cols: dict = field(
        default_factory=lambda: {
            k: []
            for k in ("名称", "用途", "层数", "单元数", "户数", "compound_id", "difficult", "_hh")
        }
    )

    def add(
        self,
        geoms,
        *,
        name=None,
        use,
        levels=np.nan,
        units=None,
        households=None,
        compound_id=None,
        difficult=False,
        hh=0,
    ):
        geoms = list(geoms)
        n = len(geoms)
        self.geoms += geoms

        def _col(v):
            if isinstance(v, (list, tuple, np.ndarray)):
                return list(v)
            return [v] * n

        self.cols["名称"] += _col(name)
        self.cols["用途"] += _col(use)
        self.cols["层数"] += [float(v) for v in _col(levels)]
        self.cols["单元数"] += _col(units)
        self.cols["户数"] += _col(households)
        self.cols["compound_id"] += _col(compound_id)
        self.cols["difficult"] += _col(difficult)
        self.cols["_hh"] += [int(v) for v in _col(hh)]


def _blocks(communities: gpd.GeoDataFrame, roads: _Roads, water) -> gpd.GeoDataFrame:
    """Parts of the urban communities between the roads (local metres)."""
    cut = shapely.union_all([roads.zone(_EDGE), water.buffer(25.0)])
    urban = communities[communities["kind"] == "community"]
    rows = []
    for code, geom in zip(urban["community_code"], urban.geometry, strict=True):
        for part in _parts(shapely.difference(geom, cut)):
            if part.geom_type == "Polygon" and part.area >= 3000.0:
                rows.append((code, part))
    return gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=["community_code", "geometry"]), geometry="geometry"
    )


def _max_distance(geoms: np.ndarray, line) -> np.ndarray:
    """Largest distance from any vertex of each geometry to `line`."""
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    d = shapely.distance(shapely.points(coords), line)
    out = np.full(len(geoms), -np.inf)
    np.maximum.at(out, idx, d)
    return out


def _old_district(
    rng, blocks: gpd.GeoDataFrame, community, river: _River, roads: _Roads, water, n_target: int
):
    """The old-house district (棚户区): outline, alleys (胡同) and one-storey houses.

    The district fills the blocks of `community` between the river and the arterial
    up to the distance from the river that holds about `n_target` houses.
    """
    sel = (blocks["community_code"] == _OLD_DISTRICT_COMMUNITY) & (
        shapely.get_y(shapely.point_on_surface(blocks.geometry.values)) > _YC - _ARTERIAL_DY
    )
    region = shapely.union_all(blocks.geometry.values[sel])
    rline = river.line()
    cell_w, cell_h = 10.0, 9.2
    need = n_target * cell_w * cell_h / 0.62
    lo, hi = 60.0, 900.0
    for _ in range(25):
        mid = (lo + hi) / 2
        lo, hi = (
            (mid, hi) if shapely.intersection(region, rline.buffer(mid)).area < need else (lo, mid)
        )
    reach = rline.buffer(hi)
    closed = region.buffer(25.0, join_style="mitre").buffer(-25.0, join_style="mitre")
    outline = shapely.intersection(shapely.intersection(community, reach), closed)
    outline = shapely.difference(outline, water.buffer(5.0))
    outline = max(_parts(outline), key=lambda g: g.area)
    band = shapely.intersection(region, reach)

    angle = rng.uniform(-0.05, 0.05)
    c = shapely.centroid(band)
    centre = (c.x, c.y)
    x, y, i, j = _lattice(band, angle, cell_w, cell_h, centre=centre)
    alley_row = j % 7 == 0
    alley_col = i % 9 == 0
    alleys = _Roads()
    network = shapely.union_all(roads.array())
    span = np.array([-2000.0, 2000.0])
    lines = [_rotate(span, np.full(2, jj * cell_h), angle) for jj in np.unique(j[alley_row])]
    lines += [_rotate(np.full(2, ii * cell_w), span, angle) for ii in np.unique(i[alley_col])]
    for wx, wy in lines:
        full = _seg(wx[0] + centre[0], wy[0] + centre[1], wx[1] + centre[0], wy[1] + centre[1])
        for piece in _parts(shapely.intersection(full, band)):
            linked = _connect_line(piece, network, 30.0) if piece.length > 40.0 else None
            if linked is not None:
                alleys.add(linked, "service", None)
    alleys.names = [f"建设{_cn_number(k + 1)}胡同" for k in range(len(alleys.geoms))]

    keep = ~(alley_row | alley_col)
    x, y = x[keep], y[keep]
    n = len(x)
    w = rng.uniform(6.5, 9.0, n)
    d = np.maximum(rng.uniform(5.8, 8.2, n), 40.5 / w)
    jx = rng.uniform(-1, 1, n) * ((cell_w - w) / 2 - 0.5)
    jy = rng.uniform(-1, 1, n) * np.maximum((cell_h - d) / 2 - 0.4, 0)
    jx, jy = _rotate(jx, jy, angle)
    houses = _rects(x + jx, y + jy, w, d, angle)
    free = shapely.difference(
        band,
        shapely.union_all(
            [roads.zone(_CLEAR), alleys.zone({"service": _ALLEY_CLEAR}), water.buffer(10.0)]
        ),
    )
    shapely.prepare(free)
    houses = houses[shapely.contains(free, houses)]
    houses = houses[rng.random(len(houses)) > 0.05]
    if len(houses) > 2450:
        houses = houses[np.sort(rng.choice(len(houses), 2400, replace=False))]
    if len(houses) < 1500:  # pragma: no cover - guarded by the layout
        raise GeometryError(f"only {len(houses)} old houses fit the district", source="sample")
    houses = houses[_reading_order(houses, 9.2)]
    return outline, band, alleys, houses


def _cn_number(n: int) -> str:
    """Chinese numeral for 1..99."""
    digits = "一二三四五六七八九"
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else digits[tens - 1] + "十")
    return head + (digits[ones - 1] if ones else "")


def _place_specs(rng, poly, specs, angle: float = 0.0):
    """Place large buildings one by one near the middle of `poly`, each 10 m apart."""
    free = poly.buffer(-4.0)
    placed = []
    c = shapely.centroid(poly)
    for w, h, lv, label in specs:
        best = None
        for ww, hh, a in ((w, h, angle), (h, w, angle)):
            x, y, _, _ = _lattice(free, a, 6.0, 6.0)
            rects = _rects(x, y, ww, hh, a)
            shapely.prepare(free)
            ok = shapely.contains(free, rects)
            if ok.any():
                cand = rects[ok]
                dist = shapely.distance(shapely.centroid(cand), c) + rng.uniform(0, 25.0, len(cand))
                best = cand[np.argmin(dist)]
                break
        if best is None:
            continue
        placed.append((best, lv, label))
        free = shapely.difference(free, best.buffer(10.0))
    return placed


def _compound_lane(geom, angle: float, network):
    """E-W service lane through the compound middle, reaching the streets if near."""
    c = shapely.centroid(geom)
    ex, ey = _rotate(np.array([-3000.0, 3000.0]), np.zeros(2), angle)
    long = _seg(c.x + ex[0], c.y + ey[0], c.x + ex[1], c.y + ey[1])
    pieces = _parts(shapely.intersection(long, geom))
    if not pieces:
        return None
    piece = max(pieces, key=lambda g: g.length)
    return _connect_line(piece, network, 35.0)


def _compound_buildings(rng, geom, kind: str, angle: float, lane, big: bool):
    """Slabs and towers of one compound. Returns a dict of arrays."""
    c = shapely.centroid(geom)
    free = geom.buffer(-3.0)
    if lane is not None:
        free = shapely.difference(free, lane.buffer(_LANE_CLEAR))
    shapely.prepare(free)
    if kind == "slab":
        umax = int(rng.choice([3, 4], p=[0.4, 0.6]))
        px = 15.0 * umax + rng.uniform(10.0, 14.0)
        py = 12.0 + rng.uniform(30.0, 36.0)
    else:
        px, py = rng.uniform(86.0, 96.0), rng.uniform(70.0, 78.0)
        umax = 4
    x, y, _, _ = _lattice(geom, angle, px, py, ox=rng.uniform(0, px), oy=py / 2, centre=(c.x, c.y))
    n = len(x)
    tower = (
        np.zeros(n, bool)
        if kind == "slab"
        else (np.ones(n, bool) if kind == "tower" else rng.random(n) < 0.3)
    )
    # slabs: 2..umax units of 15 m x 12 m, 5-7 storeys, 2 households per unit and floor
    s_units = umax - (rng.random(n) < 0.35).astype(int)
    s_levels = rng.choice([5, 6, 7], n, p=[0.25, 0.5, 0.25])
    # towers: 1-3 units, 18-33 storeys, 4-8 households per unit and floor
    t_units = rng.choice([1, 2, 3], n, p=[0.3, 0.45, 0.25])
    t_hpf = rng.integers(4, 9, n)
    t_levels = rng.integers(18, 34, n)
    units = np.where(tower, t_units, s_units)
    hpf = np.where(tower, t_hpf, 2)
    levels = np.where(tower, t_levels, s_levels)
    width = np.where(tower, units * (10.0 + 2.0 * t_hpf), units * 15.0)
    depth = np.where(tower, 18.0 + t_hpf, 12.0)
    slack = np.clip(px - width - 12.0, 0, None) / 2
    jx, jy = _rotate(rng.uniform(-1, 1, n) * slack, rng.uniform(-2.0, 2.0, n), angle)
    rects = _rects(x + jx, y + jy, width, depth, angle)
    ok = shapely.contains(free, rects) & (rng.random(n) > (0.15 if kind != "slab" else 0.05))
    if big:
        # the largest tower: 33 storeys, 3 units, 6 households per unit and floor
        bw, bd = 3 * (10.0 + 12.0), 24.0
        brect = _rects(x, y, bw, bd, angle)
        fits = np.flatnonzero(tower & shapely.contains(free, brect))
        if len(fits):
            k = fits[np.argmin(shapely.distance(shapely.centroid(brect[fits]), c))]
            rects[k], ok[k] = brect[k], True
            units[k], hpf[k], levels[k] = 3, 6, 33
            # drop neighbours that now touch it
            near = shapely.dwithin(rects, brect[k], 8.0)
            near[k] = False
            ok &= ~near
    idx = np.flatnonzero(ok)
    idx = idx[_reading_order(rects[idx], py / 2)]
    return {
        "geoms": rects[idx],
        "levels": levels[idx],
        "units": units[idx],
        "hh": (levels * units * hpf)[idx],
        "tower": tower[idx],
    }


def _street_front(rng, arterials: _Roads, zone, clear_zone):
    """Slabs and shops along the arterials, outside compounds."""
    geoms, wid, street = [], [], []
    for line, hw, nm in zip(arterials.geoms, arterials.highway, arterials.names, strict=True):
        xy = shapely.get_coordinates(line)
        (xa, ya), (xb, yb) = xy[0], xy[-1]
        length = np.hypot(xb - xa, yb - ya)
        ang = np.arctan2(yb - ya, xb - xa)
        pitch = 62.0
        s = np.arange(pitch / 2, length, pitch)
        s = s + rng.uniform(-4.0, 4.0, len(s))
        for side in (-1.0, 1.0):
            n = len(s)
            units = rng.integers(2, 5, n)
            w = units * 15.0
            off = side * (_CLEAR[hw] + 6.0 + rng.uniform(0.0, 3.0, n))
            cx = xa + s * np.cos(ang) - off * np.sin(ang)
            cy = ya + s * np.sin(ang) + off * np.cos(ang)
            geoms.append(_rects(cx, cy, w, np.full(n, 12.0), ang))
            wid.append(units)
            street.append(np.full(n, nm, dtype=object))
    rects = np.concatenate(geoms)
    units = np.concatenate(wid)
    street = np.concatenate(street)
    free = shapely.difference(zone, clear_zone)
    shapely.prepare(free)
    ok = shapely.contains(free, rects)
    rects, units, street = rects[ok], units[ok], street[ok]
    keep = _drop_overlaps(rects, 6.0) & (rng.random(len(rects)) < 0.6)
    return rects[keep], units[keep], street[keep]


# =======================================================================================
# events
# =======================================================================================
def _scale_capacities(caps: np.ndarray, total: float) -> np.ndarray:
    """Scale the capacity above 200 persons so that the shelters hold about `total`."""
    excess = caps - 200.0
    factor = max(total - 200.0 * len(caps), 0.0) / excess.sum()
    return np.ceil(np.clip(200.0 + excess * factor, 200.0, 2500.0) / 10.0) * 10.0


def _events(rng, communities, buildings, market, district_houses, hot_geoms, town):
    n = 5000 + int(rng.integers(-40, 41))
    comp = rng.choice(len(_EVENT_COMPONENTS), n, p=_EVENT_COMPONENTS)
    cat = np.empty(n, int)
    for k in range(len(_EVENT_COMPONENTS)):
        m = comp == k
        cat[m] = rng.choice(len(_CATEGORIES), m.sum(), p=_EVENT_CATEGORY_MIX[k])

    # where
    x, y = np.empty(n), np.empty(n)
    cen = shapely.centroid(buildings["geoms"])
    bx, by = shapely.get_x(cen), shapely.get_y(cen)
    hh = buildings["hh"].astype(float)
    m = comp == 0
    pick = rng.choice(len(hh), m.sum(), p=hh / hh.sum())
    x[m], y[m] = bx[pick] + rng.normal(0, 6.0, m.sum()), by[pick] + rng.normal(0, 6.0, m.sum())
    m = comp == 1
    mc = shapely.centroid(market)
    x[m], y[m] = mc.x + rng.normal(0, 35.0, m.sum()), mc.y + rng.normal(0, 30.0, m.sum())
    m = comp == 2
    dc = shapely.centroid(district_houses)
    pick = rng.integers(0, len(dc), m.sum())
    x[m], y[m] = (
        shapely.get_x(dc)[pick] + rng.normal(0, 4.0, m.sum()),
        shapely.get_y(dc)[pick] + rng.normal(0, 4.0, m.sum()),
    )
    m = comp == 3
    hc = shapely.centroid(hot_geoms)
    pick = rng.integers(0, len(hc), m.sum())
    x[m], y[m] = (
        shapely.get_x(hc)[pick] + rng.normal(0, 10.0, m.sum()),
        shapely.get_y(hc)[pick] + rng.normal(0, 10.0, m.sum()),
    )
    m = comp == 4
    tb = town.bounds
    x[m], y[m] = rng.uniform(tb[0], tb[2], m.sum()), rng.uniform(tb[1], tb[3], m.sum())
    pts = shapely.points(x, y)
    tree = shapely.STRtree(communities.geometry.values)
    inside = np.zeros(n, bool)
    inside[np.unique(tree.query(pts, predicate="within")[0])] = True
    if not inside.all():  # pragma: no cover - jitter across the study boundary
        raise GeometryError("an event fell outside the communities", source="sample")

    # when (local time, seconds since 2025-01-01 00:00 +08:00)
    day_month = (np.datetime64("2025-01-01") + np.arange(365)).astype("datetime64[M]").astype(
        int
    ) % 12
    day = np.empty(n, int)
    for k in range(len(_CATEGORIES)):
        m = cat == k
        w = _MONTH_WEIGHTS[k][day_month]
        day[m] = rng.choice(365, m.sum(), p=w / w.sum())
    resident = rng.random(n) < 0.1
    tod = np.where(
        resident, rng.uniform(7 * 3600, 22 * 3600, n), rng.uniform(8 * 3600, 17.5 * 3600, n)
    )
    reported = day * 86400 + tod.astype(int)
    deadline = reported + _DEADLINE_DAYS[cat] * 86400
    on_time = rng.random(n) < np.where(resident, 0.9603, 0.9727)
    span = deadline - reported
    closed = np.where(
        on_time,
        reported + np.maximum(1800, (rng.beta(2.0, 3.0, n) * span).astype(int)),
        deadline + 3600 + rng.exponential(2.0 * 86400, n).astype(int),
    )
    year_end = 365 * 86400
    open_ = closed >= year_end
    late_dec = np.flatnonzero(
        ~open_ & (deadline > year_end - 20 * 86400) & (deadline < year_end - 86400)
    )
    open_[rng.choice(late_dec, min(4, len(late_dec)), replace=False)] = True

    order = np.argsort(reported, kind="stable")
    base = np.datetime64("2025-01-01T00:00:00")

    def _iso(sec):
        return np.char.add(
            np.datetime_as_string(base + sec.astype("timedelta64[s]"), unit="s"), "+08:00"
        )

    closed_s = _iso(closed).astype(object)
    closed_s[open_] = None
    df = pd.DataFrame(
        {
            "event_id": [f"E2025{k + 1:06d}" for k in range(n)],
            "reported_at": _iso(reported)[order].astype(object),
            "category": np.array(_CATEGORIES, dtype=object)[cat][order],
            "source": np.where(resident, "resident", "grid_worker").astype(object)[order],
            "deadline": _iso(deadline)[order].astype(object),
            "status": np.where(open_, "open", "closed").astype(object)[order],
            "closed_at": closed_s[order],
        }
    )
    return gpd.GeoDataFrame(df, geometry=pts[order])


# =======================================================================================
# the build
# =======================================================================================
@dataclass
class _Built:
    layers: dict[str, gpd.GeoDataFrame]
    dem: np.ndarray
    depth: np.ndarray
    transform: object
    stats: dict = field(default_factory=dict)


def _frame(df: pd.DataFrame, geoms) -> gpd.GeoDataFrame:
    """Local metres -> EPSG:4326 GeoDataFrame."""
    shifted = shapely.transform(np.asarray(geoms, dtype=object), lambda c: c + _ORIGIN)
    gdf = gpd.GeoDataFrame(df.reset_index(drop=True), geometry=shifted, crs=METRIC_CRS)
    return gdf.to_crs(4326)


def _build(seed: int) -> _Built:
    """Generate every layer and both rasters of the sample town."""
    rng = np.random.default_rng(seed)
    river = _make_river(rng)
    study = _study_area(rng)
    water_full = river.water()
    water = shapely.intersection(water_full, study)
    terrain = _terrain(rng, river, study, water)
    communities = _partition(study, river)
    town = _town_box()

    # roads: town network, then villages with their tracks
    roads = _town_roads(rng, study, river)
    villages = _village_sites(rng, study, river, terrain)
    roads.extend(_village_roads(rng, villages, roads, river, water))

    # blocks of the town
    blocks = _blocks(communities, roads, water)
    rline = river.line()
    blocks["riverside"] = _max_distance(blocks.geometry.values, rline) < 150.0
    blocks["use"] = np.where(blocks["riverside"], "green", "")

    b = _Buildings()
    n_old = int(rng.integers(1900, 2200))
    comm006 = communities.geometry.values[communities["community_code"] == _OLD_DISTRICT_COMMUNITY][
        0
    ]
    district, band, alleys, houses = _old_district(rng, blocks, comm006, river, roads, water, n_old)
    b.add(houses, use="house", levels=1.0, difficult=True, hh=1)

    # blocks minus the old-house district
    geoms = blocks.geometry.values
    touched = shapely.intersects(geoms, band)
    rest = []
    for code, geom in zip(blocks["community_code"][touched], geoms[touched], strict=True):
        for part in _parts(shapely.difference(geom, band.buffer(6.0))):
            if part.geom_type == "Polygon" and part.area >= 3000.0:
                rest.append((code, part))
    blocks = pd.concat(
        [
            blocks[~touched],
            gpd.GeoDataFrame(
                pd.DataFrame(rest, columns=["community_code", "geometry"]), geometry="geometry"
            ),
        ],
        ignore_index=True,
    )
    blocks["riverside"] = _max_distance(blocks.geometry.values, rline) < 150.0
    blocks["use"] = np.where(blocks["riverside"], "green", "")
    blocks = gpd.GeoDataFrame(blocks, geometry="geometry")
    bgeoms = blocks.geometry.values
    brep = shapely.point_on_surface(bgeoms)
    barea = shapely.area(bgeoms)

    # institutions, the gym and one party-mass service centre per community
    inst_rows, shelters = [], []

    def _take(target, min_area, community=None):
        free = (blocks["use"] == "") & (barea >= min_area)
        if community is not None:
            free &= blocks["community_code"] == community
        idx = np.flatnonzero(free)
        if target is None:
            return idx
        d = shapely.distance(brep[idx], shapely.Point(target))
        return idx[np.argmin(d)]

    for name, use, (dx, dy), specs in _INSTITUTIONS:
        k = _take((_TOWN_X[0] + dx, _YC + dy), 12000.0)
        blocks.loc[k, "use"] = use
        inst_rows.append((name, use, bgeoms[k]))
        placed = _place_specs(rng, bgeoms[k], specs)
        for m, (g, lv, label) in enumerate(placed):
            b.add([g], name=f"{name}{label}", use=use, levels=lv, households=0)
            if use == "school" and m == 0:
                cap = int(round(rng.uniform(900, 1500), -1))
                shelters.append((name, "school", cap, shapely.centroid(g)))
    name, (dx, dy), specs = _GYM
    k = _take((_TOWN_X[0] + dx, _YC + dy), 12000.0)
    blocks.loc[k, "use"] = "public"
    for g, lv, _ in _place_specs(rng, bgeoms[k], specs):
        b.add([g], name=name, use="public", levels=lv, households=0)
        shelters.append((name, "gym", int(round(rng.uniform(2000, 2500), -1)), shapely.centroid(g)))
    for code, _, cname in _URBAN:
        idx = _take(None, 5000.0, code)
        z = terrain.elevation(shapely.get_x(brep[idx]), shapely.get_y(brep[idx]))
        k = idx[np.argmax(z)]
        blocks.loc[k, "use"] = "public"
        for g, lv, _ in _place_specs(rng, bgeoms[k], ((36, 18, 3, ""),)):
            b.add([g], name=f"{cname}党群服务中心", use="public", levels=lv, households=0)
            cap = int(round(rng.uniform(250, 550), -1))
            shelters.append((f"{cname}党群服务中心", "service_centre", cap, shapely.centroid(g)))

    # compounds: free blocks minus strips along the arterials
    art = _Roads()
    for g, h, nm in zip(roads.geoms, roads.highway, roads.names, strict=True):
        if h in ("primary", "secondary"):
            clipped = shapely.intersection(g, town)
            art.add(clipped, h, nm)
    strip_zone = art.zone(_EDGE, 30.0)
    cand = []
    strips = []
    for k in np.flatnonzero(blocks["use"] == ""):
        g = bgeoms[k]
        strips.append(shapely.intersection(g, strip_zone))
        for part in _parts(shapely.difference(g, strip_zone)):
            if part.geom_type == "Polygon" and part.area >= 10000.0:
                cand.append((blocks["community_code"].iloc[k], part))
    network = shapely.union_all(roads.array())
    lanes = []
    for _, g in cand:
        angle = float(np.clip(rng.normal(0, 0.06), -0.12, 0.12))
        lanes.append((angle, _compound_lane(g, angle, network)))

    # buildings along the arterials (outside compounds)
    lane_zone = shapely.union_all([ln.buffer(_LANE_CLEAR) for _, ln in lanes if ln is not None])
    clear_zone = shapely.union_all(
        [roads.zone(_CLEAR), alleys.zone({"service": _ALLEY_CLEAR}), lane_zone]
    )
    front, front_units, front_street = _street_front(
        rng, art, shapely.union_all(strips), clear_zone
    )
    shop = rng.random(len(front)) < 0.2
    f_levels = np.where(shop, rng.integers(2, 4, len(front)), rng.choice([5, 6, 7], len(front)))
    f_hh = np.where(shop, 0, f_levels * front_units * 2)
    f_levels_given = np.where(rng.random(len(front)) < 0.25, np.nan, f_levels.astype(float))
    f_comm = np.array(communities["community_code"])[
        shapely.STRtree(communities.geometry.values).query(
            shapely.centroid(front), predicate="within"
        )[1]
    ]
    order = _reading_order(front)
    b.add(
        front[order],
        use=np.where(shop, "commercial", "residential")[order],
        levels=f_levels_given[order],
        hh=f_hh[order],
        name=[
            f"{nm}商铺" if s else None
            for s, nm in zip(shop[order], front_street[order], strict=True)
        ],
    )

    # fill the compounds of each community up to its household target
    kinds = rng.choice(["slab", "tower", "mixed"], len(cand), p=[0.72, 0.12, 0.16])
    cand_comm = np.array([c for c, _ in cand])
    fixed = pd.Series(f_hh, index=f_comm).groupby(level=0).sum()
    targets = {code: int(rng.integers(3200, 3550)) for code, _, _ in _URBAN}
    compound_rows, compound_hh = [], []
    names = [p + s for p in _COMPOUND_PREFIX for s in _COMPOUND_SUFFIX]
    names = [names[k] for k in rng.permutation(len(names))]
    big_done = False
    used: set[int] = set()
    # the big tower goes into the first tower compound of 红星社区 (002)
    k002 = np.flatnonzero(cand_comm == "002")
    if len(k002):
        kinds[k002[0]] = "tower"
    for code, _, _ in _URBAN:
        total = int(fixed.get(code, 0)) + (len(houses) if code == _OLD_DISTRICT_COMMUNITY else 0)
        idx = np.flatnonzero(cand_comm == code)
        if code != "002":
            idx = idx[rng.permutation(len(idx))]
        # build every candidate; densify (slab -> mixed -> tower) while short of the target
        plans = {}
        for k in idx:
            big = kinds[k] == "tower" and not big_done and code == "002"
            plans[k] = _compound_buildings(rng, cand[k][1], kinds[k], *lanes[k], big)
        for k in list(idx[::-1]) * 2:
            if total + sum(int(p_["hh"].sum()) for p_ in plans.values()) >= targets[code] + 300:
                break
            if kinds[k] == "tower":
                continue
            kinds[k] = "mixed" if kinds[k] == "slab" else "tower"
            plans[k] = _compound_buildings(rng, cand[k][1], kinds[k], *lanes[k], False)
        for k in idx:
            if total >= targets[code]:
                break
            angle, lane = lanes[k]
            cb = plans[k]
            big = bool((cb["hh"] > 500).any())
            if len(cb["geoms"]) == 0:
                continue
            big_done |= big
            keep = np.ones(len(cb["geoms"]), bool)
            need = targets[code] - total
            if cb["hh"].sum() > need + 300:
                # build only part of the compound (the rest stays vacant)
                order = np.arange(len(keep)) if rng.random() < 0.5 else np.arange(len(keep))[::-1]
                if big:
                    order = np.concatenate(
                        [np.flatnonzero(cb["hh"] > 500), order[cb["hh"][order] <= 500]]
                    )
                csum = np.cumsum(cb["hh"][order])
                n_keep = int(np.searchsorted(csum, need)) + 1
                keep[:] = False
                keep[order[:n_keep]] = True
            cid = f"XQ{len(compound_rows) + 1:04d}"
            cname = names[len(compound_rows)]
            compound_rows.append((cid, cname, code, cand[k][1]))
            given = cb["hh"].astype(object)
            missing = (~cb["tower"]) & (rng.random(len(keep)) < 0.1)
            given[missing] = None
            sel = np.flatnonzero(keep)
            b.add(
                cb["geoms"][sel],
                name=[f"{cname}{m + 1}号楼" for m in range(len(sel))],
                use="apartments",
                levels=cb["levels"][sel],
                units=cb["units"][sel].tolist(),
                households=[given[m] for m in sel],
                compound_id=cid,
                hh=cb["hh"][sel],
            )
            used.add(int(k))
            compound_hh.append(int(cb["hh"][sel].sum()))
            total += int(cb["hh"][sel].sum())
            if lane is not None:
                roads.add(lane, "service", None)
    if not big_done:  # pragma: no cover - guarded by the layout
        raise GeometryError("no tower with more than 500 households was placed", source="sample")
    roads.extend(alleys)

    # some vacant blocks hold shops, stores and garages (no households)
    for k in range(len(cand)):
        if k in used or rng.random() < 0.5:
            continue
        m = int(rng.integers(1, 4))
        pick = rng.choice(len(_OTHER_SPECS), m, replace=False)
        specs = [_OTHER_SPECS[q] for q in pick]
        for g, lv, label in _place_specs(rng, cand[k][1], [s_[1:] for s_ in specs]):
            use = next(s_[0] for s_ in specs if s_[4] == label)
            b.add([g], name=label, use=use, levels=lv)

    # villages
    v_clear = roads.zone(_CLEAR)
    comm_geoms = communities.geometry.values
    vg, vuses, vlevels, vof = _village_houses(rng, villages, v_clear, communities, water)
    public = vuses == "public"
    village_name = {}
    for k, v in enumerate(villages):
        home = int(np.flatnonzero(shapely.contains(comm_geoms, shapely.Point(v.centre)))[0])
        village_name[k] = communities["name"].iloc[home]
    v_names = [
        f"{village_name[k]}党群服务中心" if p else None for k, p in zip(vof, public, strict=True)
    ]
    for k in np.flatnonzero(public):
        cap = int(round(rng.uniform(200, 320), -1))
        shelters.append((v_names[k], "service_centre", cap, shapely.centroid(vg[k])))
    b.add(
        vg,
        name=v_names,
        use=list(vuses),
        levels=vlevels,
        households=[0 if p else None for p in public],
        hh=np.where(public, 0, 1),
    )

    # final network
    road_gdf = _node(roads)

    # buildings table
    bdf = pd.DataFrame(b.cols)
    bgeo = np.array(b.geoms, dtype=object)
    bdf.insert(0, "楼栋编号", [f"YM{k + 1:06d}" for k in range(len(bdf))])
    for col in ("单元数", "户数"):
        bdf[col] = pd.array(
            [
                None if v is None or (isinstance(v, float) and np.isnan(v)) else int(v)
                for v in bdf[col]
            ],
            dtype="Int64",
        )
    bdf["difficult"] = bdf["difficult"].astype(bool)
    bdf["名称"] = bdf["名称"].astype(object)
    bdf["compound_id"] = bdf["compound_id"].astype(object)
    true_hh = bdf.pop("_hh").to_numpy()

    # shelters sized for the 2013 flood
    cen = shapely.centroid(bgeo)
    depth_b = terrain.flood_depth(shapely.get_x(cen), shapely.get_y(cen))
    hh_red_orange = int(true_hh[depth_b >= 0.5].sum())
    hh_flooded = int(true_hh[depth_b > 0].sum())
    caps = np.array([s[2] for s in shelters], float)
    caps = _scale_capacities(caps, 1.25 * _PERSONS_PER_HOUSEHOLD * hh_red_orange)
    sdf = pd.DataFrame(
        {
            "name": [s[0] for s in shelters],
            "type": [s[1] for s in shelters],
            "capacity": caps.astype(int),
        }
    )

    # events
    hot = np.argsort(compound_hh)[::-1][:3]
    hot_ids = {compound_rows[k][0] for k in hot}
    hot_mask = bdf["compound_id"].isin(hot_ids).to_numpy()
    market = next(g for n_, u, g in inst_rows if u == "market")
    events = _events(
        rng,
        communities,
        {"geoms": bgeo, "hh": true_hh},
        market,
        houses,
        bgeo[hot_mask],
        town,
    )

    # layers
    streets = communities.dissolve(by="street_code", as_index=False)[["street_code", "geometry"]]
    streets["name"] = streets["street_code"].map(dict(_STREETS))
    flood = _flood_polygons(terrain)
    rivers_df = pd.DataFrame({"name": ["伊春河", "松林沟"], "waterway": ["river", "stream"]})
    river_geoms = [shapely.intersection(rline, study), shapely.intersection(terrain.stream, study)]
    river_geoms = [max(_parts(g), key=lambda p: p.length) for g in river_geoms]
    cdf = pd.DataFrame(compound_rows, columns=["compound_id", "name", "community_code", "geometry"])
    layers = {
        "streets": _frame(streets[["street_code", "name"]], streets.geometry.values),
        "communities": _frame(communities.drop(columns="geometry"), communities.geometry.values),
        "compounds": _frame(cdf.drop(columns="geometry"), cdf["geometry"].values),
        "buildings": _frame(bdf, bgeo),
        "difficult_areas": _frame(
            pd.DataFrame(
                {
                    "name": ["建设社区老旧平房区"],
                    "reason": ["老旧平房区（棚户区）：房屋密集、人口流动大、地势低洼"],
                }
            ),
            [district],
        ),
        "institutions": _frame(
            pd.DataFrame({"name": [r[0] for r in inst_rows], "use": [r[1] for r in inst_rows]}),
            [r[2] for r in inst_rows],
        ),
        "roads": _frame(road_gdf.drop(columns="geometry"), road_gdf.geometry.values),
        "rivers": _frame(rivers_df, river_geoms),
        "water": _frame(
            pd.DataFrame({"name": ["伊春河"]}), [max(_parts(water), key=lambda p: p.area)]
        ),
        "flood_extent": _frame(
            pd.DataFrame(
                {
                    "name": ["2013年伊春河洪水淹没范围"] * len(flood),
                    "year": [2013] * len(flood),
                    "depth_m": [np.nan] * len(flood),
                }
            ),
            flood,
        ),
        "shelters": _frame(sdf, [s[3] for s in shelters]),
        "events": _frame(events.drop(columns="geometry"), events.geometry.values),
    }
    transform = from_origin(terrain.x0 + _ORIGIN[0], terrain.y1 + _ORIGIN[1], _CELL, _CELL)
    stats = {
        "households": int(true_hh.sum()),
        "households_red_orange": hh_red_orange,
        "households_flooded": hh_flooded,
        "shelter_capacity": int(caps.sum()),
        "old_houses": len(houses),
        "villages": [(v.name, v.households, v.isolated) for v in villages],
        "true_households": true_hh,
    }
    return _Built(layers, terrain.dem, terrain.depth, transform, stats)
