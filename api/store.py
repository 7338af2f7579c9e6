"""The project store: one SQLite file holding plans, events, settings and jobs.

Design
------
* **One file**, SQLite in WAL mode (``PRAGMA journal_mode=WAL``, ``synchronous=FULL``).
  It is also a minimal **GeoPackage** (application id ``GPKG``, the three required
  ``gpkg_*`` tables), with ``events`` registered as a point feature table in EPSG:4326,
  so QGIS or ``ogrinfo`` can open the store and show the events. The other tables are
  plain SQLite tables that GIS tools ignore.
* ``plans`` holds one row per plan (id, name, current ``version``); ``plan_versions``
  one row per saved version: the plan as the bytes of :meth:`gridmap.Plan.to_file`
  (a GeoPackage inside a BLOB), a JSON summary and the JSON notes. Versions are never
  overwritten, so every earlier state of a plan can be read back.
* ``events`` holds one row per event with its point, times (ISO 8601 with offset plus
  a UNIX timestamp for range queries), category, source, status and the grid code it
  was assigned when it arrived.
* ``plan_overlays`` holds per-grid figures computed for a plan by other gridmap steps
  (e.g. ``flood``: the four-colour flood grade of every grid), as JSON. They belong to
  the plan, not to a version: edits of names and workers do not change them.
* ``settings`` is a key/value table; ``jobs`` tracks background jobs, each with the
  server process (``owner``) that runs it.
* ``users`` holds the people who may write: name, role, scope (a code prefix) and the
  SHA-256 of their token (the token itself is never stored).
* ``audit`` is the append-only log of every write: who (user and role), when, what
  (action and target), the state before and after (versions or ids) and the client
  address. SQLite triggers refuse any ``UPDATE`` or ``DELETE`` of it.

Every write is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) that also appends
its audit entry; an exception or a crash before ``COMMIT`` leaves the previous state
(SQLite's journal guarantees it), so there is never a write without its entry or an
entry without its write.
Plan updates use optimistic concurrency: :meth:`Store.update_plan` takes the version
the caller edited and raises :class:`VersionConflict` when the plan has moved on.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import struct
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Version of the store's own table layout (kept in the ``settings`` table).
STORE_FORMAT = 2
#: Roles of users, from fewest to most rights (see :mod:`api.auth`).
ROLES = ("viewer", "worker", "planner", "admin")
#: Lengths of a scope: district (6), street (9), community (12) or grid (15) digits.
SCOPE_LENGTHS = (6, 9, 12, 15)
#: Largest integer SQLite stores; larger ids cannot exist.
_SQLITE_MAX_INT = 2**63 - 1
_GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
_GPKG_USER_VERSION = 10400  # GeoPackage 1.4
_WGS84_WKT = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,'
    'AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,'
    'AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],'
    'AUTHORITY["EPSG","4326"]]'
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (
    srs_name TEXT NOT NULL,
    srs_id INTEGER NOT NULL PRIMARY KEY,
    organization TEXT NOT NULL,
    organization_coordsys_id INTEGER NOT NULL,
    definition TEXT NOT NULL,
    description TEXT
);
CREATE TABLE IF NOT EXISTS gpkg_contents (
    table_name TEXT NOT NULL PRIMARY KEY,
    data_type TEXT NOT NULL,
    identifier TEXT UNIQUE,
    description TEXT DEFAULT '',
    last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE,
    srs_id INTEGER,
    CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id)
);
CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (
    table_name TEXT NOT NULL,
    column_name TEXT NOT NULL,
    geometry_type_name TEXT NOT NULL,
    srs_id INTEGER NOT NULL,
    z TINYINT NOT NULL,
    m TINYINT NOT NULL,
    CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
    CONSTRAINT uk_gc_table_name UNIQUE (table_name),
    CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
    CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id)
);
CREATE TABLE IF NOT EXISTS plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS plan_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    plan_id INTEGER NOT NULL REFERENCES plans(id),
    version INTEGER NOT NULL,
    created TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    summary TEXT NOT NULL,
    notes TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    gpkg BLOB NOT NULL,
    UNIQUE (plan_id, version)
);
CREATE TABLE IF NOT EXISTS events (
    fid INTEGER PRIMARY KEY AUTOINCREMENT,
    geom POINT,
    event_id TEXT NOT NULL UNIQUE,
    plan_id INTEGER,
    grid_code TEXT,
    reported_at TEXT NOT NULL,
    reported_ts REAL NOT NULL,
    category TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    deadline TEXT,
    closed_at TEXT,
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    received TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_reported_ts ON events (reported_ts);
CREATE INDEX IF NOT EXISTS events_grid_code ON events (grid_code);
CREATE TABLE IF NOT EXISTS event_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    status TEXT NOT NULL,
    at TEXT NOT NULL,
    ts REAL NOT NULL,
    note TEXT,
    worker TEXT,
    actor TEXT NOT NULL,
    recorded TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS event_history_event ON event_history (event_id, id);
CREATE TABLE IF NOT EXISTS plan_overlays (
    plan_id INTEGER NOT NULL REFERENCES plans(id),
    name TEXT NOT NULL,
    created TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (plan_id, name)
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    plan_id INTEGER,
    error TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'worker', 'planner', 'admin')),
    scope TEXT CHECK (scope IS NULL OR (length(scope) IN (6, 9, 12, 15)
                                        AND scope NOT GLOB '*[^0-9]*')),
    token_sha256 TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    created_by TEXT NOT NULL,
    revoked TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    ts REAL NOT NULL,
    who TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    before TEXT,
    after TEXT,
    client TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_who ON audit (who, id);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts);
CREATE TABLE IF NOT EXISTS plan_edits (
    plan_id INTEGER NOT NULL REFERENCES plans(id),
    version INTEGER NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    op TEXT NOT NULL,
    args TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    delta TEXT,
    PRIMARY KEY (plan_id, version)
);
"""

