"""Export a grid plan for the office and the grid workers.

:func:`export_plan` writes a plan in every format a street or community office uses:

========== ================================= =============================================
format     files                             content
========== ================================= =============================================
``gpkg``   ``plan.gpkg``                     the whole plan (:meth:`Plan.to_file`),
                                             readable with :func:`gridmap.read_plan`
``geojson`` ``grids.geojson``,               grids and buildings in WGS84 (EPSG:4326)
           ``buildings.geojson``
``shp``    ``shp/grids.shp``,                Shapefiles in WGS84 with a ``.cpg`` file
           ``shp/buildings.shp``,            saying UTF-8, so Chinese names survive;
           ``shp/fields.csv``                field names cut to 10 bytes (mapping below,
                                             and written to ``fields.csv``)
``csv``    ``grids.csv``, ``roster.csv``     one row per grid; one row per building (or
                                             split part) per grid: the grid worker's
                                             roster (UTF-8 with BOM for Excel)
``xlsx``   ``grids.xlsx``, ``roster.xlsx``   the same tables as Excel workbooks
``png``    ``maps/<grid_code>.png``          a printable A4 map per grid for the grid
                                             worker's wall (see :func:`grid_sheet`)
========== ================================= =============================================

Shapefile field names (DBF allows 10 bytes): :data:`SHP_FIELDS` maps the standard
columns; any other column is cut to 10 bytes of UTF-8 without breaking a character
(e.g. ``楼栋编号`` → ``楼栋编``) and made unique with a digit. Booleans are written as
0/1 integers and text longer than 254 bytes is cut.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from tqdm.auto import tqdm

from .crs import to_wgs84
from .errors import InputError, PlanError
from .io import atomic_write, to_xlsx
from .plan import Plan, flag_labels

log = logging.getLogger("gridmap")

__all__ = ["FORMATS", "SHP_FIELDS", "export_plan", "grid_sheet", "roster"]

#: Every format :func:`export_plan` writes.
FORMATS: tuple[str, ...] = ("gpkg", "geojson", "shp", "csv", "xlsx", "png")

#: Shapefile field name of each standard column (DBF names hold at most 10 bytes).
SHP_FIELDS: dict[str, str] = {
    # grids
    "grid_code": "grid_code",
    "community_code": "comm_code",
    "street_code": "street_cd",
    "community_name": "comm_name",
    "kind": "kind",
    "households": "households",
    "buildings": "buildings",
    "range_min": "range_min",
    "range_max": "range_max",
    "difficult": "difficult",
    "flags": "flags",
    "flag_reason": "flag_rsn",
    "name": "name",
    "worker": "worker",
    "area_m2": "area_m2",
    "polsby_popper": "polsby_pp",
    # buildings
    "building_id": "bldg_id",
    "use": "use",
    "levels": "levels",
    "levels_source": "levels_src",
    "units": "units",
    "units_source": "units_src",
    "households_source": "hh_source",
    "households_per_unit": "hh_per_unt",
    "compound_id": "compnd_id",
}

_KIND_ZH = {"community": "社区网格", "rural": "农村网格", "special": "专属网格"}
#: Colour of the grid's boundary on the wall map (red, orange, yellow and blue are kept
#: for the flood grades).
_BOUNDARY = "#6a1b9a"
#: Characters a wall map's font must have (a font without one is not used).
_CJK_PROBE = "网格编码户数楼栋单元标记网格员社区规划打印拆分小区低于下限独立自然屯无住户专属紫线绿色灰色棕–·—…²"
_A4 = (8.27, 11.69)  # inches, portrait
_DBF_TEXT_BYTES = 254


# =============================================================================== API
def export_plan(
    plan: Plan,
    out_dir: str | os.PathLike,
    formats: Iterable[str] = FORMATS,
    *,
    map_grids: Iterable[str] | None = None,
    dpi: int = 150,
    progress: bool | None = None,
) -> dict[str, list[Path]]:
    """Write a plan in the formats an office uses (see the module docstring).

    Parameters
    ----------
    plan : Plan
        The plan to export.
    out_dir : path-like
        Output folder (created when missing). Existing files of the same names are
        replaced.
    formats : iterable of str
        Any of ``"gpkg"``, ``"geojson"``, ``"shp"``, ``"csv"``, ``"xlsx"``, ``"png"``.
    map_grids : iterable of str, optional
        Grid codes to draw PNG maps for (default: every grid).
    dpi : int
        Resolution of the PNG maps (150 prints well on A4).
    progress : bool, optional
        Progress bar while drawing maps (default: when stderr is a terminal).

    Returns
    -------
    dict of str to list of pathlib.Path
        The files written, per format.

    Raises
    ------
    InputError
        For an unknown format or an unknown grid code in `map_grids`.
    """
    formats = [
        str(f).lower().lstrip(".") for f in ([formats] if isinstance(formats, str) else formats)
    ]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InputError(f"unknown export format(s) {unknown}; choose from {list(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}
    if "gpkg" in formats:
        written["gpkg"] = [plan.to_file(out / "plan.gpkg")]
    if "geojson" in formats:
        written["geojson"] = _write_geojson(plan, out)
    if "shp" in formats:
        written["shp"] = _write_shapefiles(plan, out / "shp")
    tables = {"grids": _grid_table(plan), "roster": roster(plan)}
    for fmt in ("csv", "xlsx"):
        if fmt not in formats:
            continue
        written[fmt] = []
        for name, table in tables.items():
            path = out / f"{name}.{fmt}"
            if fmt == "csv":
                atomic_write(
                    path, lambda p, t=table: t.to_csv(p, index=False, encoding="utf-8-sig")
                )
            else:
                atomic_write(path, lambda p, t=table, n=name: to_xlsx(t, p, n))
            written[fmt].append(path)
    if "png" in formats:
        codes = list(plan.grids["grid_code"]) if map_grids is None else [str(c) for c in map_grids]
        missing = sorted(set(codes) - set(plan.grids["grid_code"]))
        if missing:
            raise InputError(f"map_grids: no grid {missing[0]!r} in the plan")
        ctx = _SheetContext.build(plan)
        folder = out / "maps"
        folder.mkdir(parents=True, exist_ok=True)
        show = progress if progress is not None else sys.stderr.isatty()
        written["png"] = [
            grid_sheet(plan, c, folder / f"{c}.png", dpi=dpi, _ctx=ctx)
            for c in tqdm(codes, desc="grid maps", unit="grid", disable=not show)
        ]
    n = sum(len(v) for v in written.values())
    log.info("exported plan to %s: %d files (%s)", out, n, ", ".join(written))
    return written


def roster(plan: Plan) -> pd.DataFrame:
    """The grid workers' roster: one row per building, or per split part, of every grid.

    Returns
    -------
    pandas.DataFrame
        ``grid_code``, ``community_code``, ``community_name``, ``grid_kind``,
        ``worker``, ``building_id``, ``building_name``, ``use``, ``part`` (0 for a
        whole building), ``units`` (e.g. ``1-3``), ``floors`` (for a part split by
        floors), ``households``; sorted by grid and building.
    """
    b = plan.buildings
    s = plan.splits if plan.splits is not None else pd.DataFrame(columns=["building_id"])
    split_ids = set(s["building_id"])
    g = plan.grids.set_index("grid_code")
    whole = b[~b["building_id"].isin(split_ids)]
    units = pd.to_numeric(whole.get("units", pd.Series(0, index=whole.index)), errors="coerce")
    units = units.fillna(0).astype(np.int64)
    rows = pd.DataFrame(
        {
            "grid_code": whole["grid_code"].to_numpy(),
            "building_id": whole["building_id"].astype(str).to_numpy(),
            "part": 0,
            "units": np.where(units > 1, "1-" + units.astype(str), np.where(units == 1, "1", "")),
            "floors": "",
            "households": pd.to_numeric(whole["households"], errors="coerce")
            .fillna(0)
            .astype(np.int64)
            .to_numpy(),
        }
    )
    frames = [rows]
    if len(s):
        u = (
            s["unit_from"]
            .astype(str)
            .where(
                s["unit_from"] == s["unit_to"],
                s["unit_from"].astype(str) + "-" + s["unit_to"].astype(str),
            )
        )
        floors = pd.Series("", index=s.index)
        if "floor_from" in s.columns:
            by_floor = s.groupby("building_id")["floor_from"].transform("nunique") > 1
            f = s["floor_from"].astype(str) + "-" + s["floor_to"].astype(str)
            floors = f.where(by_floor, "")
        frames.append(
            pd.DataFrame(
                {
                    "grid_code": s["grid_code"].to_numpy(),
                    "building_id": s["building_id"].astype(str).to_numpy(),
                    "part": s["part"].astype(np.int64).to_numpy(),
                    "units": u.to_numpy(),
                    "floors": floors.to_numpy(),
                    "households": s["households"].astype(np.int64).to_numpy(),
                }
            )
        )
    r = pd.concat(frames, ignore_index=True)
    info = b.set_index("building_id")
    r["building_name"] = (
        r["building_id"].map(info["name"]).fillna("").astype(str) if "name" in info else ""
    )
    r["use"] = r["building_id"].map(info["use"]).fillna("").astype(str) if "use" in info else ""
    code = r["grid_code"]
    r["community_code"] = code.map(g["community_code"]).fillna("")
    r["community_name"] = code.map(g["community_name"]).fillna("")
    r["grid_kind"] = code.map(g["kind"]).fillna("")
    r["worker"] = code.map(g["worker"]).fillna("")
    r["grid_code"] = code.fillna("")
    cols = [
        "grid_code",
        "community_code",
        "community_name",
        "grid_kind",
        "worker",
        "building_id",
        "building_name",
        "use",
        "part",
        "units",
        "floors",
        "households",
    ]
    return r[cols].sort_values(["grid_code", "building_id", "part"]).reset_index(drop=True)


def grid_sheet(
    plan: Plan,
    code: str,
    path: str | os.PathLike | None = None,
    *,
    dpi: int = 150,
    _ctx: _SheetContext | None = None,
):
    """Draw a printable A4 map of one grid for the grid worker's wall.

    The map shows the grid boundary (purple), its buildings (green; split buildings hatched,
    labelled with their units), each labelled with its households, the neighbouring
    grids with their codes, the barriers, a scale bar and a north arrow, under a title
    with the grid code, community, households, buildings and grid worker. No base map
    is needed (works offline). Chinese text uses a CJK font when one is installed
    (e.g. ``fonts-noto-cjk``); without one the sheet is drawn in English only.

    Parameters
    ----------
    plan : Plan
    code : str
        The grid's code.
    path : path-like, optional
        Write a PNG here and return the path; otherwise return the figure.
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path or matplotlib.figure.Figure
    """
    from matplotlib import patheffects
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ctx = _ctx or _SheetContext.build(plan)
    code = str(code)
    rows = plan.grids.index[plan.grids["grid_code"] == code]
    if not len(rows):
        raise PlanError(f"no grid with code {code!r} in the plan")
    grid = plan.grids.loc[rows[0]]
    fp = _cjk_font()
    zh = fp is not None

    def txt(zh_text: str, en_text: str) -> str:
        return zh_text if zh else en_text

    def clean(value) -> str:
        v = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
        return v if zh else v.encode("ascii", "ignore").decode()

    fig = Figure(figsize=_A4, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.05, 0.09, 0.90, 0.77))
    ax.set_axis_off()
    geom = grid.geometry
    x0, y0, x1, y1 = _frame(geom.bounds, 0.90 * _A4[0] / (0.77 * _A4[1]))
    view = shapely.box(x0, y0, x1, y1)

    # neighbours
    gi = ctx.grid_tree.query(view, predicate="intersects")
    others = gi[plan.grids["grid_code"].to_numpy()[gi] != code]
    if len(others):
        gpd.GeoSeries(ctx.grid_geoms[others]).plot(
            ax=ax, facecolor="#f3f3f3", edgecolor="#9a9a9a", linewidth=0.8, zorder=1
        )
    gpd.GeoSeries([geom]).plot(ax=ax, facecolor="#fff8dc", edgecolor="none", zorder=1)
    # barriers
    if len(ctx.barrier_lines):
        bi = ctx.barrier_tree.query(view, predicate="intersects")
        if len(bi):
            gpd.GeoSeries(ctx.barrier_lines[bi]).plot(
                ax=ax, color="#c8a165", linewidth=2.2, zorder=2
            )
    # buildings
    bidx = ctx.building_tree.query(view, predicate="intersects")
    mine_b = bidx[ctx.b_grid[bidx] == code]
    split_here = set(ctx.splits.loc[ctx.splits["grid_code"] == code, "building_id"])
    is_split_here = np.isin(ctx.b_id, list(split_here))
    mine_b = np.union1d(mine_b, np.flatnonzero(is_split_here))
    rest = np.setdiff1d(bidx, mine_b)
    if len(rest):
        gpd.GeoSeries(ctx.b_geoms[rest]).plot(
            ax=ax, facecolor="#d5d5d5", edgecolor="#b0b0b0", linewidth=0.3, zorder=3
        )
    whole_mine = mine_b[~np.isin(ctx.b_id[mine_b], list(ctx.split_ids))]
    split_mine = mine_b[np.isin(ctx.b_id[mine_b], list(ctx.split_ids))]
    if len(whole_mine):
        gpd.GeoSeries(ctx.b_geoms[whole_mine]).plot(
            ax=ax, facecolor="#8fd19e", edgecolor="#1b5e20", linewidth=0.6, zorder=4
        )
    if len(split_mine):
        gpd.GeoSeries(ctx.b_geoms[split_mine]).plot(
            ax=ax, facecolor="#d4efd9", edgecolor="#1b5e20", linewidth=0.6, hatch="///", zorder=4
        )
    gpd.GeoSeries([geom]).boundary.plot(ax=ax, color=_BOUNDARY, linewidth=2.6, zorder=5)

    # labels
    halo = [patheffects.withStroke(linewidth=2.2, foreground="white")]
    n_lab = len(mine_b)
    size = 7 if n_lab <= 40 else 6 if n_lab <= 120 else 5
    for i in mine_b:
        bid = ctx.b_id[i]
        if bid in split_here:
            parts = ctx.splits[
                (ctx.splits["building_id"] == bid) & (ctx.splits["grid_code"] == code)
            ]
            hh = int(parts["households"].sum())
            units = ",".join(
                f"{a}" if a == z else f"{a}-{z}"
                for a, z in zip(parts["unit_from"], parts["unit_to"], strict=True)
            )
            label = f"{hh}{txt('户', ' hh')}\n{txt('单元', 'units ')}{units}"
        else:
            hh = int(ctx.b_hh[i])
            if hh == 0 and n_lab > 40:
                continue
            label = f"{hh}{txt('户', ' hh')}"
        if n_lab <= 60:
            label = f"{_building_label(bid, ctx.b_name[i], zh)}\n{label}"
        p = ctx.b_rep[i]
        if not view.contains(p):
            continue
        ax.text(
            p.x, p.y, label, ha="center", va="center", fontsize=size, color="#10321a",
            fontproperties=fp, zorder=6, clip_on=True, path_effects=halo,
        )  # fmt: skip
    for j in others:
        p = ctx.grid_rep[j]
        if view.contains(p):
            ax.text(
                p.x, p.y, plan.grids["grid_code"].iat[j][-6:], ha="center", va="center",
                fontsize=8, color="#7a7a7a", zorder=6, clip_on=True,
            )  # fmt: skip
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="box")
    _scale_bar(ax, x0, x1, y0, y1)
    ax.annotate(
        "N", xy=(0.96, 0.97), xytext=(0.96, 0.90), xycoords="axes fraction",
        ha="center", va="center", fontsize=12, fontweight="bold",
        arrowprops={"arrowstyle": "-|>", "color": "k", "lw": 1.5},
    )  # fmt: skip

    # title block
    kind = str(grid["kind"])
    hh = int(grid["households"])
    worker = clean(grid.get("worker", "")) or "—"
    title = f"{txt('网格', 'Grid')} {code}"
    sub = " · ".join(
        x
        for x in (
            clean(grid.get("community_name", "")),
            txt(_KIND_ZH.get(kind, kind), kind),
            clean(grid.get("name", "")),
        )
        if x
    )
    figures = (
        f"{txt('户数', 'Households')} {hh}"
        + (f" ({grid['range_min']}–{grid['range_max']})" if kind != "special" else "")
        + f" · {txt('楼栋', 'Buildings')} {int(grid['buildings'])}"
        + f" · {txt('网格员', 'Grid worker')} {worker}"
    )
    fig.text(0.05, 0.965, title, fontsize=20, fontweight="bold", fontproperties=_bold(fp))
    fig.text(0.05, 0.937, sub, fontsize=12, fontproperties=fp)
    fig.text(0.05, 0.912, figures, fontsize=12, fontproperties=fp)
    flags = str(grid.get("flags", "") or "")
    if flags:
        fig.text(
            0.05, 0.889, f"{txt('标记', 'Flags')}: {flag_labels(flags, 'zh' if zh else 'en')}",
            fontsize=9, color=_BOUNDARY, fontproperties=fp,
        )  # fmt: skip
    legend = txt(
        "紫线：网格边界 · 绿色：本网格楼栋（斜线：按单元拆分）· 灰色：其他楼栋与相邻网格 · 棕线：主干道/河流",
        "Purple: grid boundary · green: buildings of the grid (hatched: split by units) · "
        "grey: other buildings and neighbouring grids · brown: major roads/rivers",
    )
    fig.text(0.05, 0.06, legend, fontsize=8, fontproperties=fp, wrap=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    fig.text(
        0.05, 0.035,
        f"gridmap · {txt('规划', 'plan')} {plan.created[:10]} · {txt('打印', 'printed')} {stamp}"
        f" · {plan.crs.to_string()}",
        fontsize=7, color="#555", fontproperties=fp,
    )  # fmt: skip
    if path is None:
        return fig
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda p: fig.savefig(p, dpi=dpi, format="png"))
    return path


# ========================================================================= internals
@dataclass
class _SheetContext:
    """Spatial indexes shared by the maps of every grid of one export."""

    grid_geoms: np.ndarray
    grid_rep: np.ndarray
    grid_tree: shapely.STRtree
    b_geoms: np.ndarray
    b_rep: np.ndarray
    b_id: np.ndarray
    b_grid: np.ndarray
    b_hh: np.ndarray
    b_name: np.ndarray
    building_tree: shapely.STRtree
    barrier_lines: np.ndarray
    barrier_tree: shapely.STRtree | None
    splits: pd.DataFrame
    split_ids: set

    @classmethod
    def build(cls, plan: Plan) -> _SheetContext:
        gg = plan.grids.geometry.values
        bg = plan.buildings.geometry.values
        lines = np.array([], dtype=object)
        if plan.barriers is not None and len(plan.barriers):
            geoms = plan.barriers.geometry.values
            poly = np.isin(shapely.get_type_id(geoms), (3, 6))
            lines = np.asarray(np.where(poly, shapely.boundary(geoms), geoms), dtype=object)
        splits = plan.splits if plan.splits is not None else pd.DataFrame(
            columns=["building_id", "grid_code", "households", "unit_from", "unit_to"]
        )  # fmt: skip
        return cls(
            grid_geoms=np.asarray(gg, dtype=object),
            grid_rep=shapely.point_on_surface(gg),
            grid_tree=shapely.STRtree(gg),
            b_geoms=np.asarray(bg, dtype=object),
            b_rep=shapely.point_on_surface(bg),
            b_id=plan.buildings["building_id"].astype(str).to_numpy(),
            b_grid=plan.buildings["grid_code"].astype(object).to_numpy(),
            b_hh=pd.to_numeric(plan.buildings["households"], errors="coerce").fillna(0).to_numpy(),
            b_name=(
                plan.buildings["name"].fillna("").astype(str).to_numpy()
                if "name" in plan.buildings.columns
                else np.full(len(bg), "", dtype=object)
            ),
            building_tree=shapely.STRtree(bg),
            barrier_lines=lines,
            barrier_tree=shapely.STRtree(lines) if len(lines) else None,
            splits=splits,
            split_ids=set(splits["building_id"].astype(str)),
        )


@functools.lru_cache(maxsize=1)
def _cjk_font():
    """A FontProperties of an installed font with every Chinese glyph the wall maps use,
    or None (with a warning: the maps are then drawn in English only)."""
    from matplotlib import font_manager as fm

    prefer = (
        "Noto Sans CJK SC",
        "Noto Sans SC",
        "Source Han Sans SC",
        "Noto Sans CJK",
        "Source Han Sans",
        "WenQuanYi",
        "Microsoft YaHei",
        "SimHei",
        "PingFang",
        "Noto Serif CJK",
    )
    entries = [(f.name, f.fname) for f in fm.fontManager.ttflist]
    candidates = [
        fname
        for want in prefer
        for name, fname in entries
        if name.startswith(want) and "bold" not in Path(fname).stem.lower()
    ]
    candidates += [
        fname
        for fname in fm.findSystemFonts()
        if any(k in Path(fname).stem.lower() for k in ("cjk", "wqy", "simhei"))
        and "bold" not in Path(fname).stem.lower()
    ]
    for fname in dict.fromkeys(candidates):
        if _has_glyphs(fname, _CJK_PROBE):
            return fm.FontProperties(fname=fname)
    warnings.warn(
        "no font with Chinese glyphs found (install fonts-noto-cjk, e.g. "
        "`apt-get install fonts-noto-cjk`): grid wall maps are drawn with English text only",
        stacklevel=3,
    )
    return None


def _has_glyphs(fname: str, text: str) -> bool:
    """Whether the font file `fname` (its first face) has a glyph for every character."""
    from matplotlib.ft2font import FT2Font

    try:
        cmap = FT2Font(fname).get_charmap()
    except (RuntimeError, OSError, ValueError):  # unreadable font file
        return False
    return all(ord(ch) in cmap for ch in text)


def _bold(fp):
    if fp is None:
        return None
    bold = Path(fp.get_file()).with_name(Path(fp.get_file()).name.replace("Regular", "Bold"))
    if bold != Path(fp.get_file()) and bold.is_file():
        from matplotlib import font_manager as fm

        return fm.FontProperties(fname=str(bold))
    return fp


def _building_label(bid: str, name: str, zh: bool) -> str:
    """The building's name when it is short and printable, else its id (shortened)."""
    if name and len(name) <= 12 and (zh or name.isascii()):
        return name
    return bid if len(bid) <= 10 else "…" + bid[-8:]


