"""The ``gridmap`` command line.

Every subcommand has ``--help``. Errors caused by input are printed as one line
(``gridmap: error: <file>: <where>: <problem>``) with exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import GridmapError

log = logging.getLogger("gridmap")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gridmap`` command line; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if not hasattr(args, "func"):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except GridmapError as exc:
        print(f"gridmap: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        print("gridmap: interrupted", file=sys.stderr)
        return 130


# ----------------------------------------------------------------------- parser
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gridmap",
        description="Grid management (网格化管理): households, grid plans, events, flood risk, "
        "evacuation and a web map.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show debug messages")
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    s = sub.add_parser(
        "run", help="main job: every output for the embedded sample town (or --data)"
    )
    s.add_argument("-o", "--out", default="out", help="output folder (default: out/)")
    s.add_argument("--data", default=None, help="sample folder (default: the repository's data/)")
    s.add_argument("--seed", type=int, default=0, help="partition seed (default 0)")
    s.set_defaults(func=_cmd_run)

    s = sub.add_parser("sample", help="(re)generate the embedded sample town")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-o", "--out", default=None, help="folder (default: the repository's data/)")
    s.set_defaults(func=_cmd_sample)

    s = sub.add_parser("households", help="read footprints and estimate households per building")
    s.add_argument(
        "input", help="footprints: GeoPackage[:layer], GeoJSON, Shapefile, GeoParquet, OSM PBF"
    )
    s.add_argument("-o", "--out", required=True, help="output .gpkg, .geojson, .parquet or .csv")
    _add_read_options(s)
    _add_estimate_options(s)
    s.set_defaults(func=_cmd_households)

    s = sub.add_parser("partition", help="plan grids of 300-500 households")
    s.add_argument("input", help="footprints (GeoPackage[:layer], GeoJSON, ...)")
    s.add_argument("-o", "--out", required=True, help="output plan GeoPackage")
    s.add_argument("--communities", help="community polygons (file[:layer])")
    s.add_argument("--barriers", action="append", default=[], help="barrier lines; repeatable")
    s.add_argument(
        "--arterials-only",
        action="store_true",
        help="keep only arterials (motorway/trunk/primary/secondary), rivers, water and "
        "railways from the barrier layers (class read from highway, fclass, TYPE, ...)",
    )
    s.add_argument(
        "--difficult", help="difficult-area polygons (file[:layer]) or a building column name"
    )
    s.add_argument("--compounds", help="compound polygons (file[:layer])")
    s.add_argument("--institutions", help="institution polygons (file[:layer])")
    s.add_argument("--admin-code", help="6-digit GB/T 2260 district code")
    s.add_argument("--range", nargs=2, type=int, default=(300, 500), metavar=("MIN", "MAX"))
    s.add_argument(
        "--difficult-range", nargs=2, type=int, default=(200, 300), metavar=("MIN", "MAX")
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--street-column", help="community column naming each community's street (街道)")
    s.add_argument(
        "--community-size", nargs=2, type=int, default=(3000, 5000), metavar=("MIN", "MAX"),
        help="households of a derived planning community (without --communities)",
    )  # fmt: skip
    s.add_argument(
        "--street-size", nargs=2, type=int, default=(20000, 40000), metavar=("MIN", "MAX"),
        help="households of a derived street",
    )  # fmt: skip
    s.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    s.add_argument(
        "--admin-levels", type=_levels, default=(8, 9, 10), metavar="LEVELS",
        help="OSM admin_level values read as streets and communities from a .pbf source "
        "without --communities (default 8,9,10; see gridmap.boundaries)",
    )  # fmt: skip
    s.add_argument(
        "--no-admin-boundaries", action="store_true",
        help="derive communities even when the .pbf source has administrative boundaries",
    )  # fmt: skip
    s.add_argument("--map", help="also write the plan map (HTML)")
    _add_read_options(s)
    _add_estimate_options(s)
    s.set_defaults(func=_cmd_partition)

    s = sub.add_parser("validate", help="check a plan GeoPackage and print every problem")
    s.add_argument("plan", help="plan GeoPackage")
    s.add_argument("-o", "--out", help="write the report as CSV + XLSX (path without suffix)")
    s.set_defaults(func=_cmd_validate)

    s = sub.add_parser("serve", help="web map view and JSON API (FastAPI + uvicorn)")
    s.add_argument(
        "--store",
        default=None,
        help="project store (default: $GRIDMAP_STORE or out/gridmap_store.gpkg)",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    s.add_argument(
        "--no-sample",
        action="store_true",
        help="do not plan the sample town into an empty store",
    )
    s.add_argument("--data", default=None, help="sample folder (default: the repository's data/)")
    s.set_defaults(func=_cmd_serve)

    s = sub.add_parser(
        "users",
        help="users of the web app: add (prints the token), list, revoke",
        description="Users of the web app and their roles: viewer (reads), worker (reports "
        "and handles events), planner (edits plans), admin (everything). A scope (district 6, "
        "street 9, community 12 or grid 15 digits) limits writes to grids whose code starts "
        "with it. Only the SHA-256 of a token is stored.",
    )
    s.set_defaults(func=_cmd_users, action=None)
    users = s.add_subparsers(title="actions", metavar="ACTION")
    store_help = "project store (default: $GRIDMAP_STORE or out/gridmap_store.gpkg)"
    u = users.add_parser("add", help="add a user; prints the new token as the last word")
    u.add_argument("name", help="user name: 1-64 letters, digits, '_', '.', '@', '-'")
    u.add_argument(
        "--role", required=True, choices=("viewer", "worker", "planner", "admin"), help="role"
    )
    u.add_argument("--scope", default=None, help="code prefix of 6, 9, 12 or 15 digits")
    u.add_argument("--store", default=None, help=store_help)
    u.set_defaults(action="add")
    u = users.add_parser("list", help="list users (active and revoked)")
    u.add_argument("--store", default=None, help=store_help)
    u.set_defaults(action="list")
    u = users.add_parser("revoke", help="revoke a user's token for good")
    u.add_argument("name", help="user name")
    u.add_argument("--store", default=None, help=store_help)
    u.set_defaults(action="revoke")

    s = sub.add_parser("events", help="event heat maps, per-grid KPIs and hot spots")
    s.add_argument("events", help="events: CSV (lon/lat or x/y), GeoJSON, GeoPackage[:layer], XLSX")
    s.add_argument("-p", "--plan", required=True, help="plan GeoPackage")
    s.add_argument("-o", "--out", required=True, help="output folder")
    s.add_argument("--crs", default=None, help="CRS of x/y columns (lon/lat need none)")
    s.add_argument(
        "--tz",
        default=None,
        help="time zone (IANA, e.g. Asia/Jakarta) of times without a UTC offset; default: the "
        "zone of the events' location (China Asia/Shanghai, Jakarta Asia/Jakarta, ...), logged",
    )
    s.add_argument("--start", default=None, help="window start (ISO date/time)")
    s.add_argument("--end", default=None, help="window end (ISO date/time)")
    s.add_argument("--now", default=None, help="evaluate deadlines at this time")
    s.add_argument(
        "--max-points", type=int, default=50_000, help="aggregate the heat map above this"
    )
    s.add_argument("--period", choices=("month", "week"), default="month")
    s.set_defaults(func=_cmd_events)

    s = sub.add_parser("flood", help="four-colour flood grading of buildings, households and grids")
    s.add_argument("-p", "--plan", required=True, help="plan GeoPackage")
    s.add_argument("-o", "--out", required=True, help="output folder")
    s.add_argument("--depth", action="append", default=[], help="flood-depth GeoTIFF; repeatable")
    s.add_argument(
        "--extent",
        action="append",
        default=[],
        help="historical flood extent polygons (file[:layer]); repeatable",
    )
    s.add_argument("--dem", help="DEM GeoTIFF (with --water-level)")
    s.add_argument("--water-level", help="water level in metres, or a water-surface GeoTIFF")
    s.add_argument("--rivers", help="river lines (file[:layer]) that carry the water level")
    s.add_argument("--floor-height", type=float, default=3.0, help="metres per floor (3.0)")
    s.add_argument(
        "--grid-share",
        type=float,
        default=0.10,
        help="share of a grid's households that sets its colour (0.10)",
    )
    s.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="COLOUR=M",
        help="override a threshold, e.g. red=2.0; repeatable",
    )
    s.set_defaults(func=_cmd_flood)

    s = sub.add_parser(
        "export", help="export a plan for the office: GPKG, GeoJSON, SHP, CSV/XLSX, PNG"
    )
    s.add_argument("plan", help="plan GeoPackage")
    s.add_argument("-o", "--out", required=True, help="output folder")
    s.add_argument(
        "--formats",
        nargs="+",
        default=None,
        help="any of gpkg geojson shp csv xlsx png (default: all)",
    )
    s.add_argument(
        "--maps",
        nargs="+",
        default=None,
        metavar="CODE",
        help="grid codes (or unique endings) to draw as PNG wall maps (default: all)",
    )
    s.set_defaults(func=_cmd_export)

    s = sub.add_parser(
        "evacuate",
        help="evacuation plan before the water comes: who moves, when (waves), to which "
        "shelter, by which road",
    )
    s.add_argument("-p", "--plan", required=True, help="plan GeoPackage")
    s.add_argument("-o", "--out", required=True, help="output folder")
    s.add_argument(
        "--depth",
        action="append",
        default=None,
        help="peak flood-depth GeoTIFF used to grade buildings; repeatable "
        "(or give --dem with --water-level)",
    )
    s.add_argument("--dem", default=None, help="DEM GeoTIFF (with --water-level)")
    s.add_argument(
        "--water-level",
        default=None,
        help="peak water level (m) over the DEM, or a water-surface raster: cut levels (m)",
    )
    s.add_argument("--roads", required=True, help="road lines (file[:layer]), .graphml or .pbf")
    s.add_argument(
        "--shelters", required=True, help="shelter points/polygons with capacity (file[:layer])"
    )
    s.add_argument(
        "--road-depth",
        action="append",
        default=None,
        help="peak water on the roads when it differs from the grading's; repeatable",
    )
    s.add_argument("--speed", type=float, default=4.0, help="walking speed km/h (4.0)")
    s.add_argument(
        "--max-walk",
        type=float,
        default=60.0,
        help="longest walk to a shelter, minutes (60); beyond it: needs_transport",
    )
    s.add_argument(
        "--flooded-road-depth",
        type=float,
        default=0.3,
        help="water depth (m) from which a road is impassable (0.3)",
    )
    s.add_argument("--waves", type=int, default=3, help="number of departure waves (3)")
    s.add_argument(
        "--network",
        choices=["pre_flood", "peak"],
        default="pre_flood",
        help="route on the roads before the flood (default) or on those open at the peak",
    )
    s.add_argument(
        "--rise-rate", type=float, default=None, help="rise of the water, m/h: leave-by times"
    )
    s.add_argument(
        "--hydrograph",
        default=None,
        help="CSV of time (hours or date-time) and water level: leave-by times",
    )
    s.add_argument(
        "--start-level",
        type=float,
        default=None,
        help="water level (m) at the warning, with --dem (default: lowest water entry)",
    )
    s.add_argument(
        "--warning-time", default=None, help="clock time of the warning, e.g. '2026-07-20 06:00'"
    )
    s.add_argument(
        "--region",
        default=None,
        help="households setting for persons per household (CN, ID, FR, EU or auto)",
    )
    s.add_argument(
        "--who", default=None, help="colours to move, e.g. red,orange (default: all flooded floors)"
    )
    s.add_argument(
        "--map-tiles",
        default=None,
        help="base map of the HTML map: osm or an XYZ URL template (needs the internet; "
        "default: none, the map works offline)",
    )
    s.add_argument("--no-map-tiles", action="store_true", help=argparse.SUPPRESS)
    s.set_defaults(func=_cmd_evacuate)

    return p


# --------------------------------------------------------------------- commands
def _cmd_evacuate(args) -> int:
    from .evacuation import run_evacuation
    from .load import read_layer

    who = {c.strip() for c in args.who.split(",") if c.strip()} if args.who else None
    level = args.water_level
    if level is not None:
        try:
            level = float(level)
        except ValueError:
            pass  # a water-surface raster path
    layers = {}
    for key in ("roads", "shelters"):
        path, layer = _split_layer(getattr(args, key))
        layers[key] = read_layer(path, layer=layer) if layer else path
    for path in run_evacuation(
        args.plan,
        args.depth,
        layers["roads"],
        layers["shelters"],
        args.out,
        road_depth=args.road_depth,
        dem=args.dem,
        water_level=level,
        speed_kmh=args.speed,
        max_walk_min=args.max_walk,
        flooded_road_depth=args.flooded_road_depth,
        waves=args.waves,
        network=args.network,
        rise_rate=args.rise_rate,
        hydrograph=args.hydrograph,
        start_level=args.start_level,
        warning_time=args.warning_time,
        region=args.region,
        who=who,
        tiles=None if args.no_map_tiles else args.map_tiles,
    ):
        print(path)
    return 0


def _cmd_export(args) -> int:
    from .export import FORMATS, export_plan
    from .plan import read_plan

    written = export_plan(
        read_plan(args.plan), args.out, formats=tuple(args.formats or FORMATS), map_grids=args.maps
    )
    for fmt, paths in written.items():
        print(f"{fmt}: {len(paths)} file(s)")
    return 0


def _cmd_flood(args) -> int:
    from .errors import InputError
    from .flood import grade_flood, write_flood_outputs
    from .load import read_layer
    from .plan import read_plan

    if not (args.depth or args.extent or args.dem):
        raise InputError(
            "give at least one hazard source: --depth, --extent or --dem with --water-level"
        )
    level = args.water_level
    if level is not None:
        try:
            level = float(level)
        except ValueError:
            pass  # a water-surface raster path
    thresholds = {}
    for item in args.threshold:
        key, _, value = item.partition("=")
        try:
            thresholds[key.strip()] = float(value)
        except ValueError as exc:
            raise InputError(f"--threshold {item!r}: expected COLOUR=METRES, e.g. red=1.5") from exc
    grading = grade_flood(
        read_plan(args.plan),
        depth=args.depth or None,
        extent=[_opt_layer(e, read_layer) for e in args.extent] or None,
        dem=args.dem,
        water_level=level,
        rivers=_opt_layer(args.rivers, read_layer),
        floor_height=args.floor_height,
        thresholds=thresholds or None,
        grid_share=args.grid_share,
    )
    for path in write_flood_outputs(grading, args.out, depth=args.depth[0] if args.depth else None):
        print(path)
    return 0


def _cmd_events(args) -> int:
    from .events import write_event_outputs
    from .plan import read_plan

    src, layer = _split_layer(args.events)
    written = write_event_outputs(
        read_plan(args.plan),
        src,
        args.out,
        layer=layer,
        crs=args.crs,
        tz=args.tz,
        start=args.start,
        end=args.end,
        now=args.now,
        max_points=args.max_points,
        period=args.period,
    )
    for path in written:
        print(path)
    return 0


def _cmd_sample(args) -> int:
    from .sample import sample_town

    t = time.perf_counter()
    layers = sample_town(seed=args.seed, path=args.out)
    print(f"sample town written ({', '.join(layers)}) in {time.perf_counter() - t:.1f} s")
    return 0


def _cmd_households(args) -> int:
    from .households import estimate_households
    from .load import read_buildings

    src, layer = _split_layer(args.input)
    b = read_buildings(src, layer=layer, **_read_options(args))
    b = estimate_households(b, **_estimate_options(args))
    out = Path(args.out)
    _write_any(b, out)  # the summary line is logged by estimate_households
    if "households_calibration" in b.attrs:
        import pandas as pd

        from .io import write_table

        table = pd.DataFrame(b.attrs["households_calibration"])
        for path in write_table(
            table, out.with_name(out.stem + "_calibration"), sheet_name="calibration"
        ):
            print(f"calibration table -> {path}")
    print(f"{len(b)} buildings, {int(b['households'].sum())} households -> {out}")
    return 0


def _cmd_partition(args) -> int:
    from .households import estimate_households
    from .load import read_buildings, read_layer
    from .maps import plan_map, save_html
    from .partition import plan_grids

    src, layer = _split_layer(args.input)
    b = read_buildings(src, layer=layer, **_read_options(args))
    b = estimate_households(b, **_estimate_options(args))
    comms = _opt_layer(args.communities, read_layer)
    barriers = [_opt_layer(x, read_layer) for x in args.barriers]
    if args.arterials_only:
        from .partition.blocks import RANK_ARTERIAL, barrier_ranks

        barriers = [x[barrier_ranks(x)[0] >= RANK_ARTERIAL] for x in barriers]
    difficult = args.difficult
    if difficult and (Path(_split_layer(difficult)[0]).exists()):
        difficult = _opt_layer(difficult, read_layer)
    hierarchy, note = ("given" if comms is not None else "derived"), None
    street_column, admin_code = args.street_column, args.admin_code
    if comms is None and not args.no_admin_boundaries:
        from .partition.hierarchy import source_communities

        comms, src_street, src_code, note = source_communities(
            src, b, levels=args.admin_levels, bbox=args.bbox
        )
        if comms is not None:
            hierarchy = "osm_admin"
            street_column = street_column or src_street
            admin_code = admin_code or src_code
    log.info("communities and streets: %s", hierarchy)
    plan = plan_grids(
        b,
        comms,
        barriers=barriers or None,
        difficult=difficult,
        compounds=_opt_layer(args.compounds, read_layer),
        institutions=_opt_layer(args.institutions, read_layer),
        household_range=tuple(args.range),
        difficult_range=tuple(args.difficult_range),
        admin_code=admin_code,
        seed=args.seed,
        street_column=street_column,
        community_size=tuple(args.community_size),
        street_size=tuple(args.street_size),
        admin_boundaries=False,  # read above, with --admin-levels and --bbox
        workers=args.workers,
    )
    plan.params["hierarchy"] = hierarchy
    plan.notes[:0] = [note] if note else []
    out = plan.to_file(args.out)
    if args.map:
        save_html(plan_map(plan), args.map)
    _print_summary(plan)
    print(f"plan -> {out}")
    return 0


def _cmd_validate(args) -> int:
    from .io import write_table
    from .plan import read_plan

    plan = read_plan(args.plan)
    report = plan.validate()
    if args.out:
        write_table(report, args.out, sheet_name="validation")
    if len(report) == 0:
        print("no problems found")
        return 0
    print(report.to_string(index=False, max_colwidth=100))
    return 1 if (report["severity"] == "error").any() else 0


def _cmd_serve(args) -> int:
    """Serve the map view and the JSON API; plan the sample town into an empty store
    (with its flood and evacuation overlays)."""
    import uvicorn

    from api.main import create_app, seed_sample
    from api.settings import Settings
    from api.store import Store

    settings = Settings.from_env(store_path=args.store)
    if not args.no_sample:
        store = Store(settings.store_path)
        overlays: list[str] = []
        try:
            plan_id = seed_sample(store, args.data)
            if plan_id is not None:
                overlays = store.overlay_names(plan_id)  # flood, evacuation when computed
        except (ImportError, GridmapError) as exc:
            plan_id = None
            print(f"gridmap: warning: sample town not loaded ({exc})", file=sys.stderr)
        finally:
            store.close()
        if plan_id is not None:
            extra = f" with overlays {', '.join(overlays)}" if overlays else ""
            print(
                f"sample town planned and stored as plan {plan_id}{extra} in {settings.store_path}"
            )
    app = create_app(settings=settings)
    print(
        f"gridmap: serving {settings.store_path} at http://{args.host}:{args.port}/ "
        "(API docs at /docs)"
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _cmd_users(args) -> int:
    """Add, list or revoke users of the web app (the audit log records who did it)."""
    import getpass

    from api.settings import Settings
    from api.store import Actor, NotFound, Store, UserError

    if args.action is None:
        print(
            "gridmap: error: give an action: add, list or revoke (see 'gridmap users --help')",
            file=sys.stderr,
        )
        return 2
    settings = Settings.from_env(store_path=args.store)
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no user entry (containers)
        login = "unknown"
    actor = Actor(f"cli:{login}", "admin", "local")
    store = Store(settings.store_path)
    try:
        if args.action == "add":
            token = store.add_user(args.name, args.role, args.scope, actor=actor)
            scope = f", scope {args.scope}" if args.scope else ""
            print(
                f"user {args.name} ({args.role}{scope}) added to {settings.store_path}; "
                f"its token (shown only now): {token}"
            )
        elif args.action == "list":
            rows = store.users()
            if not rows:
                print(f"no users in {settings.store_path}")
            for r in rows:
                state = f"revoked {r['revoked']}" if r["revoked"] else "active"
                print(
                    f"{r['name']:<20} {r['role']:<8} {r['scope'] or '(all)':<16} "
                    f"added {r['created']} by {r['created_by']}  {state}"
                )
        else:
            store.revoke_user(args.name, actor=actor)
            print(f"user {args.name} revoked in {settings.store_path}")
    except (UserError, NotFound) as exc:
        print(f"gridmap: error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    return 0


def _cmd_run(args) -> int:
    """The main job: every output of gridmap for the sample town."""
    from .pipeline import run_sample

    outputs = run_sample(out=args.out, data=args.data, seed=args.seed)
    print("\nOutputs written to", Path(args.out).resolve())
    for path in outputs:
        print("  ", path)
    return 0


# ---------------------------------------------------------------------- helpers
def _add_read_options(parser: argparse.ArgumentParser) -> None:
    """Add every option of :func:`gridmap.read_buildings` (the layer is ``FILE:layer``)."""
    g = parser.add_argument_group("reading footprints (gridmap.read_buildings)")
    g.add_argument("--crs", default=None, help="CRS for sources without one (e.g. EPSG:4326)")
    g.add_argument("--id-column", default=None, help="source column holding the building id")
    g.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="NAME=COLUMN",
        help="map a schema column to a source column, e.g. households=HH_TOTAL or "
        "height=htotale ('NAME=' switches the mapping off); repeatable",
    )
    g.add_argument(
        "--bbox",
        nargs=4,
        type=float,
        default=None,
        metavar=("MINX", "MINY", "MAXX", "MAXY"),
        help="read only features intersecting this box (source CRS)",
    )
    g.add_argument(
        "--on-bad-levels",
        choices=("auto", "raise", "null"),
        default="auto",
        help="unreadable levels/households/units: raise, read as missing (null), or "
        "auto = missing for OSM sources, raise otherwise (default)",
    )
    g.add_argument(
        "--max-footprint",
        type=float,
        default=None,
        metavar="M2",
        help="drop footprints larger than this many m² while reading",
    )
    osm = g.add_mutually_exclusive_group()
    osm.add_argument(
        "--osm", dest="osm", action="store_const", const=True, default=None,
        help="read the source as OpenStreetMap data (default: detected)",
    )  # fmt: skip
    osm.add_argument(
        "--no-osm", dest="osm", action="store_const", const=False,
        help="never read the source as OpenStreetMap data",
    )  # fmt: skip


def _levels(text: str) -> tuple[int, ...]:
    """``--admin-levels``: comma-separated OSM admin_level values, e.g. ``8,9,10``."""
    try:
        levels = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        levels = ()
    if not levels or not all(1 <= v <= 12 for v in levels):
        raise argparse.ArgumentTypeError(f"expected admin levels like 8,9,10, got {text!r}")
    return levels


def _read_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`gridmap.read_buildings` from :func:`_add_read_options`."""
    columns: dict[str, str | None] = {}
    for item in args.column:
        if "=" not in item:
            from .errors import InputError

            raise InputError(f"--column needs NAME=COLUMN, not {item!r}", source="command line")
        key, col = item.split("=", 1)
        columns[key.strip()] = col.strip() or None
    return {
        "crs": args.crs,
        "id_column": args.id_column,
        "columns": columns or None,
        "bbox": tuple(args.bbox) if args.bbox else None,
        "on_bad_levels": args.on_bad_levels,
        "max_footprint_m2": args.max_footprint,
        "osm": args.osm,
    }


