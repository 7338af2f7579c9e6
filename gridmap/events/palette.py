"""Colours of event layers: one sequential, colour-blind-safe purple ramp.

Red, orange, yellow and blue are the four flood grades (the Chinese warning palette);
an event map must not look like a flood map. Every event layer (heat maps, rates per
grid, hot and cold spots) therefore uses one single-hue purple ramp (ColorBrewer
"Purples": lightness falls monotonically, so it reads the same with any colour-vision
deficiency and in grey print). Hot and cold spots differ by line style as well as
lightness.

The same values drive the web page: :func:`palette` is in the map page's config
(``event_palette``), and :func:`palette_json` gives it as JSON.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "COLD_STYLE",
    "EVENT_RAMP",
    "HEAT_GRADIENT",
    "HOT_STYLE",
    "NO_DATA",
    "RATE_RAMP",
    "STEP_COLOURS",
    "palette",
    "palette_json",
]

#: Nine classes of ColorBrewer "Purples", light to dark.
EVENT_RAMP: tuple[str, ...] = (
    "#fcfbfd",
    "#efedf5",
    "#dadaeb",
    "#bcbddc",
    "#9e9ac8",
    "#807dba",
    "#6a51a3",
    "#54278f",
    "#3f007d",
)

#: Fill colours of a rate choropleth (events per 100 households), low to high.
RATE_RAMP: tuple[str, ...] = ("#efedf5", "#bcbddc", "#9e9ac8", "#6a51a3", "#3f007d")

#: Leaflet.heat gradient (stop -> colour); the faint end fades into the base map.
HEAT_GRADIENT: dict[float, str] = {
    0.0: "#efedf5",
    0.25: "#bcbddc",
    0.5: "#9e9ac8",
    0.75: "#6a51a3",
    1.0: "#3f007d",
}

#: Outline of a hot-spot grid: dark purple, solid.
HOT_STYLE: dict[str, Any] = {"color": "#3f007d", "weight": 3.5, "dashArray": None}

#: Outline of a cold-spot grid: mid purple, dashed (tells it from hot without colour).
COLD_STYLE: dict[str, Any] = {"color": "#807dba", "weight": 3, "dashArray": "6 4"}

#: Grids without a value (no households, nothing to test).
NO_DATA = "#d9d9d9"

#: Colours of the six steps of the loop in lists and badges (same ramp, light to dark),
#: plus grey for cancelled, open (step not tracked) and unknown.
STEP_COLOURS: dict[str, str] = {
    "reported": "#dadaeb",
    "accepted": "#bcbddc",
    "assigned": "#9e9ac8",
    "handled": "#807dba",
    "feedback": "#6a51a3",
    "closed": "#3f007d",
    "open": "#bdbdbd",
    "cancelled": "#969696",
    "unknown": "#f0f0f0",
}


def palette() -> dict[str, Any]:
    """All event colours as one JSON-friendly dict (keys as the constants, lower case)."""
    return {
        "event_ramp": list(EVENT_RAMP),
        "rate_ramp": list(RATE_RAMP),
        "heat_gradient": {f"{k:g}": v for k, v in HEAT_GRADIENT.items()},
        "hot": dict(HOT_STYLE),
        "cold": dict(COLD_STYLE),
        "no_data": NO_DATA,
        "steps": dict(STEP_COLOURS),
    }


def palette_json() -> str:
    """:func:`palette` as a JSON string."""
    return json.dumps(palette(), ensure_ascii=False)
