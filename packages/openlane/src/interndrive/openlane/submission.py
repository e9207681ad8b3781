"""OpenLane-V2 submission files: writer, loader and a validator that says what is wrong and where.

Format (official `docs/submission.md`, checked by the devkit's `check_results`): a pickle of

    {'method': str, 'authors': [str] (≤ 10), 'e-mail': str, 'institution / company': str,
     'country / region': str (ISO 3166),
     'results': {(split, segment_id, timestamp): {'predictions': {
         'lane_centerline': [{'id': int, 'points': ndarray (N, 3), 'confidence': float}],
         'traffic_element': [{'id': int, 'attribute': int 0..12, 'points': ndarray (2, 2),
                              'confidence': float}],
         'topology_lclc': ndarray (n_lc, n_lc), 'topology_lcte': ndarray (n_lc, n_te)}}}}

Note the `predictions` level under each frame: some copies of the docs omit it, the devkit needs it.
The validator checks everything the devkit checks plus what makes its `evaluate` crash or give
NaN later (empty lanes, inverted boxes, non-finite values, missing or extra frames), and collects
every problem instead of stopping at the first.
"""

from __future__ import annotations

import numbers
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from interndrive.common.engine.atomic_files import atomic_write

from .constants import NUM_ATTRIBUTES

META_KEYS: tuple[str, ...] = (
    'method',
    'authors',
    'e-mail',
    'institution / company',
    'country / region',
)
MAX_AUTHORS = 10


class SubmissionError(ValueError):
    """A submission that the official evaluation would reject or mis-score."""


@dataclass
class ValidationReport:
    """Problems found in a submission: `errors` make it invalid, `warnings` do not."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_if_invalid(self, source: str = 'submission', limit: int = 20) -> None:
        if self.errors:
            shown = '\n  - '.join(self.errors[:limit])
            more = (
                f'\n  ... and {len(self.errors) - limit} more' if len(self.errors) > limit else ''
            )
            raise SubmissionError(
                f'{source} is invalid ({len(self.errors)} problems):\n  - {shown}{more}'
            )


def make_submission(
    predictions: Mapping[tuple[str, str, str], Mapping[str, Any]],
    method: str = 'InternImage-S baseline (interndrive)',
    authors: Iterable[str] = (),
    email: str = '',
    institution: str = '',
    country: str = 'CN',
) -> dict[str, Any]:
    """Wraps per-frame predictions ({token: predictions dict}) into the official layout."""
    return {
        'method': method,
        'authors': list(authors),
        'e-mail': email,
        'institution / company': institution,
        'country / region': country,
        'results': {token: {'predictions': dict(pred)} for token, pred in predictions.items()},
    }


def write_submission(
    path: str | Path, submission: Mapping[str, Any], validate: bool = True
) -> Path:
    """Writes the submission pickle atomically (temp file in the same folder, then rename)."""
    if validate:
        validate_submission(submission).raise_if_invalid('submission to write')
    path = Path(path)
    atomic_write(path, lambda f: pickle.dump(dict(submission), f, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def load_submission(path: str | Path) -> dict[str, Any]:
    """Loads a submission pickle; clear errors for a missing or non-pickle file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'submission file {path} does not exist')
    try:
        with open(path, 'rb') as f:
            obj = pickle.load(f)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as err:
        raise SubmissionError(f'{path} is not a readable submission pickle: {err}') from err
    if not isinstance(obj, dict):
        raise SubmissionError(f'{path}: expected a dict at the top level, got {type(obj).__name__}')
    return obj


def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and np.isfinite(x)