#: The audit log is append-only: the database itself refuses to change or remove entries.
_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: entries cannot be changed'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: entries cannot be deleted'); END",
)

#: Columns added after the first store format: (table, column, declaration).
_ADDED_COLUMNS = (
    ("jobs", "owner", "TEXT"),
    ("events", "revision", "INTEGER NOT NULL DEFAULT 0"),
    ("events", "worker", "TEXT"),
    ("events", "description", "TEXT"),
)

#: Event columns as stored (besides ``fid`` and ``geom``).
EVENT_FIELDS = (
    "event_id",
    "plan_id",
    "grid_code",
    "reported_at",
    "reported_ts",
    "category",
    "source",
    "status",
    "deadline",
    "closed_at",
    "lon",
    "lat",
    "received",
    "worker",
    "description",
)
#: Columns of a step of the event loop (``event_history``), as returned.
EVENT_STEP_FIELDS = ("status", "at", "note", "worker", "actor")
#: Job states.
JOB_STATES = ("queued", "running", "done", "failed")


class StoreError(Exception):
    """The store cannot do what was asked (base class)."""


class NotFound(StoreError):
    """A plan, version or job does not exist."""


class VersionConflict(StoreError):
    """A plan update was based on a version that is no longer the current one.

    Attributes
    ----------
    current : int
        The plan's current version.
    """

    def __init__(self, plan_id: int, expected: int, current: int):
        self.plan_id = plan_id
        self.expected = expected
        self.current = current
        super().__init__(
            f"plan {plan_id} is at version {current}, not {expected}: reload it and "
            "apply your change again"
        )


class EventConflict(StoreError):
    """An event update was based on a revision that is no longer the current one."""

    def __init__(self, event_id: str, expected: int, current: int):
        self.event_id = event_id
        self.expected = expected
        self.current = current
        super().__init__(
            f"event {event_id} was changed meanwhile (revision {current}, not {expected}): "
            "reload it and apply your change again"
        )


class UserError(StoreError):
    """A user cannot be added or revoked as asked (exists, unknown, bad role or scope)."""


@dataclass(frozen=True)
class Actor:
    """Who makes a write, as the audit log records it.

    Attributes
    ----------
    name : str
        User name (``GRIDMAP_TOKEN`` for the bootstrap token, ``system`` for the server
        itself, ``cli:<login>`` for the command line).
    role : str
        The user's role (``system`` for the server).
    client : str
        Client address (``local`` outside HTTP).
    """

    name: str
    role: str
    client: str = "local"


#: The server itself (seeding the sample, finishing jobs for nobody in particular).
SYSTEM = Actor("system", "system", "local")


