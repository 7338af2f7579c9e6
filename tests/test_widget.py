"""gridmap.GridEditor: the notebook widget's Python side (no browser) and its ES module
in headless Chromium with a stand-in for the Jupyter widget model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import shapely

pytest.importorskip("anywidget")

import gridmap  # noqa: E402
from gridmap import edit  # noqa: E402
from gridmap.errors import PlanError  # noqa: E402
from gridmap.widget import GridEditor  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plan():
    from api.demo import lattice_plan

    return lattice_plan(1000, 600)


def _pair(plan):
    """A grid A, a neighbour B and the two buildings of B nearest A (with households)."""
    a = plan.grids["grid_code"].iloc[0]
    nb = edit.neighbours(plan, a)
    b_code = nb["grid_code"].iloc[0]
    ga = plan.grids.set_index("grid_code").at[a, "geometry"]
    b = plan.buildings
    b = b[(b["grid_code"] == b_code) & (b["households"] > 0)]
    ids = b.assign(d=b.geometry.distance(ga)).nsmallest(2, "d")["building_id"].tolist()
    return a, b_code, ids


def _hh(plan, code):
    return int(plan.grids.set_index("grid_code").at[code, "households"])


def test_assign_moves_exactly_the_households(plan):
    editor = GridEditor(plan)
    a, b_code, ids = _pair(plan)
    moved = int(plan.buildings.set_index("building_id").loc[ids, "households"].sum())
    assert moved > 0
    res = editor.assign(ids, a[-6:], reason="entrance on A's lane")
    new = editor.plan
    assert new is res.plan and new is not plan
    assert _hh(new, a) == _hh(plan, a) + moved
    assert _hh(new, b_code) == _hh(plan, b_code) - moved
    assert int(new.grids["households"].sum()) == int(plan.grids["households"].sum())
    assert set(new.buildings.set_index("building_id").loc[ids, "grid_code"]) == {a}
    # the other grids keep their figures; the input plan is unchanged
    others = plan.grids[~plan.grids["grid_code"].isin([a, b_code])]
    for code, hh in zip(others["grid_code"], others["households"], strict=True):
        assert _hh(new, code) == hh
    assert set(plan.buildings.set_index("building_id").loc[ids, "grid_code"]) == {b_code}
    # the live table and the changed grids say the same
    t = editor.table.set_index("grid_code")
    assert t.at[a, "households"] == _hh(new, a) and t.at[b_code, "households"] == _hh(new, b_code)
    changes = editor.changes.set_index("code")
    assert set(changes.index) == {a, b_code}
    assert changes.at[a, "households"] == _hh(new, a)
    assert a[-6:] in editor.message and b_code[-6:] in editor.message
    assert new.history[-1]["reason"] == "entrance on A's lane"
    # what the browser is sent follows the plan
    props = {f["properties"]["code"]: f["properties"] for f in editor._grids["features"]}
    assert props[a]["households"] == _hh(new, a)
    bg = dict(zip(editor._buildings["ids"], editor._building_grid, strict=True))
    assert all(bg[i] == a for i in ids)
    assert editor.can_undo and not editor.can_redo


def test_undo_restores_and_redo_reapplies(plan):
    editor = GridEditor(plan)
    a, b_code, ids = _pair(plan)
    editor.assign(ids, a)
    after = _hh(editor.plan, a)
    editor.undo()
    assert _hh(editor.plan, a) == _hh(plan, a) and _hh(editor.plan, b_code) == _hh(plan, b_code)
    assert set(editor.plan.buildings.set_index("building_id").loc[ids, "grid_code"]) == {b_code}
    assert editor.can_redo and not editor.can_undo
    editor.redo()
    assert _hh(editor.plan, a) == after
    with pytest.raises(PlanError, match="nothing to redo"):
        editor.redo()


def test_lock_prevents_painting(plan):
    editor = GridEditor(plan)
    a, b_code, ids = _pair(plan)
    editor.lock(a)
    assert editor.table.set_index("grid_code").at[a, "locked"]
    with pytest.raises(PlanError, match="lock"):
        editor.assign(ids, a)
    assert _hh(editor.plan, a) == _hh(plan, a)
    # a stroke from the browser is refused with a message, the plan stays
    editor._on_msg(editor, {"type": "assign", "ids": ids, "to_grid": a}, [])
    assert editor.message.startswith("refused") and "lock" in editor.message
    assert _hh(editor.plan, a) == _hh(plan, a)
    editor.unlock(a)
    editor._on_msg(editor, {"type": "assign", "ids": ids, "to_grid": a}, [])
    assert _hh(editor.plan, a) > _hh(plan, a)


def test_bad_strokes_are_refused(plan):
    editor = GridEditor(plan)
    a, b_code, ids = _pair(plan)
    with pytest.raises(PlanError, match="already in grid"):
        editor.assign(plan.buildings.loc[plan.buildings["grid_code"] == a, "building_id"][:3], a)
    with pytest.raises(PlanError, match="no building 'nope'"):
        editor.assign(["nope"], a)
    with pytest.raises(PlanError, match="no grid with code .999999."):
        editor.assign(ids, "999999")
    with pytest.raises(PlanError, match="Plan"):
        GridEditor("plan.gpkg")
    assert editor.plan is plan


def test_replan_and_save(plan, tmp_path):
    editor = GridEditor(plan, active_grid=plan.grids["grid_code"].iloc[0])
    keep = plan.grids["grid_code"].iloc[1]
    editor.lock(keep)
    editor.replan()
    assert keep in set(editor.plan.grids["grid_code"])
    assert editor.plan.history[-1]["op"] == "replan"
    out = editor.save(tmp_path / "edited.gpkg")
    back = gridmap.read_plan(out)
    assert [h["op"] for h in back.history][-2:] == ["lock_grids", "replan"]
    assert int(back.grids["households"].sum()) == int(plan.grids["households"].sum())
    assert str(out) in editor.message


def test_gridmap_exports_the_widget_lazily():
    assert gridmap.GridEditor is GridEditor
    code = "import sys, gridmap; gridmap.plan_grids; print('anywidget' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_widget_ships_the_web_views_leaflet():
    ours = REPO / "gridmap" / "vendor" / "leaflet"
    theirs = REPO / "api" / "static" / "vendor" / "leaflet"
    for name in ("leaflet.js", "leaflet.css", "LICENSE"):
        assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name
    from gridmap.widget.editor import _css, _esm

    assert (ours / "leaflet.js").read_text(encoding="utf-8") in _esm()
    assert "export default { render }" in _esm() and ".gm-editor" in _css()


# ------------------------------------------------------------------- browser
_HARNESS = """
<!DOCTYPE html><html><head><meta charset="utf-8"><style>%CSS%</style></head>
<body style="margin:0"><div id="out" style="width:1000px"></div></body></html>
"""

# a stand-in for the Jupyter widget model: get/set/on/send/save_changes
_MODEL = """
window.__sent = [];
window.__listeners = {};
window.__model = {
  state: STATE,
  get(k) { return this.state[k]; },
  set(k, v) { this.state[k] = v; (window.__listeners['change:' + k] || []).forEach((f) => f()); },
  on(ev, f) { (window.__listeners[ev] = window.__listeners[ev] || []).push(f); },
  send(msg) { window.__sent.push(msg); },
  save_changes() { window.__sent.push({ saved: true }); },
  update(s) { for (const [k, v] of Object.entries(s)) this.set(k, v); },
};
"""


def _state(editor) -> dict:
    names = [
        "active_grid",
        "message",
        "reason",
        "save_path",
        "height",
        "can_undo",
        "can_redo",
        "_grids",
        "_buildings",
        "_building_grid",
        "_table",
        "_changed",
    ]
    return {k: getattr(editor, k) for k in names}


def _page_xy(pg, pt):
    """Centre the widget's map on `pt` (WGS84) at zoom 19; its pixel on the page."""
    xy = pg.evaluate(
        "([lat, lon]) => { const m = document.getElementById('out')._gmMap;"
        " m.setView([lat, lon], 19, {animate: false});"
        " const p = m.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
        [pt.y, pt.x],
    )
    box = pg.locator(".gm-map").bounding_box()
    return box["x"] + xy[0], box["y"] + xy[1]


