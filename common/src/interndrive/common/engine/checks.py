"""User-facing input checks shared by the CLI and the task packages.

Every check raises an `InterndriveError` subclass with a one-line message that names the offending
file or argument and says what was expected. The CLI prints such errors as
`interndrive: error: <message>` and exits with status 2, without a traceback; anything else is a bug
and keeps its traceback.

The exception classes take exactly one message argument on purpose: mmengine's registry re-raises
errors from a module's constructor as `type(e)(f'class X in Y: {e}')`, so a multi-argument
constructor would turn a clear error into a confusing TypeError.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

#: Exit status of the CLI for user errors (bad arguments, missing files), like argparse.
USER_ERROR_EXIT_CODE = 2


class InterndriveError(Exception):
    """An error caused by the user's input, reported in one line without a traceback."""


class MissingPathError(InterndriveError, FileNotFoundError):
    """A required file or folder (data root, info file, config, checkpoint) does not exist."""


class SplitError(InterndriveError, ValueError):
    """A dataset split name that the dataset does not have."""


class ConfigError(InterndriveError, ValueError):
    """A config that cannot be found, resolved to a task, or is inconsistent."""


class CheckpointMismatchError(InterndriveError, RuntimeError):
    """A checkpoint whose weights do not fit the model built from the config."""


def _hint(hint: str | None) -> str:
    return f' ({hint})' if hint else ''


def require_file(path: str | os.PathLike[str], what: str, hint: str | None = None) -> Path:
    """Returns `path` as a Path if it is an existing file, else raises MissingPathError.

    Args:
        path: The file to check.
        what: What the file is, for the message (e.g. `'info file'`, `'annotation file'`).
        hint: Optional advice appended to the message (e.g. which command creates the file).
    """
    p = Path(path).expanduser()
    if p.is_dir():
        raise MissingPathError(f'{what} {str(p)!r} is a folder, expected a file{_hint(hint)}')
    if not p.is_file():
        raise MissingPathError(f'{what} {str(p)!r} does not exist{_hint(hint)}')
    return p


def require_dir(path: str | os.PathLike[str], what: str, hint: str | None = None) -> Path:
    """Returns `path` as a Path if it is an existing folder, else raises MissingPathError.

    Args:
        path: The folder to check.
        what: What the folder is, for the message (e.g. `'data root'`).
        hint: Optional advice appended to the message (e.g. `'set data_root with --cfg-options'`).
    """
    p = Path(path).expanduser()
    if p.is_file():
        raise MissingPathError(f'{what} {str(p)!r} is a file, expected a folder{_hint(hint)}')
    if not p.is_dir():
        raise MissingPathError(f'{what} {str(p)!r} does not exist{_hint(hint)}')
    return p


def require_split(name: str, allowed: Iterable[str], what: str = 'split') -> str:
    """Returns `name` if it is one of `allowed`, else raises SplitError listing the choices.

    Args:
        name: The split name given by the user or config.
        allowed: The split names the dataset has (e.g. `('train', 'val', 'test')`).
        what: What the name is, for the message (e.g. `'OpenLane-V2 split'`).
    """
    choices = list(allowed)
    if name not in choices:
        raise SplitError(
            f'unknown {what} {name!r}; expected one of: {", ".join(map(repr, choices))}'
        )
    return name


def user_error_message(error: BaseException) -> str | None:
    """The one-line message for an error caused by user input, or None for a bug.

    Besides InterndriveError, an mmengine registry KeyError (`'X is not in the ... registry'`: a type
    in the config that no imported module registers) counts as a user error.
    """
    if isinstance(error, InterndriveError):
        return str(error)
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else ''
    if 'registry' in text and 'is not in the' in text:
        return f'config uses an unknown type: {text}'
    return None


def run_reporting_user_errors(func, *args, **kwargs) -> int:
    """Calls `func`; user errors print `interndrive: error: <message>` and return exit code 2.

    Returns `func`'s int result (None counts as 0).
    """
    import sys

    try:
        result = func(*args, **kwargs)
    except (InterndriveError, KeyError) as e:
        message = user_error_message(e)
        if message is None:
            raise
        print(f'interndrive: error: {message}', file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    return 0 if result is None else int(result)
