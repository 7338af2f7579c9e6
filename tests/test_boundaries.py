"""Administrative boundaries read from a real OSM .pbf written here with pyosmium.

The town: two streets (admin_level 8) side by side, 600 m x 600 m each; the west one
holds two communities (admin_level 10, north and south), the east one three (200 m
strips). Boundary ways are shared between relations and some run backwards, as in OSM.
Residential footprints (``building:levels``), a primary road, a residential road and a
river are ways of the same file. Relation 999 is a community whose ring does not close.
"""

from __future__ import annotations

import logging
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

osmium = pytest.importorskip("osmium")

import gridmap  # noqa: E402
from gridmap.boundaries import admin_communities, admin_hierarchy, read_boundaries  # noqa: E402
from gridmap.cli import main  # noqa: E402
from gridmap.errors import InputError, SchemaError  # noqa: E402

LON0, LAT0 = 126.60, 45.75
COMMUNITIES = {  # id: (name, box x0, y0, x1, y1 in metres, extra tags)
    101: ("红旗社区", (0, 300, 600, 600), {"ref": "230717001001"}),
    102: ("光明村", (0, 0, 600, 300), {"name:zh": "光明村", "ref": "bad"}),
    103: ("一社区", (600, 0, 800, 600), {}),
    104: ("二社区", (800, 0, 1000, 600), {}),
    105: ("三社区", (1000, 0, 1200, 600), {}),
}
STREETS = {  # id: (name, outline corners, tags)
    11: (
        "东风街道",
        [(0, 0), (600, 0), (600, 300), (600, 600), (0, 600), (0, 300)],
        {"ref": "230717001000"},
    ),
    12: (
        "胜利镇",
        [
            (600, 0),
            (800, 0),
            (1000, 0),
            (1200, 0),
            (1200, 600),
            (1000, 600),
            (800, 600),
            (600, 600),
            (600, 300),
        ],
        {},
    ),  # fmt: skip
}


def _lonlat(x: float, y: float) -> tuple[float, float]:
    return (LON0 + x / (111_320 * math.cos(math.radians(LAT0))), LAT0 + y / 111_320)


def _corners(box) -> list[tuple[int, int]]:
    x0, y0, x1, y1 = box
    pts = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if x1 <= 600:  # the west street's communities meet the primary road at (600, 300)
        pts = [(x0, y0), (x1, y0), (x1, 300), (x1, y1), (x0, y1), (x0, 300)]
    return list(dict.fromkeys(pts))


class _Osm:
    """A tiny OSM data set: shared nodes, shared boundary ways, relations."""

    def __init__(self):
        self.nodes, self.ways, self.relations = [], [], []
        self._node_at: dict = {}
        self._edge: dict = {}

    def node(self, x, y, tags=None) -> int:
        if tags is None and (x, y) in self._node_at:
            return self._node_at[(x, y)]
        nid = len(self.nodes) + 1
        self.nodes.append(osmium.osm.mutable.Node(id=nid, location=_lonlat(x, y), tags=tags or {}))
        if tags is None:
            self._node_at[(x, y)] = nid
        return nid

    def way(self, coords, tags=None) -> int:
        wid = len(self.ways) + 1
        refs = [self.node(x, y) for x, y in coords]
        self.ways.append(osmium.osm.mutable.Way(id=wid, nodes=refs, tags=tags or {}))
        return wid

    def ring(self, corners) -> list[int]:
        """One way per side, shared (and then reversed) with the neighbouring ring."""
        out = []
        for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
            if (b, a) in self._edge:
                out.append(self._edge[(b, a)])
            else:
                self._edge.setdefault((a, b), self.way([a, b]))
                out.append(self._edge[(a, b)])
        return out

    def boundary(self, rid, level, name, ways, tags=None, extra=()) -> None:
        members = [("w", w, "outer") for w in ways] + list(extra)
        tags = {"type": "boundary", "boundary": "administrative", "admin_level": str(level),
                "name": name, **(tags or {})}  # fmt: skip
        self.relations.append(osmium.osm.mutable.Relation(id=rid, members=members, tags=tags))

    def buildings(self, box, levels="4") -> None:
        x0, y0, x1, y1 = box
        for x in range(x0 + 25, x1 - 40, 45):
            for y in range(y0 + 25, y1 - 30, 35):
                if x0 >= 600 and abs(y + 6 - 450) < 20:  # the river
                    continue
                self.way(
                    [(x, y), (x + 20, y), (x + 20, y + 12), (x, y + 12), (x, y)],
                    {"building": "residential", "building:levels": levels},
                )

    def write(self, path) -> str:
        with osmium.SimpleWriter(str(path), overwrite=True) as w:
            for n in self.nodes:
                w.add_node(n)
            for x in self.ways:
                w.add_way(x)
            for r in self.relations:
                w.add_relation(r)
        return str(path)