def _frame(bounds: tuple[float, float, float, float], aspect: float) -> tuple[float, ...]:
    """Pad `bounds` by 8 % (at least 25 m) and widen to the axes' width/height `aspect`."""
    x0, y0, x1, y1 = bounds
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    pad = max(0.08 * max(w, h), 25.0)
    x0, x1, y0, y1 = x0 - pad, x1 + pad, y0 - pad, y1 + pad
    w, h = x1 - x0, y1 - y0
    if w / h < aspect:
        grow = (aspect * h - w) / 2
        x0, x1 = x0 - grow, x1 + grow
    else:
        grow = (w / aspect - h) / 2
        y0, y1 = y0 - grow, y1 + grow
    return x0, y0, x1, y1


def _scale_bar(ax, x0: float, x1: float, y0: float, y1: float) -> None:
    width = x1 - x0
    nice = [10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000]
    length = max([n for n in nice if n <= width / 4], default=nice[0])
    sx, sy = x0 + 0.04 * width, y0 + 0.035 * (y1 - y0)
    ax.plot([sx, sx + length], [sy, sy], color="k", linewidth=3, solid_capstyle="butt", zorder=7)
    ax.plot([sx, sx], [sy - width * 0.004, sy + width * 0.004], color="k", lw=1, zorder=7)
    ax.plot(
        [sx + length, sx + length], [sy - width * 0.004, sy + width * 0.004], color="k", lw=1,
        zorder=7,
    )  # fmt: skip
    text = f"{length // 1000} km" if length >= 1000 else f"{length} m"
    ax.text(
        sx + length / 2, sy + width * 0.008, text, ha="center", va="bottom", fontsize=8, zorder=7
    )


