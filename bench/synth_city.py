"""Synthetic city generator for gridmap benchmarks.

Builds a city of any size (10k to 1M+ buildings) in a metric CRS, with the layers the
grid partition needs: buildings, communities, compounds, barriers (major roads and a
river), difficult areas and institutions. Everything is generated with numpy arrays and
shapely's vectorised constructors: no Python loop runs per building.

The city is a lattice of 300 m cells separated by roads:

- the inner cells are urban: each holds four walled compounds (小区) of six-storey slabs
  or high-rise towers (a few towers hold more than 500 households), or institution
  campuses (schools, hospitals, markets, enterprises, government) or shops;
- some inner cells are old one-storey districts (平房区, one household per house, with
  sheds), marked as difficult areas;
- the outer cells are rural: villages of single houses (30–250 households) with
  outbuildings, or farmland with field huts; some villages are difficult (sparse
  forest settlements);
- cells along a river are left green.

Communities (3,000–5,000 households each) are runs of cells along a space-filling path
(column zigzags in bands of four rows), cut by dynamic programming so that every
community lands in the range; runs are contiguous, so every community is one polygon
and the communities tile the city.

Run ``python bench/synth_city.py --buildings 100000 --out /tmp/city100k.gpkg`` to write
all layers to one GeoPackage (add ``--check`` to print checks of the result).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["check_city", "generate_city", "write_city"]

CELL = 300.0  # lattice step (m), road centre line to road centre line
ROAD = 12.0  # setback from the cell edge (half road width + verge)
INNER = CELL - 2 * ROAD  # 276 m of buildable land per cell
LANE = 12.0  # lane between the four compounds of an urban cell
COMPOUND = (INNER - LANE) / 2  # 132 m
BAND = 4  # rows per band of the community path
ORIGIN = (560_000.0, 5_270_000.0)  # near Yichun in UTM 52N (EPSG:32652)
HOUSEHOLD_RANGE = (3000, 5000)  # households per community
GIVEN_SHARE = 0.7  # share of buildings whose households are given

# cell types
URBAN, OLD, VILLAGE, FARM, GREEN = range(5)
# compound-slot types inside an urban cell
SLAB, TOWER, CAMPUS, SHOPS = range(4)

USES = np.array(
    [
        "apartments",  # 0
        "house",  # 1
        "rural_house",  # 2
        "shed",  # 3
        "garage",  # 4
        "commercial",  # 5
        "school",  # 6
        "hospital",  # 7
        "market",  # 8
        "enterprise",  # 9
        "government",  # 10
    ],
    dtype=object,
)
_USE = {name: i for i, name in enumerate(USES)}
_INSTITUTION_USES = np.array([6, 7, 8, 9, 10])
_INSTITUTION_P = np.array([0.35, 0.15, 0.15, 0.25, 0.10])
_AUXILIARY = np.array([_USE["shed"], _USE["garage"]])  # trimmed first to hit n exactly

# expected buildings per cell of each type (used to size the lattice)
_EXPECTED_BUILDINGS = {URBAN: 34.0, OLD: 745.0, VILLAGE: 330.0, FARM: 1.9, GREEN: 0.0}
_SHARES = {URBAN: 0.40, OLD: 0.05, VILLAGE: 0.33, FARM: 0.22}

_WORDS = np.array(
    list("幸福和平光明新兴林海翠园阳光锦绣金山银河友谊朝阳东方红星春城丽景鑫源华府书香怡和")
)
_WORDS = np.char.add(_WORDS[0::2], _WORDS[1::2])  # two-character words
_COMPOUND_SUFFIX = np.array(["小区", "家园", "花园", "苑", "公寓", "新城"])

SOURCE_COLUMNS = {
    "building_id": "楼栋编号",
    "name": "名称",
    "use": "用途",
    "levels": "层数",
    "units": "单元数",
    "households": "户数",
}


@dataclass
class _Parts:
    """Building arrays collected type by type, concatenated at the end."""

    cols: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {
            k: []
            for k in ("x0", "y0", "x1", "y1", "use", "levels", "units", "hh", "compound", "cell")
        }
    )

    def add(self, x0, y0, w, h, use, levels, units, hh, compound, cell) -> None:
        n = len(x0)
        values = {
            "x0": x0,
            "y0": y0,
            "x1": x0 + w,
            "y1": y0 + h,
            "use": np.broadcast_to(use, n),
            "levels": np.broadcast_to(levels, n),
            "units": np.broadcast_to(units, n),
            "hh": np.broadcast_to(hh, n),
            "compound": np.broadcast_to(compound, n),
            "cell": cell,
        }
        for k, v in values.items():
            self.cols[k].append(np.asarray(v))

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) for k, v in self.cols.items()}


def generate_city(n_buildings: int, seed: int = 0, crs: str = "EPSG:32652") -> dict:
    """Generate a synthetic city with about `n_buildings` buildings (exactly, when
    enough sheds exist to trim).

    Parameters
    ----------
    n_buildings : int
        Number of buildings wanted (≥ 2,000).
    seed : int
        Random seed; the same seed gives the same city.
    crs : str
        A projected metric CRS for the output layers (coordinates are placed near
        Yichun in UTM 52N).

    Returns
    -------
    dict
        ``buildings`` (``building_id``, ``use``, ``levels``, ``units``,
        ``households`` (given for ~70 %), ``name``, ``compound_id``, geometry),
        ``communities`` (``community_code``, ``street_code``, ``name``, ``kind``,
        geometry), ``compounds`` (``compound_id``, ``name``, ``community_code``),
        ``barriers`` (``highway``, ``waterway``, ``name``; lines), ``difficult``
        (``name``, ``reason``), ``institutions`` (``name``, ``use``), and ``stats``
        (a dict: true households, counts per cell type).
    """
    if n_buildings < 2000:
        raise ValueError("n_buildings must be at least 2,000 (a city of one community)")
    n_cells = n_buildings * 1.05 / sum(_EXPECTED_BUILDINGS[t] * s for t, s in _SHARES.items())
    for _attempt in range(6):
        width = max(5, int(math.sqrt(n_cells)) | 1)  # odd width: the band path needs it
        height = max(4, math.ceil(n_cells / width))
        rng = np.random.default_rng([seed, _attempt])
        kind, river = _cell_types(width, height, rng)
        expected = sum(_EXPECTED_BUILDINGS[t] * np.count_nonzero(kind == t) for t in range(5))
        if expected < 1.03 * n_buildings:
            n_cells *= 1.05 * n_buildings / max(expected, 1.0)
            continue
        parts, compounds, campuses, difficult = _buildings(width, height, kind, rng)
        arrays = parts.arrays()
        if len(arrays["x0"]) >= n_buildings:
            break
        n_cells *= 1.05 * n_buildings / len(arrays["x0"])
    else:  # pragma: no cover - the lattice grows every attempt
        raise RuntimeError("could not reach the number of buildings asked for")
    arrays = _trim(arrays, n_buildings, rng)
    cell_hh = np.bincount(arrays["cell"], weights=arrays["hh"], minlength=width * height)
    community_of_cell, n_comm = _communities_on_path(width, height, cell_hh)
    return _assemble(
        arrays, compounds, campuses, difficult, river, kind, community_of_cell, n_comm,
        width, height, rng, crs,
    )  # fmt: skip


# --------------------------------------------------------------------------- layout


def _cell_origin(cell: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower-left corner of each cell's buildable land."""
    col, row = cell % width, cell // width
    return ORIGIN[0] + col * CELL + ROAD, ORIGIN[1] + row * CELL + ROAD