def _town(communities=COMMUNITIES, streets=STREETS, broken=True, outside=False) -> _Osm:
    osm = _Osm()
    for _, box, _ in COMMUNITIES.values():
        osm.buildings(box)
    if outside:  # a hamlet east of every boundary
        osm.buildings((1300, 100, 1500, 300), levels="2")
    osm.way([(600, -50), (600, 650)], {"highway": "primary", "name": "中山路"})
    osm.way([(-50, 300), (600, 300)], {"highway": "residential"})
    osm.way([(600, 450), (1250, 450)], {"waterway": "river", "name": "小河"})
    for rid, (name, box, tags) in communities.items():
        osm.boundary(rid, 10, name, osm.ring(_corners(box)), tags)
    for rid, (name, corners, tags) in streets.items():
        ways = osm.ring(corners)
        extra = []
        if rid == 11:
            centre = osm.node(300, 310, {"place": "town", "name": "东风"})
            extra = [("n", centre, "admin_centre"), ("r", 101, "subarea")]
        else:
            ways = ways[::-1]
        osm.boundary(rid, 8, name, ways, tags, extra)
    if broken:
        chain = [osm.way([(650, 100), (750, 100)]), osm.way([(750, 100), (750, 200)]),
                 osm.way([(750, 200), (660, 200)])]  # fmt: skip
        osm.boundary(999, 10, "断环社区", chain)
    return osm


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    return _town().write(tmp_path_factory.mktemp("osm") / "town.osm.pbf")


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return _town(communities={}, streets={}, broken=False).write(
        tmp_path_factory.mktemp("osm") / "plain.osm.pbf"
    )


@pytest.fixture(scope="module")
def buildings(town):
    return gridmap.estimate_households(gridmap.read_buildings(town))


def _areas(gdf: gpd.GeoDataFrame) -> dict[str, float]:
    return dict(zip(gdf["name"], gdf.geometry.area, strict=True))


# ---------------------------------------------------------------------- reading
def test_read_boundaries_levels_names_codes(town):
    bnd = read_boundaries(town)
    streets, comms = bnd["streets"], bnd["communities"]
    assert streets.crs.is_projected and comms.crs == streets.crs
    assert set(streets["admin_level"]) == {8} and set(comms["admin_level"]) == {10}
    assert sorted(streets["name"]) == ["东风街道", "胜利镇"]
    assert sorted(comms["osm_id"]) == [101, 102, 103, 104, 105]
    assert comms.geometry.is_valid.all() and (comms.geom_type == "Polygon").all()
    area = _areas(comms)
    for name, (x0, y0, x1, y1) in [(v[0], v[1]) for v in COMMUNITIES.values()]:
        assert area[name] == pytest.approx((x1 - x0) * (y1 - y0), rel=0.005)
    assert _areas(streets)["胜利镇"] == pytest.approx(360_000, rel=0.005)
    row = comms.set_index("osm_id")
    assert row.loc[101, "code"] == "230717001001" and row.loc[101, "street_code"] == "001"
    assert row.loc[102, "name_zh"] == "光明村" and row.loc[102, "ref"] == "bad"
    assert pd.isna(row.loc[102, "code"])  # "bad" is no code
    assert row.loc[102, "street_code"] == "001"  # from its street's 12-digit code
    street_of = {i: row.loc[i, "street_id"] for i in row.index}
    assert street_of == {101: 11, 102: 11, 103: 12, 104: 12, 105: 12}
    assert set(row.loc[[103, 104, 105], "street_name"]) == {"胜利镇"}
    s = streets.set_index("osm_id")
    assert s.loc[11, "code"] == "230717001" and s.loc[11, "district_code"] == "230717"


