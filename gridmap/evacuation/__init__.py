"""Evacuation planned before the water comes (避险转移): who, when, to where, by which road.

Flood evacuation moves people on a warning, before the water arrives. :func:`plan_evacuation`
takes a flood grading (:func:`gridmap.grade_flood`), a road network and shelters, and
answers the planners' questions grid by grid: which households move (转移谁), **when**
(which departure wave: the households whose way out floods first leave first, 何时转), to
which shelter (转到哪) and by which road; which households cannot walk to a shelter and
why. :func:`evacuation_map` and :func:`write_evacuation_outputs` publish the plan.

The steps, one module each:

- :mod:`~gridmap.evacuation.demand`: who moves; demand units (a unit group of a
  building, never split) and persons (the households setting's persons per household).
- :mod:`~gridmap.evacuation.network`: where buildings and shelters join the roads,
  walking distances within the walking limit, routes, congestion.
- :mod:`~gridmap.evacuation.shelters`: shelters and capacities.
- :mod:`~gridmap.evacuation.timing`: the rise of the flood; the stage (or water level)
  at which each road, route and door is cut; departure waves; leave-by clock times.
- :mod:`~gridmap.evacuation.assignment`: the optimal assignment over every shelter within
  the walking limit (HiGHS).
- :mod:`~gridmap.evacuation.outputs`: task sheets by grid and wave, maps, files.
- :mod:`~gridmap.evacuation.planner`: :func:`plan_evacuation` and :class:`EvacuationPlan`.

By default the plan is **pre-emptive**: routes use the roads before the flood, everyone
who must move and can walk to a shelter with room within :data:`MAX_WALK_MIN` is placed,
and every route carries the flood stage at which it is cut (``cut_stage``, and
``cut_level_m`` with a DEM and a water level), its departure ``wave`` and, with a rise
rate or a hydrograph, a leave-by time. The view at the peak stays available as
``network="peak"`` and as the ``cut_at_peak`` / ``warning`` columns.
"""

from __future__ import annotations

from .assignment import EXACT_MAX_PAIRS, PRIORITY_WEIGHT
from .network import PEDESTRIAN_FLOW
from .outputs import evacuation_map, write_evacuation_outputs
from .planner import (
    FLOODED_ROAD_DEPTH_M,
    MAX_WALK_MIN,
    REASONS,
    WALKING_SPEED_KMH,
    EvacuationPlan,
    plan_evacuation,
    run_evacuation,
)
from .shelters import SHELTER_M2_PER_PERSON
from .timing import DEFAULT_WAVES, SAMPLE_SPACING_M

__all__ = [
    "DEFAULT_WAVES",
    "EXACT_MAX_PAIRS",
    "FLOODED_ROAD_DEPTH_M",
    "MAX_WALK_MIN",
    "PEDESTRIAN_FLOW",
    "PRIORITY_WEIGHT",
    "REASONS",
    "SAMPLE_SPACING_M",
    "SHELTER_M2_PER_PERSON",
    "WALKING_SPEED_KMH",
    "EvacuationPlan",
    "evacuation_map",
    "plan_evacuation",
    "run_evacuation",
    "write_evacuation_outputs",
]
