"""Search a plan by name or code: grids, communities, streets and named buildings.

The index is built once per plan version (:meth:`api.geo.PlanView.memo`) as one table of
entries (type, code, name, bbox, keys) and matched with vectorised string operations.
A query matches an entry's code or name; results are ranked exact match first, then a
code that starts or ends with the query (or a name that starts with it), then a name or
code that contains it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.crs import WGS84

from .geo import PlanView

#: Result types, in the order they are listed on equal rank.
TYPES = ("community", "street", "grid", "building")
#: Columns that may name a street (街道) in the plan's communities layer.
STREET_NAME_COLUMNS = ("street_name", "街道", "街道名称", "street")
#: Match ranks.
EXACT, PREFIX, CONTAINS = 0, 1, 2


@dataclass(frozen=True)
class SearchIndex:
    """Everything a plan version can be searched for (one row per entry).

    Attributes
    ----------
    table : pandas.DataFrame
        ``type``, ``code``, ``name``, ``code_key``, ``name_key`` (lower case),
        ``order`` (type order) and ``extra`` (dict of more fields, or None).
    bbox : numpy.ndarray
        (n, 4) west, south, east, north of each entry (WGS84).
    """

    table: pd.DataFrame
    bbox: np.ndarray


def _text(values: Any, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, "", dtype=object)
    s = pd.Series(values).astype(object)
    return s.where(s.notna(), "").astype(str).str.strip().to_numpy(object)


def _union_bounds(bounds: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique `keys` and the union of `bounds` rows per key."""
    uniq, inv = np.unique(keys, return_inverse=True)
    out = np.empty((len(uniq), 4))
    out[:, 0] = np.full(len(uniq), np.inf)
    out[:, 1] = np.full(len(uniq), np.inf)
    out[:, 2] = np.full(len(uniq), -np.inf)
    out[:, 3] = np.full(len(uniq), -np.inf)
    np.minimum.at(out[:, 0], inv, bounds[:, 0])
    np.minimum.at(out[:, 1], inv, bounds[:, 1])
    np.maximum.at(out[:, 2], inv, bounds[:, 2])
    np.maximum.at(out[:, 3], inv, bounds[:, 3])
    return uniq, out


def _first_per_key(keys: np.ndarray, values: np.ndarray) -> dict[str, str]:
    """First non-empty value per key."""
    df = pd.DataFrame({"k": keys, "v": values})
    df = df[df["v"] != ""]
    return dict(df.drop_duplicates("k").itertuples(index=False, name=None))


def build_index(view: PlanView) -> SearchIndex:
    """Build the search index of a plan version (grids, communities, streets, buildings)."""
    g = view.plan.grids.reset_index(drop=True)
    n = len(g)
    codes = view.codes.astype(str).astype(object)
    bounds = np.asarray(view.bounds, dtype=float).reshape(-1, 4)
    comm_name = _text(g.get("community_name"), n)
    grid_name = _text(g.get("name"), n)
    hh = pd.to_numeric(g.get("households", pd.Series([np.nan] * n)), errors="coerce")
    frames = []
    boxes = []
    # grids
    frames.append(
        pd.DataFrame(
            {
                "type": "grid",
                "code": codes,
                "name": grid_name,
                "extra": [
                    {"community_name": c or None, "households": None if h != h else int(h)}
                    for c, h in zip(comm_name, hh.to_numpy(float), strict=True)
                ],
            }
        )
    )
    boxes.append(bounds)
    # communities: the 12-digit code prefix of their grids
    comm_codes = np.array([c[:12] for c in codes], dtype=object)
    uniq, cbox = (
        _union_bounds(bounds, comm_codes) if n else (np.array([], object), np.empty((0, 4)))
    )
    names = _first_per_key(comm_codes, comm_name)
    frames.append(
        pd.DataFrame(
            {
                "type": "community",
                "code": uniq.astype(object),
                "name": [names.get(c, "") for c in uniq],
                "extra": None,
            }
        )
    )
    boxes.append(cbox)
    # streets: the 9-digit prefix; names from the communities layer when it has them
    street_codes = np.array([c[:9] for c in codes], dtype=object)
    suniq, sbox = (
        _union_bounds(bounds, street_codes) if n else (np.array([], object), np.empty((0, 4)))
    )
    snames = _street_names(view)
    frames.append(
        pd.DataFrame(
            {
                "type": "street",
                "code": suniq.astype(object),
                "name": [snames.get(c[6:9], "") for c in suniq],
                "extra": None,
            }
        )
    )
    boxes.append(sbox)
    # named buildings
    bframe, bbox = _named_buildings(view)
    frames.append(bframe)
    boxes.append(bbox)
    table = pd.concat(frames, ignore_index=True)
    table["code_key"] = table["code"].astype(str).str.lower()
    table["name_key"] = table["name"].astype(str).str.lower()
    table["order"] = table["type"].map({t: i for i, t in enumerate(TYPES)}).astype(int)
    return SearchIndex(table=table, bbox=np.vstack(boxes) if boxes else np.empty((0, 4)))


