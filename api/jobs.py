"""Background jobs: building a plan from uploaded footprints.

``POST /api/plans`` saves the upload, creates a job in the store and hands it to a
small thread pool. The job reads the footprints with :func:`gridmap.read_buildings`,
estimates households, partitions with :func:`gridmap.plan_grids` and stores the plan as
a new plan (version 1). Its status, progress (0-1) and message are kept in the store's
``jobs`` table, so ``GET /api/jobs/{id}`` works from any thread or process.
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridmap.errors import GridmapError, InputError

from .geo import clean_json
from .store import Store, plan_to_bytes

log = logging.getLogger("gridmap.api")

#: Accepted upload suffixes and their kind.
UPLOAD_KINDS = {".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson", ".zip": "shapefile"}
_MAX_ZIP_RATIO = 50  # refuse zips that expand to more than 50x the upload (zip bombs)


@dataclass(frozen=True)
class PartitionParams:
    """Parameters of a partition job."""

    name: str
    admin_code: str | None = None
    household_range: tuple[int, int] = (300, 500)
    difficult_range: tuple[int, int] = (200, 300)
    crs: str | None = None
    seed: int = 0


def sniff_upload(path: Path, suffix: str, max_bytes: int) -> str:
    """Check that an uploaded file looks like the geodata its suffix says.

    Returns
    -------
    str
        The path to give to :func:`gridmap.read_buildings` (for a zipped Shapefile the
        extracted ``.shp``).

    Raises
    ------
    InputError
        Empty file, wrong content for the suffix, a zip without a Shapefile or one that
        would expand too much.
    """
    kind = UPLOAD_KINDS.get(suffix)
    if kind is None:
        raise InputError(
            f"unsupported file type {suffix or '(none)'}: upload a GeoPackage (.gpkg), "
            "GeoJSON (.geojson/.json) or a zipped Shapefile (.zip)",
            source=path.name,
        )
    size = path.stat().st_size
    if size == 0:
        raise InputError("the uploaded file is empty", source=path.name)
    with path.open("rb") as fh:
        head = fh.read(64)
    if kind == "gpkg" and not head.startswith(b"SQLite format 3\x00"):
        raise InputError("not a GeoPackage (no SQLite header)", source=path.name)
    if kind == "geojson":
        text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not text.startswith(b"{"):
            raise InputError("not GeoJSON (the file does not start with '{')", source=path.name)
    if kind == "shapefile":
        return str(_extract_shapefile(path, max_bytes))
    return str(path)


def _extract_shapefile(path: Path, max_bytes: int) -> Path:
    if not zipfile.is_zipfile(path):
        raise InputError("not a zip file", source=path.name)
    with zipfile.ZipFile(path) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        shps = [i for i in infos if i.filename.lower().endswith(".shp")]
        if not shps:
            raise InputError("the zip holds no .shp file", source=path.name)
        if len(shps) > 1:
            raise InputError(
                f"the zip holds {len(shps)} .shp files; upload one Shapefile per zip",
                source=path.name,
            )
        total = sum(i.file_size for i in infos)
        if total > max(max_bytes, path.stat().st_size) * _MAX_ZIP_RATIO:
            raise InputError("the zip expands to too much data", source=path.name)
        stem = shps[0].filename[: -len(".shp")]
        out = path.parent / "shp"
        out.mkdir(exist_ok=True)
        shp_path = None
        for info in infos:
            if not info.filename.startswith(stem + "."):
                continue
            ext = info.filename[len(stem) :].lower()
            target = out / f"upload{ext}"  # never use the zip's own paths (zip slip)
            with zf.open(info) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            if ext == ".shp":
                shp_path = target
        assert shp_path is not None
        return shp_path


class JobRunner:
    """Runs partition jobs in a small thread pool and records them in the store.

    Parameters
    ----------
    store : Store
        Where jobs and plans are recorded.
    workers : int
        Threads (partitions are CPU-heavy).
    """

    def __init__(self, store: Store, workers: int = 1):
        self.store = store
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix="gridmap-job"
        )

    def submit_partition(
        self, job_id: str, source: str, workdir: Path, params: PartitionParams, label: str
    ):
        """Queue a partition job; returns the future."""
        return self._pool.submit(self._run_partition, job_id, source, workdir, params, label)

    def shutdown(self, wait: bool = False) -> None:
        """Stop taking jobs (running ones finish when `wait`)."""
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def _progress(self, job_id: str, progress: float, message: str, **extra: Any) -> None:
        self.store.update_job(job_id, progress=progress, message=message, **extra)

    def _run_partition(
        self, job_id: str, source: str, workdir: Path, params: PartitionParams, label: str
    ) -> None:
        from gridmap.households import estimate_households
        from gridmap.load import read_buildings
        from gridmap.partition import plan_grids

        try:
            self._progress(job_id, 0.05, "reading footprints", status="running")
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
            text = str(exc).replace(source, label)
            text = text.replace(str(workdir) + "/", "").replace(str(workdir), "")
            line = " ".join(text.split())[:500] or type(exc).__name__
            if not isinstance(exc, GridmapError):
                line = f"{type(exc).__name__}: {line}"
            self.store.update_job(job_id, status="failed", error=line, message="failed")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
