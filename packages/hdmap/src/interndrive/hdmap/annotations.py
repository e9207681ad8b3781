"""The challenge's annotation format: `{segment_id: [frame, ...]}` (see README "Data layout").

A frame is
    {'segment_id': str, 'timestamp': str (the frame's token),
     'sensor': {camera: {'image_path': str, 'intrinsic': 3×3, 'extrinsic': 4×4 ego→camera}} for 7 cameras,
     'annotation': {'ped_crossing' | 'divider' | 'boundary': [N×4 (x, y, z, visibility), ...]},
     'pose': {'ego2global_translation': 3, 'ego2global_rotation': 3×3}}
with all coordinates in metres, map elements in the ego frame truncated to the 60 × 30 m ROI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .constants import CAMERAS, CLASSES, ROI_SIZE
from .errors import HDMapInputError
from .io_utils import read_json_or_pickle, write_json_atomic

Annotations = dict[str, list[dict[str, Any]]]

# Map elements may poke out of the ROI by this much (clipping and float rounding) before we warn.
ROI_TOLERANCE = 0.05


class AnnotationError(HDMapInputError):
    """An annotation file does not follow the challenge format; the message lists every problem."""


@dataclass
class AnnotationReport:
    """Problems found in an annotation file: `errors` make it unusable, `warnings` do not."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    num_frames: int = 0
    frames_without_map: int = 0  # frames with no 'annotation' key (the test split)

    @property
    def ok(self) -> bool:
        return not self.errors


def _matrix(value: Any, shape: tuple[int, ...], where: str, errors: list[str]) -> np.ndarray | None:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        errors.append(f'{where}: expected a {"×".join(map(str, shape))} array of numbers')
        return None
    if arr.shape != shape:
        errors.append(f'{where}: expected shape {shape}, got {arr.shape}')
        return None
    if not np.all(np.isfinite(arr)):
        errors.append(f'{where}: contains NaN or inf')
        return None
    return arr


def _check_frame(
    frame: Any, seg: str, i: int, report: AnnotationReport, require_map: bool
) -> str | None:
    where = f'[{seg!r}][{i}]'
    err = report.errors
    if not isinstance(frame, Mapping):
        err.append(f'{where}: expected a frame dict, got {type(frame).__name__}')
        return None
    missing = [k for k in ('segment_id', 'timestamp', 'sensor', 'pose') if k not in frame]
    if 'annotation' not in frame:
        report.frames_without_map += 1
        if require_map:
            missing.append('annotation')
    if missing:
        hint = (
            ' (a test split without map annotations can only be read for inference: '
            'test_mode=True / --format-only)'
            if missing == ['annotation']
            else ''
        )
        err.append(f'{where}: missing key(s) {missing}{hint}')
        return None
    if frame['segment_id'] != seg:
        err.append(
            f'{where}.segment_id: {frame["segment_id"]!r} differs from its segment key {seg!r}'
        )
    token = frame['timestamp']
    if not isinstance(token, str) or not token:
        err.append(
            f'{where}.timestamp: expected a non-empty string (it is the frame token), got {token!r}'
        )
        token = None

    sensor = frame['sensor']
    if not isinstance(sensor, Mapping):
        err.append(f'{where}.sensor: expected a dict of cameras')
    else:
        absent = [c for c in CAMERAS if c not in sensor]
        if absent:
            err.append(f'{where}.sensor: missing camera(s) {absent} (expected the 7 ring cameras)')
        for cam in CAMERAS:
            info = sensor.get(cam)
            if not isinstance(info, Mapping):
                continue
            cw = f'{where}.sensor.{cam}'
            if not isinstance(info.get('image_path'), str):
                err.append(f'{cw}.image_path: expected a string')
            k = _matrix(info.get('intrinsic'), (3, 3), f'{cw}.intrinsic', err)
            if k is not None and (k[0, 0] <= 0 or k[1, 1] <= 0 or not np.allclose(k[2], [0, 0, 1])):
                err.append(
                    f'{cw}.intrinsic: expected [[fx,0,cx],[0,fy,cy],[0,0,1]] with fx, fy > 0'
                )
            e = _matrix(info.get('extrinsic'), (4, 4), f'{cw}.extrinsic', err)
            if e is not None and not np.allclose(e[3], [0, 0, 0, 1]):
                err.append(
                    f'{cw}.extrinsic: last row must be [0, 0, 0, 1] (a rigid ego→camera transform)'
                )

    pose = frame['pose']
    if not isinstance(pose, Mapping):
        err.append(f'{where}.pose: expected a dict')
    else:
        _matrix(
            pose.get('ego2global_translation'), (3,), f'{where}.pose.ego2global_translation', err
        )
        r = _matrix(
            pose.get('ego2global_rotation'), (3, 3), f'{where}.pose.ego2global_rotation', err
        )
        if r is not None and not np.allclose(r @ r.T, np.eye(3), atol=1e-3):
            err.append(f'{where}.pose.ego2global_rotation: not a rotation matrix (R·Rᵀ ≠ I)')

    if 'annotation' not in frame:
        return token
    ann = frame['annotation']
    if not isinstance(ann, Mapping):
        err.append(f'{where}.annotation: expected a dict of classes')
        return token
    unknown = sorted(set(ann) - set(CLASSES))
    if unknown:
        err.append(f'{where}.annotation: unknown class(es) {unknown}; expected {list(CLASSES)}')
    for cat in CLASSES:
        if cat not in ann:
            err.append(f'{where}.annotation: missing class {cat!r}')
            continue
        if not isinstance(ann[cat], list):
            err.append(f'{where}.annotation.{cat}: expected a list of polylines')
            continue
        for j, line in enumerate(ann[cat]):
            lw = f'{where}.annotation.{cat}[{j}]'
            try:
                arr = np.asarray(line, dtype=np.float64)
            except (TypeError, ValueError):
                err.append(f'{lw}: expected an N×4 array of numbers (x, y, z, visibility)')
                continue
            if arr.ndim != 2 or arr.shape[1] != 4:
                err.append(f'{lw}: expected shape (N, 4) (x, y, z, visibility), got {arr.shape}')
            elif len(arr) < 2:
                err.append(f'{lw}: has {len(arr)} point(s); a polyline needs at least 2')
            elif not np.all(np.isfinite(arr)):
                err.append(f'{lw}: contains NaN or inf')
            else:
                half = np.array(ROI_SIZE) / 2 + ROI_TOLERANCE
                if np.any(np.abs(arr[:, :2]) > half):
                    report.warnings.append(
                        f'{lw}: points outside the {ROI_SIZE[0]:g}×{ROI_SIZE[1]:g} m ROI'
                    )
    return token


