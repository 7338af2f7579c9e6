"""Paint buildings onto grids in Jupyter: the :class:`GridEditor` widget.

Why anywidget
-------------
The widget is an `anywidget <https://anywidget.dev>`_ ``AnyWidget`` (an ipywidgets
``DOMWidget``), not an ipyleaflet map:

- **No JavaScript build.** The front end is one plain ES module
  (``static/grid_editor.js``) and one CSS file, shipped as package data; anywidget
  hands them to the notebook as they are. There is no npm package, bundler or
  labextension to build and keep in step with the Python side.
- **Offline.** The ES module carries the same Leaflet 1.9.4 the web view serves
  (shipped in ``gridmap/vendor/leaflet``), so the widget draws without any CDN or
  tile server; a notebook on an office machine without internet works.
- **Python owns the plan.** The browser only draws and collects strokes; each stroke
  is one message that calls :meth:`GridEditor.assign`, which calls
  :func:`gridmap.edit.move_buildings`. Everything the widget does is therefore a
  Python method that tests call without a browser, and the same calls are what a
  planner types in a cell.
- ipyleaflet would have given a map but not the paint strokes, the lasso, the brush
  or the live table; those would still need custom JavaScript, and ipyleaflet needs
  its own JupyterLab extension.

anywidget is an optional dependency (``pip install gridmap[notebook]``);
``import gridmap`` does not need it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from .. import edit
from ..crs import to_wgs84
from ..edit.common import locked_codes, resolve_code, resolve_codes
from ..errors import GridmapError, PlanError
from ..plan import Plan

log = logging.getLogger(__name__)

try:  # anywidget is optional: the core library works without it
    import anywidget
    import traitlets
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "gridmap.GridEditor needs anywidget: pip install anywidget (or gridmap[notebook])"
    ) from exc

#: Up to this many buildings the widget draws footprints; above it, points.
MAX_FOOTPRINTS = 20_000
TABLE_COLUMNS = [
    "grid_code",
    "community",
    "kind",
    "households",
    "min",
    "max",
    "in_range",
    "status",
    "locked",
    "violations",
    "details",
]


@cache
def _static(name: str) -> str:
    return (resources.files(__package__) / "static" / name).read_text(encoding="utf-8")


@cache
def _vendor(name: str) -> str:
    """A file of the Leaflet shipped with gridmap (``gridmap/vendor``)."""
    return (resources.files("gridmap") / "vendor" / name).read_text(encoding="utf-8")


@cache
def _esm() -> str:
    """The widget's ES module: Leaflet (UMD, evaluated into a local ``exports``)
    followed by the editor."""
    leaflet = _vendor("leaflet/leaflet.js")
    wrapped = (
        "const L = (function () { const exports = {}; const module = { exports };\n"
        + leaflet
        + "\nreturn exports; }).call(globalThis);\n"
    )
    return wrapped + _static("grid_editor.js")


@cache
def _css() -> str:
    return _vendor("leaflet/leaflet.css") + "\n" + _static("grid_editor.css")


class GridEditor(anywidget.AnyWidget):
    """Redraw grids by painting buildings onto them, with live totals.

    Display the widget in a notebook cell. Pick the **active grid** (click a grid
    with the *grid* tool, pick it in the list or click a table row), then paint:
    *click* a building, draw a *lasso* around buildings, or drag the *brush* circle
    over them. Each stroke moves the stroke's buildings into the active grid
    (:meth:`assign`); while the stroke is drawn the map and the table show what the
    totals would become, and after it the table shows the real households against
    each grid's range with every rule the changed grids break. Buttons lock and
    unlock the active grid, re-plan the unlocked rest of its community, undo, redo
    and save the plan to a GeoPackage.

    Every button is a method, so the same edits are scriptable and testable without
    a browser: ``editor.assign(ids, "001005")``, ``editor.lock(...)``,
    ``editor.replan()``, ``editor.undo()``, ``editor.save("plan.gpkg")``.

    Parameters
    ----------
    plan : Plan
        The plan to edit. It is not changed; :attr:`plan` is the edited plan.
    active_grid : str, optional
        Grid to paint onto first (full code or a unique ending).
    height : int
        Height of the map in pixels.

    Attributes
    ----------
    plan : Plan
        The current plan (after the last edit, undo or redo).
    active_grid : str
        Code of the grid strokes paint onto.
    table : pandas.DataFrame
        One row per grid: ``grid_code``, ``community``, ``kind``, ``households``,
        ``min``, ``max``, ``in_range``, ``status`` (``low``, ``ok``, ``high``,
        ``special``), ``locked``, ``violations`` (the rules of
        :func:`gridmap.edit.check_grids` the grid breaks: ``range``, ``contiguity``,
        ``community``, ``crossing``) and ``details`` (one sentence per violation).
    changes : pandas.DataFrame
        The changed grids of the last edit (:func:`gridmap.edit.check_grids`).
    message : str
        What the last action did, or why it was refused.

    Examples
    --------
    >>> editor = gridmap.GridEditor(plan, active_grid="001005")  # doctest: +SKIP
    >>> editor                                                   # doctest: +SKIP
    >>> editor.assign(["YM000123", "YM000124"])                   # doctest: +SKIP
    >>> editor.plan.to_file("plan_v2.gpkg")                       # doctest: +SKIP
    """

    _esm = _esm()
    _css = _css()

    active_grid = traitlets.Unicode("").tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    reason = traitlets.Unicode("").tag(sync=True)
    save_path = traitlets.Unicode("plan_edited.gpkg").tag(sync=True)
    height = traitlets.Int(520).tag(sync=True)
    can_undo = traitlets.Bool(False).tag(sync=True)
    can_redo = traitlets.Bool(False).tag(sync=True)
    _grids = traitlets.Dict().tag(sync=True)
    _buildings = traitlets.Dict().tag(sync=True)
    _building_grid = traitlets.List().tag(sync=True)
    _table = traitlets.List().tag(sync=True)
    _changed = traitlets.List().tag(sync=True)

    def __init__(self, plan: Plan, *, active_grid: str | None = None, height: int = 520) -> None:
        if not isinstance(plan, Plan):
            raise PlanError(f"GridEditor needs a gridmap Plan, got {type(plan).__name__}")
        if not len(plan.grids):
            raise PlanError("GridEditor: the plan has no grids")
        super().__init__(height=int(height))
        self._plan = plan
        codes = plan.grids["grid_code"].astype(str).tolist()
        self._checks = edit.check_grids(plan, codes).set_index("code", drop=False)
        self._changes = self._checks.iloc[0:0].reset_index(drop=True)
        self._buildings = _building_payload(plan)
        self._sync()
        if active_grid is not None:
            self.active_grid = resolve_code(plan, active_grid)
        else:
            residential = plan.grids[plan.grids["kind"] != "special"]
            first = residential if len(residential) else plan.grids
            self.active_grid = str(first["grid_code"].iloc[0])
        self.on_msg(self._on_msg)

    # ----------------------------------------------------------------- state
    @property
    def plan(self) -> Plan:
        """The current plan."""
        return self._plan

    @property
    def table(self) -> pd.DataFrame:
        """Households of every grid against its range, with its violations."""
        return _grid_table(self._plan, self._checks)

    @property
    def changes(self) -> pd.DataFrame:
        """The grids the last edit changed, checked (households, range, violations)."""
        return self._changes.copy()

    def __repr__(self) -> str:
        return f"GridEditor({self._plan!r}, active_grid={self.active_grid!r})"

    # ----------------------------------------------------------------- edits
    def assign(
        self, ids: Iterable[str] | str, to_grid: str | None = None, *, reason: str | None = None
    ) -> edit.EditResult:
        """Move buildings into a grid: what one paint stroke does.

        Parameters
        ----------
        ids : str or iterable of str
            ``building_id`` of the buildings to move. Buildings already in `to_grid`
            are left out.
        to_grid : str, optional
            Receiving grid (full code or unique ending); default :attr:`active_grid`.
        reason : str, optional
            Why; default the widget's reason field. Stored in the plan history.

        Returns
        -------
        EditResult
            ``(plan, report)`` of :func:`gridmap.edit.assign` (which calls
            :func:`gridmap.edit.move_buildings`); :attr:`changes` holds the changed
            grids' households against their ranges.

        Raises
        ------
        PlanError
            Unknown building or grid, nothing to move, or a locked grid involved.
        """
        target = resolve_code(self._plan, to_grid or self.active_grid)
        res = edit.assign(self._plan, ids, target, reason=self._reason(reason, "painted"))
        self._apply(res)
        return res

    def lock(self, codes: Iterable[str] | str | None = None, *, reason: str | None = None):
        """Lock grids (default the active grid) so strokes and :meth:`replan` keep them."""
        codes = self._codes(codes)
        res = edit.lock_grids(self._plan, codes, reason=self._reason(reason, "locked"))
        self._apply(res)
        return res

    def unlock(self, codes: Iterable[str] | str | None = None, *, reason: str | None = None):
        """Unlock grids (default the active grid)."""
        codes = self._codes(codes)
        res = edit.unlock_grids(self._plan, codes, reason=self._reason(reason, "unlocked"))
        self._apply(res)
        return res

    def replan(self, community: str | None = None, *, reason: str | None = None):
        """Re-plan the unlocked grids of a community (default: the active grid's).

        Parameters
        ----------
        community : str, optional
            Street + community code (6 digits, e.g. ``"001002"``); default the
            community of :attr:`active_grid`.
        """
        if community is None:
            row = self._row(self.active_grid)
            community = f"{row['street_code']}{row['community_code']}"
        res = edit.replan(self._plan, community, reason=self._reason(reason, "re-planned"))
        self._apply(res)
        return res

    def undo(self) -> Plan:
        """Take back the last edit; returns the plan before it."""
        self._apply(edit.undo(self._plan))
        return self._plan

    def redo(self) -> Plan:
        """Re-apply the edit :meth:`undo` took back."""
        self._apply(edit.redo(self._plan))
        return self._plan

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the current plan to a GeoPackage (:meth:`Plan.to_file`).

        The file is what ``POST /api/plans/{id}/versions`` publishes to the web view.
        """
        out = self._plan.to_file(path if path is not None else self.save_path)
        self.message = f"saved {out}"
        return out

    # -------------------------------------------------------------- internal
    def _reason(self, reason: str | None, default: str) -> str:
        return reason if reason is not None else (self.reason or default)

    def _codes(self, codes: Iterable[str] | str | None) -> list[str]:
        if codes is None:
            if not self.active_grid:
                raise PlanError("no active grid: pick one first")
            codes = [self.active_grid]
        return resolve_codes(self._plan, codes)

    def _row(self, code: str) -> pd.Series:
        if not code:
            raise PlanError("no active grid: pick one first")
        g = self._plan.grids.set_index("grid_code")
        return g.loc[resolve_code(self._plan, code)]

    def _apply(self, result: edit.EditResult | Plan) -> None:
        """Take the plan of an edit (or of undo/redo), re-check the grids it changed."""
        before = self._plan
        if isinstance(result, Plan):
            plan = result
            changed = _changed_codes(before, plan)
            checks = edit.check_grids(plan, changed)
        else:
            plan = result.plan
            checks = result.changed
        current = plan.grids["grid_code"].astype(str)
        kept = self._checks[self._checks["code"].isin(set(current))]
        kept = kept[~kept["code"].isin(set(checks["code"]))]
        self._checks = pd.concat([kept, checks]).set_index("code", drop=False)
        self._changes = checks.reset_index(drop=True)
        self._plan = plan
        if self.active_grid and self.active_grid not in set(current):
            self.active_grid = ""
        self._sync()

    def _sync(self) -> None:
        plan = self._plan
        table = _grid_table(plan, self._checks)
        with self.hold_sync():
            self._grids = _grid_payload(plan, table)
            self._table = _records(table)
            self._building_grid = _building_grids(plan, self._buildings["ids"])
            self._changed = _records(self._changes)
            self.can_undo = bool(plan.undo_log)
            self.can_redo = bool(plan.redo_log)
            self.message = _summary(self._changes, plan)

    def _on_msg(self, _widget: Any, content: dict, _buffers: Any) -> None:
        """Messages from the browser: one per button or paint stroke."""
        kind = content.get("type") if isinstance(content, dict) else None
        try:
            if kind == "assign":
                self.assign(content.get("ids") or [], content.get("to_grid") or None)
            elif kind == "lock":
                self.lock()
            elif kind == "unlock":
                self.unlock()
            elif kind == "replan":
                self.replan()
            elif kind == "undo":
                self.undo()
            elif kind == "redo":
                self.redo()
            elif kind == "save":
                self.save(content.get("path") or None)
            else:
                self.message = f"unknown action {kind!r}"
        except GridmapError as exc:
            self.message = f"refused: {exc}"
        except OSError as exc:
            self.message = f"could not save: {exc}"


# ------------------------------------------------------------------- payloads
def _grid_table(plan: Plan, checks: pd.DataFrame) -> pd.DataFrame:
    """Every grid's households against its range, with the violations of `checks`
    (:func:`gridmap.edit.check_grids` rows indexed by code)."""
    g = plan.grids
    codes = g["grid_code"].astype(str)
    hh = g["households"].fillna(0).astype(int).to_numpy()
    lo = g["range_min"].fillna(0).astype(int).to_numpy()
    hi = g["range_max"].fillna(0).astype(int).to_numpy()
    special = (g["kind"] == "special").to_numpy()
    status = np.where(special, "special", np.where(hh < lo, "low", np.where(hh > hi, "high", "ok")))
    c = checks.reindex(codes)
    locked = locked_codes(plan)
    out = pd.DataFrame(
        {
            "grid_code": codes.to_numpy(),
            "community": g["community_name"].fillna("").astype(str).to_numpy(),
            "kind": g["kind"].astype(str).to_numpy(),
            "households": hh,
            "min": lo,
            "max": hi,
            "in_range": special | ((hh >= lo) & (hh <= hi)),
            "status": status,
            "locked": codes.isin(locked).to_numpy(),
            "violations": [list(v) if isinstance(v, list) else [] for v in c["violations"]],
            "details": [list(v) if isinstance(v, list) else [] for v in c["details"]],
        },
        columns=TABLE_COLUMNS,
    )
    return out.sort_values("grid_code").reset_index(drop=True)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (numpy scalars to Python)."""
    rows = []
    for rec in df.to_dict("records"):
        rows.append(
            {
                k: (
                    v.item()
                    if isinstance(v, np.generic)
                    else list(v)
                    if isinstance(v, tuple)
                    else v
                )
                for k, v in rec.items()
            }
        )
    return rows


def _round6(coords: np.ndarray) -> np.ndarray:
    """Coordinates rounded to 6 decimals (about 10 cm in WGS84) for the browser."""
    return np.round(coords, 6)


def _grid_payload(plan: Plan, table: pd.DataFrame) -> dict[str, Any]:
    """Grid polygons in WGS84 (6 decimals, about 10 cm) with the figures of `table`."""
    wgs = plan.grids_wgs84()
    geoms = dict(
        zip(
            wgs["grid_code"].astype(str),
            shapely.to_geojson(shapely.transform(wgs.geometry.values, _round6)),
            strict=True,
        )
    )
    props = _records(table.drop(columns=["community", "kind", "in_range"]))
    feats = [
        {
            "type": "Feature",
            "geometry": json.loads(geoms[p["grid_code"]]),
            "properties": {"code": p.pop("grid_code"), **p},
        }
        for p in props
    ]
    return {"type": "FeatureCollection", "features": feats}


def _building_payload(plan: Plan) -> dict[str, Any]:
    """Buildings in WGS84: ids, households, representative points and (when not too
    many) footprints; their grids are sent separately (they change with each edit)."""
    b = to_wgs84(plan.buildings[["building_id", "households", "geometry"]], "plan buildings")
    pts = shapely.point_on_surface(b.geometry.values)
    out: dict[str, Any] = {
        "ids": b["building_id"].astype(str).tolist(),
        "households": b["households"].fillna(0).astype(int).tolist(),
        "x": np.round(shapely.get_x(pts), 7).tolist(),
        "y": np.round(shapely.get_y(pts), 7).tolist(),
        "footprints": None,
    }
    if len(b) <= MAX_FOOTPRINTS:
        geoms = shapely.to_geojson(shapely.transform(b.geometry.values, _round6))
        out["footprints"] = [json.loads(g) for g in geoms]
    return out


def _building_grids(plan: Plan, ids: list[str]) -> list[str]:
    """The grid of each building of `ids` (the order the browser holds), ``""`` for none."""
    b = plan.buildings
    grids = pd.Series(b["grid_code"].to_numpy(), index=b["building_id"].astype(str).to_numpy())
    return grids.reindex(ids).fillna("").astype(str).tolist()


def _changed_codes(before: Plan, after: Plan) -> list[str]:
    """Codes of grids whose households or buildings differ, plus new grids."""
    a = before.grids.set_index("grid_code")[["households", "buildings"]]
    b = after.grids.set_index("grid_code")[["households", "buildings"]]
    common = a.index.intersection(b.index)
    diff = (a.loc[common] != b.loc[common]).any(axis=1)
    return sorted(set(common[diff.to_numpy()]) | set(b.index.difference(a.index)))


def _summary(changes: pd.DataFrame, plan: Plan) -> str:
    if not len(changes):
        return f"{len(plan.grids)} grids, {int(plan.grids['households'].sum()):,} households"
    parts = []
    for rec in changes.to_dict("records"):
        v = list(rec.get("violations") or [])
        mark = "ok" if rec.get("in_range") and not v else ", ".join(str(x) for x in v)
        parts.append(
            f"{str(rec['code'])[-6:]}: {int(rec['households'])} ({rec['min']}–{rec['max']}) {mark}"
        )
    return " · ".join(parts)
