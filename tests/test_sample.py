"""Tests of the embedded sample town (gridmap.sample)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely
from scipy import ndimage

import gridmap
from gridmap import sample
from gridmap.errors import InputError

DATA = Path(__file__).resolve().parents[1] / "data"
METRIC = "EPSG:32652"

COLUMNS = {
    "streets": ["street_code", "name"],
    "communities": ["community_code", "street_code", "name", "kind"],
    "compounds": ["compound_id", "name", "community_code"],
    "buildings": ["楼栋编号", "名称", "用途", "层数", "单元数", "户数", "compound_id", "difficult"],
    "difficult_areas": ["name", "reason"],
    "institutions": ["name", "use"],
    "roads": ["highway", "name"],
    "rivers": ["name", "waterway"],
    "water": ["name"],
    "flood_extent": ["name", "year", "depth_m"],
    "shelters": ["name", "type", "capacity"],
    "events": ["event_id", "reported_at", "category", "source", "deadline", "status", "closed_at"],
}
CATEGORIES = {
    "information_collection",
    "opinion_survey",
    "policy_publicity",
    "key_population",
    "errand_service",
    "safety_hazard",
    "dispute_mediation",
}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def regenerated(tmp_path_factory):
    """The sample regenerated with seed 0 into a temporary folder."""
    folder = tmp_path_factory.mktemp("sample")
    start = time.perf_counter()
    layers = gridmap.sample_town(seed=0, path=folder)
    return folder, layers, time.perf_counter() - start


@pytest.fixture(scope="session")
def town(regenerated):
    return regenerated[1]


@pytest.fixture(scope="session")
def metric(town):
    return {name: gdf.to_crs(METRIC) for name, gdf in town.items()}


@pytest.fixture(scope="session")
def rasters(regenerated):
    paths = sample.sample_paths(regenerated[0])
    out = {}
    for key in ("dem", "flood_depth"):
        with rasterio.open(paths[key]) as src:
            out[key] = (src.read(1), src.profile, src.transform)
    return out


def _households(b: pd.DataFrame) -> np.ndarray:
    """Households per building as the estimator would count them (sample rules)."""
    use = b["用途"]
    levels = b["层数"].fillna(6.0)
    long_side = _long_side(b.geometry.values)
    units = b["单元数"].fillna(pd.Series(np.maximum(np.round(long_side / 15.0), 1), index=b.index))
    est = np.where(
        use.isin(["house", "rural_house"]),
        1.0,
        np.where(use.isin(["apartments", "residential"]), levels * units * 2, 0.0),
    )
    return np.where(b["户数"].notna(), b["户数"], est).astype(int)


def _long_side(geoms) -> np.ndarray:
    rect = shapely.oriented_envelope(geoms)
    xy = shapely.get_coordinates(rect).reshape(len(geoms), 5, 2)
    sides = np.hypot(*(xy[:, 1:3] - xy[:, 0:2]).transpose(2, 0, 1))
    return sides.max(axis=1)


def _depth_at(raster, geoms) -> np.ndarray:
    depth, profile, transform = raster
    c = shapely.centroid(geoms)
    rows, cols = rasterio.transform.rowcol(transform, shapely.get_x(c), shapely.get_y(c))
    d = depth[np.asarray(rows), np.asarray(cols)].astype(float)
    return np.where(d == profile["nodata"], 0.0, d)


# --------------------------------------------------------------------------- determinism


def test_regenerated_equals_repository_data(regenerated):
    folder, layers, _ = regenerated
    if not all(p.is_file() for p in sample._paths(DATA).values()):
        pytest.skip("data/ holds no generated sample")
    stored = gridmap.load_sample(DATA)
    assert list(stored) == list(layers) == list(sample.LAYERS)
    for name in sample.LAYERS:
        a, b = stored[name], layers[name]
        assert len(a) == len(b), name
        pd.testing.assert_frame_equal(
            pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry"))
        )
        assert shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=1e-9).all()
    for key in ("dem", "flood_depth"):
        with rasterio.open(sample.sample_paths(DATA)[key]) as s1:
            with rasterio.open(sample.sample_paths(folder)[key]) as s2:
                assert s1.profile == s2.profile
                assert s1.read(1).tobytes() == s2.read(1).tobytes()


def test_another_seed_gives_another_town(town):
    other = sample._build(1)
    assert len(other.layers["events"]) != len(town["events"]) or not np.array_equal(
        other.layers["events"].geometry.x, town["events"].geometry.x
    )
    assert set(other.layers) == set(sample.LAYERS)


# --------------------------------------------------------------------------- files and loading


def test_files_crs_and_size(regenerated, town):
    folder = regenerated[0]
    paths = sample.sample_paths(folder)
    assert {p.name for p in paths.values()} == {
        "sample_town.gpkg",
        "sample_dem.tif",
        "sample_flood_depth.tif",
    }
    assert sum(p.stat().st_size for p in paths.values()) < 10_000_000
    assert not [p for p in folder.iterdir() if p.name.startswith(".sample-tmp-")]
    for name, gdf in town.items():
        assert gdf.crs.to_epsg() == 4326, name
        assert list(gdf.columns[:-1]) == COLUMNS[name], name
        assert len(gdf) > 0, name
        assert gdf.geometry.is_valid.all(), name


def test_schema_values(town):
    geom_types = {
        "streets": {"Polygon"},
        "communities": {"Polygon"},
        "compounds": {"Polygon"},
        "buildings": {"Polygon"},
        "difficult_areas": {"Polygon"},
        "institutions": {"Polygon"},
        "roads": {"LineString"},
        "rivers": {"LineString"},
        "water": {"Polygon"},
        "flood_extent": {"Polygon"},
        "shelters": {"Point"},
        "events": {"Point"},
    }
    for name, types in geom_types.items():
        assert set(town[name].geom_type) <= types, name
    c = town["communities"]
    assert c["community_code"].str.fullmatch(r"\d{3}").all()
    assert c["street_code"].str.fullmatch(r"\d{3}").all()
    assert set(c["kind"]) == {"community", "village"}
    assert town["streets"]["street_code"].str.fullmatch(r"\d{3}").all()
    assert set(town["institutions"]["use"]) == {
        "school",
        "hospital",
        "market",
        "enterprise",
        "government",
    }
    assert set(town["roads"]["highway"]) == {
        "primary",
        "secondary",
        "tertiary",
        "residential",
        "service",
        "track",
    }
    assert set(town["rivers"]["waterway"]) == {"river", "stream"}
    fe = town["flood_extent"]
    assert (fe["year"] == 2013).all() and fe["depth_m"].isna().all()
    b = town["buildings"]
    assert b["楼栋编号"].is_unique
    assert b["difficult"].dtype == bool
    assert set(b["用途"]) <= {
        "apartments",
        "residential",
        "house",
        "rural_house",
        "school",
        "hospital",
        "market",
        "enterprise",
        "government",
        "commercial",
        "public",
        "other",
        "garage",
    }


def test_load_sample_reads_repository_or_cache(regenerated, tmp_path, monkeypatch):
    folder, layers, _ = regenerated
    with pytest.raises(InputError, match="sample_town.gpkg"):
        gridmap.load_sample(tmp_path / "nowhere")
    # installed package: no repository data -> the cache folder
    monkeypatch.setattr(sample, "_REPO_DATA", tmp_path / "no-repo")
    monkeypatch.setenv("GRIDMAP_CACHE", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "sample"
    cache.mkdir(parents=True)
    for path in sample.sample_paths(folder).values():
        os.link(path, cache / path.name)
    assert sample.sample_paths() == {k: cache / p.name for k, p in sample._paths(cache).items()}
    got = gridmap.load_sample()
    assert list(got) == list(sample.LAYERS)
    assert len(got["buildings"]) == len(layers["buildings"])


def _tiny_build(town):
    dem = np.full((4, 5), 240.0, dtype="float32")
    return sample._Built(
        layers={name: gdf.head(50) for name, gdf in town.items()},
        dem=dem,
        depth=np.zeros_like(dem),
        transform=rasterio.transform.from_origin(490000, 5283000, 20, 20),
    )


def test_missing_cache_is_generated(town, tmp_path, monkeypatch):
    monkeypatch.setattr(sample, "_REPO_DATA", tmp_path / "no-repo")
    monkeypatch.setenv("GRIDMAP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sample, "_build", lambda seed: _tiny_build(town))
    got = gridmap.load_sample()
    assert (tmp_path / "cache" / "sample" / "sample_dem.tif").is_file()
    assert len(got["events"]) == 50


def test_files_are_byte_reproducible(town, tmp_path, monkeypatch):
    """A fixed GeoPackage timestamp: regenerating does not change the files in git."""
    monkeypatch.setattr(sample, "_build", lambda seed: _tiny_build(town))
    gridmap.sample_town(path=tmp_path / "a")
    time.sleep(1.1)
    gridmap.sample_town(path=tmp_path / "b")
    for name in ("sample_town.gpkg", "sample_dem.tif", "sample_flood_depth.tif"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert pyogrio.get_gdal_config_option("OGR_CURRENT_DATE") is None


def test_interrupted_write_leaves_nothing_half_written(town, tmp_path, monkeypatch):
    monkeypatch.setattr(sample, "_build", lambda seed: _tiny_build(town))
    gridmap.sample_town(path=tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sample, "_write_raster", boom)
    with pytest.raises(OSError, match="disk full"):
        gridmap.sample_town(path=tmp_path / "fresh")
    assert list((tmp_path / "fresh").iterdir()) == []
    with pytest.raises(OSError):
        gridmap.sample_town(path=tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sample-tmp-")]


# --------------------------------------------------------------------------- administrative units


def test_streets_and_communities_tile_the_area(metric):
    streets, comm = metric["streets"], metric["communities"]
    urban = comm[comm["kind"] == "community"]
    assert len(streets) >= 2 and len(urban) >= 8
    assert (comm["kind"] == "village").sum() >= 2
    assert not comm.duplicated(["community_code"]).any()
    area = comm.area.sum()
    union = shapely.union_all(comm.geometry.values)
    assert union.area == pytest.approx(area, rel=1e-7)
    assert union.area == pytest.approx(streets.area.sum(), rel=1e-7)
    for code, street in zip(streets["street_code"], streets.geometry, strict=True):
        parts = comm[comm["street_code"] == code]
        assert len(parts) >= 2
        assert parts.area.sum() == pytest.approx(street.area, rel=1e-7)
        assert shapely.union_all(parts.geometry.values).symmetric_difference(street).area < 1.0
    for _, group in urban.groupby("street_code"):
        assert len(group) >= 4


def test_community_boundaries_follow_river_and_arterials(metric):
    comm = metric["communities"]
    edges = shapely.union_all(comm.boundary.values)
    river = metric["rivers"].loc[metric["rivers"]["waterway"] == "river"].geometry.iloc[0]
    on_river = shapely.intersection(edges, river.buffer(1.0)).length
    assert on_river > 3000
    roads = metric["roads"]
    arterials = shapely.union_all(
        roads.loc[roads["highway"].isin(["primary", "secondary"])].geometry.values
    )
    assert shapely.intersection(edges, arterials.buffer(1.0)).length > 3000


# --------------------------------------------------------------------------- buildings


def test_households_per_community(metric):
    b, comm = metric["buildings"], metric["communities"]
    hh = _households(b)
    home = gpd.sjoin(
        gpd.GeoDataFrame({"hh": hh}, geometry=b.centroid, crs=METRIC),
        comm[["community_code", "kind", "geometry"]],
        predicate="within",
    )
    assert len(home) == len(b)
    per = home.groupby(["kind", "community_code"])["hh"].sum()
    assert per["community"].between(3000, 5000).all(), per
    assert 15_000 <= hh.sum() <= 40_000
    assert 24_000 <= hh.sum() <= 32_000  # aim ~28,000


def test_buildings_do_not_overlap_and_keep_off_roads(metric):
    b = metric["buildings"].geometry.values
    tree = shapely.STRtree(b)
    i, j = tree.query(b, predicate="intersects")
    assert (i == j).all()
    roads = metric["roads"].geometry.values
    hits = shapely.STRtree(roads).query(b, predicate="dwithin", distance=5.0)
    assert hits.shape[1] == 0
    water = metric["water"].geometry.iloc[0]
    assert not shapely.intersects(b, water).any()


def test_compounds_and_their_buildings(metric):
    b, cp, comm = metric["buildings"], metric["compounds"], metric["communities"]
    assert cp["compound_id"].is_unique and len(cp) >= 20
    inside = b[b["compound_id"].notna()]
    poly = cp.set_index("compound_id").geometry.reindex(inside["compound_id"]).values
    assert shapely.within(inside.geometry.values, poly).all()
    assert inside["层数"].notna().all() and inside["单元数"].notna().all()
    comm_poly = comm.set_index("community_code").geometry.reindex(cp["community_code"]).values
    assert shapely.within(cp.geometry.values, comm_poly).all()
    assert comm.set_index("community_code").loc[cp["community_code"], "kind"].eq("community").all()
    roads = metric["roads"]
    arterials = roads.loc[roads["highway"].isin(["primary", "secondary"])].geometry.values
    hits = shapely.STRtree(arterials).query(cp.geometry.values, predicate="intersects")
    assert hits.shape[1] == 0


def test_slabs_and_towers(metric):
    b = metric["buildings"]
    apt = b[b["用途"] == "apartments"]
    slab = apt[apt["层数"] <= 7]
    tower = apt[apt["层数"] >= 18]
    assert len(slab) + len(tower) == len(apt)
    assert slab["层数"].between(5, 7).all() and slab["单元数"].between(2, 4).all()
    assert tower["单元数"].between(1, 3).all()
    given = slab["户数"].notna()
    assert (
        slab.loc[given, "户数"] == slab.loc[given, "层数"] * slab.loc[given, "单元数"] * 2
    ).all()
    assert 0.05 <= (~given).mean() <= 0.16  # about 10 % of slabs without 户数
    assert tower["户数"].notna().all()
    per_floor_unit = tower["户数"] / (tower["层数"] * tower["单元数"])
    assert per_floor_unit.between(4, 8).all()
    assert (tower["户数"] > 500).any()
    # slabs ~12 m deep and 15 m per unit
    side = _long_side(slab.geometry.values)
    assert np.allclose(side, slab["单元数"] * 15.0, atol=0.5)
    # outside compounds: street slabs without compound, some without 层数
    outside = b[b["compound_id"].isna()]
    assert (outside["用途"] == "residential").sum() >= 20
    assert outside["层数"].isna().sum() >= 3


def test_old_house_district(metric, rasters):
    b, areas = metric["buildings"], metric["difficult_areas"]
    old = b[b["用途"] == "house"]
    assert 1500 <= len(old) <= 2500
    assert old.area.between(40, 80).all()
    assert (old["层数"] == 1).all() and old["户数"].isna().all()
    assert old["difficult"].all()
    assert b.loc[b["difficult"], "用途"].eq("house").all()
    area = shapely.union_all(areas.geometry.values)
    assert shapely.within(old.geometry.values, area).all()
    depth = _depth_at(rasters["flood_depth"], old.geometry.values)
    assert 0.1 < (depth > 0).mean() < 0.9  # part of it lies in the floodplain


def test_institutions(metric):
    b, inst = metric["buildings"], metric["institutions"]
    for use in ("school", "hospital", "market", "enterprise", "government"):
        sel = b[b["用途"] == use]
        assert len(sel) >= 1, use
        assert (sel["户数"] == 0).all()
        poly = shapely.union_all(inst.loc[inst["use"] == use].geometry.values)
        assert shapely.within(sel.geometry.values, poly).all()


def test_villages(metric):
    b = metric["buildings"]
    rural = b[b["用途"] == "rural_house"]
    assert rural.area.between(80, 150).all()
    assert (rural["层数"] == 1).all()
    comm = metric["communities"]
    villages = shapely.union_all(comm.loc[comm["kind"] == "village"].geometry.values)
    assert shapely.within(rural.geometry.values, villages).all()
    clusters = shapely.get_parts(shapely.union_all(rural.buffer(60.0).values))
    which = shapely.STRtree(clusters).query(rural.centroid.values, predicate="within")
    counts = np.bincount(which[1], minlength=len(clusters))
    assert len(clusters) >= 8
    assert ((counts >= 30) & (counts <= 250)).all(), counts
    # isolated villages: nothing else within 1.5 km of the cluster
    cluster_of = np.full(len(b), -1)
    cluster_of[np.flatnonzero((b["用途"] == "rural_house").to_numpy())[which[0]]] = which[1]
    pairs = shapely.STRtree(b.geometry.values).query(clusters, predicate="dwithin", distance=1500)
    foreign = np.zeros(len(clusters), bool)
    foreign[pairs[0][cluster_of[pairs[1]] != pairs[0]]] = True
    isolated = int((~foreign).sum())
    assert (counts[~foreign] <= 60).all()
    assert isolated >= 2


# --------------------------------------------------------------------------- roads and water


def test_road_network_is_noded_and_connected(metric):
    roads = metric["roads"]
    lines = roads.geometry.values
    assert len(shapely.get_parts(shapely.union_all(lines))) == len(lines)
    ends = np.round(shapely.get_coordinates(shapely.boundary(lines)), 3)
    g = nx.Graph()
    g.add_edges_from(zip(map(tuple, ends[0::2]), map(tuple, ends[1::2]), strict=True))
    assert nx.is_connected(g)
    water = metric["water"].geometry.iloc[0]
    bridges = roads[roads.intersects(water)]
    assert 2 <= bridges["name"].nunique() <= 6
    assert set(bridges["highway"]) <= {"primary", "secondary", "tertiary"}
    # every village is reached by a track
    assert (roads["highway"] == "track").sum() >= 8


def test_river_and_water(metric):
    river = metric["rivers"].loc[metric["rivers"]["waterway"] == "river"].geometry.iloc[0]
    water = metric["water"].geometry.iloc[0]
    assert river.length > 8000
    width = water.area / river.length
    assert 40 <= width <= 80
    town = shapely.union_all(metric["streets"].iloc[:2].geometry.values)
    assert river.intersects(town)


# --------------------------------------------------------------------------- rasters and flood


def test_rasters(rasters, metric):
    dem, dp, dt = rasters["dem"]
    depth, fp, ft = rasters["flood_depth"]
    assert dp["crs"].to_epsg() == 32652 and fp["crs"].to_epsg() == 32652
    assert dp["dtype"] == fp["dtype"] == "float32"
    assert dp["compress"] == fp["compress"] == "deflate"
    assert dt == ft and dem.shape == depth.shape
    assert 10 <= dt.a <= 20 and dt.e == -dt.a
    west, south, east, north = metric["communities"].total_bounds
    assert dt.c < west - 100 and dt.f > north + 100
    assert dt.c + dem.shape[1] * dt.a > east + 100 and dt.f - dem.shape[0] * dt.a < south - 100
    assert (dem != dp["nodata"]).all()
    valid = depth != fp["nodata"]
    assert 0 < (~valid).sum() and (depth[valid] >= 0).all()
    assert depth[valid].max() > 1.5


def test_flood_follows_the_dem_and_skips_the_closed_basin(rasters):
    dem, _, transform = rasters["dem"]
    depth, profile, _ = rasters["flood_depth"]
    valid = depth != profile["nodata"]
    wet = valid & (depth > 0)
    rows, cols = np.nonzero(wet)
    x = transform.c + (cols + 0.5) * transform.a
    surface = dem[wet].astype(float) + depth[wet]
    slope, icpt = np.polyfit(x, surface, 1)
    assert slope < 0  # the water surface falls downstream
    assert np.abs(surface - (icpt + slope * x)).max() < 0.02
    # everything below the flood level that is not connected to the river stays dry
    xs = transform.c + (np.arange(dem.shape[1]) + 0.5) * transform.a
    below = valid & (dem < (icpt + slope * xs)[None, :] + 0.02)
    labels, _ = ndimage.label(below)
    river = np.unique(labels[wet])
    basins = valid & below & ~np.isin(labels, river)
    assert not (wet & ~np.isin(labels, river)).any()
    assert (depth[basins] == 0).all()
    deep = valid & (dem < (icpt + slope * xs)[None, :] - 1.0)
    basin_labels = np.unique(labels[deep & basins])
    sizes = [(labels == k).sum() for k in basin_labels]
    assert max(sizes, default=0) >= 20  # a real closed depression well below the flood level


def test_buildings_fall_in_all_four_depth_classes(metric, rasters):
    depth = _depth_at(rasters["flood_depth"], metric["buildings"].geometry.values)
    assert (depth >= 1.5).sum() >= 10
    assert ((depth >= 0.5) & (depth < 1.5)).sum() >= 10
    assert ((depth >= 0.2) & (depth < 0.5)).sum() >= 10
    assert ((depth > 0) & (depth < 0.2)).sum() >= 10
    assert (depth == 0).mean() > 0.6


def test_flood_extent_matches_raster(metric, rasters):
    depth, profile, transform = rasters["flood_depth"]
    wet_area = ((depth > 0) & (depth != profile["nodata"])).sum() * transform.a**2
    extent = metric["flood_extent"].area.sum()
    assert extent == pytest.approx(wet_area, rel=0.05)


def test_shelters(metric, rasters):
    s = metric["shelters"]
    assert len(s) >= 12
    assert s["capacity"].between(200, 2500).all()
    assert set(s["type"]) == {"school", "gym", "service_centre"}
    dry = _depth_at(rasters["flood_depth"], s.geometry.values) == 0
    assert dry.mean() >= 0.75
    b = metric["buildings"]
    depth = _depth_at(rasters["flood_depth"], b.geometry.values)
    hh = _households(b)
    persons = 2.5 * hh
    assert s["capacity"].sum() >= persons[depth >= 0.5].sum()  # enough for red + orange
    assert s["capacity"].sum() < persons[depth > 0].sum()  # but not for every flooded home


# --------------------------------------------------------------------------- events


def test_events(metric):
    ev, comm = metric["events"], metric["communities"]
    assert 4900 <= len(ev) <= 5100
    assert ev["event_id"].is_unique and ev["event_id"].str.fullmatch(r"E2025\d{6}").all()
    assert set(ev["category"]) == CATEGORIES
    assert set(ev["source"]) == {"grid_worker", "resident"}
    assert 0.85 <= (ev["source"] == "grid_worker").mean() <= 0.95
    within = gpd.sjoin(ev[["geometry"]], comm[["geometry"]], predicate="within")
    assert within.index.is_unique and len(within) == len(ev)
    for col in ("reported_at", "deadline"):
        assert ev[col].str.endswith("+08:00").all()
    rep = pd.to_datetime(ev["reported_at"], format="ISO8601")
    ddl = pd.to_datetime(ev["deadline"], format="ISO8601")
    closed = pd.to_datetime(ev["closed_at"], format="ISO8601")
    assert str(rep.dt.tz) == "UTC+08:00"
    assert rep.min() >= pd.Timestamp("2025-01-01T00:00:00+08:00")
    assert rep.max() <= pd.Timestamp("2025-12-31T23:59:59+08:00")
    days = (ddl - rep).dt.total_seconds() / 86400
    assert days.between(1, 15).all()
    is_open = ev["status"] == "open"
    assert set(ev["status"]) == {"closed", "open"}
    assert (closed.isna() == is_open).all()
    assert (closed[~is_open] > rep[~is_open]).all()
    on_time = (closed <= ddl) & ~is_open
    assert 0.95 <= on_time.sum() / (~is_open).sum() <= 0.985
    overdue = is_open & (ddl < pd.Timestamp("2025-12-31T23:59:59+08:00"))
    assert 1 <= overdue.sum() <= 30
    # seasonality: more safety hazards in the flood season than in spring
    month = rep.dt.month
    hazard = ev["category"] == "safety_hazard"
    assert hazard[month.isin([6, 7, 8])].sum() > 1.4 * hazard[month.isin([3, 4, 5])].sum()


def test_event_hot_spots(metric):
    ev, b = metric["events"], metric["buildings"]
    market = metric["institutions"].loc[lambda d: d["use"] == "market"].geometry.iloc[0]
    near_market = ev.distance(market) < 60
    assert near_market.mean() > 0.06
    old = shapely.union_all(metric["difficult_areas"].geometry.values)
    in_old = ev.within(old).mean()
    old_households = (b["用途"] == "house").sum() / _households(b).sum()
    assert in_old > 1.5 * old_households