def validate_annotations(data: Any, require_map: bool = True) -> AnnotationReport:
    """Checks an in-memory annotation structure; returns every problem found (never raises).

    Args:
        data: The loaded `{segment_id: [frame]}` structure.
        require_map: Frames must carry `annotation` (map ground truth). False for a test split, whose
            frames may have cameras and poses only (upstream reads `annotation` only outside test mode).
    """
    report = AnnotationReport()
    if not isinstance(data, Mapping):
        report.errors.append(
            f'top level: expected {{segment_id: [frame, ...]}}, got {type(data).__name__}'
        )
        return report
    seen: dict[str, str] = {}
    for seg, frames in data.items():
        if not isinstance(frames, list):
            report.errors.append(
                f'[{seg!r}]: expected a list of frames, got {type(frames).__name__}'
            )
            continue
        previous = None
        for i, frame in enumerate(frames):
            token = _check_frame(frame, seg, i, report, require_map)
            report.num_frames += 1
            if token is None:
                continue
            if token in seen:
                report.errors.append(
                    f'[{seg!r}][{i}].timestamp: token {token!r} already used in segment {seen[token]!r}; '
                    'tokens must be unique because submissions are keyed by them'
                )
            seen[token] = seg
            if (
                previous is not None
                and token.isdigit()
                and previous.isdigit()
                and int(token) < int(previous)
            ):
                report.warnings.append(f'[{seg!r}][{i}]: frames are not ordered by timestamp')
            previous = token
    if report.num_frames == 0:
        report.errors.append('the file contains no frames')
    return report


def load_annotations(path: str | os.PathLike, require_map: bool = True) -> Annotations:
    """Loads and validates an annotation file; raises `AnnotationError` listing all problems.

    Args:
        path: The annotation .json (or .pkl).
        require_map: See `validate_annotations` (False: frames without `annotation` are accepted).
    """
    data = read_json_or_pickle(path, 'annotation file')
    report = validate_annotations(data, require_map)
    if not report.ok:
        shown = '\n  '.join(report.errors[:20])
        more = f'\n  ... and {len(report.errors) - 20} more' if len(report.errors) > 20 else ''
        raise AnnotationError(
            f'annotation file {path}: {len(report.errors)} problem(s):\n  {shown}{more}'
        )
    return data


def save_annotations(data: Annotations, path: str | os.PathLike) -> Path:
    """Validates and writes an annotation file atomically."""
    report = validate_annotations(data)
    if not report.ok:
        raise AnnotationError(
            'refusing to write invalid annotations:\n  ' + '\n  '.join(report.errors[:20])
        )
    return write_json_atomic(path, data)


def iter_frames(data: Annotations) -> Iterator[dict[str, Any]]:
    """All frames in file order (segments in key order, frames in list order)."""
    for frames in data.values():
        yield from frames


def frame_tokens(data: Annotations) -> list[str]:
    """The frames' tokens (timestamps) in file order: the keys a submission must have."""
    return [f['timestamp'] for f in iter_frames(data)]


def ground_truth(data: Annotations) -> dict[str, dict[str, list[np.ndarray]]]:
    """token -> class -> list of (N, 4) float64 polylines, the metric's ground-truth input.

    Raises `AnnotationError` if a frame has no map annotation (a test split cannot be scored).
    """
    unscorable = [f['timestamp'] for f in iter_frames(data) if 'annotation' not in f]
    if unscorable:
        raise AnnotationError(
            f'{len(unscorable)} frame(s) have no map annotation (a test split?) and cannot be '
            f'scored, e.g. token {unscorable[0]!r}'
        )
    return {
        f['timestamp']: {
            c: [np.asarray(v, dtype=np.float64) for v in f['annotation'][c]] for c in CLASSES
        }
        for f in iter_frames(data)
    }
