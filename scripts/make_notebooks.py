"""Write notebooks 02 (events) and 03 (flood and evacuation) from their cell sources.

Run ``python scripts/make_notebooks.py`` after changing a cell below; the tests execute
the notebooks top to bottom on the embedded sample.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}

EVENTS = [
    new_markdown_cell(
        "# 事件热力图与网格考核 · Events, heat maps and per-grid KPIs\n\n"
        "Grid workers report events from their phones; residents report through 随手拍 "
        "(snap-and-report). This notebook reads one year of the sample town's events, attaches "
        "each to its grid, computes the per-grid figures leaders ask for (events per 100 "
        "households, on-time closure rate, open and overdue events, median handling time), "
        "finds hot-spot grids with Getis-Ord Gi*, and draws the heat maps. Everything runs "
        "offline on the embedded sample."
    ),
    new_code_cell(
        "import tempfile\nfrom pathlib import Path\n\nimport gridmap\n"
        "from gridmap.pipeline import plan_sample, sample_inputs\n"
        "from gridmap.sample import sample_paths\n\n"
        "plan = plan_sample()\nplan"
    ),
    new_markdown_cell(
        "## Read the reports\n`read_events` maps English and Chinese headers (事件编号, 上报时间, "
        "事件类型, 来源, 状态, 办结时限, 办结时间, 经度, 纬度). Rows it cannot use are never dropped "
        "silently: they come back in the rejects table with the row and the reason."
    ),
    new_code_cell(
        "events = gridmap.read_events(sample_paths()['gpkg'], layer='events', plan=plan)\n"
        "print(len(events), 'events accepted')\n"
        "gridmap.rejects_of(events)"
    ),
    new_code_cell(
        "events = gridmap.assign_events(plan, events)\n"
        "events[['event_id', 'reported_at', 'category', 'source', 'status', 'grid_code']].head()"
    ),
    new_markdown_cell("## Per-grid KPIs, rolled up to communities and streets"),
    new_code_cell(
        "stats = gridmap.event_stats(plan, events)\n"
        "cols = ['grid_code', 'households', 'events', 'per_100_households', 'due', "
        "'closed_on_time', 'on_time_rate', 'open', 'overdue', 'median_handling_hours']\n"
        "stats.grids[cols].sort_values('per_100_households', ascending=False).head(10)"
    ),
    new_code_cell("stats.communities.head(10)"),
    new_code_cell(
        "monthly = gridmap.event_stats(plan, events, by='month')\n"
        "monthly.grids.groupby('period')['events'].sum()"
    ),
    new_markdown_cell("## Hot-spot grids (Getis-Ord Gi*, 95 % confidence)"),
    new_code_cell(
        "hot = gridmap.hotspots(plan, stats, value='per_100_households', permutations=199)\n"
        "hot['hotspot'].value_counts()"
    ),
    new_markdown_cell(
        "## The map\nLayers: heat map, heat map by month (time slider), choropleth of events per "
        "100 households with a legend, hot-spot outlines, and a popup per grid with its KPIs."
    ),
    new_code_cell("m = gridmap.event_map(plan, events, stats=stats, hot=hot)\nm"),
    new_markdown_cell("## Export for the office (CSV + XLSX + HTML)"),
    new_code_cell(
        "out = Path(tempfile.mkdtemp()) / 'events'\n"
        "for p in gridmap.write_event_outputs(plan, sample_paths()['gpkg'], out, layer='events'):\n"
        "    print(p.name)"
    ),
]

FLOOD = [
    new_markdown_cell(
        "# 洪涝风险四色分级与避险转移 · Flood-risk grading and evacuation\n\n"
        "Communities grade houses and people by flood danger in four colours (red, orange, "
        "yellow, blue; red highest) and move ground- and low-floor households in red and "
        "orange areas first. This notebook grades the sample town's buildings against its "
        "historical flood-depth raster, its 2013 flood outline and its DEM, rolls the grades "
        "up to grids and communities, and lists the households to move floor by floor."
    ),
    new_code_cell(
        "import tempfile\nfrom pathlib import Path\n\nimport gridmap\n"
        "from gridmap.pipeline import plan_sample, sample_inputs\n"
        "from gridmap.sample import sample_paths\n\n"
        "plan = plan_sample()\npaths = sample_paths()\nlayers = sample_inputs()['layers']\nplan"
    ),
    new_markdown_cell(
        "## Grade\nAny combination of hazard sources: depth rasters, historical extents, a DEM "
        "with a water level. The worst case wins and its source is recorded. Default "
        "thresholds: red ≥ 1.5 m, orange 0.5–1.5 m, yellow 0.2–0.5 m, blue < 0.2 m or inside a "
        "historical extent."
    ),
    new_code_cell(
        "grading = gridmap.grade_flood(\n"
        "    plan, depth=paths['flood_depth'], extent=layers['flood_extent'], dem=paths['dem']\n"
        ")\ngrading.summary()"
    ),
    new_code_cell(
        "b = grading.buildings\n"
        "b[b['colour'] != 'none'][['building_id', 'grid_code', 'levels', 'households', 'depth_m', "
        "'colour', 'flooded_floors', 'households_at_risk', 'hazard_source']].head(10)"
    ),
    new_markdown_cell(
        "## Grids\nA grid takes the colour of the worst class holding at least 10 % of its "
        "households; persons to move use 2.62 persons per household (2020 census)."
    ),
    new_code_cell(
        "g = grading.grids\n"
        "g[g['grade'] != 'none'][['grid_code', 'households', 'households_at_risk', "
        "'persons_at_risk', 'grade', 'grade_zh']]"
    ),
    new_markdown_cell("## Households to move, by building, unit and floor"),
    new_code_cell("grading.households_to_move().head(15)"),
    new_code_cell("gridmap.flood_map(grading, depth=paths['flood_depth'])"),
    new_code_cell(
        "out = Path(tempfile.mkdtemp()) / 'flood'\n"
        "for p in gridmap.write_flood_outputs(grading, out, depth=paths['flood_depth']):\n"
        "    print(p.name)"
    ),
    new_markdown_cell(
        "# 避险转移 · Evacuation\n\n"
        "Who moves, to which shelter, by which road. By default every household on a flooded "
        "floor moves, by building and unit (a unit is never split between shelters). Roads "
        "under 0.3 m of water or more are impassable. HiGHS assigns units to shelters "
        "minimising total walking time within every shelter's capacity; demand that cannot "
        "be placed is reported with its reason (`cut_off`, `no_capacity`)."
    ),
    new_code_cell(
        "evac = gridmap.plan_evacuation(grading, layers['roads'], layers['shelters'])\n"
        "evac.summary()"
    ),
    new_code_cell("evac.shelters[['name', 'capacity', 'load', 'pct_used']]"),
    new_markdown_cell(
        "Households cut off by the peak flood get the shelter they would reach by leaving "
        "before the roads flood (`early_*` columns): the grid worker's task sheet says so."
    ),
    new_code_cell("evac.unplaced.groupby('reason')[['households', 'persons']].sum()"),
    new_markdown_cell("## Task list per grid (red first, lowest floor first)"),
    new_code_cell(
        "tasks = evac.tasks_by_grid()\n"
        "tasks.head(15) if hasattr(tasks, 'head') else {k: v.head() for k, v in list(tasks.items())[:2]}"
    ),
    new_code_cell("gridmap.evacuation_map(evac)"),
    new_code_cell(
        "out = Path(tempfile.mkdtemp()) / 'evacuation'\n"
        "for p in gridmap.write_evacuation_outputs(evac, out):\n"
        "    print(p.name)"
    ),
]


def main() -> None:
    for name, cells in (("02_events.ipynb", EVENTS), ("03_flood_evacuation.ipynb", FLOOD)):
        nb = new_notebook(cells=cells, metadata={"kernelspec": KERNEL, "language_info": {"name": "python"}})
        nbformat.write(nb, HERE / name)


if __name__ == "__main__":
    main()