def _add_estimate_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of :func:`gridmap.estimate_households`."""
    g = parser.add_argument_group("household estimates (gridmap.estimate_households)")
    g.add_argument(
        "--region",
        default=None,
        help="regional settings: CN (default), ID, FR, EU, or auto (from the data's location)",
    )
    g.add_argument(
        "--dwelling-size",
        type=float,
        default=None,
        help="m² per dwelling (default: region's, CN 90)",
    )
    g.add_argument(
        "--net-to-gross", type=float, default=None, help="net/gross floor ratio (CN 0.75)"
    )
    g.add_argument(
        "--max-households", type=int, default=None, help="cap per building (default 2000)"
    )
    g.add_argument(
        "--landuse",
        default=None,
        metavar="FILE[:layer]",
        help="landuse polygons (landuse column): untagged buildings in industrial, "
        "commercial, education... areas are not homes (default: the source's own landuse)",
    )
    g.add_argument("--no-landuse", action="store_true", help="ignore landuse")
    g.add_argument(
        "--totals",
        default=None,
        metavar="FILE[:layer]",
        help="official households per polygon (households column): estimates are scaled "
        "to match each polygon's count exactly; given counts are kept",
    )


def _estimate_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`gridmap.estimate_households`."""
    from .households import read_landuse
    from .households.calibrate import read_totals

    landuse = False if args.no_landuse else None
    if args.landuse and not args.no_landuse:
        landuse = _opt_layer(args.landuse, read_landuse)
    return {
        "region": args.region,
        "dwelling_size": args.dwelling_size,
        "net_to_gross": args.net_to_gross,
        "max_households": args.max_households,
        "landuse": landuse,
        "totals": _opt_layer(args.totals, read_totals),
    }