def _grid_table(plan: Plan) -> pd.DataFrame:
    g = pd.DataFrame(plan.grids.drop(columns="geometry"))
    g["area_m2"] = g["area_m2"].round(1)
    g["polsby_popper"] = g["polsby_popper"].round(3)
    return g


def _write_geojson(plan: Plan, out: Path) -> list[Path]:
    paths = []
    for name, gdf in (("grids", plan.grids), ("buildings", plan.buildings)):
        w = to_wgs84(gpd.GeoDataFrame(gdf, geometry="geometry", crs=plan.crs), name)
        w = _plain_columns(w)
        path = out / f"{name}.geojson"
        atomic_write(
            path,
            lambda p, w=w: pyogrio.write_dataframe(
                w, p, driver="GeoJSON", layer_options={"COORDINATE_PRECISION": 7}
            ),
        )
        paths.append(path)
    return paths


def _write_shapefiles(plan: Plan, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    mapping_rows = []
    for name, gdf in (("grids", plan.grids), ("buildings", plan.buildings)):
        w = to_wgs84(gpd.GeoDataFrame(gdf, geometry="geometry", crs=plan.crs), name)
        w = _plain_columns(w)
        names = _shp_names([c for c in w.columns if c != "geometry"])
        mapping_rows += [{"layer": name, "column": c, "field": f} for c, f in names.items()]
        w = w.rename(columns=names)
        for col in w.columns:
            if col != "geometry" and pd.api.types.is_object_dtype(w[col]):
                w[col] = w[col].map(_cut_text)
        path = folder / f"{name}.shp"
        for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            path.with_suffix(ext).unlink(missing_ok=True)
        pyogrio.write_dataframe(w, path, driver="ESRI Shapefile", encoding="UTF-8")
        cpg = path.with_suffix(".cpg")
        if not cpg.exists():  # pragma: no cover - GDAL writes it with encoding=UTF-8
            cpg.write_text("UTF-8", encoding="ascii")
        paths += [path.with_suffix(e) for e in (".shp", ".shx", ".dbf", ".prj", ".cpg")]
    fields = folder / "fields.csv"
    pd.DataFrame(mapping_rows).to_csv(fields, index=False, encoding="utf-8-sig")
    paths.append(fields)
    return paths


def _plain_columns(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Columns GDAL writes everywhere: bool → 0/1, nullable ints → float, objects → text."""
    out = gdf.copy()
    for col in out.columns:
        if col == "geometry":
            continue
        s = out[col]
        if pd.api.types.is_bool_dtype(s):
            out[col] = s.fillna(False).astype(np.int64) if s.dtype == object else s.astype(np.int64)
        elif isinstance(s.dtype, pd.CategoricalDtype):
            out[col] = (
                s.astype(object).where(s.notna(), None).map(lambda v: None if v is None else str(v))
            )
        elif pd.api.types.is_integer_dtype(s) and s.isna().any():
            out[col] = s.astype("float64")
        elif pd.api.types.is_datetime64_any_dtype(s):
            out[col] = s.astype(str)
        elif pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
            out[col] = s.astype(object).map(lambda v: None if _isna(v) else str(v))
    return out


def _isna(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _shp_names(columns: list[str]) -> dict[str, str]:
    """DBF field names of at most 10 bytes (UTF-8), unique, for `columns`."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for col in columns:
        name = _cut_bytes(SHP_FIELDS.get(col, col), 10)
        base, k = name, 1
        while name.lower() in used:
            suffix = str(k)
            name = _cut_bytes(base, 10 - len(suffix)) + suffix
            k += 1
        used.add(name.lower())
        out[col] = name
    return out


def _cut_bytes(text: str, limit: int) -> str:
    raw = str(text).encode("utf-8")
    if len(raw) <= limit:
        return str(text)
    return raw[:limit].decode("utf-8", errors="ignore")


def _cut_text(v):
    if v is None or not isinstance(v, str):
        return v
    return _cut_bytes(v, _DBF_TEXT_BYTES)
