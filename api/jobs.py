"""Uploads and background jobs: checking footprints, building a plan from them.

``POST /api/plans`` streams the upload into this process's upload folder, checks it
(:func:`sniff_upload`, in a worker thread: a zipped Shapefile is unpacked with limits on
the total size and the compression ratio), creates a job in the store and hands it to
a small thread pool. The job checks the footprints' CRS, coordinates and geometry
(:func:`prescan`), reads them with :func:`gridmap.read_buildings`, estimates
households, partitions with :func:`gridmap.plan_grids` and stores the plan as a new
plan (version 1). Status, progress (0-1) and message are kept in the store's ``jobs``
table, so ``GET /api/jobs/{id}`` works from any thread or process.

Several server processes on one store
-------------------------------------
Each server process is an :class:`Instance`: it holds an exclusive lock on
``<store>.uploads/<id>.lock`` for as long as it lives (the operating system drops the
lock when the process dies, however it dies) and keeps its uploads in
``<store>.uploads/<id>/``. Jobs record their instance as ``owner``. A starting
server (:func:`reap_dead_instances`) fails only the jobs of instances whose lock is
free, and removes their upload folders; the jobs of live processes are left alone. So
``uvicorn --workers N`` and several ``gridmap serve`` on one store are safe.
"""

from __future__ import annotations

import codecs
import logging
import lzma
import math
import os
import shutil
import socket
import struct
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gridmap.errors import CRSError, GeometryError, GridmapError, InputError

from .geo import clean_json
from .store import Actor, Store, plan_to_bytes

try:  # POSIX advisory locks; elsewhere instances are told apart by process id
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("gridmap.api")

#: Accepted upload suffixes and their kind.
UPLOAD_KINDS = {".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson", ".zip": "shapefile"}
#: Compression methods a zipped Shapefile may use (stored, deflate, bzip2, lzma).
_ZIP_METHODS = {0: "stored", 8: "Deflate", 12: "bzip2", 14: "LZMA"}
_ZIP_METHOD_NAMES = {1: "Shrink", 6: "Implode", 9: "Deflate64", 93: "Zstandard", 98: "PPMd"}
#: A footprint with more vertices than this must be valid: repairing a self-intersecting
#: ring costs far more than linear time (20,000 vertices can take minutes).
MAX_REPAIR_VERTICES = 5_000


class UploadRefused(InputError):
    """An upload that is refused before any job starts.

    Attributes
    ----------
    status : int
        HTTP status (413 for too much data, 422 otherwise).
    code : str
        Error code of the answer.
    """

    def __init__(
        self, message: str, *, source: str, status: int = 422, code: str = "invalid_upload"
    ):
        self.status = status
        self.code = code
        super().__init__(message, source=source)


@dataclass(frozen=True)
class ZipLimits:
    """Limits on unpacking a zipped Shapefile (a zip bomb is refused before it fills
    the disk).

    Attributes
    ----------
    max_total : int
        Most bytes the Shapefile may unpack to (``GRIDMAP_MAX_UNZIPPED_MB``).
    max_ratio : float
        Largest unpacked / zipped size ratio ...
    ratio_floor : int
        ... above this many unpacked bytes (small zips of text compress very well).
    max_members : int
        Most entries in the zip.
    """

    max_total: int = 1024 * 1024 * 1024
    max_ratio: float = 200.0
    ratio_floor: int = 64 * 1024 * 1024
    max_members: int = 10_000

    def allowed(self, zipped: int) -> int:
        """Most bytes a zip of `zipped` bytes may unpack to."""
        return int(min(self.max_total, max(self.ratio_floor, self.max_ratio * zipped)))


@dataclass(frozen=True)
class PartitionParams:
    """Parameters of a partition job."""

    name: str
    admin_code: str | None = None
    household_range: tuple[int, int] = (300, 500)
    difficult_range: tuple[int, int] = (200, 300)
    crs: str | None = None
    seed: int = 0


