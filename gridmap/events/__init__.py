"""Events (事件): ingest reports, the six-step loop, per-grid KPIs, hot spots, maps.

Grid workers (网格员) report events from their phones and residents report them through
"随手拍" (snap-and-report). This package turns such reports into figures a street or
community office uses. Its modules are the steps:

* :mod:`~gridmap.events.read` -- :func:`read_events` reads a report file or table,
  normalises columns, categories, sources, statuses and times (:mod:`.times`: naive
  times are in the zone of the data's location unless ``tz=`` says otherwise) and keeps
  every row it cannot use in a rejects table (:func:`rejects_of`).
* :mod:`~gridmap.events.assign` -- :func:`assign_events` attaches each event to
  exactly one grid.
* :mod:`~gridmap.events.stats` -- :func:`event_stats` gives per-grid counts, events
  per 100 households and closure KPIs (on-time rate, open, overdue, unknown, median and
  mean handling hours), rolled up to communities and streets, optionally per month or
  week.
* :mod:`~gridmap.events.hotspots` -- :func:`hotspots` finds hot and cold grids with
  Getis-Ord Gi*.
* :mod:`~gridmap.events.workflow` -- the loop 上报 → 受理 → 分派 → 处置 → 反馈 → 办结:
  :func:`advance` checks a step, :func:`apply_history` makes the KPIs follow the steps.
* :mod:`~gridmap.events.maps` -- :func:`event_map` draws heat maps, rates per grid and
  hot spots in one purple ramp (:mod:`.palette`); :func:`write_event_outputs`
  (:mod:`.outputs`) writes all of it to a folder.

Vocabularies (columns, categories, sources, statuses, steps) are in :mod:`.schema`.
"""

from __future__ import annotations

from .assign import assign_events
from .hotspots import hotspots
from .maps import event_map
from .outputs import write_event_outputs
from .palette import palette as event_palette
from .read import EventRejects, read_events, rejects_of
from .schema import (
    CATEGORIES,
    CATEGORY_VALUES,
    DEFAULT_TZ,
    EVENT_COLUMNS,
    OPEN_STATUSES,
    REJECT_REASONS,
    SOURCE_VALUES,
    SOURCES,
    STATUS_LABELS,
    STATUS_VALUES,
    STEPS,
)
from .stats import EventStats, event_stats
from .times import ZONES, zone_of
from .workflow import (
    TransitionError,
    advance,
    allowed_steps,
    apply_history,
    next_step,
    normalise_status,
)

__all__ = [
    "CATEGORIES",
    "CATEGORY_VALUES",
    "DEFAULT_TZ",
    "EVENT_COLUMNS",
    "OPEN_STATUSES",
    "REJECT_REASONS",
    "SOURCES",
    "SOURCE_VALUES",
    "STATUS_LABELS",
    "STATUS_VALUES",
    "STEPS",
    "ZONES",
    "EventRejects",
    "EventStats",
    "TransitionError",
    "advance",
    "allowed_steps",
    "apply_history",
    "assign_events",
    "event_map",
    "event_stats",
    "hotspots",
    "next_step",
    "normalise_status",
    "event_palette",
    "read_events",
    "rejects_of",
    "write_event_outputs",
    "zone_of",
]
