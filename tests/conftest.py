"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"
SAMPLE_TOWN = REPO / "data" / "sample_town.gpkg"


@pytest.fixture(scope="session")
def realdata() -> Path:
    """Folder of public real data (``../shared/realdata``); skip when it is absent."""
    if not REALDATA.is_dir():
        pytest.skip("../shared/realdata absent")
    return REALDATA


@pytest.fixture(scope="session")
def sample_town_path() -> Path:
    """The generated sample town GeoPackage; skip until it exists."""
    if not SAMPLE_TOWN.is_file():
        pytest.skip("data/sample_town.gpkg not generated yet")
    return SAMPLE_TOWN


@pytest.fixture(scope="session")
def main_job_out(tmp_path_factory, sample_town_path) -> Path:
    """The folder of one run of the main job (``gridmap run``) on the sample town."""
    from gridmap.pipeline import run_sample

    out = tmp_path_factory.mktemp("main_job")
    run_sample(out)
    return out