def _river_line(width: int, height: int, rng: np.random.Generator) -> shapely.LineString:
    x = np.linspace(-CELL, (width + 1) * CELL, max(50, width * 8))
    wavelength = max(3000.0, width * CELL / 1.7)
    phase = rng.uniform(0, 2 * np.pi)
    y = height * CELL * 0.37 + 1.2 * CELL * np.sin(2 * np.pi * x / wavelength + phase)
    return shapely.LineString(np.column_stack([x + ORIGIN[0], y + ORIGIN[1]]))


def _cell_types(
    width: int, height: int, rng: np.random.Generator
) -> tuple[np.ndarray, shapely.LineString]:
    """Assign a type to every cell: green along the river, urban/old inside, rural out."""
    n = width * height
    cell = np.arange(n)
    col, row = cell % width, cell // width
    river = _river_line(width, height, rng)
    x0, y0 = ORIGIN[0] + col * CELL, ORIGIN[1] + row * CELL
    boxes = shapely.box(x0 + ROAD, y0 + ROAD, x0 + CELL - ROAD, y0 + CELL - ROAD)
    green = shapely.intersects(boxes, shapely.buffer(river, 40.0))

    # distance from the centre (normalised to the half-sides) plus noise, ranked
    dx = (col + 0.5 - width / 2) / (width / 2)
    dy = (row + 0.5 - height / 2) / (height / 2)
    rho = np.hypot(dx, dy) + rng.normal(0, 0.08, n)
    rho[green] = np.inf
    order = np.argsort(rho, kind="stable")
    land = order[: np.count_nonzero(~green)]
    n_land = len(land)
    kind = np.full(n, GREEN, dtype=np.int8)
    n_inner = round((_SHARES[URBAN] + _SHARES[OLD]) * n_land)
    inner, outer = land[:n_inner], land[n_inner:]
    kind[inner] = URBAN
    # old one-storey districts: inner cells, more likely towards the urban fringe
    n_old = round(_SHARES[OLD] * n_land)
    weight = np.arange(1, len(inner) + 1, dtype=float)
    old = rng.choice(inner, size=min(n_old, len(inner)), replace=False, p=weight / weight.sum())
    kind[old] = OLD
    village_share = _SHARES[VILLAGE] / (_SHARES[VILLAGE] + _SHARES[FARM])
    kind[outer] = np.where(rng.random(len(outer)) < village_share, VILLAGE, FARM)
    return kind, river


