"""Exceptions raised by gridmap.

Every error that comes from bad input is a :class:`GridmapError`. Its message names
the file (or object), the row or column, and what is wrong, so that the CLI can show
it as a single line and exit with a non-zero code.
"""

from __future__ import annotations


class GridmapError(Exception):
    """Base class for all errors caused by the caller's input or settings.

    Parameters
    ----------
    message : str
        What is wrong, in plain words.
    source : str, optional
        The file path or object the problem was found in.
    where : str, optional
        Row, column, layer or feature that holds the problem.
    """

    def __init__(self, message: str, *, source: str | None = None, where: str | None = None):
        self.message = message
        self.source = source
        self.where = where
        super().__init__(self._format())

    def _format(self) -> str:
        parts = []
        if self.source:
            parts.append(str(self.source))
        if self.where:
            parts.append(str(self.where))
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class InputError(GridmapError):
    """A file or table cannot be used: missing, empty, unreadable or malformed."""


class CRSError(GridmapError):
    """A layer has no coordinate reference system or one that cannot be used."""


class GeometryError(GridmapError):
    """Geometry is missing, of the wrong type, or cannot be repaired."""


class SchemaError(GridmapError):
    """A required column is missing, unknown, or holds values of the wrong kind."""


class PlanError(GridmapError):
    """A plan cannot be built, read or edited as asked."""