def token_hash(token: str) -> str:
    """The SHA-256 (hex) under which a user's token is stored.

    Tokens are 192-bit random strings, so a plain hash is enough: nothing can be
    guessed from it, and the lookup by hash reveals nothing about the token.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _valid_id(value: Any) -> bool:
    """Whether `value` can be the id of a row (SQLite integers are 64-bit)."""
    return isinstance(value, int) and 0 < value <= _SQLITE_MAX_INT


@dataclass(frozen=True)
class PlanRecord:
    """One plan's current state as listed by the store."""

    id: int
    name: str
    version: int
    created: str
    updated: str
    summary: dict[str, Any]
    notes: list[str]
    comment: str
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict."""
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "updated": self.updated,
            "summary": self.summary,
            "notes": self.notes,
            "comment": self.comment,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def gpkg_point(lon: float, lat: float, srs_id: int = 4326) -> bytes:
    """Encode a point as a GeoPackage geometry blob (little endian, no envelope)."""
    return b"GP\x00\x01" + struct.pack("<i", srs_id) + struct.pack("<BIdd", 1, 1, lon, lat)


class Store:
    """The project store (see the module docstring).

    Parameters
    ----------
    path : path-like
        The SQLite file; created with its folder when missing.

    Notes
    -----
    Each thread gets its own connection. All methods are safe to call from several
    threads and from several processes at once.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._init_schema()

    # ------------------------------------------------------------ connections
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA foreign_keys=ON")
            self._local.con = con
            with self._all_lock:
                self._all.append(con)
        return con

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._all_lock:
            for con in self._all:
                try:
                    con.close()
                except sqlite3.Error:  # pragma: no cover - closing twice
                    pass
            self._all.clear()
        self._local = threading.local()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block as one write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``).

        An exception inside the block rolls everything back; a crash before the end
        of the block leaves the store as it was before it.
        """
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    @property
    def uploads_dir(self) -> Path:
        """Folder of the uploads being processed (``<store>.uploads``), one sub-folder
        per server process (see :class:`api.jobs.Instance`)."""
        return self.path.with_name(self.path.name + ".uploads")

    def _init_schema(self) -> None:
        con = self._con()
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    con.execute(statement)
            for statement in _TRIGGERS:
                con.execute(statement)
            for table, column, declaration in _ADDED_COLUMNS:
                have = {r["name"] for r in con.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            con.execute(
                "INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES "
                "('Undefined cartesian SRS', -1, 'NONE', -1, 'undefined', "
                "'undefined cartesian coordinate reference system'),"
                "('Undefined geographic SRS', 0, 'NONE', 0, 'undefined', "
                "'undefined geographic coordinate reference system'),"
                "('WGS 84 geodetic', 4326, 'EPSG', 4326, ?, 'longitude/latitude WGS84')",
                (_WGS84_WKT,),
            )
            con.execute(
                "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
                "description, srs_id) VALUES ('events', 'features', 'events', "
                "'gridmap events (事件)', 4326)"
            )
            con.execute(
                "INSERT OR IGNORE INTO gpkg_geometry_columns VALUES "
                "('events', 'geom', 'POINT', 4326, 0, 0)"
            )
            con.execute(
                "INSERT INTO settings (key, value) VALUES ('store_format', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value "
                "WHERE CAST(value AS INTEGER) < CAST(excluded.value AS INTEGER)",
                (str(STORE_FORMAT),),
            )
        con.execute(f"PRAGMA application_id={_GPKG_APPLICATION_ID}")
        con.execute(f"PRAGMA user_version={_GPKG_USER_VERSION}")

    # ------------------------------------------------------------------ audit
    @staticmethod
    def _audit(
        con: sqlite3.Connection,
        actor: Actor | None,
        action: str,
        target: str,
        before: Any = None,
        after: Any = None,
    ) -> None:
        """Append one entry to the audit log (inside the caller's transaction)."""
        actor = actor or SYSTEM
        now = datetime.now(UTC)

        def dump(value: Any) -> str | None:
            return None if value is None else json.dumps(value, ensure_ascii=False, default=str)

        con.execute(
            "INSERT INTO audit (at, ts, who, role, action, target, before, after, client) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                now.isoformat(timespec="milliseconds"),
                now.timestamp(),
                actor.name,
                actor.role,
                action,
                target,
                dump(before),
                dump(after),
                actor.client,
            ),
        )

    def log_write(self, actor: Actor | None, action: str, target: str, after: Any = None) -> None:
        """Append one audit entry for a write kept outside the store (e.g. a photo file)."""
        with self.transaction() as con:
            self._audit(con, actor, action, target, after=after)

    def audit(
        self,
        *,
        who: str | None = None,
        since_ts: float | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Audit entries, newest first.

        Parameters
        ----------
        who : str, optional
            Only this user's entries.
        since_ts : float, optional
            Only entries at or after this UNIX time.
        action : str, optional
            Only this action (``events.add``, ``plan.edit``...).
        limit : int
            Most entries returned.
        """
        where, args = [], []
        if who is not None:
            where.append("who = ?")
            args.append(who)
        if since_ts is not None:
            where.append("ts >= ?")
            args.append(since_ts)
        if action is not None:
            where.append("action = ?")
            args.append(action)
        sql = "SELECT id, at, who, role, action, target, before, after, client FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(int(limit))
        out = []
        for r in self._con().execute(sql, args):
            row = dict(r)
            for key in ("before", "after"):
                row[key] = None if row[key] is None else json.loads(row[key])
            out.append(row)
        return out

    # ------------------------------------------------------------------ plans
    def add_plan(
        self,
        name: str,
        gpkg: bytes,
        summary: dict[str, Any],
        notes: list[str],
        comment: str = "",
        *,
        actor: Actor | None = None,
        audit_extra: dict[str, Any] | None = None,
    ) -> PlanRecord:
        """Store a new plan as version 1 and return its record (audited ``plan.create``)."""
        now = _now()
        with self.transaction() as con:
            cur = con.execute(
                "INSERT INTO plans (name, version, created, updated) VALUES (?, 1, ?, ?)",
                (name, now, now),
            )
            plan_id = int(cur.lastrowid)
            self._insert_version(con, plan_id, 1, now, gpkg, summary, notes, comment)
            self._audit(
                con,
                actor,
                "plan.create",
                f"plan/{plan_id}",
                None,
                {"plan_id": plan_id, "version": 1, "name": name, **(audit_extra or {})},
            )
        return self.plan(plan_id)

    def update_plan(
        self,
        plan_id: int,
        expected_version: int,
        gpkg: bytes,
        summary: dict[str, Any],
        notes: list[str],
        *,
        name: str | None = None,
        comment: str = "",
        actor: Actor | None = None,
        audit_extra: dict[str, Any] | None = None,
    ) -> PlanRecord:
        """Save a new version of a plan, if nobody else saved one since `expected_version`.

        The audit entry (``plan.edit``) records the version before and after, the name
        change and `audit_extra` (e.g. the edited grids).

        Raises
        ------
        NotFound
            No such plan.
        VersionConflict
            The plan's current version is not `expected_version`.
        """
        if not _valid_id(plan_id):
            raise NotFound(f"plan {plan_id} does not exist")
        now = _now()
        with self.transaction() as con:
            row = self._current_row(con, plan_id, expected_version)
            current = int(row["version"])
            new = current + 1
            self._insert_version(con, plan_id, new, now, gpkg, summary, notes, comment)
            con.execute(
                "UPDATE plans SET version = ?, updated = ?, name = COALESCE(?, name) WHERE id = ?",
                (new, now, name, plan_id),
            )
            before: dict[str, Any] = {"version": current}
            after: dict[str, Any] = {"version": new, **(audit_extra or {})}
            if name is not None and name != row["name"]:
                before["name"], after["name"] = row["name"], name
            self._audit(con, actor, "plan.edit", f"plan/{plan_id}", before, after)
        return self.plan(plan_id)

    @staticmethod
    def _current_row(con: sqlite3.Connection, plan_id: int, expected_version: int) -> sqlite3.Row:
        """The plan's row (version, name) inside a write transaction; raise
        :class:`NotFound` for no such plan and :class:`VersionConflict` when its version
        is not `expected_version`."""
        row = con.execute("SELECT version, name FROM plans WHERE id = ?", (plan_id,)).fetchone()
        if row is None:
            raise NotFound(f"plan {plan_id} does not exist")
        if int(row["version"]) != int(expected_version):
            raise VersionConflict(plan_id, int(expected_version), int(row["version"]))
        return row

    @staticmethod
    def _insert_version(
        con: sqlite3.Connection,
        plan_id: int,
        version: int,
        now: str,
        gpkg: bytes,
        summary: dict[str, Any],
        notes: list[str],
        comment: str,
    ) -> None:
        con.execute(
            "INSERT INTO plan_versions (plan_id, version, created, comment, summary, notes, "
            "sha256, gpkg) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                plan_id,
                version,
                now,
                comment,
                json.dumps(summary, ensure_ascii=False, default=str),
                json.dumps(notes, ensure_ascii=False, default=str),
                hashlib.sha256(gpkg).hexdigest(),
                sqlite3.Binary(gpkg),
            ),
        )

    _PLAN_SQL = (
        "SELECT p.id, p.name, p.version, p.created, p.updated, v.summary, v.notes, v.comment, "
        "v.sha256 FROM plans p JOIN plan_versions v ON v.plan_id = p.id AND v.version = p.version"
    )

    @staticmethod
    def _record(row: sqlite3.Row) -> PlanRecord:
        return PlanRecord(
            id=int(row["id"]),
            name=row["name"],
            version=int(row["version"]),
            created=row["created"],
            updated=row["updated"],
            summary=json.loads(row["summary"]),
            notes=json.loads(row["notes"]),
            comment=row["comment"],
            sha256=row["sha256"],
        )

    def plans(self) -> list[PlanRecord]:
        """Return every plan (current versions), newest first."""
        rows = self._con().execute(self._PLAN_SQL + " ORDER BY p.id DESC").fetchall()
        return [self._record(r) for r in rows]

    def plan(self, plan_id: int) -> PlanRecord:
        """Return one plan's record; raise :class:`NotFound` when it does not exist."""
        if not _valid_id(plan_id):
            raise NotFound(f"plan {plan_id} does not exist")
        row = self._con().execute(self._PLAN_SQL + " WHERE p.id = ?", (plan_id,)).fetchone()
        if row is None:
            raise NotFound(f"plan {plan_id} does not exist")
        return self._record(row)

    def latest_plan_id(self) -> int | None:
        """Return the id of the newest plan, or None when the store has none."""
        row = self._con().execute("SELECT MAX(id) AS id FROM plans").fetchone()
        return None if row is None or row["id"] is None else int(row["id"])

    def plan_bytes(self, plan_id: int, version: int) -> bytes:
        """Return the GeoPackage bytes of one plan version."""
        if not (_valid_id(plan_id) and _valid_id(version)):
            raise NotFound(f"plan {plan_id} has no version {version}")
        row = (
            self._con()
            .execute(
                "SELECT gpkg FROM plan_versions WHERE plan_id = ? AND version = ?",
                (plan_id, version),
            )
            .fetchone()
        )
        if row is None:
            raise NotFound(f"plan {plan_id} has no version {version}")
        data = bytes(row["gpkg"])
        if not data:  # an edit stored as a delta (see add_edit_version)
            data = plan_to_bytes(self.plan_object(plan_id, version))
        return data

    def plan_object(self, plan_id: int, version: int) -> Any:
        """One plan version as a :class:`gridmap.Plan`.

        A version saved whole is read from its GeoPackage; a version saved by
        :meth:`add_edit_version` as a delta is rebuilt from the nearest earlier whole
        version by replaying the edits after it (:func:`gridmap.edit.replay`,
        :func:`gridmap.edit.undo`, :func:`gridmap.edit.redo`).
        """
        con = self._con()
        rows = con.execute(
            "SELECT version, length(gpkg) AS n FROM plan_versions WHERE plan_id = ? "
            "AND version <= ? ORDER BY version DESC",
            (plan_id, version),
        ).fetchall()
        if not rows or int(rows[0]["version"]) != int(version):
            raise NotFound(f"plan {plan_id} has no version {version}")
        chain = []
        for r in rows:
            if r["n"]:
                base = int(r["version"])
                break
            chain.append(int(r["version"]))
        else:  # pragma: no cover - version 1 is always whole
            raise NotFound(f"plan {plan_id} has no whole version before {version}")
        plan = plan_from_bytes(self.plan_bytes(plan_id, base))
        if not chain:
            return plan
        from gridmap import edit

        for v in reversed(chain):
            row = con.execute(
                "SELECT op, delta FROM plan_edits WHERE plan_id = ? AND version = ?", (plan_id, v)
            ).fetchone()
            if row is None:  # pragma: no cover - a delta version always has its edit row
                raise NotFound(f"plan {plan_id} version {v} has no recorded edit")
            if row["op"] == "undo":
                plan = edit.undo(plan)
            elif row["op"] == "redo":
                plan = edit.redo(plan)
            else:
                plan = edit.replay(plan, json.loads(row["delta"]))
        return plan

    def plan_version(self, plan_id: int, version: int) -> PlanRecord:
        """The record of one saved version of a plan (its own summary and checksum)."""
        if not (_valid_id(plan_id) and _valid_id(version)):
            raise NotFound(f"plan {plan_id} has no version {version}")
        row = (
            self._con()
            .execute(
                "SELECT p.id, p.name, v.version, p.created, v.created AS updated, v.summary, "
                "v.notes, v.comment, v.sha256 FROM plans p JOIN plan_versions v "
                "ON v.plan_id = p.id WHERE p.id = ? AND v.version = ?",
                (plan_id, version),
            )
            .fetchone()
        )
        if row is None:
            raise NotFound(f"plan {plan_id} has no version {version}")
        return self._record(row)

    def add_edit_version(
        self,
        plan_id: int,
        expected_version: int,
        *,
        op: str,
        args: dict[str, Any],
        reason: str,
        summary: dict[str, Any],
        notes: list[str],
        delta: dict[str, Any] | None = None,
        gpkg: bytes | None = None,
        actor: Actor | None = None,
        audit_extra: dict[str, Any] | None = None,
    ) -> PlanRecord:
        """Save the plan after an edit as its next version, with the edit's op, args,
        reason and actor (``plan_edits``) and an audit entry (``plan.edit``).

        The version is saved whole (`gpkg`, e.g. an uploaded plan) or as a delta: the
        undo-log record of the edit (`delta`, :func:`gridmap.edit.replay` applies it),
        or nothing for ``undo``/``redo``, which the plan's own undo log replays. A delta
        takes milliseconds to store where a whole city plan takes seconds; reading a
        delta version back rebuilds it (:meth:`plan_object`).

        Raises
        ------
        NotFound
            No such plan.
        VersionConflict
            The plan's current version is not `expected_version`.
        """
        if not _valid_id(plan_id):
            raise NotFound(f"plan {plan_id} does not exist")
        if gpkg is None and delta is None and op not in ("undo", "redo"):
            raise ValueError(f"edit {op!r} needs a delta or the whole plan")
        now = _now()
        delta_text = None if delta is None else json.dumps(delta, ensure_ascii=False)
        data = gpkg if gpkg is not None else b""
        with self.transaction() as con:
            current = int(self._current_row(con, plan_id, expected_version)["version"])
            new = current + 1
            self._insert_version(con, plan_id, new, now, data, summary, notes, reason or op)
            if not data:  # the checksum of a delta version is that of its delta
                con.execute(
                    "UPDATE plan_versions SET sha256 = ? WHERE plan_id = ? AND version = ?",
                    (
                        hashlib.sha256(f"{plan_id}/{new}/{op}/{delta_text}".encode()).hexdigest(),
                        plan_id,
                        new,
                    ),
                )
            con.execute(
                "INSERT INTO plan_edits (plan_id, version, at, actor, op, args, reason, delta) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    plan_id,
                    new,
                    now,
                    (actor or SYSTEM).name,
                    op,
                    json.dumps(args, ensure_ascii=False, default=str),
                    reason or "",
                    delta_text,
                ),
            )
            con.execute(
                "UPDATE plans SET version = ?, updated = ? WHERE id = ?", (new, now, plan_id)
            )
            self._audit(
                con,
                actor,
                "plan.edit",
                f"plan/{plan_id}",
                {"version": current},
                {"version": new, "op": op, "args": args, "reason": reason, **(audit_extra or {})},
            )
        return self.plan(plan_id)

    def versions(self, plan_id: int) -> list[dict[str, Any]]:
        """Return the saved versions of a plan (without the plan bytes), oldest first.

        Each has ``version``, ``created`` (= ``at``), ``comment``, ``sha256``, ``actor``
        (who saved it), ``op`` (the edit: ``create`` for version 1, an edit op of
        :meth:`add_edit_version`, ``upload``, or ``edit`` for a name/worker change) and
        ``reason``.
        """
        if not _valid_id(plan_id):
            return []
        rows = (
            self._con()
            .execute(
                "SELECT v.version, v.created, v.comment, v.sha256, e.op, e.reason, e.actor, "
                "(SELECT a.who FROM audit a WHERE a.target = 'plan/' || v.plan_id "
                "AND a.action IN ('plan.create', 'plan.edit') "
                "AND json_extract(a.after, '$.version') = v.version ORDER BY a.id LIMIT 1) "
                "AS who FROM plan_versions v LEFT JOIN plan_edits e "
                "ON e.plan_id = v.plan_id AND e.version = v.version "
                "WHERE v.plan_id = ? ORDER BY v.version",
                (plan_id,),
            )
            .fetchall()
        )
        out = []
        for r in rows:
            d = dict(r)
            who = d.pop("who")
            d["at"] = d["created"]
            d["actor"] = d["actor"] or who
            d["op"] = d["op"] or ("create" if d["version"] == 1 else "edit")
            d["reason"] = d["reason"] if d["reason"] is not None else d["comment"]
            out.append(d)
        return out

    # --------------------------------------------------------------- overlays
    def set_overlay(
        self, plan_id: int, name: str, data: dict[str, Any], *, actor: Actor | None = None
    ) -> None:
        """Store (or replace) a per-grid overlay of a plan, e.g. ``flood`` (audited
        ``overlay.set``)."""
        if not _valid_id(plan_id):
            raise NotFound(f"plan {plan_id} does not exist")
        with self.transaction() as con:
            if con.execute("SELECT 1 FROM plans WHERE id = ?", (plan_id,)).fetchone() is None:
                raise NotFound(f"plan {plan_id} does not exist")
            replaced = con.execute(
                "SELECT created FROM plan_overlays WHERE plan_id = ? AND name = ?",
                (plan_id, name),
            ).fetchone()
            con.execute(
                "INSERT INTO plan_overlays (plan_id, name, created, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(plan_id, name) DO UPDATE SET created = excluded.created, "
                "data = excluded.data",
                (plan_id, name, _now(), json.dumps(data, ensure_ascii=False, default=str)),
            )
            self._audit(
                con,
                actor,
                "overlay.set",
                f"plan/{plan_id}/overlays/{name}",
                None if replaced is None else {"created": replaced["created"]},
                {"name": name},
            )

    def overlay(self, plan_id: int, name: str) -> dict[str, Any] | None:
        """A plan's overlay, or None."""
        if not _valid_id(plan_id):
            return None
        row = (
            self._con()
            .execute(
                "SELECT data FROM plan_overlays WHERE plan_id = ? AND name = ?", (plan_id, name)
            )
            .fetchone()
        )
        return None if row is None else json.loads(row["data"])

    def overlay_names(self, plan_id: int) -> list[str]:
        """Names of a plan's overlays."""
        if not _valid_id(plan_id):
            return []
        rows = self._con().execute(
            "SELECT name FROM plan_overlays WHERE plan_id = ? ORDER BY name", (plan_id,)
        )
        return [r["name"] for r in rows]

    # ----------------------------------------------------------------- events
    def existing_event_ids(self, ids: Iterable[str]) -> set[str]:
        """Return which of `ids` are already stored."""
        ids = list(ids)
        found: set[str] = set()
        con = self._con()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            q = f"SELECT event_id FROM events WHERE event_id IN ({marks})"
            found.update(r[0] for r in con.execute(q, chunk))
        return found

    def add_events(
        self,
        rows: list[dict[str, Any]],
        *,
        actor: Actor | None = None,
        target: str = "events",
    ) -> list[str]:
        """Insert events (dicts with :data:`EVENT_FIELDS`) in one transaction.

        An event whose ``event_id`` is already stored (by this process or another one
        at the same moment) is skipped, never an error: compare the returned ids with
        the ones given. The audit entry (``events.add``) lists the stored ids.

        Returns
        -------
        list of str
            The ids of the events stored by this call, in the order given.
        """
        now = _now()
        cols = ("geom",) + EVENT_FIELDS
        sql = (
            f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            "ON CONFLICT(event_id) DO NOTHING"
        )
        stored: list[str] = []
        with self.transaction() as con:
            for r in rows:
                r = {**r, "received": r.get("received") or now}
                values = (gpkg_point(float(r["lon"]), float(r["lat"])),) + tuple(
                    r.get(c) for c in EVENT_FIELDS
                )
                if con.execute(sql, values).rowcount == 1:
                    stored.append(r["event_id"])
            if stored:
                self._update_event_extent(con)
                plans = sorted({r.get("plan_id") for r in rows if r.get("plan_id") is not None})
                self._audit(
                    con, actor, "events.add", target, None, {"plan_id": plans, "event_ids": stored}
                )
        return stored

    def event(self, event_id: str) -> dict[str, Any]:
        """One stored event (with its ``revision``); raise :class:`NotFound` when unknown."""
        row = (
            self._con()
            .execute(
                f"SELECT fid, {', '.join(EVENT_FIELDS)}, revision FROM events WHERE event_id = ?",
                (event_id,),
            )
            .fetchone()
        )
        if row is None:
            raise NotFound(f"event {event_id!r} does not exist")
        return dict(row)

    def update_event(
        self,
        event_id: str,
        changes: dict[str, Any],
        expected_revision: int,
        *,
        actor: Actor | None = None,
        step: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Change an event's ``status``, ``closed_at``, ``deadline`` or ``worker``
        (compare-and-set), recording a step of the event loop with it.

        Parameters
        ----------
        event_id : str
            The event.
        changes : dict
            New values of ``status``, ``closed_at``, ``deadline`` (None clears a time).
        expected_revision : int
            The revision the change was based on.
        actor : Actor, optional
            Who changes it (audited ``event.update`` with the values before and after).
        step : dict, optional
            The step of the loop this change makes (``status``, ``at`` ISO 8601, ``ts``
            timestamp, ``note``, ``worker``): appended to the event's history in the same
            transaction (see :meth:`event_history`).

        Raises
        ------
        NotFound
            No such event.
        EventConflict
            The event changed since `expected_revision`.
        """
        allowed = {"status", "closed_at", "deadline", "worker"}
        bad = set(changes) - allowed
        if bad:
            raise ValueError(f"events cannot change {sorted(bad)}")
        with self.transaction() as con:
            row = con.execute(
                "SELECT status, closed_at, deadline, worker, revision FROM events "
                "WHERE event_id = ?",
                (event_id,),
            ).fetchone()
            if row is None:
                raise NotFound(f"event {event_id!r} does not exist")
            if int(row["revision"]) != int(expected_revision):
                raise EventConflict(event_id, int(expected_revision), int(row["revision"]))
            before = {k: row[k] for k in changes}
            before["revision"] = int(row["revision"])
            sets = ", ".join(f"{k} = ?" for k in changes)
            con.execute(
                f"UPDATE events SET {sets}, revision = revision + 1 WHERE event_id = ?",
                (*changes.values(), event_id),
            )
            after = {**changes, "revision": int(row["revision"]) + 1}
            if step is not None:
                con.execute(
                    "INSERT INTO event_history (event_id, status, at, ts, note, worker, actor, "
                    "recorded) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        event_id,
                        step["status"],
                        step["at"],
                        float(step["ts"]),
                        step.get("note"),
                        step.get("worker"),
                        (actor or SYSTEM).name,
                        _now(),
                    ),
                )
                after["step"] = {k: step.get(k) for k in ("status", "at", "note", "worker")}
            self._audit(con, actor, "event.update", f"events/{event_id}", before, after)
        return self.event(event_id)

    def event_history(self, event_id: str) -> list[dict[str, Any]]:
        """The recorded steps of an event's loop (:data:`EVENT_STEP_FIELDS`), oldest
        first; empty for an event never moved (or unknown)."""
        rows = self._con().execute(
            f"SELECT {', '.join(EVENT_STEP_FIELDS)} FROM event_history WHERE event_id = ? "
            "ORDER BY ts, id",
            (event_id,),
        )
        return [dict(r) for r in rows]

    @staticmethod
    def _update_event_extent(con: sqlite3.Connection) -> None:
        con.execute(
            "UPDATE gpkg_contents SET (min_x, min_y, max_x, max_y, last_change) = "
            "(SELECT MIN(lon), MIN(lat), MAX(lon), MAX(lat), "
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM events) WHERE table_name = 'events'"
        )

    def events(
        self,
        *,
        start_ts: float | None = None,
        end_ts: float | None = None,
        grid_code: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Return stored events (oldest first), optionally in ``[start_ts, end_ts)``."""
        where, args = [], []
        if start_ts is not None:
            where.append("reported_ts >= ?")
            args.append(start_ts)
        if end_ts is not None:
            where.append("reported_ts < ?")
            args.append(end_ts)
        if grid_code is not None:
            where.append("grid_code = ?")
            args.append(grid_code)
        sql = f"SELECT fid, {', '.join(EVENT_FIELDS)} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY reported_ts, fid"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [dict(r) for r in self._con().execute(sql, args)]

    def events_revision(self) -> tuple[int, int, int]:
        """Return ``(count, max fid, sum of revisions)`` of the events: changes whenever
        an event is added or updated, in any process."""
        row = (
            self._con()
            .execute(
                "SELECT COUNT(*), COALESCE(MAX(fid), 0), COALESCE(SUM(revision), 0) FROM events"
            )
            .fetchone()
        )
        return int(row[0]), int(row[1]), int(row[2])

    # --------------------------------------------------------------- settings
    def settings(self) -> dict[str, str]:
        """Return every stored setting."""
        return {
            r["key"]: r["value"] for r in self._con().execute("SELECT key, value FROM settings")
        }

    def set_settings(
        self,
        values: dict[str, str | None],
        *,
        actor: Actor | None = None,
        secret: Iterable[str] = (),
    ) -> dict[str, str]:
        """Store settings in one transaction (None deletes a key); return all settings.

        The audit entry (``settings.update``) has the values before and after; those of
        `secret` keys are shown as ``"(set)"``.
        """
        if not values:
            return self.settings()
        hidden = set(secret)

        def shown(key: str, value: str | None) -> str | None:
            return "(set)" if key in hidden and value is not None else value

        with self.transaction() as con:
            old = {
                r["key"]: r["value"]
                for r in con.execute(
                    f"SELECT key, value FROM settings WHERE key IN ({','.join('?' * len(values))})",
                    list(values),
                )
            }
            self._audit(
                con,
                actor,
                "settings.update",
                "settings",
                {k: shown(k, old.get(k)) for k in values},
                {k: shown(k, v) for k, v in values.items()},
            )
            for key, value in values.items():
                if value is None:
                    con.execute("DELETE FROM settings WHERE key = ?", (key,))
                else:
                    con.execute(
                        "INSERT INTO settings (key, value) VALUES (?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        (key, str(value)),
                    )
        return self.settings()

    # ------------------------------------------------------------------- jobs
    def create_job(
        self,
        kind: str,
        message: str = "",
        *,
        job_id: str | None = None,
        owner: str | None = None,
        actor: Actor | None = None,
        audit_after: dict[str, Any] | None = None,
    ) -> str:
        """Create a queued job and return its id.

        Parameters
        ----------
        kind : str
            ``partition``.
        message : str
            First status message.
        job_id : str, optional
            The id (default: a random one).
        owner : str, optional
            The server process that will run it (:attr:`api.jobs.Instance.id`).
        actor : Actor, optional
            Who asked for it; with `audit_after` an audit entry ``<kind>.submit`` is
            written.
        audit_after : dict, optional
            What the audit entry records (e.g. the uploaded file's name).
        """
        job_id = job_id or uuid.uuid4().hex[:16]
        now = _now()
        with self.transaction() as con:
            con.execute(
                "INSERT INTO jobs (id, kind, status, progress, message, owner, created, updated) "
                "VALUES (?, ?, 'queued', 0, ?, ?, ?, ?)",
                (job_id, kind, message, owner, now, now),
            )
            if actor is not None or audit_after is not None:
                self._audit(
                    con,
                    actor,
                    f"{kind}.submit",
                    f"jobs/{job_id}",
                    None,
                    {"job": job_id, **(audit_after or {})},
                )
        return job_id

    def update_job(self, job_id: str, **fields: Any) -> None:
        """Update a job's ``status``, ``progress``, ``message``, ``plan_id`` or ``error``."""
        allowed = {"status", "progress", "message", "plan_id", "error"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"unknown job fields {sorted(bad)}")
        if "status" in fields and fields["status"] not in JOB_STATES:
            raise ValueError(f"unknown job status {fields['status']!r}")
        sets = ", ".join(f"{k} = ?" for k in fields) + ", updated = ?"
        with self.transaction() as con:
            con.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*fields.values(), _now(), job_id))

    def job(self, job_id: str) -> dict[str, Any]:
        """Return a job as a dict; raise :class:`NotFound` when it does not exist."""
        row = self._con().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"job {job_id} does not exist")
        return dict(row)

    def unfinished_job_owners(self) -> set[str | None]:
        """The owners (server processes) of queued and running jobs; None for jobs
        created before owners were recorded."""
        rows = self._con().execute(
            "SELECT DISTINCT owner FROM jobs WHERE status IN ('queued', 'running')"
        )
        return {r["owner"] for r in rows}

    def fail_jobs_of(self, owner: str | None, reason: str) -> int:
        """Mark the queued and running jobs of one owner failed; return how many."""
        with self.transaction() as con:
            cur = con.execute(
                "UPDATE jobs SET status = 'failed', error = ?, message = 'failed', updated = ? "
                "WHERE status IN ('queued', 'running') AND owner IS ?",
                (reason, _now(), owner),
            )
        return int(cur.rowcount)

    def fail_unfinished_jobs(self, reason: str = "the server stopped before the job ended") -> int:
        """Mark every queued and running job failed, whoever runs it; return how many.

        Only for a store that no server process uses: a starting server calls
        :func:`api.jobs.reap_dead_instances` instead, which leaves the jobs of live
        processes alone.
        """
        with self.transaction() as con:
            cur = con.execute(
                "UPDATE jobs SET status = 'failed', error = ?, updated = ? "
                "WHERE status IN ('queued', 'running')",
                (reason, _now()),
            )
        return int(cur.rowcount)

    # ------------------------------------------------------------------ users
    def add_user(
        self, name: str, role: str, scope: str | None = None, *, actor: Actor | None = None
    ) -> str:
        """Add a user and return their new token (shown once; only its hash is stored).

        Raises
        ------
        UserError
            The name is taken (also by a revoked user: names in the audit log stay
            unambiguous), or the role or scope is not valid.
        """
        check_user(name, role, scope)
        token = "gm_" + secrets.token_urlsafe(24)
        now = _now()
        with self.transaction() as con:
            row = con.execute("SELECT revoked FROM users WHERE name = ?", (name,)).fetchone()
            if row is not None:
                state = f"revoked {row['revoked']}" if row["revoked"] else "active"
                raise UserError(
                    f"user {name!r} exists ({state}); names are never reused, choose another"
                )
            con.execute(
                "INSERT INTO users (name, role, scope, token_sha256, created, created_by) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, role, scope, token_hash(token), now, (actor or SYSTEM).name),
            )
            self._audit(
                con, actor, "user.add", f"users/{name}", None, {"role": role, "scope": scope}
            )
        return token

    def revoke_user(self, name: str, *, actor: Actor | None = None) -> dict[str, Any]:
        """Revoke a user's token for good; return the user.

        Raises
        ------
        NotFound
            No such user.
        UserError
            Already revoked.
        """
        with self.transaction() as con:
            row = con.execute("SELECT revoked FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFound(f"no user {name!r}")
            if row["revoked"]:
                raise UserError(f"user {name!r} was already revoked on {row['revoked']}")
            con.execute("UPDATE users SET revoked = ? WHERE name = ?", (_now(), name))
            self._audit(con, actor, "user.revoke", f"users/{name}", {"revoked": None}, None)
        return self.user(name)

    _USER_COLUMNS = "name, role, scope, created, created_by, revoked"

    def user(self, name: str) -> dict[str, Any]:
        """One user (without the token hash); raise :class:`NotFound` when unknown."""
        row = (
            self._con()
            .execute(f"SELECT {self._USER_COLUMNS} FROM users WHERE name = ?", (name,))
            .fetchone()
        )
        if row is None:
            raise NotFound(f"no user {name!r}")
        return dict(row)

    def users(self) -> list[dict[str, Any]]:
        """Every user, active and revoked, in the order they were added."""
        rows = self._con().execute(f"SELECT {self._USER_COLUMNS} FROM users ORDER BY id")
        return [dict(r) for r in rows]

    def user_by_token(self, token: str) -> dict[str, Any] | None:
        """The active user holding `token`, or None."""
        row = (
            self._con()
            .execute(
                f"SELECT {self._USER_COLUMNS} FROM users WHERE token_sha256 = ? "
                "AND revoked IS NULL",
                (token_hash(token),),
            )
            .fetchone()
        )
        return None if row is None else dict(row)

    def has_users(self) -> bool:
        """Whether any user is active."""
        row = self._con().execute("SELECT 1 FROM users WHERE revoked IS NULL LIMIT 1").fetchone()
        return row is not None


def check_user(name: str, role: str, scope: str | None) -> None:
    """Raise :class:`UserError` unless `name`, `role` and `scope` are valid.

    Names are 1-64 letters (any script), digits, ``_ . @ -``; ``GRIDMAP_TOKEN`` and
    ``system`` are reserved. A scope is a code prefix of 6, 9, 12 or 15 digits.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[\w.@\-]{1,64}", name):
        raise UserError(
            f"user name {str(name)[:80]!r} is not valid: use 1-64 letters, digits, '_', '.', "
            "'@' or '-'"
        )
    if name in ("GRIDMAP_TOKEN", "system") or name.startswith("cli:"):
        raise UserError(f"user name {name!r} is reserved")
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if scope is not None and not (re.fullmatch(r"[0-9]+", scope) and len(scope) in SCOPE_LENGTHS):
        raise UserError(
            f"scope {scope!r} is not valid: give a code prefix of 6 (district), 9 (street), "
            "12 (community) or 15 (grid) digits"
        )


# -------------------------------------------------------------- plan <-> bytes
def plan_to_bytes(plan: Any) -> bytes:
    """Serialise a :class:`gridmap.Plan` to GeoPackage bytes (via :meth:`Plan.to_file`)."""
    with tempfile.TemporaryDirectory(prefix="gridmap-plan-") as tmp:
        path = Path(tmp) / "plan.gpkg"
        plan.to_file(path)
        return path.read_bytes()


def plan_from_bytes(data: bytes) -> Any:
    """Read a plan back from the bytes of :func:`plan_to_bytes`."""
    from gridmap.plan import read_plan

    with tempfile.TemporaryDirectory(prefix="gridmap-plan-") as tmp:
        path = Path(tmp) / "plan.gpkg"
        path.write_bytes(data)
        return read_plan(path)
