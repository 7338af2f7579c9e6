"""gridmap web layer: a FastAPI app (map view + JSON API) over the :mod:`gridmap` package.

Start it with ``gridmap serve`` or build it with :func:`create_app`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any):
    """Build the app; see :func:`api.main.create_app`."""
    from .main import create_app as _create_app

    return _create_app(*args, **kwargs)
