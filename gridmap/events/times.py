"""Event times: parse the many ways reports write them, and pick the time zone.

Times written with a UTC offset (``2025-03-01T08:00+07:00``, ``...Z``) keep it. Times
written without one are local times of a zone: the ``tz=`` given to
:func:`~gridmap.events.read_events`, else the zone of the events' location
(:func:`zone_of`), else :data:`~gridmap.events.schema.DEFAULT_TZ`.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from ..errors import InputError
from .schema import DEFAULT_TZ, MISSING_STRINGS

logger = logging.getLogger("gridmap")

__all__ = ["ZONES", "log_zone", "parse_times", "pick_zone", "zone_of"]

#: Where the time zone of naive times can be told from the location: (zone, west,
#: south, east, north) in WGS84 degrees, the first box holding the median event point
#: wins. Countries with one zone (or one offset all year) only, plus Indonesia's three
#: zones. Anywhere else :data:`~gridmap.events.schema.DEFAULT_TZ` is used, with a
#: warning; pass ``tz=`` for data from there.
ZONES: tuple[tuple[str, float, float, float, float], ...] = (
    ("Asia/Hong_Kong", 113.8, 22.15, 114.45, 22.57),
    ("Asia/Taipei", 119.3, 21.8, 122.1, 25.4),
    ("Asia/Shanghai", 73.5, 18.0, 135.1, 53.6),  # all of China keeps UTC+08:00
    ("Asia/Jakarta", 95.0, -11.0, 114.4, 6.1),  # WIB +07:00: Sumatra, Java, W Kalimantan
    ("Asia/Makassar", 114.4, -11.0, 125.0, 6.1),  # WITA +08:00: Bali, Sulawesi, ...
    ("Asia/Jayapura", 125.0, -11.0, 141.1, 6.1),  # WIT +09:00
    ("Europe/Paris", -5.3, 41.3, 9.6, 51.1),
    ("Europe/London", -8.7, 49.8, 1.8, 60.9),
    ("Europe/Berlin", 5.8, 47.2, 15.1, 55.1),
)

# ASCII classes only ([0-9], [ \t]) so that pandas runs them in pyarrow's RE2, not re
_TZ_TAIL = r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)$"
_DATE_ONLY = r"[0-9]{4}[ \t]*[-/.年][ \t]*[0-9]{1,2}[ \t]*[-/.月][ \t]*[0-9]{1,2}[ \t]*日?"
_CN_TIME = (
    r"^(?P<Y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*[日号]?"
    r"(?:[\sT]*(?P<H>\d{1,2})\s*[:：时点]\s*(?P<M>\d{1,2})\s*分?"
    r"(?:\s*[:：]?\s*(?P<S>\d{1,2}(?:\.\d+)?)\s*秒?)?)?\s*$"
)
_DURATION = r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<u>天|日|个工作日|工作日|d|day|days|小时|个小时|时|h|hr|hrs|hour|hours)$"
_DURATION_HOURS = {
    "天": 24, "日": 24, "个工作日": 24, "工作日": 24, "d": 24, "day": 24, "days": 24,
    "小时": 1, "个小时": 1, "时": 1, "h": 1, "hr": 1, "hrs": 1, "hour": 1, "hours": 1,
}  # fmt: skip


def zone_of(lon: np.ndarray, lat: np.ndarray) -> str | None:
    """The time zone of the place the points are in, from :data:`ZONES`.

    Parameters
    ----------
    lon, lat : numpy.ndarray
        WGS84 coordinates (NaN and out-of-range values are ignored).

    Returns
    -------
    str or None
        The IANA zone of the first box of :data:`ZONES` that holds the median point,
        or None when no box does (or there is no usable point).
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    if not ok.any():
        return None
    x, y = float(np.median(lon[ok])), float(np.median(lat[ok]))
    for zone, west, south, east, north in ZONES:
        if west <= x <= east and south <= y <= north:
            return zone
    return None


def pick_zone(tz: str | None, lon: np.ndarray, lat: np.ndarray, source: str) -> tuple[str, str]:
    """The zone for naive times and where it comes from (``given``, ``location`` or
    ``default``); check that a given zone exists."""
    if tz is not None:
        try:
            pd.Timestamp("2000-01-01").tz_localize(tz)
        except Exception as exc:  # pytz/zoneinfo raise different kinds
            raise InputError(
                f"unknown time zone {tz!r}; use an IANA name such as Asia/Shanghai", source=source
            ) from exc
        return tz, "given"
    zone = zone_of(lon, lat)
    if zone is not None:
        return zone, "location"
    return DEFAULT_TZ, "default"


def log_zone(source: str, zone: str, origin: str, naive: int, total: int) -> None:
    """Warn that `naive` of `total` times had no offset and were read in `zone`."""
    if not naive:
        return
    offset = pd.Timestamp.now(tz=zone).strftime("%z")
    offset = f"{offset[:3]}:{offset[3:]}"
    why = {
        "given": "as given by tz=",
        "location": "the zone of the events' location; pass tz= to change it",
        "default": "the default: the events' location matches no known zone; pass tz=",
    }[origin]
    logger.warning(
        "%s: %d of %d times have no UTC offset; read as local times in %s (UTC%s, %s)",
        source,
        naive,
        total,
        zone,
        offset,
        why,
    )


