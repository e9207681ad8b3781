"""Challenge submission format: one compressed `.npz` per sample, named `<sample_token>.npz`.

Each file is written like the CVPR 2023 occupancy challenge asks, `np.savez_compressed(path,
occ_pred.astype(np.uint8))` — one unnamed array (stored as `arr_0`) of shape (200, 200, 16), class ids
0..17 indexed [x, y, z]. The folder is zipped for upload (`pack_submission`). `validate_submission`
checks a folder or zip and gives one reason per rejected file; `iter_submission` streams predictions
for evaluation without loading them all.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from interndrive.occupancy.constants import GRID_SHAPE, NUM_CLASSES
from interndrive.occupancy.errors import OccupancyDataError
from interndrive.occupancy.io_utils import atomic_savez_compressed, atomic_write

TOKEN_PATTERN = re.compile(r'^[0-9a-f]{32}$')  # nuScenes sample tokens
ARRAY_KEY = 'arr_0'  # the name numpy gives the single positional array of np.savez_compressed


def check_prediction(pred: np.ndarray, source: str) -> np.ndarray:
    """Returns `pred` if it is a valid challenge prediction, else raises naming `source` and the reason."""
    pred = np.asarray(pred)
    if pred.shape != GRID_SHAPE:
        raise OccupancyDataError(f'{source}: shape {pred.shape}, expected {GRID_SHAPE}')
    if pred.dtype != np.uint8:
        raise OccupancyDataError(f'{source}: dtype {pred.dtype}, expected uint8')
    if int(pred.max()) >= NUM_CLASSES:
        raise OccupancyDataError(f'{source}: class id {int(pred.max())} found, expected 0..17')
    return pred


def save_prediction(folder: str | os.PathLike[str], sample_token: str, pred: np.ndarray) -> Path:
    """Writes `<folder>/<sample_token>.npz` in the challenge format (atomically).

    Args:
        folder: Submission folder (created if missing).
        sample_token: nuScenes sample token (32 lowercase hex characters).
        pred: (200, 200, 16) class ids; any integer dtype with values 0..17 is accepted and stored as uint8.
    """
    if not TOKEN_PATTERN.match(sample_token):
        raise OccupancyDataError(
            f'sample_token {sample_token!r}: expected 32 lowercase hex characters'
        )
    pred = np.asarray(pred)
    if (
        np.issubdtype(pred.dtype, np.integer)
        and pred.size
        and pred.min() >= 0
        and pred.max() < NUM_CLASSES
    ):
        pred = pred.astype(np.uint8)
    check_prediction(pred, f'prediction for {sample_token}')
    return atomic_savez_compressed(Path(folder) / f'{sample_token}.npz', pred)


def _read_npz(data: bytes | Path, source: str) -> np.ndarray:
    try:
        with np.load(io.BytesIO(data) if isinstance(data, bytes) else data) as npz:
            if npz.files != [ARRAY_KEY]:
                raise OccupancyDataError(
                    f'{source}: holds arrays {npz.files}, expected exactly one unnamed array '
                    f'(np.savez_compressed(path, pred) stores it as {ARRAY_KEY!r})'
                )
            array = npz[ARRAY_KEY]
    except OccupancyDataError:
        raise
    except Exception as e:  # zipfile/pickle/format errors all mean "not a valid npz"
        raise OccupancyDataError(
            f'{source}: not a readable .npz file ({type(e).__name__}: {e})'
        ) from e
    return check_prediction(array, source)


def _entries(path: Path) -> dict[str, Callable[[], np.ndarray]]:
    """token -> loader for every `.npz` of a submission folder or zip; other files map to None."""
    loaders: dict[str, Callable[[], np.ndarray]] = {}
    if path.is_dir():
        for file in sorted(path.rglob('*')):
            if file.is_file():
                name = file.relative_to(path).as_posix()
                loaders[name] = lambda f=file, n=name: _read_npz(f, f'{path}/{n}')
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
        for name in names:  # each read opens its own handle: no leak, safe from several threads
            loaders[name] = lambda n=name: _read_npz(_read_member(path, n), f'{path}:{n}')
    elif path.exists():
        raise OccupancyDataError(
            f'submission {str(path)!r}: expected a folder or a .zip of <token>.npz files'
        )
    else:
        raise OccupancyDataError(f'submission {str(path)!r} does not exist')
    return loaders


@dataclass
class SubmissionReport:
    """Outcome of `validate_submission`: the tokens found and one message per problem."""

    tokens: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_if_invalid(self, max_listed: int = 10) -> None:
        if self.errors:
            listed = '; '.join(self.errors[:max_listed])
            more = (
                f' (+{len(self.errors) - max_listed} more)' if len(self.errors) > max_listed else ''
            )
            raise OccupancyDataError(f'invalid submission: {listed}{more}')


def _token_of(name: str) -> str | None:
    stem = name.rsplit('/', 1)[-1]
    return stem[: -len('.npz')] if stem.endswith('.npz') else None


def validate_submission(
    path: str | os.PathLike[str],
    expected_tokens: Iterable[str] | None = None,
    check_contents: bool = True,
) -> SubmissionReport:
    """Checks a submission folder or zip.

    Args:
        path: Folder or .zip holding `<sample_token>.npz` files (directly or in one sub-folder).
        expected_tokens: Sample tokens that must all be present (e.g. the val or test split); files
            for other tokens are reported as unexpected. None skips both checks.
        check_contents: Also open every file and check shape (200,200,16), dtype uint8, ids 0..17.

    Returns:
        A report; `report.ok` is True when there is nothing to reject.
    """
    path = Path(path)
    report = SubmissionReport()
    seen: dict[str, str] = {}
    for name, load in _entries(path).items():
        token = _token_of(name)
        if token is None:
            report.errors.append(f'{name}: not a .npz file')
            continue
        if not TOKEN_PATTERN.match(token):
            report.errors.append(
                f'{name}: file name must be <sample_token>.npz with a 32-hex token'
            )
            continue
        if token in seen:
            report.errors.append(f'{name}: duplicate of {seen[token]}')
            continue
        seen[token] = name
        report.tokens.add(token)
        if check_contents:
            try:
                load()
            except OccupancyDataError as e:
                report.errors.append(str(e))
    if expected_tokens is not None:
        expected = set(expected_tokens)
        missing = sorted(expected - report.tokens)
        unexpected = sorted(report.tokens - expected)
        if missing:
            shown = ', '.join(missing[:5]) + (' ...' if len(missing) > 5 else '')
            report.errors.append(f'missing predictions for {len(missing)} sample token(s): {shown}')
        if unexpected:
            shown = ', '.join(unexpected[:5]) + (' ...' if len(unexpected) > 5 else '')
            report.errors.append(f'{len(unexpected)} file(s) for tokens not in the split: {shown}')
    return report


def iter_submission_loaders(
    path: str | os.PathLike[str],
) -> Iterator[tuple[str, Callable[[], np.ndarray]]]:
    """(token, loader) for every `<token>.npz` of a folder or zip; a loader reads and checks one file
    and may be called from several threads."""
    for name, load in _entries(Path(path)).items():
        token = _token_of(name)
        if token is not None:
            yield token, load


def _read_member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)


def iter_submission(
    path: str | os.PathLike[str], tokens: Iterable[str] | None = None
) -> Iterator[tuple[str, np.ndarray]]:
    """Yields (token, prediction) one file at a time (all tokens, or the given ones in order)."""
    loaders = {_token_of(name): load for name, load in _entries(Path(path)).items()}
    for token in sorted(t for t in loaders if t) if tokens is None else tokens:
        if token not in loaders:
            raise OccupancyDataError(
                f'submission {str(path)!r}: no prediction for sample token {token}'
            )
        yield token, loaders[token]()


def pack_submission(folder: str | os.PathLike[str], zip_path: str | os.PathLike[str]) -> Path:
    """Zips `<folder>/*.npz` as `<folder name>/<token>.npz` entries (atomic). npz files are already
    compressed, so entries are stored, not deflated again."""
    folder = Path(folder)
    files = sorted(folder.glob('*.npz'))
    if not files:
        raise OccupancyDataError(f'submission folder {str(folder)!r} holds no .npz files')

    def write(f) -> None:
        with zipfile.ZipFile(f, 'w', compression=zipfile.ZIP_STORED) as archive:
            for file in files:
                archive.write(file, f'{folder.name}/{file.name}')

    return atomic_write(zip_path, write)