# ---------------------------------------------------------------- uploads
def sniff_upload(
    path: Path,
    suffix: str,
    limits: ZipLimits | None = None,
    encoding: str | None = None,
    label: str | None = None,
) -> str:
    """Check that an uploaded file looks like the geodata its suffix says.

    Runs in a worker thread (it may unpack a zip), never on the event loop.

    Parameters
    ----------
    path : pathlib.Path
        The uploaded file.
    suffix : str
        Its suffix as sent (``.gpkg``, ``.geojson``, ``.json``, ``.zip``).
    limits : ZipLimits, optional
        Limits on unpacking a zip.
    encoding : str, optional
        Encoding of a Shapefile's attributes (written as its ``.cpg``).
    label : str, optional
        The file name shown in messages.

    Returns
    -------
    str
        The path to give to :func:`gridmap.read_buildings` (for a zipped Shapefile the
        extracted ``.shp``).

    Raises
    ------
    UploadRefused
        Empty file, wrong content for the suffix, text that is not UTF-8, a zip that
        is damaged, encrypted, uses an unsupported method, holds no or several
        Shapefiles, or would unpack to too much (413).
    """
    label = label or path.name
    kind = UPLOAD_KINDS.get(suffix)
    if kind is None:
        raise UploadRefused(
            f"unsupported file type {suffix or '(none)'}: upload a GeoPackage (.gpkg), "
            "GeoJSON (.geojson/.json) or a zipped Shapefile (.zip)",
            source=label,
            code="unsupported_file",
        )
    size = path.stat().st_size
    if size == 0:
        raise UploadRefused("the uploaded file is empty", source=label)
    with path.open("rb") as fh:
        head = fh.read(64)
    if kind == "gpkg" and not head.startswith(b"SQLite format 3\x00"):
        raise UploadRefused("not a GeoPackage (no SQLite header)", source=label)
    if kind == "geojson":
        text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not text.startswith(b"{"):
            raise UploadRefused("not GeoJSON (the file does not start with '{')", source=label)
        _check_utf8_file(path, label)
    if kind == "shapefile":
        return str(_extract_shapefile(path, limits or ZipLimits(), encoding, label))
    return str(path)