def parse_times(
    raw: pd.Series,
    tz: str,
    *,
    end_of_day: bool = False,
    base: pd.Series | None = None,
) -> tuple[pd.Series, np.ndarray, np.ndarray, pd.Series]:
    """Parse a column of times, vectorised.

    The whole column first goes through pandas' ISO 8601 parser (the common case of a
    clean export costs one call). Only the values it cannot read are stripped, checked
    for "missing" markers and sent through the slower paths (offset/naive split,
    Chinese formats, durations).

    Returns the parsed times (tz-aware in `tz`), a mask of present-but-unparseable
    values, a mask of missing values, the text and a mask of the values read without
    a UTC offset (taken as local times in `tz`).
    """
    dtype = f"datetime64[us, {tz}]"
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        out = raw.dt.tz_convert(tz).astype(dtype)
        missing = out.isna().to_numpy()
        none = np.zeros(len(raw), dtype=bool)
        return out, none, missing, raw.astype("str"), none
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        out = _localize(raw, tz).astype(dtype)
        missing = raw.isna().to_numpy()
        bad = (out.isna() & raw.notna()).to_numpy()
        return out, bad, missing, raw.astype("str"), raw.notna().to_numpy() & ~bad

    text = raw if isinstance(raw.dtype, pd.StringDtype) else raw.astype("str")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            out = parsed.dt.tz_convert(tz).astype(dtype)
            naive = np.zeros(len(raw), dtype=bool)
        else:
            out = _localize(parsed, tz).astype(dtype)
            naive = out.notna().to_numpy(copy=True)
    except (ValueError, TypeError, OverflowError):  # mixed offsets, naive + aware, ...
        out = pd.Series(pd.NaT, index=raw.index, dtype=dtype)
        naive = np.zeros(len(raw), dtype=bool)

    missing = np.zeros(len(raw), dtype=bool)
    nat = out.isna().to_numpy()
    if nat.any():
        idx = np.flatnonzero(nat)
        sub = text.iloc[idx].str.strip()
        miss = (sub.isna() | sub.isin(MISSING_STRINGS)).to_numpy(dtype=bool)
        missing[idx[miss]] = True
        todo = idx[~miss]
        if len(todo):
            slow, slow_naive = _parse_slow(
                sub[~miss], tz, dtype, base=None if base is None else base.iloc[todo]
            )
            out.iloc[todo] = slow.to_numpy()
            naive[todo] = slow_naive

    if end_of_day:  # "2025-03-06" as a deadline means the end of that day
        ok = out.notna().to_numpy()
        midnight = ok & (out == out.dt.normalize()).fillna(False).to_numpy(dtype=bool)
        if midnight.any():
            idx = np.flatnonzero(midnight)
            cand = text.iloc[idx].str.strip().str.fullmatch(_DATE_ONLY)
            sel = idx[cand.fillna(False).to_numpy(dtype=bool)]
            if len(sel):
                out.iloc[sel] = (
                    out.iloc[sel] + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
                ).to_numpy()

    bad = ~missing & out.isna().to_numpy()
    return out, bad, missing, text, naive & ~bad


def _parse_slow(
    text: pd.Series, tz: str, dtype: str, *, base: pd.Series | None
) -> tuple[pd.Series, np.ndarray]:
    """Parse stripped, non-missing time strings the ISO fast path could not read.

    Returns the times and a mask of those read without a UTC offset (durations
    counted from `base` are not)."""
    out = pd.Series(pd.NaT, index=text.index, dtype=dtype)
    # an offset needs a time before it ("2025-03-01" ends in "-01" but has no offset)
    has_time = text.str.contains(":", regex=False).fillna(False).to_numpy(dtype=bool)
    tail = text.str.slice(-6).str.contains(_TZ_TAIL, regex=True).fillna(False)
    aware = has_time & tail.to_numpy(dtype=bool)
    if aware.any():
        parsed = pd.to_datetime(text[aware], format="ISO8601", errors="coerce", utc=True)
        out[aware] = parsed.dt.tz_convert(tz).astype(dtype)
    if (~aware).any():
        parsed = pd.to_datetime(text[~aware], format="ISO8601", errors="coerce")
        out[~aware] = _localize(parsed, tz).astype(dtype)

    failed = out.isna().to_numpy()
    if failed.any():
        parts = text[failed].str.extract(_CN_TIME)
        iso = (
            parts["Y"]
            + "-"
            + parts["m"].str.zfill(2)
            + "-"
            + parts["d"].str.zfill(2)
            + "T"
            + parts["H"].fillna("0").str.zfill(2)
            + ":"
            + parts["M"].fillna("0").str.zfill(2)
            + ":"
            + parts["S"].fillna("0").str.replace(r"^(\d)(?=\.|$)", r"0\1", regex=True)
        )
        parsed = pd.to_datetime(iso, format="ISO8601", errors="coerce")
        out[failed] = _localize(parsed, tz).astype(dtype)

    failed = out.isna().to_numpy()
    naive = ~aware & ~failed
    if failed.any() and base is not None:
        parts = text[failed].str.lower().str.extract(_DURATION)
        hours = pd.to_numeric(parts["n"], errors="coerce") * parts["u"].map(_DURATION_HOURS)
        ok = hours.notna().to_numpy(dtype=bool)
        if ok.any():
            pos = np.flatnonzero(failed)[ok]
            delta = pd.to_timedelta(hours[ok].astype(float).to_numpy(), unit="h")
            out.iloc[pos] = (base.iloc[pos] + delta).to_numpy()
    return out, naive


def _localize(parsed: pd.Series, tz: str) -> pd.Series:
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):  # pragma: no cover - defensive
        return parsed.dt.tz_convert(tz)
    return parsed.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
