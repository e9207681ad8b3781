"""Writer and validator of the challenge's submission format.

    {'meta': {'use_lidar': bool, 'use_camera': bool, 'use_external': bool, 'output_format': 'vector',
              'method': str, 'authors': [...], 'e-mail': str, 'institution / company': str,
              'country / region': str},
     'results': {token: {'vectors': [N×2 in metres, ego frame], 'scores': [float], 'labels': [0|1|2]}}}

Tokens are the annotation frames' `timestamp` strings. The official scorer silently treats a missing
token as "no predictions" and crashes on a bad label or a 1-point line; `validate_submission` reports all
of those with the location and the reason instead.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .constants import CLASSES, DEFAULT_META
from .errors import HDMapInputError
from .io_utils import read_json_or_pickle, write_json_atomic

# The challenge server rejects larger files.
MAX_SUBMISSION_BYTES = 250 * 1024 * 1024
REQUIRED_META = ('use_lidar', 'use_camera', 'use_external', 'output_format')
_MAX_LISTED = 10


class SubmissionError(HDMapInputError):
    """A submission cannot be scored; the message lists every reason."""


@dataclass
class SubmissionReport:
    """Result of `validate_submission`: `errors` block scoring, `warnings` do not."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    missing_tokens: list[str] = field(default_factory=list)
    unknown_tokens: list[str] = field(default_factory=list)
    num_predictions: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        lines = [
            f'{len(self.errors)} error(s), {len(self.warnings)} warning(s), '
            f'{self.num_predictions} prediction(s)'
        ]
        lines += [f'error: {e}' for e in self.errors]
        lines += [f'warning: {w}' for w in self.warnings]
        return '\n'.join(lines)


def _listed(items: list[str]) -> str:
    head = ', '.join(repr(t) for t in items[:_MAX_LISTED])
    return head + (f', ... ({len(items) - _MAX_LISTED} more)' if len(items) > _MAX_LISTED else '')


def _check_frame(token: str, pred: Any, report: SubmissionReport) -> None:
    where = f'results[{token!r}]'
    err = report.errors
    if not isinstance(pred, Mapping):
        err.append(
            f'{where}: expected {{"vectors", "scores", "labels"}}, got {type(pred).__name__}'
        )
        return
    missing = [k for k in ('vectors', 'scores', 'labels') if k not in pred]
    if missing:
        err.append(f'{where}: missing key(s) {missing}')
        return
    vectors, scores, labels = pred['vectors'], pred['scores'], pred['labels']
    for name, value in (('vectors', vectors), ('scores', scores), ('labels', labels)):
        if not isinstance(value, (list, tuple, np.ndarray)):
            err.append(f'{where}.{name}: expected a list, got {type(value).__name__}')
            return
    if not len(vectors) == len(scores) == len(labels):
        err.append(
            f'{where}: vectors, scores and labels have different lengths '
            f'({len(vectors)}, {len(scores)}, {len(labels)})'
        )
        return
    report.num_predictions += len(labels)
    for i, label in enumerate(labels):
        ok = isinstance(label, numbers.Integral) and not isinstance(label, bool)
        if not ok or not 0 <= int(label) < len(CLASSES):
            err.append(
                f'{where}.labels[{i}]: unknown label {label!r}; expected an integer in '
                f'{{0: ped_crossing, 1: divider, 2: boundary}}'
            )
    for i, score in enumerate(scores):
        if (
            not isinstance(score, numbers.Real)
            or isinstance(score, bool)
            or not math.isfinite(score)
        ):
            err.append(f'{where}.scores[{i}]: expected a finite number, got {score!r}')
    for i, vec in enumerate(vectors):
        vw = f'{where}.vectors[{i}]'
        try:
            arr = np.asarray(vec, dtype=np.float64)
        except (TypeError, ValueError):
            err.append(f'{vw}: expected an N×2 array of numbers (x, y in metres)')
            continue
        if arr.ndim != 2 or arr.shape[1] != 2:
            err.append(f'{vw}: expected shape (N, 2) (x, y in metres), got {arr.shape}')
        elif len(arr) < 2:
            err.append(f'{vw}: polyline with {len(arr)} point(s); at least 2 are needed')
        elif not np.all(np.isfinite(arr)):
            err.append(f'{vw}: contains NaN or inf')


