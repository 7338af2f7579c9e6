"""Grid codes: 15 digits that never overflow.

A grid code (DB11/T 2157-2023) is the 6-digit GB/T 2260 district code, a 3-digit street
(街道/乡镇) code, a 3-digit community (社区/村) code and a 3-digit grid sequence number.
Streets, communities and grids are numbered in reading order (north to south, then west
to east) from 001: streets within the district, communities within their street, grids
within their community. The partition guarantees the counts fit: a street holds at most
999 communities and a community at most 999 grids (a community that would need more is
divided into planning communities first; see :mod:`gridmap.partition.hierarchy`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from ..errors import PlanError

__all__ = ["MAX_SEQUENCE", "grid_codes", "reading_order", "reading_order_points"]

#: Largest number a 3-digit code part can hold.
MAX_SEQUENCE = 999


def reading_order(geoms: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Sequence numbers (1-based) in reading order within each group.

    Geometries are banded into rows from north to south (the row height is the square
    root of the group's median area), then ordered west to east within a row.

    Parameters
    ----------
    geoms : ndarray of geometry
        Non-empty polygons (metric CRS).
    groups : ndarray, optional
        Group of every geometry (numbering restarts at 1 in each group).

    Returns
    -------
    ndarray of int
    """
    pts = shapely.point_on_surface(geoms)
    return reading_order_points(shapely.get_x(pts), shapely.get_y(pts), shapely.area(geoms), groups)


def reading_order_points(
    x: np.ndarray, y: np.ndarray, area: np.ndarray, groups: np.ndarray | None = None
) -> np.ndarray:
    """:func:`reading_order` from a point and an area per item.

    Parameters
    ----------
    x, y : ndarray of float
        A point inside each item (m).
    area : ndarray of float
        Area of each item (m²); sets the row height.
    groups : ndarray, optional

    Returns
    -------
    ndarray of int
    """
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    groups = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups)
    frame = pd.DataFrame(
        {"g": pd.factorize(groups)[0], "x": np.asarray(x), "y": np.asarray(y),
         "a": np.asarray(area, dtype=float)}
    )  # fmt: skip
    height = np.sqrt(frame.groupby("g")["a"].transform("median").clip(lower=1.0))
    top = frame.groupby("g")["y"].transform("max")
    frame["row"] = np.floor((top - frame["y"]) / height).astype(np.int64)
    order = np.lexsort((frame["x"].to_numpy(), frame["row"].to_numpy(), frame["g"].to_numpy()))
    seq = np.empty(n, dtype=np.int64)
    g_sorted = frame["g"].to_numpy()[order]
    start = np.r_[0, np.flatnonzero(g_sorted[1:] != g_sorted[:-1]) + 1]
    ranks = np.arange(n) - np.repeat(start, np.diff(np.r_[start, n]))
    seq[order] = ranks + 1
    return seq


def grid_codes(
    admin: str, street: np.ndarray, community: np.ndarray, sequence: np.ndarray
) -> np.ndarray:
    """Compose 15-digit grid codes.

    Parameters
    ----------
    admin : str
        6-digit district code.
    street, community : ndarray of str
        3-digit codes.
    sequence : ndarray of int
        Grid sequence numbers (1 .. 999).

    Returns
    -------
    ndarray of str

    Raises
    ------
    PlanError
        When a part does not fit its digits (a bug upstream: the hierarchy keeps every
        count within 999).
    """
    seq = np.asarray(sequence, dtype=np.int64)
    if len(seq) and (seq.min() < 1 or seq.max() > MAX_SEQUENCE):
        raise PlanError(f"grid sequence numbers must be 1..{MAX_SEQUENCE}, got up to {seq.max()}")
    codes = np.array(
        [f"{admin}{s}{c}{q:03d}" for s, c, q in zip(street, community, seq, strict=True)],
        dtype=object,
    )
    bad = [c for c in codes[:1000] if len(c) != 15 or not c.isdigit()]
    if bad:
        raise PlanError(f"grid codes must be 15 digits, got {bad[0]!r}")
    return codes