def _split_layer(spec: str) -> tuple[str, str | None]:
    """Split ``file.gpkg:layer`` into path and layer (a plain existing path has no layer)."""
    if Path(spec).exists() or ":" not in spec:
        return spec, None
    path, layer = spec.rsplit(":", 1)
    return path, layer or None


def _opt_layer(spec, reader):
    if spec is None:
        return None
    if not isinstance(spec, str):
        return spec
    path, layer = _split_layer(spec)
    return reader(path, layer=layer)


def _write_any(gdf, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".csv":
        gdf.drop(columns="geometry").to_csv(out, index=False, encoding="utf-8-sig")
    elif suffix == ".parquet":
        gdf.to_parquet(out)
    elif suffix in (".geojson", ".json"):
        from .crs import to_wgs84

        to_wgs84(gdf).to_file(out, driver="GeoJSON", engine="pyogrio")
    else:
        gdf.to_file(out, driver="GPKG", engine="pyogrio")


def _print_summary(plan) -> None:
    s = plan.summary()
    print(
        f"{s['grids']} grids {s['grids_by_kind']}, {s['households']} households, "
        f"{s['share_in_range']:.1%} of residential grids in range, "
        f"{s['barrier_crossings']} barrier crossings, mean Polsby-Popper {s['mean_polsby_popper']:.3f}"
    )
    for note in plan.notes:
        print("note:", note)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