def _check_instance(where: str, inst: Any, kind: str, errors: list[str]) -> int | None:
    """Checks one lane or traffic element; returns its id (None if unusable)."""
    if not isinstance(inst, Mapping):
        errors.append(f'{where}: expected a dict, got {type(inst).__name__}')
        return None
    required = ('id', 'points', 'confidence') + (
        ('attribute',) if kind == 'traffic_element' else ()
    )
    missing = [k for k in required if k not in inst]
    if missing:
        errors.append(f'{where}: missing key(s) {missing}')
        return None
    where = f'{where} (id {inst["id"]!r})'
    if not isinstance(inst['id'], numbers.Integral) or isinstance(inst['id'], bool):
        errors.append(f'{where}: id must be an int, got {type(inst["id"]).__name__}')
    points = inst['points']
    if not isinstance(points, np.ndarray):
        errors.append(f'{where}: points must be a numpy.ndarray, got {type(points).__name__}')
    elif not np.issubdtype(points.dtype, np.number):
        errors.append(f'{where}: points must be numeric, got dtype {points.dtype}')
    elif kind == 'lane_centerline':
        if points.ndim != 2 or points.shape[1] != 3:
            errors.append(f'{where}: points must have shape (N, 3), got {points.shape}')
        elif points.shape[0] < 2:
            errors.append(f'{where}: a lane needs at least 2 points, got {points.shape[0]}')
        elif not np.isfinite(points).all():
            errors.append(f'{where}: points contain NaN or inf')
    else:
        if points.shape != (2, 2):
            errors.append(
                f'{where}: points must have shape (2, 2) [[x1, y1], [x2, y2]], got {points.shape}'
            )
        elif not np.isfinite(points).all():
            errors.append(f'{where}: points contain NaN or inf')
        elif (points[1] <= points[0]).any():
            errors.append(f'{where}: box must have x2 > x1 and y2 > y1, got {points.tolist()}')
    if not _is_real(inst['confidence']):
        errors.append(f'{where}: confidence must be a finite number, got {inst["confidence"]!r}')
    if kind == 'traffic_element':
        attr = inst['attribute']
        if (
            not isinstance(attr, numbers.Integral)
            or isinstance(attr, bool)
            or not 0 <= attr < NUM_ATTRIBUTES
        ):
            errors.append(
                f'{where}: attribute must be an int in [0, {NUM_ATTRIBUTES - 1}], got {attr!r}'
            )
    return inst['id']


def _check_matrix(where: str, m: Any, shape: tuple[int, int], errors: list[str]) -> None:
    if not isinstance(m, np.ndarray):
        errors.append(f'{where}: must be a numpy.ndarray, got {type(m).__name__}')
    elif m.shape != shape:
        errors.append(
            f'{where}: shape must be {shape} (rows/columns ordered like the lists), got {m.shape}'
        )
    elif not np.issubdtype(m.dtype, np.number) or not np.isfinite(m).all():
        errors.append(f'{where}: must hold finite numbers (scores in [0, 1])')
    elif m.size and (m.min() < 0 or m.max() > 1):
        errors.append(
            f'{where}: scores must lie in [0, 1], got range [{m.min():.3g}, {m.max():.3g}]'
        )


def _check_frame(token: Any, frame: Any, errors: list[str]) -> None:
    where = f'results[{token!r}]'
    if not (
        isinstance(token, tuple) and len(token) == 3 and all(isinstance(x, str) for x in token)
    ):
        errors.append(f'{where}: key must be a (split, segment_id, timestamp) tuple of str')
    if not isinstance(frame, Mapping):
        errors.append(f'{where}: expected a dict, got {type(frame).__name__}')
        return
    if 'predictions' not in frame:
        hint = ' (the official format nests them: results[token]["predictions"])'
        if 'lane_centerline' in frame:
            hint = (
                ' — found lane_centerline directly under the frame: wrap it in {"predictions": ...}'
            )
        errors.append(f'{where}: missing key "predictions"{hint}')
        return
    pred = frame['predictions']
    where = f'{where}["predictions"]'
    if not isinstance(pred, Mapping):
        errors.append(f'{where}: expected a dict, got {type(pred).__name__}')
        return
    ids: list[Any] = []
    counts = {}
    for kind in ('lane_centerline', 'traffic_element'):
        if kind not in pred:
            errors.append(f'{where}: missing key "{kind}"')
            return
        if not isinstance(pred[kind], list):
            errors.append(f'{where}["{kind}"]: must be a list, got {type(pred[kind]).__name__}')
            return
        counts[kind] = len(pred[kind])
        for k, inst in enumerate(pred[kind]):
            ids.append(_check_instance(f'{where}["{kind}"][{k}]', inst, kind, errors))
    seen, dup = set(), set()
    for i in ids:
        if i is not None and i in seen:
            dup.add(i)
        seen.add(i)
    if dup:
        errors.append(
            f'{where}: ids must be unique across lanes and traffic elements, repeated: {sorted(dup)}'
        )
    n_lc, n_te = counts['lane_centerline'], counts['traffic_element']
    for key, shape in (('topology_lclc', (n_lc, n_lc)), ('topology_lcte', (n_lc, n_te))):
        if key not in pred:
            errors.append(f'{where}: missing key "{key}"')
        else:
            _check_matrix(f'{where}["{key}"]', pred[key], shape, errors)


