"""Summary figures and confidence of household counts.

:func:`households_summary` computes the figures that
:func:`gridmap.estimate_households` prints as one line and stores in
``attrs["households_summary"]``; it works on any frame with the estimate's columns
(for example ``plan.buildings``). :func:`weak_by_grid` tells how much of each grid's
count rests on weak estimates (``households_confidence`` below
:data:`WEAK_CONFIDENCE`).

Summary keys: ``buildings``, ``households``, ``households_by_source`` (households per
``households_source``), ``households_source`` (buildings per source), ``levels_source``
(buildings per levels source), ``flagged`` (buildings with a ``households_flag``),
``flags`` (buildings per flag; ``landuse:*`` flags counted together as ``landuse``),
``dropped`` (estimated buildings set to 0 households by plausibility: not homes),
``capped`` (buildings capped) and ``households_weak`` / ``weak_share`` (households with
confidence below :data:`WEAK_CONFIDENCE`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CONFIDENCE",
    "WEAK_CONFIDENCE",
    "format_summary",
    "households_summary",
    "weak_by_grid",
]

#: ``households_confidence`` of each way a count is made (0 = a guess, 1 = counted).
CONFIDENCE: dict[str, float] = {
    "given": 1.0,
    "non_residential": 0.9,  # by the building's use (a tag or survey use)
    "calibrated": 0.8,
    "unit_estimate": 0.7,
    "rural_house": 0.7,
    "single_storey_tagged": 0.7,  # a house or a residential tag with one storey
    "area_estimate_known_levels": 0.6,  # levels given or from the height
    "single_storey_untagged": 0.4,
    "area_estimate_neighbour_levels": 0.4,
    "area_estimate_default_levels": 0.3,
    "not_a_home": 0.3,  # 0 households by plausibility (size, shape, landuse, height)
    "capped": 0.1,
}
#: Households whose confidence is below this rest on weak estimates.
WEAK_CONFIDENCE = 0.5

_DROP_FLAGS = (
    "implausible_footprint",
    "zero_levels",
    "large_footprint",
    "larger_than_homes",
    "deep_plan",
    "tall",
)


def households_summary(buildings: pd.DataFrame) -> dict[str, Any]:
    """Figures of an estimate (see the module docstring for the keys).

    Parameters
    ----------
    buildings : pandas.DataFrame
        Output of :func:`gridmap.estimate_households`, or any frame with its columns
        (``households`` is required; the others are counted when present).
    """
    n = len(buildings)
    hh = _int_column(buildings, "households")
    out: dict[str, Any] = {"buildings": n, "households": int(hh.sum())}
    source = _str_column(buildings, "households_source")
    if source is not None:
        by = pd.Series(hh).groupby(source).sum()
        out["households_by_source"] = {str(k): int(v) for k, v in by.items() if v}
        out["households_source"] = _value_counts(source)
    levels = _str_column(buildings, "levels_source")
    if levels is not None:
        out["levels_source"] = _value_counts(levels)
    flag = _str_column(buildings, "households_flag")
    if flag is not None:
        flagged = flag != ""
        kinds = np.where(pd.Series(flag).str.startswith("landuse:").to_numpy(), "landuse", flag)
        out["flagged"] = int(flagged.sum())
        out["flags"] = _value_counts(kinds[flagged])
        dropped = flagged & (hh == 0) & (pd.Series(kinds).isin([*_DROP_FLAGS, "landuse"]))
        if source is not None:  # 0 by their use anyway: not dropped by plausibility
            dropped &= source != "non_residential"
        out["dropped"] = int(dropped.sum())
        out["capped"] = int((flag == "capped").sum())
    conf = _float_column(buildings, "households_confidence")
    if conf is not None:
        weak = int(hh[conf < WEAK_CONFIDENCE].sum())
        out["households_weak"] = weak
        out["weak_share"] = round(weak / out["households"], 4) if out["households"] else 0.0
    return out


def format_summary(summary: Mapping[str, Any]) -> str:
    """The summary as one line: buildings, households by source, flagged, dropped."""
    parts = [
        f"households: {summary['buildings']:,} buildings, {summary['households']:,} households"
    ]
    by = summary.get("households_by_source")
    if by:
        parts[-1] += " (" + ", ".join(f"{k} {v:,}" for k, v in _desc(by)) + ")"
    if "flagged" in summary:
        flags = summary.get("flags") or {}
        text = f"flagged {summary['flagged']:,}"
        if flags:
            text += " (" + ", ".join(f"{k} {v:,}" for k, v in _desc(flags)) + ")"
        parts.append(text)
        parts.append(f"dropped {summary.get('dropped', 0):,}")
    if "dropped_at_read" in summary:
        parts.append(f"dropped at read {summary['dropped_at_read']:,}")
    if "weak_share" in summary:
        parts.append(f"weak estimates {100 * summary['weak_share']:.0f} % of households")
    if "region" in summary:
        parts.append(f"region {summary['region']}")
    cal = summary.get("calibration")
    if cal:
        parts.append(
            f"calibrated to {cal['polygons']:,} totals ({cal['matched']:,} matched, "
            f"{cal['given_exceeds_total']:,} given > total, {cal['total_unmatched']:,} "
            "unmatched)"
        )
    return "; ".join(parts)


def weak_by_grid(buildings: pd.DataFrame, by: str = "grid_code") -> pd.DataFrame:
    """Households per grid and the share resting on weak estimates.

    Parameters
    ----------
    buildings : pandas.DataFrame
        Buildings with `by`, ``households`` and ``households_confidence`` (a plan's
        ``buildings``). Without a confidence column, households from sources other than
        ``given``, ``calibrated``, ``unit_estimate`` and ``rural_house`` count as weak.
    by : str
        The grouping column.

    Returns
    -------
    pandas.DataFrame
        ``by``, ``households``, ``households_weak``, ``weak_share`` (0–1; 0 for a grid
        without households).
    """
    if by not in buildings.columns:
        raise KeyError(f"buildings have no column {by!r}")
    hh = _int_column(buildings, "households")
    conf = _float_column(buildings, "households_confidence")
    if conf is not None:
        weak = conf < WEAK_CONFIDENCE
    else:
        source = _str_column(buildings, "households_source")
        strong = ("given", "calibrated", "unit_estimate", "rural_house")
        weak = ~np.isin(source, strong) if source is not None else np.ones(len(hh), dtype=bool)
    frame = pd.DataFrame(
        {by: buildings[by].to_numpy(), "households": hh, "households_weak": np.where(weak, hh, 0)}
    )
    out = frame.groupby(by, sort=True, dropna=True)[["households", "households_weak"]].sum()
    out["weak_share"] = np.divide(
        out["households_weak"].to_numpy(dtype=float),
        out["households"].to_numpy(dtype=float),
        out=np.zeros(len(out)),
        where=out["households"].to_numpy() > 0,
    ).round(4)
    return out.reset_index()


def _desc(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(((k, v) for k, v in counts.items() if v), key=lambda kv: -kv[1])


def _value_counts(values: np.ndarray) -> dict[str, int]:
    counts = pd.Series(values).value_counts(sort=True)
    return {str(k): int(v) for k, v in counts.items() if str(k) != ""}


def _int_column(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df.columns:
        return np.zeros(len(df), dtype=np.int64)
    return pd.to_numeric(df[col], errors="coerce").fillna(0).to_numpy(dtype=np.int64)


def _float_column(df: pd.DataFrame, col: str) -> np.ndarray | None:
    if col not in df.columns:
        return None
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _str_column(df: pd.DataFrame, col: str) -> np.ndarray | None:
    if col not in df.columns:
        return None
    return df[col].astype("str").fillna("").to_numpy(dtype=object)
