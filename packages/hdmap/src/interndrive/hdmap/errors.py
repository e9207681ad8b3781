"""User-input errors of the HD map task, reported by the `interndrive` CLI without a traceback.

They subclass the CLI's `InterndriveError` (printed as `interndrive: error: <message>`, exit status 2)
and the builtin a Python caller would expect (`ValueError` for bad content, `FileNotFoundError` for a
missing file, via `MissingPathError`), so library users can keep catching the builtins.
`interndrive.common.engine.checks` imports neither torch nor OpenMMLab: offline scoring stays light.
"""

from __future__ import annotations

from interndrive.common.engine.checks import InterndriveError, MissingPathError


class HDMapInputError(InterndriveError, ValueError):
    """A file or argument that does not fit the challenge format; the message names it.

    One message argument only: mmengine's registry re-raises constructor errors as `type(e)(msg)`.
    """


__all__ = ['HDMapInputError', 'MissingPathError']
