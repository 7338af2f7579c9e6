"""Write every event output to a folder: KPI tables, hot spots, rejects and the map."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import pandas as pd

from ..io import write_table
from ..maps import save_html
from .assign import assign_to_grids, grids_key, grids_of
from .hotspots import hotspots
from .maps import event_map
from .read import EventRejects, read_events, rejects_of
from .stats import event_stats

logger = logging.getLogger("gridmap")

__all__ = ["write_event_outputs"]


def write_event_outputs(
    plan: Any,
    events: Any,
    out_dir: str | os.PathLike,
    *,
    columns: Mapping[str, str] | None = None,
    crs: Any = None,
    tz: str | None = None,
    layer: str | None = None,
    start: Any = None,
    end: Any = None,
    now: Any = None,
    value: str = "per_100_households",
    confidence: float = 0.95,
    permutations: int = 999,
    seed: int | None = 0,
    max_points: int = 50_000,
    period: Literal["month", "week"] = "month",
) -> list[Path]:
    """Read, assign, measure and map events; write the results to `out_dir`.

    Parameters
    ----------
    plan : Plan, geopandas.GeoDataFrame or path-like
        The grids.
    events : path-like, DataFrame or GeoDataFrame
        Events as accepted by :func:`read_events`, or already read by it.
    out_dir : path-like
        Output folder (created).
    columns, crs, tz, layer
        Passed to :func:`read_events` when `events` is not yet read.
    start, end, now
        Passed to :func:`event_stats`.
    value, confidence, permutations, seed
        Passed to :func:`hotspots`. When no grid has households, ``events`` is tested
        instead of ``per_100_households``.
    max_points, period
        Passed to :func:`event_map`.

    Returns
    -------
    list of pathlib.Path
        ``events_map.html``, ``event_kpis_grids.csv/.xlsx``,
        ``event_kpis_communities.csv/.xlsx`` and ``event_kpis_streets.csv/.xlsx`` (when
        the plan has those codes), ``event_hotspots.csv/.xlsx``, and
        ``event_rejects.csv`` when rows were rejected.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    grids = grids_of(plan)
    if not (
        isinstance(events, gpd.GeoDataFrame)
        and isinstance(events.attrs.get("rejects"), EventRejects)
    ):
        events = read_events(events, columns=columns, crs=crs, plan=grids, tz=tz, layer=layer)
    events = (
        events
        if events.attrs.get("assigned_to") == grids_key(grids)
        else assign_to_grids(grids, events)
    )
    stats = event_stats(grids, events, start=start, end=end, now=now)
    if value == "per_100_households" and not stats.grids[value].notna().any():
        logger.warning("no grid has households: hot spots are computed on event counts")
        value = "events"
    hot = hotspots(
        grids, stats, value=value, confidence=confidence, permutations=permutations, seed=seed
    )

    written: list[Path] = []
    written += write_table(stats.grids, out / "event_kpis_grids", sheet_name="grids")
    if stats.communities is not None:
        written += write_table(
            stats.communities, out / "event_kpis_communities", sheet_name="communities"
        )
    if stats.streets is not None:
        written += write_table(stats.streets, out / "event_kpis_streets", sheet_name="streets")
    written += write_table(
        pd.DataFrame(hot.drop(columns=hot.geometry.name)),
        out / "event_hotspots",
        sheet_name="hotspots",
    )
    rejects = rejects_of(events)
    if len(rejects):
        path = out / "event_rejects.csv"
        rejects.to_csv(path, index=False, encoding="utf-8-sig")
        written.append(path)
    fmap = event_map(grids, events, stats=stats, hot=hot, max_points=max_points, period=period)
    html_path = save_html(fmap, out / "events_map.html")
    written.append(html_path)
    logger.info("event outputs written to %s (%d files)", out, len(written))
    return written