def validate_submission(
    submission: Any, gt_tokens: Iterable[tuple[str, str, str]] | None = None
) -> ValidationReport:
    """Checks a submission; with `gt_tokens`, also that it covers exactly those frames.

    Returns:
        A report; `report.raise_if_invalid()` raises `SubmissionError` listing every problem.
    """
    report = ValidationReport()
    errors, warnings = report.errors, report.warnings
    if not isinstance(submission, Mapping):
        errors.append(f'submission must be a dict, got {type(submission).__name__}')
        return report
    for key in META_KEYS:
        if key not in submission:
            warnings.append(
                f'missing meta key "{key}" (needed by the challenge server, not for scoring)'
            )
    for key in ('method', 'e-mail', 'institution / company', 'country / region'):
        if key in submission and not isinstance(submission[key], str):
            errors.append(f'"{key}" must be a str, got {type(submission[key]).__name__}')
    if 'authors' in submission:
        if not isinstance(submission['authors'], list):
            errors.append(f'"authors" must be a list, got {type(submission["authors"]).__name__}')
        elif len(submission['authors']) > MAX_AUTHORS:
            errors.append(
                f'"authors" lists {len(submission["authors"])} names; at most {MAX_AUTHORS}'
            )
    country = submission.get('country / region')
    if isinstance(country, str):
        from iso3166 import countries

        try:
            countries.get(country)
        except KeyError:
            errors.append(f'"country / region" {country!r} is not an ISO 3166 country name or code')
    if 'results' not in submission:
        errors.append(
            'missing key "results" ({(split, segment_id, timestamp): {"predictions": ...}})'
        )
        return report
    results = submission['results']
    if not isinstance(results, Mapping):
        errors.append(f'"results" must be a dict, got {type(results).__name__}')
        return report
    for token, frame in results.items():
        _check_frame(token, frame, errors)
    if gt_tokens is not None:
        gt_set = set(gt_tokens)
        missing = [t for t in gt_set if t not in results]
        extra = [t for t in results if t not in gt_set]
        if missing:
            errors.append(
                f'{len(missing)} ground-truth frames have no prediction, e.g. {sorted(missing)[0]}'
            )
        if extra:
            errors.append(
                f'{len(extra)} predicted frames are not in the ground truth, e.g. {sorted(extra, key=str)[0]}'
            )
    return report


def devkit_metrics_to_flat(metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """The devkit's nested result → {'OLS', 'DET_l', 'DET_t', 'TOP_ll', 'TOP_lt', 'F-Score'}."""
    ols = metrics['OpenLane-V2 Score']
    flat = {'OLS': float(ols['score'])}
    flat.update({k: float(ols[k]) for k in ('DET_l', 'DET_t', 'TOP_ll', 'TOP_lt')})
    flat['F-Score'] = float(metrics['F-Score for 3D Lane']['score'])
    return flat