def _lattice(n_x: np.ndarray, n_y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand groups into slots: (group index, column, row) for n_x × n_y slots each."""
    n_x, n_y = np.asarray(n_x, dtype=np.int64), np.asarray(n_y, dtype=np.int64)
    count = n_x * n_y
    group = np.repeat(np.arange(len(count)), count)
    local = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return group, local % n_x[group], local // n_x[group]


def _uniform(rng: np.random.Generator, low, high, n: int) -> np.ndarray:
    return low + (np.asarray(high) - np.asarray(low)) * rng.random(n)


def _buildings(width: int, height: int, kind: np.ndarray, rng: np.random.Generator):
    parts = _Parts()
    compounds: dict[str, list] = {"x0": [], "y0": [], "cell": [], "type": []}
    campuses: dict[str, np.ndarray] = {}
    difficult: dict[str, list] = {"geometry": [], "reason": []}

    _urban(np.flatnonzero(kind == URBAN), width, rng, parts, compounds, campuses)
    _old(np.flatnonzero(kind == OLD), width, rng, parts, difficult)
    _villages(np.flatnonzero(kind == VILLAGE), width, rng, parts, difficult)
    _farmland(np.flatnonzero(kind == FARM), width, rng, parts)
    return parts, compounds, campuses, difficult


def _urban(cells, width, rng, parts: _Parts, compounds: dict, campuses: dict) -> None:
    """Four compound slots per urban cell: slab or tower compounds, campuses, shops."""
    cx, cy = _cell_origin(cells, width)
    slot_cell = np.repeat(cells, 4)
    offsets = np.array([0.0, COMPOUND + LANE])
    sx = np.repeat(cx, 4) + np.tile(np.repeat(offsets, 2), len(cells))
    sy = np.repeat(cy, 4) + np.tile(np.tile(offsets, 2), len(cells))
    stype = rng.choice(4, size=len(slot_cell), p=[0.62, 0.15, 0.13, 0.10])
    # at most one tower compound per cell, so that no cell outgrows a community
    is_tower = (stype == TOWER).reshape(-1, 4)
    extra = np.cumsum(is_tower, axis=1) > 1
    stype[(is_tower & extra).ravel()] = SLAB

    housing = np.flatnonzero((stype == SLAB) | (stype == TOWER))
    compound_index = np.full(len(stype), -1)
    compound_index[housing] = np.arange(len(housing))
    compounds["x0"].append(sx[housing])
    compounds["y0"].append(sy[housing])
    compounds["cell"].append(slot_cell[housing])
    compounds["type"].append(stype[housing])

    # slab compounds: 2 columns x 4 rows of 66 x 33 m plots, slab in the north part
    s = np.flatnonzero(stype == SLAB)
    g, i, j = _lattice(np.full(len(s), 2), np.full(len(s), 4))
    keep = rng.random(len(g)) > 0.08
    g, i, j = g[keep], i[keep], j[keep]
    px, py = sx[s][g] + i * 66.0, sy[s][g] + j * 33.0
    n = len(g)
    units = rng.integers(2, 5, n)
    levels = rng.integers(5, 8, n)
    length = units * _uniform(rng, 13.0, 15.5, n)
    depth = _uniform(rng, 10.0, 12.5, n)
    x = px + _uniform(rng, 2.0, 66.0 - 2.0 - length, n)
    y = py + 33.0 - 2.0 - depth - _uniform(rng, 0.0, 2.0, n)
    comp, cell = compound_index[s][g], slot_cell[s][g]
    parts.add(
        x, y, length, depth, _USE["apartments"], levels, units, levels * units * 2, comp, cell
    )
    garage = rng.random(n) < 0.35
    gx = px[garage] + _uniform(rng, 2.0, 58.0, garage.sum())
    gy = py[garage] + _uniform(rng, 3.0, 8.0, garage.sum())
    parts.add(gx, gy, 6.0, 4.0, _USE["garage"], 1.0, 0, 0, comp[garage], cell[garage])

    # tower compounds: 2 x 2 plots of 66 m, tower in the north part, shop in the south
    t = np.flatnonzero(stype == TOWER)
    g, i, j = _lattice(np.full(len(t), 2), np.full(len(t), 2))
    px, py = sx[t][g] + i * 66.0, sy[t][g] + j * 66.0
    n = len(g)
    big = rng.random(n) < 0.04
    levels = np.where(big, rng.integers(30, 34, n), rng.integers(18, 34, n))
    units = np.where(big, 4, rng.integers(1, 4, n))
    per_floor = np.where(big, 5, rng.integers(2, 5, n))
    w = np.where(big, 40.0, _uniform(rng, 18.0, 28.0, n))
    d = np.where(big, 22.0, _uniform(rng, 14.0, 20.0, n))
    x = px + _uniform(rng, 3.0, 66.0 - 3.0 - w, n)
    y = py + 66.0 - 3.0 - d - _uniform(rng, 0.0, 4.0, n)
    comp, cell = compound_index[t][g], slot_cell[t][g]
    parts.add(x, y, w, d, _USE["apartments"], levels, units, levels * units * per_floor, comp, cell)
    shop = rng.random(n) < 0.5
    parts.add(
        px[shop] + _uniform(rng, 3.0, 51.0, shop.sum()),
        py[shop] + _uniform(rng, 3.0, 12.0, shop.sum()),
        12.0, 8.0, _USE["commercial"], 2.0, 0, 0, comp[shop], cell[shop],
    )  # fmt: skip

    # campuses: one institution per slot, 2 x 3 plots of 66 x 44 m
    c = np.flatnonzero(stype == CAMPUS)
    use = rng.choice(_INSTITUTION_USES, size=len(c), p=_INSTITUTION_P)
    campuses.update(x0=sx[c], y0=sy[c], use=use, cell=slot_cell[c])
    g, i, j = _lattice(np.full(len(c), 2), np.full(len(c), 3))
    keep = (rng.random(len(g)) < 0.7) | ((i == 0) & (j == 0))
    g, i, j = g[keep], i[keep], j[keep]
    n = len(g)
    w, d = _uniform(rng, 25.0, 58.0, n), _uniform(rng, 12.0, 36.0, n)
    x = sx[c][g] + i * 66.0 + _uniform(rng, 3.0, 66.0 - 3.0 - w, n)
    y = sy[c][g] + j * 44.0 + _uniform(rng, 3.0, 44.0 - 3.0 - d, n)
    parts.add(x, y, w, d, use[g], rng.integers(2, 7, n).astype(float), 0, 0, -1, slot_cell[c][g])

    # shops and offices: 2 x 2 plots of 66 m
    m = np.flatnonzero(stype == SHOPS)
    g, i, j = _lattice(np.full(len(m), 2), np.full(len(m), 2))
    keep = (rng.random(len(g)) < 0.6) | ((i == 0) & (j == 0))
    g, i, j = g[keep], i[keep], j[keep]
    n = len(g)
    w, d = _uniform(rng, 20.0, 58.0, n), _uniform(rng, 15.0, 58.0, n)
    x = sx[m][g] + i * 66.0 + _uniform(rng, 3.0, 66.0 - 3.0 - w, n)
    y = sy[m][g] + j * 66.0 + _uniform(rng, 3.0, 66.0 - 3.0 - d, n)
    parts.add(
        x,
        y,
        w,
        d,
        _USE["commercial"],
        rng.integers(2, 11, n).astype(float),
        0,
        0,
        -1,
        slot_cell[m][g],
    )


def _old(cells, width, rng, parts: _Parts, difficult: dict) -> None:
    """Old one-storey districts: 19 x 23 lots of 14 x 12 m, house north, shed south."""
    cx, cy = _cell_origin(cells, width)
    g, i, j = _lattice(np.full(len(cells), 19), np.full(len(cells), 23))
    keep = rng.random(len(g)) > 0.03
    g, i, j = g[keep], i[keep], j[keep]
    lx, ly = cx[g] + 5.0 + i * 14.0, cy[g] + j * 12.0
    n = len(g)
    w, d = _uniform(rng, 8.0, 10.5, n), _uniform(rng, 5.5, 6.5, n)
    x = lx + _uniform(rng, 0.5, 14.0 - 0.5 - w, n)
    y = ly + 12.0 - 0.5 - d
    parts.add(x, y, w, d, _USE["house"], 1.0, 1, 1, -1, cells[g])
    shed = rng.random(n) < 0.7
    k = shed.sum()
    sw, sd = _uniform(rng, 2.5, 4.0, k), _uniform(rng, 2.0, 3.0, k)
    parts.add(
        lx[shed] + _uniform(rng, 0.5, 14.0 - 0.5 - sw, k), ly[shed] + 0.5, sw, sd,
        _USE["shed"], 1.0, 0, 0, -1, cells[g][shed],
    )  # fmt: skip
    difficult["geometry"].append(shapely.box(cx, cy, cx + INNER, cy + INNER))
    difficult["reason"].append(np.full(len(cells), "old one-storey district"))


def _villages(cells, width, rng, parts: _Parts, difficult: dict) -> None:
    """Villages of 30–250 single houses with outbuildings, at a random spot in the cell."""
    cx, cy = _cell_origin(cells, width)
    homes = rng.integers(30, 251, len(cells))
    nx = np.ceil(np.sqrt(homes * 1.2)).astype(int)
    ny = np.ceil(homes / nx).astype(int)
    dx = np.minimum(24.0, INNER / nx)
    dy = np.minimum(22.0, INNER / ny)
    vx = cx + _uniform(rng, 0.0, INNER - nx * dx, len(cells))
    vy = cy + _uniform(rng, 0.0, INNER - ny * dy, len(cells))
    g, i, j = _lattice(nx, ny)
    keep = (j * nx[g] + i) < homes[g]  # fill rows until the village has its houses
    g, i, j = g[keep], i[keep], j[keep]
    lx, ly, ldx, ldy = vx[g] + i * dx[g], vy[g] + j * dy[g], dx[g], dy[g]
    n = len(g)
    parts.add(
        lx + ldx * _uniform(rng, 0.08, 0.15, n), ly + ldy * _uniform(rng, 0.55, 0.6, n),
        ldx * 0.6, ldy * 0.3, _USE["rural_house"], 1.0, 1, 1, -1, cells[g],
    )  # fmt: skip
    sheds = rng.choice(3, size=n, p=[0.15, 0.35, 0.5])
    first = sheds >= 1
    parts.add(
        lx[first] + ldx[first] * 0.1, ly[first] + ldy[first] * 0.1,
        ldx[first] * 0.28, ldy[first] * _uniform(rng, 0.2, 0.3, first.sum()),
        _USE["shed"], 1.0, 0, 0, -1, cells[g][first],
    )  # fmt: skip
    second = sheds == 2
    parts.add(
        lx[second] + ldx[second] * 0.5, ly[second] + ldy[second] * 0.1,
        ldx[second] * _uniform(rng, 0.25, 0.4, second.sum()), ldy[second] * 0.25,
        _USE["shed"], 1.0, 0, 0, -1, cells[g][second],
    )  # fmt: skip
    remote = rng.random(len(cells)) < 0.2
    difficult["geometry"].append(
        shapely.box(
            vx[remote] - 10,
            vy[remote] - 10,
            vx[remote] + nx[remote] * dx[remote] + 10,
            vy[remote] + ny[remote] * dy[remote] + 10,
        )  # fmt: skip
    )
    difficult["reason"].append(np.full(remote.sum(), "sparse forest settlement"))


def _farmland(cells, width, rng, parts: _Parts) -> None:
    """Farmland: a field hut in about 12 % of 4 x 4 plots."""
    cx, cy = _cell_origin(cells, width)
    g, i, j = _lattice(np.full(len(cells), 4), np.full(len(cells), 4))
    keep = rng.random(len(g)) < 0.12
    g, i, j = g[keep], i[keep], j[keep]
    n = len(g)
    step = INNER / 4
    parts.add(
        cx[g] + i * step + _uniform(rng, 2.0, step - 8.0, n),
        cy[g] + j * step + _uniform(rng, 2.0, step - 7.0, n),
        5.0, 4.0, _USE["shed"], 1.0, 0, 0, -1, cells[g],
    )  # fmt: skip


def _trim(arrays: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> dict:
    """Drop random sheds and garages (no households) to keep exactly `n` buildings."""
    surplus = len(arrays["x0"]) - n
    if surplus <= 0:
        return arrays
    spare = np.flatnonzero(np.isin(arrays["use"], _AUXILIARY))
    if len(spare) < surplus:  # pragma: no cover - sheds are a third of all buildings
        spare = np.flatnonzero(arrays["hh"] == 0)
    drop = rng.choice(spare, size=min(surplus, len(spare)), replace=False)
    keep = np.ones(len(arrays["x0"]), dtype=bool)
    keep[drop] = False
    return {k: v[keep] for k, v in arrays.items()}


# --------------------------------------------------------------------------- communities


def _path_order(width: int, height: int) -> np.ndarray:
    """Position of each cell on a path through the lattice in which consecutive cells
    share an edge: bands of `BAND` rows, columns zigzag up and down within a band, bands
    run alternately west→east and east→west (needs an odd width)."""
    cell = np.arange(width * height)
    col, row = cell % width, cell // width
    band = row // BAND
    band_rows = np.minimum(BAND, height - band * BAND)
    k = np.where(band % 2 == 0, col, width - 1 - col)
    within = row - band * BAND
    pos = np.where(k % 2 == 0, within, band_rows - 1 - within)
    band_start = band * BAND * width
    return band_start + k * band_rows + pos


def _cut(weights: np.ndarray, low: float, high: float, target: float) -> np.ndarray | None:
    """Cut a sequence into runs whose sums lie in [low, high], closest to `target`
    (least squares), by dynamic programming. Returns the run index of each item."""
    n = len(weights)
    prefix = np.concatenate([[0.0], np.cumsum(weights)])
    cost = np.full(n + 1, np.inf)
    back = np.full(n + 1, -1, dtype=np.int64)
    cost[0] = 0.0
    # candidate starts j for end i: prefix[i] - high <= prefix[j] <= prefix[i] - low
    lo = np.searchsorted(prefix, prefix - high, side="left")
    hi = np.searchsorted(prefix, prefix - low, side="right")
    for i in range(1, n + 1):  # one step per cell (thousands), numpy inside
        a, b = lo[i], min(hi[i], i)
        if a >= b:
            continue
        run = prefix[i] - prefix[a:b]
        total = cost[a:b] + (run - target) ** 2
        best = int(np.argmin(total))
        cost[i], back[i] = total[best], a + best
    if not np.isfinite(cost[n]):
        return None
    cuts = [n]
    while cuts[-1] > 0:
        cuts.append(int(back[cuts[-1]]))
    cuts = np.array(cuts[::-1])
    return np.repeat(np.arange(len(cuts) - 1), np.diff(cuts))


def _communities_on_path(width: int, height: int, cell_hh: np.ndarray) -> tuple[np.ndarray, int]:
    pos = _path_order(width, height)
    order = np.argsort(pos)
    low, high = HOUSEHOLD_RANGE
    runs = None
    for slack in (0, 250, 500, 1000, 2000):
        runs = _cut(cell_hh[order], low - slack, high + slack, (low + high) / 2)
        if runs is not None:
            break
    if runs is None:
        runs = np.zeros(len(order), dtype=np.int64)
    community = np.empty(len(order), dtype=np.int64)
    community[order] = runs
    return community, int(runs.max()) + 1


# --------------------------------------------------------------------------- assembly


def _codes(values: np.ndarray, width: int, prefix: str = "") -> np.ndarray:
    text = np.char.zfill(np.asarray(values).astype(str), width)
    return np.char.add(prefix, text).astype(object)


def _assemble(arrays, compounds, campuses, difficult, river, kind, community_of_cell, n_comm,
              width, height, rng, crs) -> dict:  # fmt: skip
    # buildings, ordered along the community path so that ids run through the city
    order = np.lexsort((arrays["x0"], arrays["y0"], community_of_cell[arrays["cell"]]))
    a = {k: v[order] for k, v in arrays.items()}
    n = len(order)
    residential = a["hh"] > 0
    given = rng.random(n) < GIVEN_SHARE
    households = pd.array(np.where(given, a["hh"], 0), dtype="Int64")
    households[~given] = pd.NA
    levels = a["levels"].astype(float)
    levels[rng.random(n) < 0.05] = np.nan
    units = pd.array(a["units"].astype(np.int64), dtype="Int64")
    units[~residential | (rng.random(n) < 0.1)] = pd.NA

    comp_cell = np.concatenate(compounds["cell"]) if compounds["cell"] else np.empty(0, int)
    n_compounds = len(comp_cell)
    comp_ids = _codes(np.arange(1, n_compounds + 1), 6, "C")
    comp_names = np.char.add(
        np.char.add(
            _WORDS[rng.integers(0, len(_WORDS), n_compounds)],
            _COMPOUND_SUFFIX[rng.integers(0, len(_COMPOUND_SUFFIX), n_compounds)],
        ),
        np.char.add(_codes(np.arange(1, n_compounds + 1), 1), "号院"),
    ).astype(object)
    in_compound = a["compound"] >= 0
    compound_id = np.full(n, None, dtype=object)
    compound_id[in_compound] = comp_ids[a["compound"][in_compound]]
    name = np.full(n, None, dtype=object)
    apartments = in_compound & (a["use"] == _USE["apartments"])
    # building number within its compound: "<compound name>3栋"
    rank = pd.Series(np.arange(n))[apartments].groupby(a["compound"][apartments]).cumcount() + 1
    name[apartments] = np.char.add(
        np.char.add(comp_names[a["compound"][apartments]].astype(str), rank.to_numpy().astype(str)),
        "栋",
    ).astype(object)

    buildings = gpd.GeoDataFrame(
        {
            "building_id": _codes(np.arange(1, n + 1), 7, "B"),
            "use": USES[a["use"]],
            "levels": levels,
            "units": units,
            "households": households,
            "name": name,
            "compound_id": compound_id,
        },
        geometry=shapely.box(a["x0"], a["y0"], a["x1"], a["y1"]),
        crs=crs,
    )

    # communities: union of their cells; streets group about ten consecutive ones
    n_cells = width * height
    col, row = np.arange(n_cells) % width, np.arange(n_cells) // width
    x0, y0 = ORIGIN[0] + col * CELL, ORIGIN[1] + row * CELL
    cell_box = shapely.box(x0, y0, x0 + CELL, y0 + CELL)
    by_comm = np.argsort(community_of_cell, kind="stable")
    starts = np.searchsorted(community_of_cell[by_comm], np.arange(n_comm + 1))
    comm_geom = np.array(
        [
            shapely.coverage_union_all(cell_box[by_comm[starts[k] : starts[k + 1]]])
            for k in range(n_comm)
        ],
        dtype=object,
    )  # one union per community (hundreds)
    rural_share = np.bincount(
        community_of_cell, weights=np.isin(kind, (VILLAGE, FARM)), minlength=n_comm
    ) / np.bincount(community_of_cell, minlength=n_comm)
    comm_kind = np.where(rural_share > 0.5, "village", "community").astype(object)
    per_street = 10
    street = np.arange(n_comm) // per_street
    if n_comm > 999 or street.max() + 1 > 999:
        raise ValueError(
            f"{n_comm} communities do not fit 3-digit community codes; use fewer buildings"
        )
    comm_names = np.char.add(
        np.char.add(
            _WORDS[np.arange(n_comm) % len(_WORDS)], _codes(np.arange(n_comm) // len(_WORDS) + 1, 1)
        ),
        np.where(comm_kind == "village", "村", "社区").astype(str),
    ).astype(object)
    communities = gpd.GeoDataFrame(
        {
            "community_code": _codes(np.arange(1, n_comm + 1), 3),
            "street_code": _codes(street + 1, 3),
            "name": comm_names,
            "kind": comm_kind,
        },
        geometry=comm_geom,
        crs=crs,
    )
    community_code = communities["community_code"].to_numpy()

    if n_compounds:
        cx0, cy0 = np.concatenate(compounds["x0"]), np.concatenate(compounds["y0"])
        comp_geom = shapely.box(cx0, cy0, cx0 + COMPOUND, cy0 + COMPOUND)
    else:
        comp_geom = np.empty(0, dtype=object)
    compounds_gdf = gpd.GeoDataFrame(
        {
            "compound_id": comp_ids,
            "name": comp_names,
            "community_code": community_code[community_of_cell[comp_cell]],
        },
        geometry=comp_geom,
        crs=crs,
    )

    inst_use = USES[campuses["use"]]
    k = np.arange(1, len(inst_use) + 1).astype(str)
    inst_name = np.select(
        [inst_use == "school", inst_use == "hospital", inst_use == "market", inst_use == "enterprise"],
        [np.char.add(np.char.add("第", k), "中学"), np.char.add(np.char.add("第", k), "医院"),
         np.char.add(k, "号农贸市场"), np.char.add(k, "号林业公司")],
        np.char.add(k, "号服务中心"),
    ).astype(object)  # fmt: skip
    institutions = gpd.GeoDataFrame(
        {"name": inst_name, "use": inst_use},
        geometry=shapely.box(
            campuses["x0"], campuses["y0"], campuses["x0"] + COMPOUND, campuses["y0"] + COMPOUND
        ),
        crs=crs,
    )

    diff_geom = np.concatenate(difficult["geometry"]) if difficult["geometry"] else []
    diff_reason = np.concatenate(difficult["reason"]) if difficult["reason"] else []
    difficult_gdf = gpd.GeoDataFrame(
        {
            "name": _codes(np.arange(1, len(diff_geom) + 1), 3, "困难片区"),
            "reason": np.asarray(diff_reason, dtype=object),
        },
        geometry=np.asarray(diff_geom, dtype=object),
        crs=crs,
    )

    barriers = _barriers(width, height, river, crs)
    stats = {
        "width_cells": width,
        "height_cells": height,
        "cells": {
            name: int(np.count_nonzero(kind == t))
            for t, name in enumerate(("urban", "old", "village", "farm", "green"))
        },
        "households_true": int(a["hh"].sum()),
        "households_true_by_building": a["hh"].astype(np.int64),
        "households_true_per_community": np.bincount(
            community_of_cell[a["cell"]], weights=a["hh"], minlength=n_comm
        ).astype(int),
    }
    return {
        "buildings": buildings,
        "communities": communities,
        "compounds": compounds_gdf,
        "barriers": barriers,
        "difficult": difficult_gdf,
        "institutions": institutions,
        "stats": stats,
    }


def _barriers(width: int, height: int, river: shapely.LineString, crs: str) -> gpd.GeoDataFrame:
    """Major roads on every third lattice line (trunk roads every sixth) and the river."""
    xs = np.arange(3, width, 3)
    ys = np.arange(3, height, 3)
    x_line = ORIGIN[0] + xs * CELL
    y_line = ORIGIN[1] + ys * CELL
    x_max, y_max = ORIGIN[0] + width * CELL, ORIGIN[1] + height * CELL
    ns = shapely.linestrings(
        np.stack(
            [np.column_stack([x_line, np.full(len(xs), ORIGIN[1])]), np.column_stack([x_line, np.full(len(xs), y_max)])],
            axis=1,
        )
    )  # fmt: skip
    ew = shapely.linestrings(
        np.stack(
            [np.column_stack([np.full(len(ys), ORIGIN[0]), y_line]), np.column_stack([np.full(len(ys), x_max), y_line])],
            axis=1,
        )
    )  # fmt: skip
    river = shapely.intersection(river, shapely.box(ORIGIN[0], ORIGIN[1], x_max, y_max))
    names = np.concatenate(
        [
            np.char.add(np.char.add("经", np.arange(1, len(xs) + 1).astype(str)), "路"),
            np.char.add(np.char.add("纬", np.arange(1, len(ys) + 1).astype(str)), "街"),
            ["伊春河"],
        ]
    ).astype(object)
    highway = np.concatenate(
        [np.where(xs % 6 == 0, "primary", "secondary"), np.where(ys % 6 == 0, "primary", "secondary"), [None]]
    ).astype(object)  # fmt: skip
    highway[-1] = None
    waterway = np.full(len(names), None, dtype=object)
    waterway[-1] = "river"
    return gpd.GeoDataFrame(
        {"name": names, "highway": highway, "waterway": waterway},
        geometry=np.concatenate([ns, ew, [river]]),
        crs=crs,
    )


# --------------------------------------------------------------------------- output, checks


def write_city(city: dict, path: str | Path, *, source_columns: bool = True) -> Path:
    """Write every layer of `city` to one GeoPackage.

    Parameters
    ----------
    city : dict
        Result of :func:`generate_city`.
    path : path-like
        Output ``.gpkg`` (overwritten).
    source_columns : bool
        Write the buildings with the source column names of the sample town
        (楼栋编号, 名称, 用途, 层数, 单元数, 户数), as ``gridmap.read_buildings`` reads
        them; False keeps the schema names (building_id, use, ...).
    """
    import pyogrio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    for layer, gdf in city.items():
        if not isinstance(gdf, gpd.GeoDataFrame):
            continue
        if layer == "buildings" and source_columns:
            gdf = gdf.rename(columns=SOURCE_COLUMNS)
        pyogrio.write_dataframe(
            gdf, path, layer=layer, driver="GPKG", append=path.exists(), use_arrow=True
        )
    return path


def check_city(city: dict) -> dict:
    """Check a generated city: households per community, tiling, overlapping buildings.

    Returns
    -------
    dict
        ``buildings``, ``households_true``, ``households_given``, ``communities``,
        ``households_per_community`` (min, median, max of true households),
        ``communities_out_of_range``, ``communities_multipart``, ``tiling_gap_m2``,
        ``tiling_overlap_m2``, ``overlapping_buildings`` (pairs sharing area),
        ``buildings_per_use``, ``towers_over_500``.
    """
    b, comm = city["buildings"], city["communities"]
    per_comm = city["stats"]["households_true_per_community"]
    truth = city["stats"]["households_true_by_building"]
    geoms = np.asarray(b.geometry.array)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    pairs = left < right
    shared = shapely.area(shapely.intersection(geoms[left[pairs]], geoms[right[pairs]]))
    cgeom = np.asarray(comm.geometry.array)
    union = shapely.union_all(cgeom)
    extent = shapely.box(*union.bounds)
    low, high = HOUSEHOLD_RANGE
    return {
        "buildings": len(b),
        "households_true": int(per_comm.sum()),
        "households_given": int(b["households"].sum()),
        "households_given_share": round(float(b["households"].notna().mean()), 3),
        "communities": len(comm),
        "households_per_community": {
            "min": int(per_comm.min()),
            "median": int(np.median(per_comm)),
            "max": int(per_comm.max()),
        },
        "communities_out_of_range": int(np.count_nonzero((per_comm < low) | (per_comm > high))),
        "communities_multipart": int(np.count_nonzero(shapely.get_num_geometries(cgeom) > 1)),
        "tiling_gap_m2": round(float(extent.area - union.area), 3),
        "tiling_overlap_m2": round(float(shapely.area(cgeom).sum() - union.area), 3),
        "overlapping_buildings": int(np.count_nonzero(shared > 0)),
        "buildings_per_use": b["use"].value_counts().to_dict(),
        "towers_over_500": int(np.count_nonzero(truth > 500)),
        "households_per_building": round(float(truth.sum() / len(b)), 2),
        "compounds": len(city["compounds"]),
        "institutions": len(city["institutions"]),
        "difficult_areas": len(city["difficult"]),
        "barriers": len(city["barriers"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buildings", type=int, default=100_000, help="number of buildings")
    parser.add_argument("--out", type=Path, required=True, help="output GeoPackage")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crs", default="EPSG:32652")
    parser.add_argument(
        "--design-columns",
        action="store_true",
        help="write building columns with schema names instead of the source names",
    )
    parser.add_argument("--check", action="store_true", help="print checks of the city")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    city = generate_city(args.buildings, seed=args.seed, crs=args.crs)
    t1 = time.perf_counter()
    write_city(city, args.out, source_columns=not args.design_columns)
    t2 = time.perf_counter()
    print(
        f"{len(city['buildings']):,} buildings, {len(city['communities'])} communities, "
        f"{city['stats']['households_true']:,} households: generated in {t1 - t0:.1f} s, "
        f"written to {args.out} in {t2 - t1:.1f} s",
        file=sys.stderr,
    )
    if args.check:
        import json

        print(json.dumps(check_city(city), ensure_ascii=False, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