def _check_utf8_file(path: Path, label: str) -> None:
    """Refuse a GeoJSON that is not UTF-8 (RFC 7946); it would be read garbled."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise UploadRefused(
                    f"the GeoJSON is not UTF-8 (byte {chunk[exc.start]:#04x} at offset "
                    f"{offset + exc.start}); GeoJSON must be UTF-8 (RFC 7946): save it as UTF-8",
                    source=label,
                ) from None
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise UploadRefused(
            "the GeoJSON ends in the middle of a UTF-8 character", source=label
        ) from None


def _zip_problem(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]


def _extract_shapefile(path: Path, limits: ZipLimits, encoding: str | None, label: str) -> Path:
    """Unpack the one Shapefile of a zip, checking every limit before and while unpacking."""
    zipped = path.stat().st_size
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise UploadRefused(
            f"not a readable zip file ({_zip_problem(exc)})", source=label
        ) from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > limits.max_members:
            raise UploadRefused(
                f"the zip holds {len(infos):,} entries, more than {limits.max_members:,}",
                source=label,
            )
        shps = [i for i in infos if i.filename.lower().endswith(".shp")]
        if not shps:
            raise UploadRefused("the zip holds no .shp file", source=label)
        if len(shps) > 1:
            raise UploadRefused(
                f"the zip holds {len(shps)} .shp files; upload one Shapefile per zip", source=label
            )
        stem = shps[0].filename[: -len(".shp")]
        members = [i for i in infos if i.filename.startswith(stem + ".")]
        for info in members:
            _check_member(info, label)
        declared = sum(i.file_size for i in members)
        allowed = limits.allowed(zipped)
        if declared > allowed:
            raise UploadRefused(
                _too_much(declared, zipped, limits),
                source=label,
                status=413,
                code="unzipped_too_large",
            )
        out = path.parent / "shp"
        out.mkdir(exist_ok=True)
        written = 0
        targets: dict[str, Path] = {}
        for info in members:
            ext = info.filename[len(stem) :].lower()
            target = out / f"upload{ext}"  # never the zip's own paths (zip slip)
            member = 0
            with _reading(info, label):
                src = zf.open(info)
            with src, target.open("wb") as dst:
                while True:
                    with _reading(info, label):
                        chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    member += len(chunk)
                    written += len(chunk)
                    if written > allowed:
                        raise UploadRefused(
                            _too_much(written, zipped, limits, while_unpacking=True),
                            source=label,
                            status=413,
                            code="unzipped_too_large",
                        )
                    dst.write(chunk)
            if member != info.file_size:
                raise UploadRefused(
                    f"the zip is damaged: {info.filename[:100]} unpacks to {member:,} bytes, "
                    f"but the zip says {info.file_size:,}",
                    source=label,
                )
            targets[ext] = target
    _settle_encoding(targets, encoding, Path(stem).name or "upload", label)
    return targets[".shp"]


#: What reading a damaged member raises (zipfile, zlib, bz2 and lzma errors).
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    RuntimeError,
    NotImplementedError,
    ValueError,
)


@contextmanager
def _reading(info: zipfile.ZipInfo, label: str) -> Iterator[None]:
    """Turn an error while reading a zip member into a 422 naming the member."""
    try:
        yield
    except _READ_ERRORS as exc:
        raise UploadRefused(
            f"the zip is damaged: {info.filename[:100]}: {_zip_problem(exc)}", source=label
        ) from None


def _check_member(info: zipfile.ZipInfo, label: str) -> None:
    name = info.filename[:100]
    if info.flag_bits & 0x41 or info.compress_type == 99:
        raise UploadRefused(
            f"{name} is encrypted (password-protected): zip the Shapefile without a password",
            source=label,
        )
    if info.compress_type not in _ZIP_METHODS:
        method = _ZIP_METHOD_NAMES.get(info.compress_type, "unknown")
        raise UploadRefused(
            f"{name} uses the compression method {method} ({info.compress_type}), which is not "
            "supported: re-create the zip with standard Deflate (e.g. 'zip', 7-Zip with "
            "Deflate, or Python's zipfile)",
            source=label,
            code="unsupported_zip",
        )


def _too_much(n: int, zipped: int, limits: ZipLimits, *, while_unpacking: bool = False) -> str:
    mb = 1024 * 1024
    what = "unpacks to more than" if while_unpacking else "would unpack to"
    allowed = limits.allowed(zipped)
    if allowed < limits.max_total:
        why = (
            f"{limits.max_ratio:g} times its zipped size ({zipped / mb:.2f} MB) or "
            f"{limits.ratio_floor / mb:g} MB: a compression ratio like this is a zip bomb, "
            "not a Shapefile"
        )
    else:
        why = f"the limit of {limits.max_total / mb:g} MB (GRIDMAP_MAX_UNZIPPED_MB)"
    return f"the zip {what} {n / mb:,.1f} MB, more than {why}"


def _settle_encoding(targets: dict[str, Path], encoding: str | None, stem: str, label: str) -> None:
    """Make GDAL read the attributes exactly: write the ``.cpg`` the data need, or refuse.

    GDAL reads a Shapefile without ``.cpg`` (and without a code page in the ``.dbf``)
    as Latin-1, which garbles Chinese text silently.
    """
    dbf = targets.get(".dbf")
    if dbf is None:
        return
    ldid, samples = _dbf_text_samples(dbf)
    cpg = dbf.with_suffix(".cpg")
    if encoding:
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            raise UploadRefused(f"unknown encoding {encoding!r}", source=label) from None
        bad = _undecodable(samples, codec)
        if bad is not None:
            raise UploadRefused(
                f"{stem}.dbf: the attribute table does not decode as {encoding} ({bad!r}); "
                "check the encoding",
                source=label,
            )
        cpg.write_text(encoding, encoding="ascii", errors="replace")
        targets[".cpg"] = cpg
        return
    if ".cpg" in targets or ldid != 0 or not samples:
        return  # GDAL knows the encoding, or the text is ASCII
    if _undecodable(samples, "utf-8") is None:
        cpg.write_text("UTF-8", encoding="ascii")
        targets[".cpg"] = cpg
        return
    raise UploadRefused(
        f"{stem}.dbf: the attribute table is not UTF-8 and the zip has no .cpg file naming "
        "its encoding (Chinese Shapefiles are often GBK): add a file "
        f"{stem}.cpg containing GBK (or the right encoding) to the zip, or send the form "
        "field encoding=GBK",
        source=label,
        code="unknown_encoding",
    )


def _undecodable(samples: list[bytes], codec: str) -> bytes | None:
    for raw in samples:
        try:
            raw.decode(codec)
        except UnicodeDecodeError:
            return raw[:40]
    return None


def _dbf_text_samples(dbf: Path, most: int = 2000) -> tuple[int, list[bytes]]:
    """The language driver id of a ``.dbf`` and up to `most` non-ASCII text values
    (field names and character fields)."""
    with dbf.open("rb") as fh:
        head = fh.read(32)
        if len(head) < 32:
            return 0, []
        header_len, rec_len = struct.unpack("<HH", head[8:12])
        ldid = head[29]
        desc = fh.read(max(0, header_len - 32))
        texts: list[tuple[int, int]] = []
        samples: list[bytes] = []
        offset = 1  # each record starts with its deletion flag
        for i in range(0, len(desc) - 31, 32):
            d = desc[i : i + 32]
            if d[0] == 0x0D:
                break
            name = d[:11].split(b"\0")[0]
            if max(name, default=0) >= 0x80:
                samples.append(name)
            if chr(d[11]) == "C":
                texts.append((offset, d[16]))
            offset += d[16]
        if not texts or rec_len <= 0:
            return ldid, samples
        fh.seek(header_len)
        per_chunk = max(1, (8 << 20) // rec_len)
        while len(samples) < most:
            chunk = fh.read(per_chunk * rec_len)
            n = len(chunk) // rec_len
            if n == 0:
                break
            arr = np.frombuffer(chunk[: n * rec_len], dtype=np.uint8).reshape(n, rec_len)
            for start, width in texts:
                col = arr[:, start : start + width]
                for r in np.flatnonzero((col >= 0x80).any(axis=1))[: most - len(samples)]:
                    samples.append(col[r].tobytes().rstrip(b" \0"))
    return ldid, samples


# ------------------------------------------------------------ footprints
def prescan(source: str, crs: str | None, label: str) -> None:
    """Check the footprints before the (long) partition and name what is wrong.

    The layer that :func:`gridmap.read_buildings` would read must have a CRS (or
    `crs` given), coordinates that the CRS can describe, and no invalid footprint
    with more than :data:`MAX_REPAIR_VERTICES` vertices (repairing one can take hours).
    Files it cannot open are left to :func:`gridmap.read_buildings` to report.

    Raises
    ------
    CRSError
        No CRS, or coordinates out of the CRS's range.
    GeometryError
        A huge invalid footprint.
    """
    import pyogrio
    from pyproj import CRS

    try:
        names = [str(row[0]) for row in pyogrio.list_layers(source)]
    except Exception:  # noqa: BLE001 - read_buildings reports unreadable files
        return
    layer = names[0] if len(names) == 1 else "buildings" if "buildings" in names else None
    if layer is None:
        return
    try:
        info = pyogrio.read_info(source, layer=layer, force_total_bounds=True)
    except Exception:  # noqa: BLE001 - read_buildings reports unreadable layers
        return
    recorded = info.get("crs")
    if not recorded and not crs:
        raise CRSError(
            "the footprints have no coordinate reference system (CRS) and gridmap does not "
            "guess one: put the .prj file in the zip (Shapefile), give the layer its SRS "
            "(GeoPackage), or send the form field crs (e.g. crs=EPSG:4490 for CGCS2000 "
            "longitude/latitude, or the projected CRS of your data)",
            source=label,
        )
    try:
        the_crs = CRS.from_user_input(recorded or crs)
    except Exception as exc:  # noqa: BLE001 - pyproj's own error types vary
        raise CRSError(
            f"the CRS {str(recorded or crs)[:80]!r} is not usable: {exc}", source=label
        ) from None
    bounds = info.get("total_bounds")
    if bounds is not None and all(math.isfinite(v) for v in bounds):
        _check_extent(tuple(float(v) for v in bounds), the_crs, label)
    try:
        frame = pyogrio.read_dataframe(source, layer=layer, columns=[], use_arrow=True)
    except Exception:  # noqa: BLE001 - read_buildings reports unreadable geometry
        return
    _check_geometries(frame.geometry.to_numpy(), label)


def _check_extent(bounds: tuple[float, float, float, float], crs: Any, label: str) -> None:
    from pyproj import Transformer

    minx, miny, maxx, maxy = bounds
    name = crs.name or crs.to_string()
    epsg = crs.to_epsg()
    shown = f"EPSG:{epsg} ({name})" if epsg else name
    where = f"x {minx:.6g} to {maxx:.6g}, y {miny:.6g} to {maxy:.6g}"
    if crs.is_geographic:
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise CRSError(
                f"coordinates {where} are out of range for {shown}, which is in degrees "
                "(longitude -180 to 180, latitude -90 to 90): the data are probably in a "
                "projected CRS (metres) with the wrong CRS recorded; a GeoJSON must be WGS 84 "
                "longitude/latitude (RFC 7946): convert it, or upload a GeoPackage or "
                "Shapefile with its true CRS",
                source=label,
            )
        west, south, east, north = minx, miny, maxx, maxy
    else:
        try:
            to_wgs = Transformer.from_crs(crs, 4326, always_xy=True)
            west, south, east, north = to_wgs.transform_bounds(minx, miny, maxx, maxy)
        except Exception:  # noqa: BLE001 - any failure means the same thing here
            west = south = east = north = float("nan")
        box = (west, south, east, north)
        if not all(math.isfinite(v) for v in box) or not (-90 <= south <= north <= 90):
            raise CRSError(
                f"coordinates {where} lie outside the area {shown} can describe: check the "
                "CRS (.prj) and the coordinates",
                source=label,
            )
    area = crs.area_of_use
    margin = 10.0  # degrees: only a clearly wrong CRS is refused
    if area is not None and area.west <= area.east:
        if (
            east < area.west - margin
            or west > area.east + margin
            or north < area.south - margin
            or south > area.north + margin
        ):
            raise CRSError(
                f"the footprints lie at longitude {west:.4f} to {east:.4f}, latitude "
                f"{south:.4f} to {north:.4f}, far outside the area of use of {shown} "
                f"({area.name}): the recorded CRS is probably wrong",
                source=label,
            )


def _check_geometries(geoms: np.ndarray, label: str) -> None:
    import shapely

    counts = shapely.get_num_coordinates(geoms)
    big = np.flatnonzero(counts > MAX_REPAIR_VERTICES)
    if len(big) == 0:
        return
    bad = big[~shapely.is_valid(geoms[big])]
    if len(bad) == 0:
        return
    i = int(bad[0])
    reason = shapely.is_valid_reason(geoms[i])
    more = f"; {len(bad) - 1} more such footprint(s)" if len(bad) > 1 else ""
    raise GeometryError(
        f"footprint {i} (counting features from 0) is not a valid polygon ({reason}) and has "
        f"{int(counts[i]):,} vertices: repairing a footprint that large automatically can "
        "take hours. Fix it in a GIS first (QGIS: Vector > Geometry Tools > Fix Geometries, "
        f"or simplify it) and upload again{more}",
        source=label,
    )


# -------------------------------------------------------------- instances
def _host() -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in socket.gethostname())[:40]


class Instance:
    """This server process's claim on a store's upload folder (see the module docstring).

    Parameters
    ----------
    root : pathlib.Path
        The store's upload folder (:attr:`api.store.Store.uploads_dir`).

    Attributes
    ----------
    id : str
        ``<host>-<pid>-<random>``: names the lock file, the upload folder and the
        ``owner`` of this process's jobs.
    dir : pathlib.Path
        Where this process keeps its uploads.
    """

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.id = f"{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._fd: int | None = None
        lock = root / f"{self.id}.lock"
        tmp = root / f".{self.id}.lock.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.replace(tmp, lock)  # the lock file appears already locked
        self._fd = fd
        self.dir = root / self.id
        self.dir.mkdir(exist_ok=True)

    def release(self) -> None:
        """Give up the claim: remove the lock file and the upload folder."""
        if self._fd is None:
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        (self.root / f"{self.id}.lock").unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    @staticmethod
    def alive(root: Path, instance_id: str) -> bool:
        """Whether the server process `instance_id` still holds its lock."""
        lock = root / f"{instance_id}.lock"
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            return False
        except OSError:  # pragma: no cover - unreadable: assume it is alive
            return True
        try:
            if fcntl is None:  # pragma: no cover - Windows: judge by the process id
                return _pid_alive(instance_id)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)


def _locked(path: Path) -> bool:
    """Whether another process holds the lock on `path` (False when it is gone)."""
    if fcntl is None:  # pragma: no cover - Windows
        return True
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created when missing; never removed) for a block:
    one process at a time, e.g. to seed an empty store."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _pid_alive(instance_id: str) -> bool:  # pragma: no cover - used without fcntl only
    parts = instance_id.rsplit("-", 2)
    if len(parts) != 3 or parts[0] != _host() or not parts[1].isdigit():
        return True
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _dead_reason(owner: str | None) -> str:
    if owner is None:
        return "the server stopped before the job ended"
    parts = owner.rsplit("-", 2)
    who = f"process {parts[1]} on {parts[0]}" if len(parts) == 3 else owner
    return f"the server process running the job ({who}) stopped before the job ended"


def reap_dead_instances(store: Store, me: Instance) -> int:
    """Fail the unfinished jobs of dead server processes and remove their uploads.

    Jobs of live processes (their lock is held) are left alone, and so are their
    upload folders. Returns the number of jobs marked failed.
    """
    root = me.root
    failed = 0
    for owner in store.unfinished_job_owners():
        if owner == me.id or (owner is not None and Instance.alive(root, owner)):
            continue
        failed += store.fail_jobs_of(owner, _dead_reason(owner))
    if root.is_dir():
        for entry in root.iterdir():
            name = entry.name
            if name.startswith("."):
                if name.endswith(".lock.tmp") and not _locked(entry):
                    entry.unlink(missing_ok=True)  # a process died while starting
                continue
            iid = name[: -len(".lock")] if name.endswith(".lock") else name
            if iid == me.id or Instance.alive(root, iid):
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    return failed


# ------------------------------------------------------------------- jobs
class JobRunner:
    """Runs partition jobs in a small thread pool and records them in the store.

    Parameters
    ----------
    store : Store
        Where jobs and plans are recorded.
    workers : int
        Threads (partitions are CPU-heavy).
    instance : Instance, optional
        This process's claim on the upload folder (default: a new one).
    """

    def __init__(self, store: Store, workers: int = 1, instance: Instance | None = None):
        self.store = store
        self.instance = instance or Instance(store.uploads_dir)
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix="gridmap-job"
        )
        self._running: set[str] = set()

    def new_workdir(self) -> tuple[str, Path]:
        """A new job id and its empty upload folder."""
        job_id = uuid.uuid4().hex[:16]
        workdir = self.instance.dir / job_id
        workdir.mkdir(parents=True)
        return job_id, workdir

    def submit_partition(
        self,
        job_id: str,
        source: str,
        workdir: Path,
        params: PartitionParams,
        label: str,
        actor: Actor | None = None,
    ) -> Future:
        """Queue a partition job; returns the future."""
        return self._pool.submit(self._run_partition, job_id, source, workdir, params, label, actor)

    def reap(self, owner: str | None) -> None:
        """Fail the jobs of `owner` when that process is dead (a job read elsewhere)."""
        if owner == self.instance.id:
            return
        if owner is None or not Instance.alive(self.instance.root, owner):
            reap_dead_instances(self.store, self.instance)

    def shutdown(self, wait: bool = False) -> None:
        """Stop taking jobs (running ones finish when `wait`); jobs that never started
        are marked failed, and the upload folder is released when nothing runs."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
        if not self._running:
            try:
                self.store.fail_jobs_of(
                    self.instance.id, "the server stopped before the job started"
                )
            except Exception:  # noqa: BLE001 - the store may be gone already
                log.exception("could not mark unstarted jobs failed")
            self.instance.release()

    def _progress(self, job_id: str, progress: float, message: str, **extra: Any) -> None:
        self.store.update_job(job_id, progress=progress, message=message, **extra)

    def _run_partition(
        self,
        job_id: str,
        source: str,
        workdir: Path,
        params: PartitionParams,
        label: str,
        actor: Actor | None = None,
    ) -> None:
        from gridmap.households import estimate_households
        from gridmap.load import read_buildings
        from gridmap.partition import plan_grids

        self._running.add(job_id)
        try:
            self._progress(job_id, 0.02, "checking footprints", status="running")
            prescan(source, params.crs, label)
            self._progress(job_id, 0.05, "reading footprints")
            b = read_buildings(source, crs=params.crs)
            self._progress(job_id, 0.2, f"{len(b)} buildings read; estimating households")
            b = estimate_households(b)
            self._progress(
                job_id,
                0.3,
                f"{len(b)} buildings, {int(b['households'].sum())} households; partitioning",
            )
            plan = plan_grids(
                b,
                None,
                household_range=params.household_range,
                difficult_range=params.difficult_range,
                admin_code=params.admin_code,
                seed=params.seed,
                progress=False,
            )
            self._progress(job_id, 0.9, f"{len(plan.grids)} grids; saving the plan")
            summary = clean_json(plan.summary())
            record = self.store.add_plan(
                params.name,
                plan_to_bytes(plan),
                summary,
                list(plan.notes),
                comment=f"built from {label}",
                actor=actor,
                audit_extra={"job": job_id, "file": label},
            )
            self.store.update_job(
                job_id,
                status="done",
                progress=1.0,
                message=f"plan {record.id}: {summary['grids']} grids, {summary['households']} households",
                plan_id=record.id,
            )
        except Exception as exc:  # noqa: BLE001 - every failure is reported on the job
            if not isinstance(exc, GridmapError):
                log.exception("job %s failed", job_id)
            self.store.update_job(
                job_id,
                status="failed",
                error=job_error(exc, source, workdir, label),
                message="failed",
            )
        finally:
            self._running.discard(job_id)
            shutil.rmtree(workdir, ignore_errors=True)


def job_error(exc: BaseException, source: str, workdir: Path, label: str) -> str:
    """One line saying what went wrong, without server paths."""
    text = str(exc).replace(source, label)
    text = text.replace(str(workdir) + "/", "").replace(str(workdir), "")
    if "not encoded in UTF-8" in text:
        text = (
            f"{label}: the attributes are not UTF-8 and their encoding is not recorded: "
            "upload again with the form field encoding (e.g. encoding=GBK)"
        )
    line = " ".join(text.split())[:500] or type(exc).__name__
    if not isinstance(exc, GridmapError):
        line = f"{type(exc).__name__}: {line}"
    return line