def validate_submission(
    submission: Any, tokens: Iterable[str] | None = None, *, strict_tokens: bool = False
) -> SubmissionReport:
    """Checks a submission (as loaded) against the challenge format.

    Args:
        submission: The loaded submission.
        tokens: The frame tokens of the ground truth, to report missing and unknown tokens.
        strict_tokens: Missing tokens become errors instead of warnings.
    """
    report = SubmissionReport()
    if not isinstance(submission, Mapping):
        report.errors.append(
            f'top level: expected {{"meta", "results"}}, got {type(submission).__name__}'
        )
        return report
    meta = submission.get('meta')
    if not isinstance(meta, Mapping):
        report.errors.append('meta: missing or not a dict (the challenge requires the meta block)')
    else:
        for key in REQUIRED_META:
            if key not in meta:
                report.errors.append(f'meta.{key}: missing')
        for key in ('use_lidar', 'use_camera', 'use_external'):
            if key in meta and not isinstance(meta[key], bool):
                report.errors.append(f'meta.{key}: expected true/false, got {meta[key]!r}')
        if 'output_format' in meta and meta['output_format'] != 'vector':
            report.errors.append(
                f"meta.output_format: expected 'vector', got {meta['output_format']!r}"
            )
    results = submission.get('results')
    if not isinstance(results, Mapping):
        report.errors.append('results: missing or not a dict {token: {vectors, scores, labels}}')
        return report
    for token, pred in results.items():
        if not isinstance(token, str):
            report.errors.append(
                f'results: token {token!r} is not a string (tokens are timestamp strings)'
            )
            continue
        _check_frame(token, pred, report)
    if tokens is not None:
        expected = list(tokens)
        expected_set = set(expected)
        report.missing_tokens = [t for t in expected if t not in results]
        report.unknown_tokens = [t for t in results if t not in expected_set]
        if report.missing_tokens:
            msg = (
                f'{len(report.missing_tokens)} of {len(expected)} ground-truth frame(s) have no entry in '
                f'results and are scored as frames without predictions: {_listed(report.missing_tokens)}'
            )
            (report.errors if strict_tokens else report.warnings).append(msg)
        if report.unknown_tokens:
            report.warnings.append(
                f'{len(report.unknown_tokens)} token(s) in results are not ground-truth frames and are '
                f'ignored: {_listed([str(t) for t in report.unknown_tokens])}'
            )
    return report


def build_submission(
    predictions: Mapping[str, Mapping[str, Any]], meta: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The submission dict: `meta` (defaults filled in) and JSON-ready `results`.

    Args:
        predictions: token -> {'vectors': (N, 2) arrays in metres, 'scores', 'labels'}. Lines with fewer
            than 2 points are dropped (as the challenge's own formatter does).
        meta: Overrides of `DEFAULT_META` (method, authors, e-mail, ...).
    """
    results = {}
    for token, pred in predictions.items():
        keep = [i for i, v in enumerate(pred['vectors']) if len(v) >= 2]
        results[str(token)] = {
            'vectors': [
                np.asarray(pred['vectors'][i], dtype=np.float64)[:, :2].tolist() for i in keep
            ],
            'scores': [float(pred['scores'][i]) for i in keep],
            'labels': [int(pred['labels'][i]) for i in keep],
        }
    return {'meta': {**DEFAULT_META, **(meta or {})}, 'results': results}


def frame_from_normalized(
    vectors: Iterable[Any],
    scores: Iterable[float],
    labels: Iterable[int],
    roi_size: tuple[float, float] | None = None,
) -> dict[str, list]:
    """One frame's entry from model outputs in normalised (0, 1) canvas coordinates.

    Args:
        vectors: Polylines (N, 2) normalised as in `data.map_targets.normalize_points`.
        scores: Confidence per polyline.
        labels: Class index per polyline.
        roi_size: ROI in metres (default: the challenge's 60 × 30 m).

    Returns:
        {'vectors': [(N, 2) in ego metres], 'scores', 'labels'} ready for `write_submission`.
    """
    from .constants import ROI_SIZE
    from .data.map_targets import denormalize_points

    roi = roi_size or ROI_SIZE
    return {
        'vectors': [denormalize_points(np.asarray(v), roi) for v in vectors],
        'scores': [float(s) for s in scores],
        'labels': [int(lab) for lab in labels],
    }


def write_submission(
    path: str | os.PathLike,
    predictions: Mapping[str, Mapping[str, Any]],
    meta: Mapping[str, Any] | None = None,
    tokens: Iterable[str] | None = None,
) -> SubmissionReport:
    """Builds, validates and atomically writes a submission JSON.

    Args:
        path: Output file (.json).
        predictions: See `build_submission`.
        meta: Overrides of the default meta block.
        tokens: Ground-truth tokens, to warn about frames without an entry.

    Returns:
        The validation report (warnings included); raises `SubmissionError` instead of writing an
        invalid file.
    """
    submission = build_submission(predictions, meta)
    report = validate_submission(submission, tokens)
    if not report.ok:
        raise SubmissionError(f'refusing to write {path}:\n' + report.summary())
    write_json_atomic(path, submission)
    size = Path(path).stat().st_size
    if size > MAX_SUBMISSION_BYTES:
        report.warnings.append(
            f'{path} is {size / 2**20:.0f} MB; the challenge server accepts at most 250 MB '
            '(keep fewer points per line or fewer low-score predictions)'
        )
    return report


def load_submission(
    path: str | os.PathLike, tokens: Iterable[str] | None = None, *, strict_tokens: bool = False
) -> tuple[dict[str, Any], SubmissionReport]:
    """Loads and validates a submission file; raises `SubmissionError` listing all errors."""
    data = read_json_or_pickle(path, 'submission')
    report = validate_submission(data, tokens, strict_tokens=strict_tokens)
    if not report.ok:
        raise SubmissionError(f'submission {path} cannot be scored:\n' + report.summary())
    if Path(path).stat().st_size > MAX_SUBMISSION_BYTES:
        report.warnings.append(f'{path} is larger than the challenge limit of 250 MB')
    return data, report
