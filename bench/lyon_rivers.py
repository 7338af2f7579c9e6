"""The Rhône and the Saône through the Lyon roof crop, drawn by hand in EPSG:3946.

The Lyon test data (``../shared/realdata/lyon/roofs.gpkg``: 15,725 roof sections of
central Lyon, EPSG:3946, extent x 1,841,372–1,844,891, y 5,174,640–5,176,327) has no
water layer. The two rivers are the wide building-free corridors through the crop, so
they were drawn from the roofs themselves:

1. the roofs were rendered with matplotlib (black on white, a red 50 m graticule),
   first the whole crop, then six close-ups of 550–700 m along each corridor;
2. on each close-up, the edge of the last row of buildings along each bank (the quay
   fronts) was read off every 50–100 m;
3. each bank polyline below runs about 5–15 m inside the corridor from those quay
   fronts, so that no building is cut, and is extended 150–200 m past the crop edge so
   that the river polygon cuts the crop completely.

The result was checked by overlaying the polygons on the roofs (``python
bench/lyon_rivers.py --png /tmp/lyon_rivers.png``) and by counting roofs that touch a
river polygon: only two small objects in mid-stream do (six roof sections, 61 m² and
127 m² in all: moored barges or pontoons), and they belong to no bank. The polygons cover the water and the quays,
not only the wet channel; they are meant for one thing: telling which bank a building
is on.

- **Rhône**: enters at the top edge between x ≈ 1,842,935 and 1,843,195 and leaves at
  the bottom edge between x ≈ 1,842,850 and 1,843,192 (200–260 m between quay fronts).
- **Saône**: enters at the west edge between y ≈ 5,175,660 and 5,175,785, runs east
  below the Croix-Rousse slope, turns south round Vieux Lyon and leaves at the bottom
  edge between x ≈ 2,010 and 2,150 (east of 1,841,000), 110–240 m wide.

Together they cut the crop into three banks: ``west`` (Fourvière and Vieux Lyon, right
bank of the Saône), ``presquile`` (the Presqu'île and the Croix-Rousse slope, between the
two rivers) and ``east`` (left bank of the Rhône). :func:`bank_of` labels points with
them; a grid holding buildings of two banks straddles a river.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import shapely

__all__ = [
    "BANKS",
    "CRS",
    "RIVERS",
    "bank_of",
    "bank_polygons",
    "river_lines",
    "river_polygons",
]

#: CRS of every coordinate in this module (RGF93 / CC46, the Lyon data's CRS).
CRS = "EPSG:3946"

#: Extent used to cut the banks: the roofs' extent plus a 100 m margin.
EXTENT = (1_841_270.0, 5_174_540.0, 1_844_990.0, 5_176_430.0)

# Bank polylines, upstream to downstream, (x, y) in EPSG:3946.
_RHONE_WEST = [  # right bank: the Presqu'île's quay fronts
    (1842935, 5176500), (1842935, 5176320), (1842935, 5176050), (1842912, 5176000),
    (1842912, 5175900), (1842942, 5175850), (1842957, 5175780), (1842962, 5175700),
    (1842968, 5175600), (1842970, 5175450), (1842972, 5175300), (1842975, 5175200),
    (1842968, 5175100), (1842955, 5175030), (1842948, 5174980), (1842932, 5174900),
    (1842905, 5174800), (1842870, 5174700), (1842850, 5174640), (1842830, 5174450),
]  # fmt: skip
_RHONE_EAST = [  # left bank: the quay fronts of the 6th and 3rd arrondissements
    (1843178, 5176500), (1843178, 5176320), (1843176, 5176250), (1843178, 5176000),
    (1843200, 5175850), (1843210, 5175800), (1843220, 5175700), (1843228, 5175600),
    (1843220, 5175500), (1843205, 5175440), (1843222, 5175380), (1843215, 5175250),
    (1843212, 5175050), (1843198, 5174980), (1843196, 5174850), (1843195, 5174750),
    (1843190, 5174650), (1843188, 5174450),
]  # fmt: skip
_SAONE_RIGHT = [  # right bank: the Fourvière slope and Vieux Lyon
    (1841100, 5175665), (1841400, 5175660), (1841500, 5175662), (1841560, 5175672),
    (1841620, 5175712), (1841680, 5175737), (1841720, 5175754), (1841760, 5175770),
    (1841900, 5175772),
    (1842000, 5175785), (1842060, 5175780), (1842110, 5175765), (1842150, 5175745),
    (1842180, 5175718),
    (1842215, 5175665), (1842255, 5175600), (1842262, 5175500), (1842265, 5175400),
    (1842272, 5175300), (1842265, 5175200), (1842237, 5175100), (1842210, 5175000),
    (1842180, 5174920), (1842160, 5174880), (1842095, 5174800), (1842070, 5174750),
    (1842040, 5174700), (1842012, 5174650), (1841985, 5174600), (1841950, 5174450),
]  # fmt: skip
_SAONE_LEFT = [  # left bank: the Croix-Rousse slope, then the Presqu'île
    (1841100, 5175785), (1841400, 5175785), (1841500, 5175788), (1841540, 5175800),
    (1841580, 5175830), (1841650, 5175835), (1841700, 5175860), (1841800, 5175865),
    (1841900, 5175870), (1842050, 5175875), (1842100, 5175870), (1842150, 5175840),
    (1842195, 5175828), (1842240, 5175795), (1842270, 5175775), (1842300, 5175740),
    (1842340, 5175695), (1842395, 5175640), (1842410, 5175600), (1842425, 5175550),
    (1842460, 5175500), (1842485, 5175450), (1842490, 5175300), (1842485, 5175200),
    (1842465, 5175150), (1842458, 5175100), (1842430, 5175050), (1842405, 5175000),
    (1842375, 5174955), (1842355, 5174910), (1842300, 5174870), (1842280, 5174850),
    (1842252, 5174800), (1842228, 5174760), (1842212, 5174715), (1842190, 5174700),
    (1842160, 5174660), (1842140, 5174620), (1842100, 5174450),
]  # fmt: skip

#: River name -> (one bank, the other bank), each upstream to downstream.
RIVERS: dict[str, tuple[list[tuple[float, float]], list[tuple[float, float]]]] = {
    "Rhône": (_RHONE_WEST, _RHONE_EAST),
    "Saône": (_SAONE_RIGHT, _SAONE_LEFT),
}

#: Bank names, in the order of :func:`bank_polygons`.
BANKS: tuple[str, ...] = ("west", "presquile", "east")


def river_polygons() -> dict[str, shapely.Polygon]:
    """Return each river as a polygon between its two bank polylines.

    Returns
    -------
    dict
        ``{"Rhône": Polygon, "Saône": Polygon}`` in EPSG:3946.
    """
    out = {}
    for name, (a, b) in RIVERS.items():
        ring = np.concatenate([np.asarray(a, float), np.asarray(b, float)[::-1]])
        out[name] = shapely.make_valid(shapely.Polygon(ring))
    return out


def river_lines(samples: int = 200) -> dict[str, shapely.LineString]:
    """Return each river's centre line: the mean of its two banks at equal fractions.

    Parameters
    ----------
    samples : int
        Points per centre line.

    Returns
    -------
    dict
        ``{"Rhône": LineString, "Saône": LineString}`` in EPSG:3946.
    """
    out = {}
    t = np.linspace(0.0, 1.0, samples)
    for name, (a, b) in RIVERS.items():
        la, lb = shapely.LineString(a), shapely.LineString(b)
        pa = shapely.get_coordinates(shapely.line_interpolate_point(la, t, normalized=True))
        pb = shapely.get_coordinates(shapely.line_interpolate_point(lb, t, normalized=True))
        out[name] = shapely.LineString((pa + pb) / 2)
    return out


def bank_polygons() -> dict[str, shapely.Polygon]:
    """Return the three banks: :data:`EXTENT` minus both river polygons.

    Returns
    -------
    dict
        ``{"west": ..., "presquile": ..., "east": ...}``; each a Polygon.

    Raises
    ------
    RuntimeError
        If the rivers do not cut the extent into exactly three parts (a drawing error).
    """
    rivers = shapely.union_all(list(river_polygons().values()))
    land = shapely.difference(shapely.box(*EXTENT), rivers)
    parts = shapely.get_parts(land)
    if len(parts) != 3:
        raise RuntimeError(f"the rivers cut the crop into {len(parts)} parts, not 3")
    centre = shapely.get_coordinates(shapely.centroid(parts))
    east = int(np.argmax(centre[:, 0]))  # the left bank of the Rhône lies furthest east
    rest = [i for i in range(3) if i != east]
    probe = shapely.Point(1841800.0, 5175400.0)  # on Fourvière hill, right bank of the Saône
    west = next(i for i in rest if shapely.contains(parts[i], probe))
    presquile = next(i for i in rest if i != west)
    return {"west": parts[west], "presquile": parts[presquile], "east": parts[east]}


def bank_of(geoms: np.ndarray) -> np.ndarray:
    """Bank of each geometry's representative point: an index into :data:`BANKS`.

    Parameters
    ----------
    geoms : array of shapely geometries
        In EPSG:3946 (for example roof polygons).

    Returns
    -------
    numpy.ndarray
        int8, 0/1/2 for :data:`BANKS`, -1 for points in a river polygon (boats, quay
        kiosks) or outside :data:`EXTENT`.
    """
    pts = shapely.point_on_surface(np.asarray(geoms, dtype=object))
    banks = list(bank_polygons().values())
    tree = shapely.STRtree(banks)
    pi, bi = tree.query(pts, predicate="within")
    out = np.full(len(pts), -1, dtype=np.int8)
    out[pi] = bi
    return out


def _plot(png: Path, roofs: Path) -> None:  # pragma: no cover - a drawing aid
    import geopandas as gpd
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = gpd.read_file(roofs)
    fig, ax = plt.subplots(figsize=(14, 7), dpi=120)
    bank = bank_of(r.geometry.values)
    colours = np.array(["tab:orange", "tab:green", "tab:purple", "red"])
    r.plot(ax=ax, color=colours[bank], linewidth=0)
    gpd.GeoSeries(list(river_polygons().values())).plot(ax=ax, color="tab:blue", alpha=0.35)
    gpd.GeoSeries(list(river_lines().values())).plot(ax=ax, color="navy", linewidth=0.8)
    ax.set_xlim(EXTENT[0], EXTENT[2])
    ax.set_ylim(EXTENT[1], EXTENT[3])
    ax.set_title("Lyon roofs by bank (orange west, green Presqu'île, purple east, red river)")
    fig.tight_layout()
    fig.savefig(png)


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - a drawing aid
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent
    parser.add_argument(
        "--roofs", type=Path, default=here.parents[1] / "shared/realdata/lyon/roofs.gpkg"
    )
    parser.add_argument("--png", type=Path, required=True, help="where to draw the overlay")
    args = parser.parse_args(argv)
    _plot(args.png, args.roofs)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
