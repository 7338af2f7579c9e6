"""Table export helpers shared by every output step.

Offices work in Excel, so every table is written twice: as CSV with a UTF-8 byte
order mark (so Excel shows Chinese text correctly) and as XLSX.
"""

from __future__ import annotations

import os
import tempfile
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
    _atomic_write(csv_path, lambda p: table.to_csv(p, index=False, encoding="utf-8-sig"))
    _atomic_write(xlsx_path, lambda p: _to_xlsx(table, p, sheet_name[:31]))
    return [csv_path, xlsx_path]


#: Excel's row limit is 1,048,576 including the header; longer tables continue on more sheets.
XLSX_MAX_ROWS = 1_048_575


def _to_xlsx(table: pd.DataFrame, path: Path, sheet: str) -> None:
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


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
