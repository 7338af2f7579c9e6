"""Small synthetic plans for demos, tests and benchmarks of the web layer.

* :func:`lattice_town` and :func:`lattice_plan`: a lattice of box buildings in two
  communities split by a main road, partitioned with :func:`gridmap.plan_grids` (real
  plan, a few seconds).
* :func:`square_plan`: a plan of ``n`` square grids built directly (no partitioning),
  for load tests with thousands of grids.

Coordinates are in EPSG:32652 (UTM 52N) near Yichun, Heilongjiang.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

#: Metric CRS of the synthetic towns.
DEMO_CRS = 32652
#: South-west corner of the synthetic towns (easting, northing).
ORIGIN = (492_000.0, 5_283_000.0)


def lattice_town(
    width: float = 2000.0, height: float = 1000.0, seed: int = 0, dx: float = 60.0, dy: float = 45.0
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Buildings, two communities and one main road of a synthetic town.

    Returns
    -------
    buildings, communities, road : geopandas.GeoDataFrame
        Buildings with ``building_id``, ``use``, ``levels``, ``units``,
        ``households``; communities with ``community_code``, ``street_code``, ``name``;
        the road with ``highway`` and ``name``. All in EPSG:32652.
    """
    rng = np.random.default_rng(seed)
    x0, y0 = ORIGIN
    xs, ys = np.meshgrid(np.arange(dx / 2, width, dx), np.arange(dy / 2, height, dy))
    xy = np.column_stack([xs.ravel(), ys.ravel()])
    xy = xy[np.abs(xy[:, 1] - height / 2) > 15]
    hh = rng.choice([1, 24, 36, 60, 0], size=len(xy), p=[0.3, 0.3, 0.2, 0.15, 0.05])
    w, h = 24.0, 16.0
    geom = shapely.box(
        x0 + xy[:, 0] - w / 2, y0 + xy[:, 1] - h / 2, x0 + xy[:, 0] + w / 2, y0 + xy[:, 1] + h / 2
    )
    buildings = gpd.GeoDataFrame(
        {
            "building_id": [f"B{i:05d}" for i in range(len(xy))],
            "use": np.where(hh == 0, "garage", np.where(hh == 1, "house", "apartments")),
            "levels": np.where(hh > 1, 6.0, 1.0),
            "units": np.where(hh > 1, 3, 1),
            "households": hh,
            "households_source": "given",
        },
        geometry=geom,
        crs=DEMO_CRS,
    )
    half = width / 2
    communities = gpd.GeoDataFrame(
        {"community_code": ["001", "002"], "street_code": "001", "name": ["东风社区", "红星社区"]},
        geometry=[
            shapely.box(x0, y0, x0 + half, y0 + height),
            shapely.box(x0 + half, y0, x0 + width, y0 + height),
        ],
        crs=DEMO_CRS,
    )
    road = gpd.GeoDataFrame(
        {"highway": ["primary"], "name": ["林都大街"]},
        geometry=[
            shapely.LineString([(x0 - 10, y0 + height / 2), (x0 + width + 10, y0 + height / 2)])
        ],
        crs=DEMO_CRS,
    )
    return buildings, communities, road


def lattice_plan(width: float = 2000.0, height: float = 1000.0, seed: int = 0):
    """Partition :func:`lattice_town` with :func:`gridmap.plan_grids` (district 230717)."""
    from gridmap.partition import plan_grids

    b, comms, road = lattice_town(width, height, seed)
    return plan_grids(b, comms, barriers=road, admin_code="230717", seed=seed, progress=False)


def square_plan(n: int, size: float = 100.0, per_community: int = 100):
    """A plan of `n` square grids (``size`` m), one building each, built directly.

    Grids are laid out row by row in a square; every `per_community` grids form a
    community. Households cycle through 300-500; every 50th grid is flagged.
    """
    from gridmap.plan import Plan

    cols = int(np.ceil(np.sqrt(n)))
    i = np.arange(n)
    x0, y0 = ORIGIN
    gx = x0 + (i % cols) * size
    gy = y0 + (i // cols) * size
    geoms = shapely.box(gx, gy, gx + size, gy + size)
    comm = i // per_community
    comm_code = np.char.zfill((comm % 999 + 1).astype(str), 3)
    street = np.char.zfill((comm // 999 + 1).astype(str), 3)
    seq = np.char.zfill((i % per_community + 1).astype(str), 3)
    codes = np.char.add(np.char.add(np.char.add("230717", street), comm_code), seq)
    hh = 300 + (i * 37) % 201
    flags = np.where(i % 50 == 0, "out_of_range", "")
    grids = gpd.GeoDataFrame(
        {
            "grid_code": codes.astype(object),
            "community_code": comm_code.astype(object),
            "street_code": street.astype(object),
            "community_name": np.char.add("社区", comm_code).astype(object),
            "kind": np.where(i % 20 == 0, "special", "community").astype(object),
            "households": hh.astype(np.int64),
            "buildings": np.ones(n, dtype=np.int64),
            "range_min": np.full(n, 300, dtype=np.int64),
            "range_max": np.full(n, 500, dtype=np.int64),
            "difficult": np.zeros(n, dtype=bool),
            "flags": flags.astype(object),
            "flag_reason": np.where(flags != "", "synthetic", "").astype(object),
            "name": np.full(n, "", dtype=object),
            "worker": np.full(n, "", dtype=object),
            "area_m2": np.full(n, size * size),
            "polsby_popper": np.full(n, np.pi / 4),
        },
        geometry=geoms,
        crs=DEMO_CRS,
    )
    c = size / 2
    buildings = gpd.GeoDataFrame(
        {
            "building_id": np.char.add("B", np.char.zfill(i.astype(str), 6)).astype(object),
            "use": np.full(n, "apartments", dtype=object),
            "levels": np.full(n, 6.0),
            "units": np.full(n, 3, dtype=np.int64),
            "households": hh.astype(np.int64),
            "grid_code": codes.astype(object),
            "community_code": comm_code.astype(object),
        },
        geometry=shapely.box(gx + c - 15, gy + c - 10, gx + c + 15, gy + c + 10),
        crs=DEMO_CRS,
    )
    communities = grids.dissolve(by="community_code", as_index=False)[
        ["community_code", "street_code", "community_name", "geometry"]
    ].rename(columns={"community_name": "name"})
    return Plan(
        grids=grids,
        buildings=buildings,
        crs=CRS.from_epsg(DEMO_CRS),
        communities=communities,
        notes=[f"synthetic plan of {n} square grids"],
        params={"synthetic": True},
    )


def sample_events(plan, n: int = 200, seed: int = 0) -> list[dict]:
    """`n` event reports (API payloads) at random points inside `plan`'s grids."""
    from gridmap.crs import to_wgs84

    rng = np.random.default_rng(seed)
    grids = plan.grids.reset_index(drop=True)
    pick = rng.integers(0, len(grids), n)
    pts = shapely.point_on_surface(grids.geometry.to_numpy()[pick])
    wgs = to_wgs84(gpd.GeoDataFrame(geometry=pts, crs=plan.crs))
    cats = [
        "information_collection",
        "opinion_survey",
        "policy_publicity",
        "key_population",
        "errand_service",
        "safety_hazard",
        "dispute_mediation",
    ]
    base = pd.Timestamp("2025-05-01T08:00:00+08:00")
    out = []
    for k in range(n):
        rep = base + pd.Timedelta(hours=int(rng.integers(0, 24 * 60)))
        closed = bool(rng.random() < 0.8)
        out.append(
            {
                "event_id": f"T{seed:02d}{k:06d}",
                "reported_at": rep.isoformat(),
                "category": cats[k % 7],
                "source": "grid_worker" if k % 3 else "resident",
                "status": "closed" if closed else "open",
                "deadline": (rep + pd.Timedelta(days=3)).isoformat(),
                "closed_at": (rep + pd.Timedelta(hours=int(rng.integers(1, 100)))).isoformat()
                if closed
                else None,
                "lon": round(float(wgs.geometry.x.iloc[k]), 7),
                "lat": round(float(wgs.geometry.y.iloc[k]), 7),
            }
        )
    return out
