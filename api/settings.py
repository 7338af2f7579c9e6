"""Server settings, read from the environment (``GRIDMAP_*``) or given to ``create_app``.

Environment variables
---------------------
``GRIDMAP_STORE``
    Path of the project store (default ``out/gridmap_store.gpkg``).
``GRIDMAP_TOKEN``
    Bearer token of the bootstrap admin (every right). Users added with ``gridmap users
    add`` have their own tokens and roles. Unset and no users: every write is refused
    (403).
``GRIDMAP_PRIVATE_READS``
    ``1``/``true``: read endpoints and the map page require a token (any role) too.
``GRIDMAP_MAX_UPLOAD_MB``
    Largest accepted request body in MB (default 50); larger ones get 413.
``GRIDMAP_MAX_UNZIPPED_MB``
    Most MB a zipped Shapefile may unpack to (default 1024); a zip above it, or one
    that unpacks to more than 200 times its size (beyond 64 MB), gets 413.
``GRIDMAP_TILES``
    Base map: ``none`` (default, the page draws roads and water from the plan),
    ``osm``, ``tianditu`` (needs ``GRIDMAP_TIANDITU_KEY``) or any XYZ URL template.
``GRIDMAP_TIANDITU_KEY``
    Tianditu (天地图) key for ``GRIDMAP_TILES=tianditu``.
``GRIDMAP_TILES_ATTRIBUTION``
    Attribution shown for a custom tile URL.
``GRIDMAP_LANG``
    Default page language, ``zh`` (default) or ``en``.

Values saved in the store with ``PUT /api/settings`` (``lang``, ``tiles``,
``tiles_attribution``, ``tianditu_key``) override the display settings at run time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

#: Default location of the project store.
DEFAULT_STORE = Path("out") / "gridmap_store.gpkg"
#: Page languages.
LANGS = ("zh", "en")
#: Tianditu vector tiles (WMTS, Web Mercator) and their Chinese labels.
TIANDITU_VEC = (
    "http://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
    "&TILECOL={x}&tk={key}"
)
TIANDITU_CVA = TIANDITU_VEC.replace("vec_w", "cva_w").replace("LAYER=vec", "LAYER=cva")
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"

#: Display settings that can be changed at run time through ``PUT /api/settings``.
DISPLAY_KEYS = ("lang", "tiles", "tiles_attribution", "tianditu_key")


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, not {value!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Settings of one server.

    Attributes
    ----------
    store_path : pathlib.Path
        The project store (one SQLite file).
    token : str or None
        Bearer token of the bootstrap admin; None: only users' tokens can write.
    private_reads : bool
        Require the token for reads and the map page too.
    max_upload_mb : float
        Largest accepted request body, in MB.
    max_unzipped_mb : float
        Most MB a zipped Shapefile may unpack to.
    tiles : str
        ``none``, ``osm``, ``tianditu`` or an XYZ URL template.
    tianditu_key : str or None
        Key for Tianditu tiles.
    tiles_attribution : str or None
        Attribution for a custom tile URL.
    lang : str
        Default page language (``zh`` or ``en``).
    plan_cache : int
        How many decoded plan versions are kept in memory.
    max_buildings : int
        Most buildings one ``GET /api/buildings`` returns.
    job_workers : int
        Threads running background jobs (partitions are CPU-heavy: keep it small).
    """

    store_path: Path = DEFAULT_STORE
    token: str | None = None
    private_reads: bool = False
    max_upload_mb: float = 50.0
    max_unzipped_mb: float = 1024.0
    tiles: str = "none"
    tianditu_key: str | None = None
    tiles_attribution: str | None = None
    lang: str = "zh"
    plan_cache: int = 4
    max_buildings: int = 5000
    job_workers: int = 1

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Build settings from ``GRIDMAP_*`` environment variables, then `overrides`."""
        lang = os.environ.get("GRIDMAP_LANG", "zh").strip().lower() or "zh"
        values: dict[str, Any] = {
            "store_path": Path(os.environ.get("GRIDMAP_STORE") or DEFAULT_STORE),
            "token": os.environ.get("GRIDMAP_TOKEN") or None,
            "private_reads": _env_bool("GRIDMAP_PRIVATE_READS"),
            "max_upload_mb": _env_float("GRIDMAP_MAX_UPLOAD_MB", 50.0),
            "max_unzipped_mb": _env_float("GRIDMAP_MAX_UNZIPPED_MB", 1024.0),
            "tiles": (os.environ.get("GRIDMAP_TILES") or "none").strip(),
            "tianditu_key": os.environ.get("GRIDMAP_TIANDITU_KEY") or None,
            "tiles_attribution": os.environ.get("GRIDMAP_TILES_ATTRIBUTION") or None,
            "lang": lang if lang in LANGS else "zh",
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("store_path") is not None:
            values["store_path"] = Path(values["store_path"])
        return cls(**values)

    def with_values(self, **changes: Any) -> Settings:
        """Return a copy with `changes` applied."""
        return replace(self, **changes)

    @property
    def max_upload_bytes(self) -> int:
        """The upload limit in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_unzipped_bytes(self) -> int:
        """The unpacked-zip limit in bytes."""
        return int(self.max_unzipped_mb * 1024 * 1024)


def tile_config(tiles: str, key: str | None, attribution: str | None) -> dict[str, Any]:
    """Describe the base map for the page.

    Parameters
    ----------
    tiles : str
        ``none``, ``osm``, ``tianditu`` or an XYZ URL template.
    key : str or None
        Tianditu key.
    attribution : str or None
        Attribution of a custom URL.

    Returns
    -------
    dict
        ``{"kind": "none"}`` or ``{"kind": ..., "layers": [{"url", "subdomains",
        "attribution"}]}``. Tianditu without a key falls back to ``none`` with a
        ``warning``.
    """
    t = (tiles or "none").strip()
    low = t.lower()
    if low in ("", "none", "off"):
        return {"kind": "none", "layers": []}
    if low == "osm":
        return {
            "kind": "osm",
            "layers": [{"url": OSM_TILES, "subdomains": "", "attribution": "© OpenStreetMap"}],
        }
    if low == "tianditu":
        if not key:
            return {
                "kind": "none",
                "layers": [],
                "warning": "tianditu tiles need GRIDMAP_TIANDITU_KEY",
            }
        attr = "© 天地图 Tianditu"
        return {
            "kind": "tianditu",
            "layers": [
                {
                    "url": TIANDITU_VEC.replace("{key}", key),
                    "subdomains": "01234567",
                    "attribution": attr,
                },
                {
                    "url": TIANDITU_CVA.replace("{key}", key),
                    "subdomains": "01234567",
                    "attribution": "",
                },
            ],
        }
    url = t.replace("{key}", key or "")
    return {
        "kind": "xyz",
        "layers": [{"url": url, "subdomains": "abc", "attribution": attribution or ""}],
    }
