"""Hot and cold grids (step 4): the Getis-Ord Gi* statistic on per-grid figures."""

from __future__ import annotations

import logging
import warnings
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import InputError, SchemaError
from .assign import grids_of
from .stats import EventStats, per_grid_table

logger = logging.getLogger("gridmap")

__all__ = ["hotspots"]

_TOUCH_TOLERANCE_M = 0.5


def hotspots(
    plan: Any,
    stats: EventStats | pd.DataFrame,
    value: str = "per_100_households",
    *,
    confidence: float = 0.95,
    weights: Literal["queen", "knn"] = "queen",
    permutations: int = 999,
    seed: int | None = 0,
    k: int = 6,
) -> gpd.GeoDataFrame:
    """Find hot and cold grids with the Getis-Ord Gi* statistic.

    Parameters
    ----------
    plan : Plan, geopandas.GeoDataFrame or path-like
        The grids.
    stats : EventStats or pandas.DataFrame
        Per-grid figures (``EventStats`` without `by`, or a table with ``grid_code``
        and `value`).
    value : str
        The column to test, e.g. ``per_100_households`` or ``events``.
    confidence : float
        Confidence level of the two-sided test (0.90, 0.95, 0.99 ...).
    weights : {"queen", "knn"}
        ``queen``: grids that share a boundary or a corner are neighbours. It is
        computed with shapely in the metric CRS with a 0.5 m tolerance, so grids meeting
        at T-junctions or across digitising slivers count as neighbours (libpysal's
        vertex-based Queen misses those). Grids with no neighbour (islands) get their
        nearest grid as neighbour. ``knn``: the `k` nearest grid centroids.
    permutations : int
        Conditional permutations for the pseudo p-value; 0 uses the normal
        approximation only.
    seed : int, optional
        Random seed of the permutations (results are reproducible by default).
    k : int
        Neighbours for ``weights="knn"``.

    Returns
    -------
    geopandas.GeoDataFrame
        The grids (metric CRS) with `value`, ``gi_z`` (standardised Gi*, analytic, as
        in ArcGIS "Hot Spot Analysis"), ``gi_p`` and ``hotspot`` (``hot``/``cold``/
        ``not_significant``), ``neighbours``.

    Notes
    -----
    Gi* uses binary weights with the grid itself included (``esda.G_Local``,
    ``star=True``, ``transform="B"``). ``gi_p`` is two-sided: twice the folded
    permutation pseudo p-value ``p_sim`` (capped at 1), or twice the one-sided normal
    p-value when ``permutations=0``. A grid is ``hot`` when ``gi_p <= 1 - confidence``
    and ``gi_z > 0``, ``cold`` when ``gi_z < 0``; so at 95 % a grid needs about
    ``|z| >= 1.96``, the usual reading. No correction for multiple tests is made.

    Grids whose value is NaN (e.g. events per 100 households with 0 or unknown
    households) are left out of the analysis (neither neighbours nor observations) and
    marked ``not_significant`` with NaN ``gi_z``/``gi_p``; filling them with 0 would
    make them look like cold spots.
    """
    from esda import G_Local

    grids = grids_of(plan)
    table = per_grid_table(stats)
    if value not in table.columns:
        raise SchemaError(
            f"stats have no column {value!r}; available: {list(table.columns)}",
            source="hotspots",
        )
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be between 0 and 1, not {confidence}", source="hotspots")
    values = (
        pd.Series(
            pd.to_numeric(table[value], errors="coerce").to_numpy(dtype=float),
            index=table["grid_code"].astype(str),
        )
        .reindex(grids["grid_code"])
        .to_numpy(dtype=float)
    )
    keep = [
        c
        for c in ("grid_code", "community_code", "street_code", "community_name", "households")
        if c in grids.columns
    ]
    out = gpd.GeoDataFrame(grids[keep].copy(), geometry=grids.geometry.to_numpy(), crs=grids.crs)
    if value != "households":
        out[value] = values
    out["gi_z"] = np.nan
    out["gi_p"] = np.nan
    out["hotspot"] = "not_significant"
    out["neighbours"] = 0

    valid = np.isfinite(values)
    n_valid = int(valid.sum())
    if n_valid < 3 or np.nanstd(values[valid]) == 0 or values[valid].sum() <= 0:
        logger.warning(
            "hotspots: %d grids with a value for %r (or no variation); nothing tested",
            n_valid,
            value,
        )
        return out
    if (values[valid] < 0).any():
        raise InputError(
            f"Getis-Ord G needs non-negative values; {value!r} has negatives", source="hotspots"
        )
    geoms = grids.geometry.to_numpy()[valid]
    w, n_nb = _weights(geoms, weights, k)
    alpha = 1.0 - confidence

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = G_Local(
            values[valid],
            w,
            transform="B",
            star=True,
            permutations=permutations,
            seed=seed,
            n_jobs=1,
            keep_simulations=False,
        )
    z = np.asarray(g.Zs, dtype=float)
    one_sided = np.asarray(g.p_sim if permutations else g.p_norm, dtype=float)
    p = np.minimum(1.0, 2.0 * one_sided)
    cls = np.where(
        p <= alpha,
        np.where(z > 0, "hot", np.where(z < 0, "cold", "not_significant")),
        "not_significant",
    )
    out.loc[valid, "gi_z"] = z
    out.loc[valid, "gi_p"] = p
    out.loc[valid, "hotspot"] = cls
    out.loc[valid, "neighbours"] = n_nb
    counts = pd.Series(cls).value_counts().to_dict()
    logger.info(
        "hotspots on %r (%d grids, %s weights, %.0f%%): %d hot, %d cold",
        value,
        n_valid,
        weights,
        confidence * 100,
        counts.get("hot", 0),
        counts.get("cold", 0),
    )
    return out


def _weights(geoms: np.ndarray, kind: str, k: int) -> tuple[Any, np.ndarray]:
    """Binary spatial weights (libpysal W) between `geoms` and neighbour counts."""
    import scipy.sparse as sp
    from libpysal.weights import W

    n = len(geoms)
    if kind == "queen":
        tree = shapely.STRtree(geoms)
        i, j = tree.query(geoms, predicate="dwithin", distance=_TOUCH_TOLERANCE_M)
        off = i != j
        i, j = i[off], j[off]
        island = np.bincount(i, minlength=n) == 0
        if island.any():
            ii, jj = tree.query_nearest(geoms[island], exclusive=True, all_matches=False)
            src = np.flatnonzero(island)[ii]
            i = np.concatenate([i, src, jj])
            j = np.concatenate([j, jj, src])
            logger.info(
                "hotspots: %d grids without contiguous neighbours get their nearest grid",
                int(island.sum()),
            )
    elif kind == "knn":
        from scipy.spatial import cKDTree

        pts = shapely.get_coordinates(shapely.point_on_surface(geoms))
        kk = min(k, n - 1)
        _, nb = cKDTree(pts).query(pts, k=kk + 1)
        i = np.repeat(np.arange(n), kk)
        j = nb[:, 1:].ravel()
    else:
        raise InputError(f"weights must be 'queen' or 'knn', not {kind!r}", source="hotspots")
    mat = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    mat.data[:] = 1.0
    mat.sum_duplicates()
    mat.data[:] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = W.from_sparse(mat)
    return w, np.diff(mat.indptr)