def test_broken_ring_and_bad_code_warn_with_relation_id(town, caplog):
    with caplog.at_level(logging.WARNING, logger="gridmap"):
        bnd = read_boundaries(town)
    msgs = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    broken = [m for m in msgs if "relation 999" in m]
    assert len(broken) == 1 and "does not close" in broken[0] and "断环社区" in broken[0]
    assert any("102" in m and "'bad'" in m for m in msgs)
    assert 999 not in set(bnd["communities"]["osm_id"])
    report = bnd["communities"].attrs["boundaries_report"]
    assert [r[0] for r in report["open_rings"]] == [999]
    assert report["ignored_codes"] == [(102, "ref", "bad")]


def test_levels_bbox_and_bad_input(town, tmp_path):
    only10 = read_boundaries(town, levels=[10])
    assert len(only10["streets"]) == 0 and len(only10["communities"]) == 5
    assert only10["communities"]["street_id"].isna().all()
    only8 = read_boundaries(town, levels=(8,))
    assert sorted(only8["communities"]["name"]) == ["东风街道", "胜利镇"]
    west = read_boundaries(town, bbox=(*_lonlat(10, 10), *_lonlat(500, 500)))
    assert sorted(west["communities"]["osm_id"]) == [101, 102]
    assert list(west["streets"]["osm_id"]) == [11]
    with pytest.raises(SchemaError, match="admin_level"):
        read_boundaries(town, levels=["x"])
    with pytest.raises(InputError, match="not found"):
        read_boundaries(tmp_path / "none.osm.pbf")
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"not a pbf")
    with pytest.raises(InputError):
        read_boundaries(bad)


def test_finer_level_wins_over_coarser_community_level(tmp_path):
    osm = _Osm()
    osm.boundary(11, 8, "东风街道", osm.ring(STREETS[11][1]))
    osm.boundary(90, 9, "片区", osm.ring([(0, 0), (600, 0), (600, 300), (600, 600), (0, 600)]))
    osm.boundary(101, 10, "红旗社区", osm.ring([(0, 300), (600, 300), (600, 600), (0, 600)]))
    bnd = read_boundaries(osm.write(tmp_path / "levels.osm.pbf"))
    comms = bnd["communities"].set_index("osm_id")
    assert sorted(comms.index) == [90, 101]
    assert comms.loc[90, "admin_level"] == 9
    assert comms.geometry.loc[90].area == pytest.approx(180_000, rel=0.005)  # the south half
    assert comms.geometry.loc[90].intersection(comms.geometry.loc[101]).area < 1


def test_extract_without_boundaries(plain):
    bnd = read_boundaries(plain)
    assert len(bnd["streets"]) == 0 and len(bnd["communities"]) == 0
    assert "street_id" in bnd["communities"].columns
    b = gridmap.read_buildings(plain)
    comms, note = admin_hierarchy(plain, b)
    assert comms is None and "no boundary=administrative" in note


# ---------------------------------------------------------------------- completing
def test_admin_communities_fill_streets_and_outside(tmp_path):
    west_only = {k: v for k, v in COMMUNITIES.items() if k in (101, 102)}
    path = _town(communities=west_only, broken=False, outside=True).write(tmp_path / "gap.pbf")
    b = gridmap.estimate_households(gridmap.read_buildings(path))
    comms = admin_communities(read_boundaries(path), b)
    by_source = comms.groupby("source")["name"].apply(sorted).to_dict()
    assert by_source == {
        "osm": ["光明村", "红旗社区"],
        "outside": ["边界外区域 1"],
        "street_remainder": ["胜利镇"],  # no community mapped: the whole street
    }
    hh = b["households"].to_numpy()
    hamlet = hh[shapely.get_x(shapely.centroid(b.geometry.values)) > _lonlat(1250, 0)[0]].sum()
    assert 0 < hamlet < 0.05 * hh.sum()
    assert comms.attrs["coverage"] == pytest.approx(1 - hamlet / hh.sum())
    # every building in exactly one community
    pts = gpd.GeoSeries(b.representative_point(), crs=b.crs).to_crs(comms.crs)
    hits = shapely.STRtree(comms.geometry.values).query(pts.values, predicate="within")[0]
    assert np.array_equal(np.bincount(hits, minlength=len(b)), np.ones(len(b), dtype=int))
    rest = comms.set_index("name")
    assert rest.loc["胜利镇", "street_id"] == 12 and rest.loc["边界外区域 1", "street_id"] == 12
    with pytest.raises(InputError):
        admin_communities({"streets": rest.iloc[:0], "communities": rest.iloc[:0]})
    # below the coverage floor the extract's boundaries are not used
    low, note = admin_hierarchy(path, b, min_coverage=0.99)
    assert low is None and "derived instead" in note


