"""The one error type of this package for bad user input (files, arguments).

It is a ValueError for plain Python callers. When the `interndrive` CLI is running (it has loaded
`interndrive.common.engine.checks`), it also subclasses the CLI's `InterndriveError`, so the CLI prints
it as a one-line error. The engine package is deliberately not imported here: it pulls in torch and
mmengine, and offline scoring must stay light (numpy only).
"""

from __future__ import annotations

import sys

_checks = sys.modules.get('interndrive.common.engine.checks')
_BASES: tuple[type[Exception], ...] = (
    (_checks.InterndriveError, ValueError)
    if hasattr(_checks, 'InterndriveError')
    else (ValueError,)
)


class OccupancyDataError(*_BASES):  # type: ignore[misc]
    """A file or argument that is not in the expected Occ3D / interndrive-occupancy format."""
