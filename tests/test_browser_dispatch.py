"""The dispatcher's event list (api/static/js/dispatch.js) on a phone (390 x 844).

Reuses the served demo store of tests/test_browser.py (12 grids, 120 events, a fifth of
them open). Skipped without Playwright or the Debian Chromium.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from test_browser import TOKEN, demo  # noqa: F401 - demo: a fixture
from test_browser_phone import PHONE, phone  # noqa: F401 - phone: a fixture

pytestmark = pytest.mark.browser


def _event(server, event_id: str) -> dict:
    with urllib.request.urlopen(f"{server.url}/api/events/{event_id}") as r:
        return json.loads(r.read())


def test_dispatcher_advances_an_event_from_the_list(request):
    pg, server, plan = request.getfixturevalue("phone")
    pg.goto(server.url + "/")
    pg.wait_for_function("window.gridmap && window.gridmap.ready === true", timeout=30_000)
    pg.evaluate(f"localStorage.setItem('gridmap.token', '{TOKEN}')")
    pg.locator("#dispatch-toggle").tap()
    pg.wait_for_selector("#dispatch-list .dispatch-row", timeout=10_000)
    # the sheet fits the phone and leaves the upper part of the map free
    box = pg.locator("#dispatch").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5
    assert box["y"] >= PHONE["height"] * 0.35
    widest = pg.evaluate(
        "Math.max(...[...document.querySelectorAll('#dispatch *')]"
        ".map((e) => e.getBoundingClientRect().right))"
    )
    assert widest <= PHONE["width"] + 0.5
    assert not pg.is_visible(".dispatch-token")  # a token is kept: nothing to ask
    # the next-step button is readable: its text colour is not its background
    colours = pg.eval_on_selector(
        ".dispatch-next",
        "b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]",
    )
    assert colours[0] != colours[1], colours
    # by default the events not closed yet, newest first
    statuses = pg.eval_on_selector_all(
        "#dispatch-list .dispatch-row", "els => els.map((e) => e.dataset.status)"
    )
    assert statuses and set(statuses) <= {"open", "reported", "accepted", "assigned"}
    # filter to one grid
    first = pg.locator("#dispatch-list .dispatch-row").first
    event_id = first.get_attribute("data-id")
    grid = _event(server, event_id)["grid_code"]
    pg.fill("#dispatch-filters input[name=grid]", grid)
    pg.locator("#dispatch-filters button[type=submit]").tap()
    pg.wait_for_function(
        "window.gridmapDispatch.state.items.length > 0 && window.gridmapDispatch.state.items"
        f".every((e) => e.grid_code === '{grid}')",
        timeout=10_000,
    )
    row = pg.locator(f'#dispatch-list .dispatch-row[data-id="{event_id}"]')
    assert row.get_attribute("data-status") == "open"
    # one step from the list: open -> accepted, with a note
    row.locator(".dispatch-note").fill("已受理，明天上门")
    row.locator(".dispatch-next").tap()
    pg.wait_for_selector(
        f'#dispatch-list .dispatch-row[data-id="{event_id}"][data-status="accepted"]',
        timeout=10_000,
    )
    row = pg.locator(f'#dispatch-list .dispatch-row[data-id="{event_id}"]')
    history = row.locator(".dispatch-history")
    assert history.is_visible()
    text = history.inner_text()
    assert "上报" in text and "受理" in text and "已受理，明天上门" in text
    # the next button now assigns, and asks for the worker
    assert row.locator(".dispatch-next").inner_text() == "分派"
    row.locator(".dispatch-next").tap()
    assert "分派需要填写网格员" in pg.inner_text(".dispatch-msg")
    # the server has the step
    ev = _event(server, event_id)
    assert ev["status"] == "accepted"
    assert [h["status"] for h in ev["history"]] == ["reported", "accepted"]
    assert ev["history"][1]["note"] == "已受理，明天上门"
    assert pg.problems == [], pg.problems