def _street_names(view: PlanView) -> dict[str, str]:
    comms = getattr(view.plan, "communities", None)
    if comms is None or len(comms) == 0 or "street_code" not in comms:
        return {}
    for col in STREET_NAME_COLUMNS:
        if col in comms:
            keys = _text(comms["street_code"], len(comms))
            return _first_per_key(keys, _text(comms[col], len(comms)))
    return {}


def _named_buildings(view: PlanView) -> tuple[pd.DataFrame, np.ndarray]:
    empty = pd.DataFrame(columns=["type", "code", "name", "extra"])
    b = view.plan.buildings
    if b is None or len(b) == 0 or "name" not in b:
        return empty, np.empty((0, 4))
    names = _text(b["name"], len(b))
    keep = names != ""
    if not keep.any():
        return empty, np.empty((0, 4))
    sub = b.loc[keep]
    geoms = gpd.GeoSeries(sub.geometry.to_numpy(), crs=view.plan.crs).to_crs(WGS84).to_numpy()
    ids = _text(sub["building_id"] if "building_id" in sub else None, len(sub))
    grid = _text(sub["grid_code"] if "grid_code" in sub else None, len(sub))
    frame = pd.DataFrame(
        {
            "type": "building",
            "code": ids,
            "name": names[keep],
            "extra": [{"grid_code": c or None} for c in grid],
        }
    )
    return frame, shapely.bounds(geoms)


def plan_index(view: PlanView) -> SearchIndex:
    """The search index of `view`, built on first use and kept with the view."""
    return view.memo("search_index", lambda: build_index(view))


def search(view: PlanView, q: str, limit: int = 20) -> tuple[list[dict[str, Any]], int]:
    """Entries of `view` matching `q`, best first; return (results, total matched).

    Parameters
    ----------
    view : PlanView
        The plan version searched.
    q : str
        A grid code (whole, its first or last digits), or part of a community, street,
        grid or building name. Case does not matter; surrounding blanks are ignored.
    limit : int
        Most results returned.

    Returns
    -------
    list of dict, int
        Results with ``type`` (``grid``, ``community``, ``street`` or ``building``),
        ``code``, ``name``, ``bbox`` ([west, south, east, north], WGS84), ``match``
        (``exact``, ``prefix`` or ``contains``) and per type ``community_name`` and
        ``households`` (grids) or ``grid_code`` (buildings); and how many matched.
    """
    idx = plan_index(view)
    t = idx.table
    key = q.strip().lower()
    if not key or len(t) == 0:
        return [], 0
    code, name = t["code_key"], t["name_key"]
    exact = (code == key) | (name == key)
    prefix = code.str.startswith(key) | code.str.endswith(key) | name.str.startswith(key)
    contains = code.str.contains(key, regex=False) | name.str.contains(key, regex=False)
    rank = np.where(exact, EXACT, np.where(prefix, PREFIX, np.where(contains, CONTAINS, -1)))
    hit = np.flatnonzero(rank >= 0)
    if len(hit) == 0:
        return [], 0
    sub = t.iloc[hit]
    order = np.lexsort(
        (
            sub["code"].to_numpy(str),
            sub["name"].str.len().to_numpy(),
            sub["order"].to_numpy(),
            rank[hit],
        )
    )
    picked = hit[order[:limit]]
    labels = {EXACT: "exact", PREFIX: "prefix", CONTAINS: "contains"}
    out = []
    for i in picked:
        row = t.iloc[i]
        item = {
            "type": row["type"],
            "code": row["code"],
            "name": row["name"] or None,
            "bbox": [round(float(v), 6) for v in idx.bbox[i]],
            "match": labels[int(rank[i])],
        }
        if isinstance(row["extra"], dict):
            item.update(row["extra"])
        out.append(item)
    return out, int(len(hit))
