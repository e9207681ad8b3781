"""The one error type of this package for bad user input (files, arguments).

It subclasses the CLI's `InterndriveError` when interndrive-common provides it, so `interndrive ...`
prints it as a one-line error; it is also a ValueError for plain Python callers.
"""

from __future__ import annotations

try:
    from interndrive.common.engine.checks import InterndriveError as _UserError
except ImportError:  # interndrive-common without the engine (or an older one)

    class _UserError(Exception):  # type: ignore[no-redef]
        """Fallback base: an error caused by the user's input."""


class OccupancyDataError(_UserError, ValueError):
    """A file or argument that is not in the expected Occ3D / interndrive-occupancy format."""
