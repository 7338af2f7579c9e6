"""Every notebook in notebooks/ runs top to bottom, headless, without errors.

The notebooks work on the embedded sample town. They are executed with nbclient in the
``python3`` kernel; jupyter_client starts it with the interpreter running the tests (the
venv), so the notebooks import this checkout of gridmap. Each cell may take up to
10 minutes. The working directory of a notebook is a temporary folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 600  # seconds per cell

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def _kernel_name() -> str:
    """The ipykernel kernel to run notebooks in: ``python3`` of this interpreter."""
    pytest.importorskip("ipykernel")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:  # pragma: no cover - ipykernel always provides python3
        pytest.skip("no python3 kernel; install ipykernel (pip install ipykernel)")
    # A kernel spec naming plain "python" is started with sys.executable by jupyter_client.
    exe = spec.argv[0]
    if exe not in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        if Path(exe).resolve() != Path(sys.executable).resolve():  # pragma: no cover
            pytest.skip(f"the python3 kernel runs {exe}, not this interpreter {sys.executable}")
    return "python3"


def test_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert {"01_plan_grids.ipynb", "02_events.ipynb", "03_flood_evacuation.ipynb"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if not (REPO / "gridmap" / "sample.py").is_file():
        pytest.skip("gridmap/sample.py (the embedded sample town) is not written yet")
    # The kernel inherits the environment: temporary folders of the notebook go here.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name=_kernel_name(),
        resources={"metadata": {"path": str(tmp_path)}},
        allow_errors=False,
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name} failed:\n{exc}")
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors, errors