# ---------------------------------------------------------------------- planning
def test_plan_uses_pbf_boundaries(town, buildings):
    comms, note = admin_hierarchy(town, buildings)
    assert "OSM administrative boundaries" in note and "999" in note
    assert comms.attrs["street_column"] == "street_id"
    assert comms.attrs["district_code"] == "230717"
    plan = gridmap.plan_grids(
        buildings, comms, street_column=comms.attrs["street_column"], workers=1
    )
    bnd = read_boundaries(town)["communities"].to_crs(plan.crs)
    names = set(bnd["name"])
    assert set(plan.communities["name"]) == names
    assert set(plan.grids["community_name"]) == names
    # every grid lies within exactly one community of the extract, the one it names
    g = np.asarray(plan.grids.geometry.values)
    inter = shapely.area(shapely.intersection(g[:, None], np.asarray(bnd.geometry.values)[None, :]))
    share = inter / shapely.area(g)[:, None]
    assert ((share > 0.99).sum(axis=1) == 1).all()
    assert (share.max(axis=1) > 0.99).all() and ((share > 0.01).sum(axis=1) == 1).all()
    named = bnd["name"].to_numpy()[share.argmax(axis=1)]
    assert (named == plan.grids["community_name"].to_numpy()).all()
    # the two streets of the extract are the plan's two streets
    st = plan.communities.groupby("street_code")["name"].apply(set).tolist()
    assert sorted(st, key=len) == [{"光明村", "红旗社区"}, {"一社区", "二社区", "三社区"}]
    assert len(plan.validate()) == 0


def test_plan_grids_uses_the_boundaries_of_its_pbf(town, buildings):
    """From Python as from the command line: footprints read from an extract with
    administrative boundaries are planned in those communities and streets."""
    assert buildings.attrs["source_path"].endswith("town.osm.pbf")
    plan = gridmap.plan_grids(buildings, workers=1)
    assert plan.params["hierarchy"] == "osm_admin"
    assert plan.notes[0].startswith("Communities from the OSM administrative boundaries")
    assert set(plan.communities["name"]) == {v[0] for v in COMMUNITIES.values()}
    assert (plan.grids["grid_code"].str[:6] == "230717").all()  # district from the codes
    assert len(plan.validate()) == 0
    derived = gridmap.plan_grids(
        buildings, admin_boundaries=False, community_size=(500, 1000), workers=1
    )
    assert derived.params["hierarchy"] == "derived"
    assert derived.communities["name"].str.startswith("规划社区").all()
    # a frame that was not read from a file has no source to look in
    b = buildings.copy()
    b.attrs.pop("source_path")
    assert gridmap.plan_grids(b, workers=1).params["hierarchy"] == "derived"


# ---------------------------------------------------------------------- command line
def test_cli_partition_reads_admin_boundaries(town, tmp_path, caplog):
    out = tmp_path / "plan.gpkg"
    with caplog.at_level(logging.INFO, logger="gridmap"):
        assert main(["partition", town, "-o", str(out), "--workers", "1"]) == 0
    assert "communities and streets: osm_admin" in caplog.text
    plan = gridmap.read_plan(out)
    assert plan.params["hierarchy"] == "osm_admin"
    assert plan.notes[0].startswith("Communities from the OSM administrative boundaries")
    assert set(plan.communities["name"]) == {v[0] for v in COMMUNITIES.values()}
    assert (plan.grids["grid_code"].str[:6] == "230717").all()  # district from the codes

    assert main(["partition", town, "-o", str(out), "--admin-levels", "8", "--workers", "1"]) == 0
    plan = gridmap.read_plan(out)
    assert set(plan.communities["name"]) == {"东风街道", "胜利镇"}

    args = ["partition", town, "-o", str(out), "--no-admin-boundaries", "--workers", "1"]
    assert main([*args, "--community-size", "500", "1000"]) == 0
    plan = gridmap.read_plan(out)
    assert plan.params["hierarchy"] == "derived"
    assert plan.communities["name"].str.startswith("规划社区").all()

    with pytest.raises(SystemExit) as exc:
        main(["partition", town, "-o", str(out), "--admin-levels", "8,x"])
    assert exc.value.code == 2


