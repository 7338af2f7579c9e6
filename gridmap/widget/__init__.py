"""Jupyter widgets for planners: :class:`GridEditor` paints buildings onto grids.

Needs the optional dependency anywidget (``pip install gridmap[notebook]``).
"""

from __future__ import annotations

from .editor import GridEditor

__all__ = ["GridEditor"]