@pytest.mark.browser
def test_brush_stroke_in_the_browser(plan, tmp_path):
    from live_support import CHROMIUM, CHROMIUM_ARGS, require_browser

    sync_api = require_browser()
    editor = GridEditor(plan, height=500)
    a, b_code, ids = _pair(plan)
    editor.active_grid = a
    target = plan.buildings.set_index("building_id").loc[ids[0]]
    pt = gridmap.to_wgs84(
        plan.buildings[plan.buildings["building_id"] == ids[0]][["geometry"]]
    ).geometry.iloc[0]
    pt = shapely.point_on_surface(pt)
    assert target["grid_code"] == b_code
    html = _HARNESS.replace("%CSS%", editor._css)
    module = (
        _MODEL.replace("STATE", json.dumps(_state(editor)))
        + editor._esm.replace("export default { render };", "")
        + "\nwindow.__render = render;"
        + "\nwindow.__view = render({ model: window.__model, el: document.getElementById('out') });"
        + "\nwindow.__ready = true;"
    )
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1100, "height": 800})
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        outside: list[str] = []
        pg.route("**/*", lambda r: (outside.append(r.request.url), r.abort()))
        pg.set_content(html)
        pg.add_script_tag(content=module, type="module")
        pg.wait_for_function("window.__ready === true", timeout=10_000)
        assert pg.locator(".gm-table tbody tr").count() == len(plan.grids)
        # like JupyterLab: rendered while detached, attached later; the map then fits the grids
        pg.evaluate(
            "() => { const el = document.createElement('div'); window.__late = el;"
            " const m = Object.assign({}, window.__model, { on() {}, send() {}, save_changes() {} });"
            " window.__render({ model: m, el });"
            " setTimeout(() => document.body.appendChild(el), 50); }"
        )
        pg.wait_for_timeout(500)
        assert pg.evaluate("window.__late._gmMap.getZoom()") >= 14
        pg.evaluate("() => { window.__late.remove(); }")
        # brush: a small circle dragged over the first building only
        pg.fill(".gm-radius", "5")
        pg.dispatch_event(".gm-radius", "input")
        x, y = _page_xy(pg, pt)
        pg.mouse.move(x, y)
        pg.mouse.down()
        pg.mouse.move(x + 1, y + 1)
        assert "→" in pg.inner_text(".gm-preview")  # live totals while painting
        pg.mouse.up()
        sent = [m for m in pg.evaluate("window.__sent") if m.get("type") == "assign"]
        assert sent and sent[-1]["to_grid"] == a
        assert ids[0] in sent[-1]["ids"]
        assert all(
            plan.buildings.set_index("building_id").at[i, "grid_code"] != a for i in sent[-1]["ids"]
        )
        # Python runs the stroke and sends the new state back: the table follows
        editor._on_msg(editor, sent[-1], [])
        assert editor.plan.buildings.set_index("building_id").at[ids[0], "grid_code"] == a
        pg.evaluate("(s) => window.__model.update(s)", _state(editor))
        row = pg.locator(f".gm-table tr[data-code='{a}']")
        assert str(_hh(editor.plan, a)) in row.inner_text()
        assert "gm-changed" in row.get_attribute("class")
        # a lasso around the second building sends it (and not the first, now in A)
        pt2 = shapely.point_on_surface(
            gridmap.to_wgs84(
                plan.buildings[plan.buildings["building_id"] == ids[1]][["geometry"]]
            ).geometry.iloc[0]
        )
        x2, y2 = _page_xy(pg, pt2)
        pg.click("[data-tool='lasso']")
        pg.mouse.move(x2 - 12, y2 - 12)
        pg.mouse.down()
        for dx, dy in ((12, -12), (12, 12), (-12, 12), (-12, -12)):
            pg.mouse.move(x2 + dx, y2 + dy, steps=3)
        pg.mouse.up()
        lasso = [m for m in pg.evaluate("window.__sent") if m.get("type") == "assign"][-1]
        assert ids[1] in lasso["ids"] and ids[0] not in lasso["ids"]
        # the grid tool makes a clicked grid the active one
        pg.click("[data-tool='grid']")
        pg.mouse.click(x2, y2 + 40)
        assert pg.evaluate("window.__model.state.active_grid") == b_code
        # undo is a message too
        pg.click("[data-act='undo']")
        assert pg.evaluate("window.__sent.at(-1)") == {"type": "undo"}
        browser.close()
    assert errors == [], errors
    assert outside == [], outside
