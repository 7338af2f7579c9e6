"""gridmap: grid management (网格化管理) for Chinese cities and counties.

The pipeline, one module per step::

    load -> households -> partition -> grids -> events / flood / evacuation -> maps -> api

Public functions are imported lazily, so ``import gridmap`` is cheap and a module's
heavy dependencies load only when one of its functions is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import CRSError, GeometryError, GridmapError, InputError, PlanError, SchemaError

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # sample data
    "sample_town": "sample",
    "load_sample": "sample",
    "sample_paths": "sample",
    # load
    "read_buildings": "load",
    "buildings_from_osm": "load",
    "read_layer": "load",
    "read_boundaries": "boundaries",
    "admin_communities": "boundaries",
    "admin_hierarchy": "boundaries",
    # households
    "estimate_households": "households",
    "persons_per_household": "households",
    "households_summary": "households",
    "read_landuse": "households",
    # partition / grids
    "plan_grids": "partition",
    "Plan": "plan",
    "read_plan": "plan",
    "validate_plan": "validate",
    # maps
    "plan_map": "maps",
    "save_html": "maps",
    # events
    "read_events": "events",
    "assign_events": "events",
    "event_stats": "events",
    "hotspots": "events",
    "event_map": "events",
    "rejects_of": "events",
    "write_event_outputs": "events",
    "EventStats": "events",
    "advance": "events",
    "apply_history": "events",
    # flood
    "grade_flood": "flood",
    "flood_map": "flood",
    "write_flood_outputs": "flood",
    "FloodGrading": "flood",
    # evacuation
    "plan_evacuation": "evacuation",
    "EvacuationPlan": "evacuation",
    "evacuation_map": "evacuation",
    "write_evacuation_outputs": "evacuation",
    "run_evacuation": "evacuation",
    "read_roads": "roads",
    "roads_from_osm": "roads",
    # planner edits, versions, exports
    "diff": "edit",
    "PlanDiff": "edit",
    "EditResult": "edit",
    "move_buildings": "edit",
    "merge_grids": "edit",
    "split_grid": "edit",
    "lock_grids": "edit",
    "unlock_grids": "edit",
    "replan": "edit",
    "set_grid": "edit",
    "renumber": "edit",
    "undo": "edit",
    "redo": "edit",
    "polygon_from_geojson": "edit",
    "neighbours": "edit",
    "selection_map": "edit",
    "check_grids": "edit",
    "assign": "edit",
    # notebook widget (needs the optional anywidget)
    "GridEditor": "widget",
    "export_plan": "export",
    "grid_sheet": "export",
    # crs helpers
    "to_metric": "crs",
    "to_wgs84": "crs",
}

__all__ = [
    "CRSError",
    "GeometryError",
    "GridmapError",
    "InputError",
    "PlanError",
    "SchemaError",
    "__version__",
    *_EXPORTS,
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gridmap' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