def test_assembly_holes_spikes_split_rings_and_missing_members(tmp_path, caplog):
    osm = _Osm()
    # outer ring of three ways (one backwards) around a hole of one closed way, no roles
    a = osm.way([(0, 0), (400, 0), (400, 400)])
    b = osm.way([(0, 400), (400, 400)])  # runs against the ring
    c = osm.way([(0, 400), (0, 200), (-50, 200), (0, 200), (0, 0)])  # with a spike
    hole = osm.way([(100, 100), (200, 100), (200, 200), (100, 200), (100, 100)])
    osm.boundary(1, 10, "带洞社区", [a, b, c, hole])
    osm.relations[-1].members[-1] = ("w", hole, "")
    # a village mapped as a named closed way, and a relation with a member not in the file
    osm.way([(500, 0), (700, 0), (700, 200), (500, 200), (500, 0)],
            {"boundary": "administrative", "admin_level": "10", "name": "村庄"})  # fmt: skip
    d = osm.way([(800, 0), (900, 0), (900, 100)])
    osm.boundary(2, 10, "缺边社区", [d, 99_999])
    with caplog.at_level(logging.WARNING, logger="gridmap"):
        comms = read_boundaries(osm.write(tmp_path / "shapes.osm.pbf"))["communities"]
    area = _areas(comms)
    assert area["带洞社区"] == pytest.approx(400 * 400 - 100 * 100, rel=0.005)
    holed = comms.geometry[comms["name"] == "带洞社区"].iloc[0]
    assert len(holed.interiors) == 1 and holed.is_valid
    assert area["村庄"] == pytest.approx(200 * 200, rel=0.005)
    assert set(comms["osm_type"]) == {"relation", "way"}
    assert "缺边社区" not in area and "relation 2 (缺边社区)" in caplog.text


def test_few_buildings_beside_a_community_join_it(tmp_path):
    osm = _Osm()
    osm.boundary(101, 10, "红旗社区", osm.ring([(0, 0), (300, 0), (300, 300), (0, 300)]))
    osm.buildings((0, 0, 300, 300))
    osm.way(
        [(320, 100), (340, 100), (340, 112), (320, 112), (320, 100)],
        {"building": "house", "building:levels": "2"},
    )  # 20 m east of the boundary
    path = osm.write(tmp_path / "edge.osm.pbf")
    b = gridmap.estimate_households(gridmap.read_buildings(path))
    bnd = read_boundaries(path)
    comms = admin_communities(bnd, b)
    assert list(comms["name"]) == ["红旗社区"] and comms.attrs["coverage"] < 1
    grown = comms.geometry.iloc[0]
    assert grown.area > bnd["communities"].geometry.iloc[0].area
    outlier = b.to_crs(comms.crs).geometry.iloc[-1]
    assert grown.contains(outlier)


def test_official_codes_become_grid_codes(tmp_path):
    codes = {101: "230717001001", 102: "230717001002", 103: "230717002001",
             104: "230717002002", 105: "230717002003"}  # fmt: skip
    comms = {k: (n, box, {"ref:admin:CN:nbs": codes[k]}) for k, (n, box, _) in COMMUNITIES.items()}
    streets = {11: STREETS[11], 12: (*STREETS[12][:2], {"ref:admin:CN": "230717002"})}
    path = _town(communities=comms, streets=streets, broken=False).write(tmp_path / "c.pbf")
    b = gridmap.estimate_households(gridmap.read_buildings(path))
    layer, note = admin_hierarchy(path, b)
    assert "district code 230717" in note
    plan = gridmap.plan_grids(
        b, layer, street_column="street_id", admin_code=layer.attrs["district_code"], workers=1
    )
    by_name = {COMMUNITIES[k][0]: c for k, c in codes.items()}
    assert (plan.grids["grid_code"].str[:12] == plan.grids["community_name"].map(by_name)).all()
