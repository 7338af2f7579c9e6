"""Household estimates on real data nobody here made (issue 12).

The data lives in ``../shared/realdata`` (see its README) and is never copied into the
repository: every test here skips when the folder is absent.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

import gridmap

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"

pytestmark = pytest.mark.realdata

#: Jakarta's households at the 2010 census (about 9.6M persons / 3.9 per household).
JAKARTA_HOUSEHOLDS_2010 = 2_500_000


def _path(*parts: str) -> Path:
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} absent (../shared/realdata is not part of a fresh clone)")
    return path


@pytest.fixture(scope="module")
def jakarta_osm() -> gpd.GeoDataFrame:
    b = gridmap.read_buildings(_path("jakarta", "buildings_osm2012.gpkg"))  # defaults
    return gridmap.estimate_households(b)  # defaults


def test_jakarta_osm_total_is_plausible(jakarta_osm):
    out = jakarta_osm
    assert len(out) == 22_266
    total = int(out["households"].sum())
    assert 0 < total <= JAKARTA_HOUSEHOLDS_2010  # was 17.5M, seven times the city
    assert out["households"].max() <= 2_000  # was 718,327 in one 14 km² polygon
    # the 994 polygons over 5 ha are flagged, hold nothing, and are counted in the summary
    over_5ha = out["footprint_m2"] > 50_000
    assert over_5ha.sum() == 994
    assert (out.loc[over_5ha, "households_flag"] == "implausible_footprint").all()
    assert (out.loc[over_5ha, "households"] == 0).all()
    s = out.attrs["households_summary"]
    assert s["flags"]["implausible_footprint"] == 994
    assert s["households"] == total and s["dropped"] >= 994
    # no levels in the file: every count rests on default levels, and says so
    assert (out["levels_source"] == "default").all()
    assert s["weak_share"] > 0.95


def test_jakarta_osm_indonesian_settings():
    b = gridmap.read_buildings(_path("jakarta", "buildings_osm2012.gpkg"))
    out = gridmap.estimate_households(b, region="auto")
    assert out.attrs["households_summary"]["region"] == "ID"
    assert 0 < out["households"].sum() <= JAKARTA_HOUSEHOLDS_2010
    assert out["households"].max() <= 2_000


def test_jakarta_attributes_read_with_defaults():
    path = _path("jakarta", "buildings_attrs.gpkg")
    raw = gpd.read_file(path)
    b = gridmap.read_buildings(path)  # used to stop on '10+'
    out = gridmap.estimate_households(b)
    assert len(out) == 6_679
    plus = raw["levels"].astype(str).str.strip().str.endswith("+").to_numpy()
    assert plus.sum() >= 637
    assert (out.loc[plus, "levels"] >= 10).all() and (
        out.loc[plus, "levels_source"] == "given"
    ).all()
    assert (out.loc[out["use"] == "school", "households"] == 0).all()
    assert (out.loc[out["use"] == "residential", "households"] > 0).mean() > 0.95
    # the 659 buildings without a use held 82 % of the households; big ones are not homes
    unknown = out["use"] == "unknown"
    assert 600 <= unknown.sum() <= 700
    assert out.loc[unknown, "households"].sum() < 0.3 * out["households"].sum()
    assert out["households"].max() <= 2_000


def test_lyon_roofs_use_their_height():
    path = _path("lyon", "roofs.gpkg")
    b = gridmap.read_buildings(path)
    assert b.attrs["load_report"]["columns"]["height"] == "htotale"
    out = gridmap.estimate_households(b)
    assert (out["levels_source"] == "height").mean() >= 0.90
    # the 165 m office tower is not 705 households
    tower = out["height"].astype(float).idxmax()
    assert out.loc[tower, "height"] > 160
    assert out.loc[tower, "households"] == 0 and out.loc[tower, "households_flag"] != ""
    fr = gridmap.estimate_households(b, region="auto")
    assert fr.attrs["households_summary"]["region"] == "FR"
    tall = fr["height"].astype(float) > 50
    assert (fr.loc[tall, "households"] == 0).all()  # untagged and above 50 m: not homes
    assert np.isfinite(fr["households_confidence"]).all()
