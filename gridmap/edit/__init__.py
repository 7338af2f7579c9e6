"""Edit a grid plan by hand: move buildings, merge, split, lock and re-plan, undo, compare.

Planners redraw grids in notebooks, in the :class:`gridmap.GridEditor` widget and in the
web view. Every edit here takes a :class:`~gridmap.plan.Plan` and returns an
:class:`EditResult` ``(plan, report)``: a **new** plan (the old one is never changed)
and the rules the grids of the edit now break. Unpack it with
``plan, report = move_buildings(...)``; ``result.changed`` is :func:`check_grids` of the
changed and added grids (households against their range, violations).

The package is one module per step of an edit:

- :mod:`~gridmap.edit.moves` — :func:`move_buildings`, :func:`assign` (one paint stroke);
- :mod:`~gridmap.edit.grids` — :func:`merge_grids`, :func:`split_grid`,
  :func:`lock_grids`, :func:`unlock_grids`, :func:`replan`, :func:`set_grid`,
  :func:`renumber`, :func:`neighbours`;
- :mod:`~gridmap.edit.redraw` — re-tessellation and planner runs on the edited area;
- :mod:`~gridmap.edit.commit` — recount, flags, crossings, history of the edited grids;
- :mod:`~gridmap.edit.checks` — :func:`check_grids`, :class:`EditResult`;
- :mod:`~gridmap.edit.history` — :func:`undo`, :func:`redo`, :func:`history_table`;
- :mod:`~gridmap.edit.diff` — :func:`diff`, :class:`PlanDiff`;
- :mod:`~gridmap.edit.selection` — :func:`polygon_from_geojson`, :func:`selection_map`.

Rules every edit keeps
----------------------
- **Exact coverage.** Grid polygons still tile each community with no gap or overlap.
  Moving buildings re-tessellates only the grids involved: the union of their polygons
  is divided again among their buildings (a Voronoi diagram of the building points cut
  along barriers and community borders, the same construction as
  :func:`gridmap.plan_grids`), so a moved building takes its cell with it and every
  other grid keeps its polygon exactly. Splitting and re-planning call
  :func:`gridmap.plan_grids` on the area being redrawn.
- **Only what changed is recomputed.** Households, building counts, area,
  Polsby–Popper compactness, flags (``out_of_range``, ``no_households``,
  ``crosses_barrier``, ``discontiguous``, ``crosses_community``) and the
  barrier-crossing table are recomputed for the grids an edit touches, and only those
  grids are checked (:func:`check_grids`): an edit of a 1,000-grid plan takes well
  under a second. ``plan.validate()`` checks the whole plan.
- **Stable codes.** Grids an edit does not touch keep their codes. A new grid holding
  most of the buildings of an old code keeps that code, a split grid keeps its code on
  one of its parts, and splitting a merged grid gives the merged-away code back to the
  part holding its buildings: an edit followed by its reverse ends with the same
  codes. Other new grids take the next free sequence numbers of their community
  (numbers retired by earlier edits are not handed to other buildings until
  :func:`renumber`); :func:`renumber` renumbers everything in reading order
  (north→south, west→east) on request.
- **Rule-breaking edits are allowed but loud.** An edit that leaves a grid out of its
  household range, in several parts, reaching into another community or drawn across
  a barrier is carried out; a ``WARNING`` on the ``gridmap`` logger lists the problems
  of the edited grids, ``EditResult.report`` holds them and ``plan.validate()`` lists
  them. The planner's own explanations (``infeasible_split``, ``isolated_village``)
  are removed from grids edited by hand, so an out-of-range grid is reported as an
  error again.
- **Locked grids** (:func:`lock_grids`) are kept as they are by :func:`replan`, and
  moving buildings into or out of them, merging or splitting them is refused until they
  are unlocked. Special grids (专属网格) are always kept by :func:`replan`.

History and undo
----------------
Every edit appends one entry to ``plan.history`` (``op``, ``time`` in UTC ISO 8601,
``reason``, ``params``, and the grid codes ``changed``, ``added`` and ``removed``;
``retired`` lists the buildings of retired codes) and one record to
``plan.undo_log``. :func:`undo` and :func:`redo` apply those records (up to
:data:`MAX_UNDO` edits back). History, locks (``plan.params["locked_grids"]``) and the
undo/redo logs are saved with the plan by :meth:`Plan.to_file` and read back by
:func:`gridmap.read_plan`, so undo works on a plan read from a file or from the web
store.

Finding grids
-------------
Codes can be given in full or by a unique ending (the six digits the map labels show).
:func:`neighbours` lists the grids sharing a border with a grid.

Interactive selection
---------------------
:func:`selection_map` draws the plan with folium's Draw plugin; draw a polygon and
press *Export* to download it as GeoJSON, then pass the file (or its text) to
:func:`polygon_from_geojson`, or straight to ``move_buildings(..., polygon=...)``.

Comparing versions
------------------
:func:`diff` compares two plans: grids added, removed and changed, buildings moved and
the household change per grid, with :meth:`PlanDiff.map` to see it.
"""

from __future__ import annotations

from .checks import RULES, EditResult, check_grids
from .common import MAX_UNDO
from .diff import PlanDiff, diff
from .grids import (
    lock_grids,
    merge_grids,
    neighbours,
    renumber,
    replan,
    set_grid,
    split_grid,
    unlock_grids,
)
from .history import history_table, redo, replay, undo
from .moves import assign, move_buildings
from .selection import polygon_from_geojson, selection_map

__all__ = [
    "MAX_UNDO",
    "RULES",
    "EditResult",
    "PlanDiff",
    "assign",
    "check_grids",
    "diff",
    "history_table",
    "lock_grids",
    "merge_grids",
    "move_buildings",
    "neighbours",
    "polygon_from_geojson",
    "redo",
    "renumber",
    "replan",
    "replay",
    "selection_map",
    "set_grid",
    "split_grid",
    "undo",
    "unlock_grids",
]
