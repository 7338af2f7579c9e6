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
