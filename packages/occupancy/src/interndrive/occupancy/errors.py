"""The one error type of this package for bad user input (files, arguments).

It is a ValueError for plain Python callers and an `InterndriveError` for the `interndrive` CLI
(printed as one line, exit status 2). `interndrive.common.engine.checks` imports neither torch nor
mmengine (~40 ms), so offline scoring stays light. (An earlier version only subclassed
`InterndriveError` when the CLI had already imported `checks`, which made the class depend on
import order: a dataset error raised inside `run_train` was then not recognised by the CLI.)
"""

from __future__ import annotations

try:
    from interndrive.common.engine.checks import InterndriveError

    _BASES: tuple[type[Exception], ...] = (InterndriveError, ValueError)
except ImportError:  # interndrive-common absent: plain numpy use of the offline metric
    _BASES = (ValueError,)


class OccupancyDataError(*_BASES):  # type: ignore[misc]
    """A file or argument that is not in the expected Occ3D / interndrive-occupancy format."""
