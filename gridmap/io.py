"""Table export helpers shared by every output step.

Offices work in Excel, so every table is written twice: as CSV with a UTF-8 byte
order mark (so Excel shows Chinese text correctly) and as XLSX.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd


def write_table(
    df: pd.DataFrame, path: str | os.PathLike, *, sheet_name: str = "table"
) -> list[Path]:
    """Write `df` as ``<path>.csv`` and ``<path>.xlsx``.

    Parameters
    ----------
    df : pandas.DataFrame
        The table. A geometry column, if any, is dropped.
    path : path-like
        Output path without suffix (a ``.csv`` or ``.xlsx`` suffix is stripped).
    sheet_name : str
        Name of the Excel sheet (cut to 31 characters, Excel's limit).

    Returns
    -------
    list of pathlib.Path
        The CSV and XLSX paths written.
    """
    stem = Path(path)
    if stem.suffix.lower() in (".csv", ".xlsx"):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(df).drop(columns=["geometry"], errors="ignore")
    csv_path = stem.with_suffix(".csv")
    xlsx_path = stem.with_suffix(".xlsx")
    atomic_write(csv_path, lambda p: table.to_csv(p, index=False, encoding="utf-8-sig"))
    atomic_write(xlsx_path, lambda p: to_xlsx(table, p, sheet_name[:31]))
    return [csv_path, xlsx_path]


#: Excel's row limit is 1,048,576 including the header; longer tables continue on more sheets.
XLSX_MAX_ROWS = 1_048_575


def to_xlsx(table: pd.DataFrame, path: str | os.PathLike, sheet: str) -> None:
    """Write `table` to the Excel workbook `path` (time zones dropped: Excel has none;
    beyond :data:`XLSX_MAX_ROWS` rows the table continues on sheets ``<sheet>_2``...)."""
    out = table.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            # Excel cannot store time zones: write local wall-clock time.
            out[col] = out[col].dt.tz_localize(None)
    # xlsxwriter streams rows and is several times faster than openpyxl for big tables.
    with pd.ExcelWriter(path, engine="xlsxwriter") as writer:
        if len(out) <= XLSX_MAX_ROWS:
            out.to_excel(writer, index=False, sheet_name=sheet)
            return
        for i, start in enumerate(range(0, len(out), XLSX_MAX_ROWS)):
            name = f"{sheet[:27]}_{i + 1}"
            out.iloc[start : start + XLSX_MAX_ROWS].to_excel(writer, index=False, sheet_name=name)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Write a file through a temporary file in the same folder, then rename it.

    An interrupted write never leaves a half-written `path`. The file gets the mode
    any other file the user saves gets (``0o666`` less the umask), not the ``0o600`` of
    a temporary file, so colleagues on a shared drive can open it.

    Parameters
    ----------
    path : path-like
        The file to write.
    write : callable
        Called with the temporary path (same folder and suffix as `path`); writes the
        content there.

    Returns
    -------
    pathlib.Path
        `path`.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def file_mode() -> int:
    """The mode of a new file under the process's umask (``0o666 & ~umask``)."""
    try:  # Linux shows the umask without changing it (os.umask would, for a moment)
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask
