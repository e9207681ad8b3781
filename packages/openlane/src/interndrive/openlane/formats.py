"""Loaders and validators of the OpenLane-V2 on-disk formats (no devkit, no torch).

- Raw frame info JSON `<root>/<split>/<segment_id>/info/<timestamp>.json`:
  `version`, `segment_id`, `meta_data`, `timestamp`, `sensor` {camera: {image_path, extrinsic
  {rotation 3×3, translation 3}, intrinsic {K 3×3, distortion}}}, `pose` {rotation, translation},
  and (train/val) `annotation` {lane_centerline [{id, points (N, 3)}], traffic_element [{id,
  category, attribute 0..12, points [[x1, y1], [x2, y2]]}], topology_lclc (L, L), topology_lcte (L, T)}.
- Split file `data_dict_<subset>.json`: {split: {segment_id: ['<timestamp>.json', ...]}}.
- Collection pickle `data_dict_<subset>_<split>.pkl` (written by the preprocessing): {(split,
  segment_id, timestamp): frame info with float64 poses/calibration, float32 points, int8 topology}.

Every problem is reported with the file and the field it concerns.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .constants import NUM_ATTRIBUTES

Token = tuple[str, str, str]


class FormatError(ValueError):
    """A file that does not follow the OpenLane-V2 format."""


def _shape_of(x: Any) -> tuple[int, ...] | None:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (ValueError, TypeError):
        return None
    return arr.shape


def _check_matrix(where: str, x: Any, shape: tuple[int | None, ...], errors: list[str]) -> None:
    got = _shape_of(x)
    if got is None:
        errors.append(
            f'{where}: expected numbers of shape {shape}, got a ragged or non-numeric value'
        )
    elif len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
        want = 'x'.join('N' if s is None else str(s) for s in shape)
        errors.append(f'{where}: expected shape ({want}), got {got}')


def validate_annotation(ann: Any, where: str = 'annotation') -> list[str]:
    """Problems of one frame's `annotation` block (lists from JSON or arrays from a pickle)."""
    errors: list[str] = []
    if not isinstance(ann, Mapping):
        return [f'{where}: expected a dict, got {type(ann).__name__}']
    for key in ('lane_centerline', 'traffic_element', 'topology_lclc', 'topology_lcte'):
        if key not in ann:
            errors.append(f'{where}: missing key "{key}"')
    if errors:
        return errors
    ids = []
    for k, lane in enumerate(ann['lane_centerline']):
        w = f'{where}.lane_centerline[{k}]'
        if not isinstance(lane, Mapping) or 'id' not in lane or 'points' not in lane:
            errors.append(f'{w}: expected {{"id", "points"}}')
            continue
        ids.append(lane['id'])
        before = len(errors)
        _check_matrix(f'{w}.points', lane['points'], (None, 3), errors)
        shape = _shape_of(lane['points'])
        if len(errors) == before and shape[0] < 2:
            errors.append(f'{w}.points: a lane needs at least 2 points, got {shape[0]}')
    for k, te in enumerate(ann['traffic_element']):
        w = f'{where}.traffic_element[{k}]'
        if not isinstance(te, Mapping) or not {'id', 'attribute', 'points'} <= set(te):
            errors.append(f'{w}: expected {{"id", "category", "attribute", "points"}}')
            continue
        ids.append(te['id'])
        _check_matrix(f'{w}.points', te['points'], (2, 2), errors)
        if (
            not isinstance(te['attribute'], (int, np.integer))
            or not 0 <= te['attribute'] < NUM_ATTRIBUTES
        ):
            errors.append(
                f'{w}.attribute: expected an int in [0, {NUM_ATTRIBUTES - 1}], got {te["attribute"]!r}'
            )
    if len(set(ids)) != len(ids):
        errors.append(f'{where}: lane/traffic-element ids are not unique')
    n_lc, n_te = len(ann['lane_centerline']), len(ann['traffic_element'])
    # Empty matrices are stored as [] in JSON: accept any empty value when a side is 0.
    for key, shape in (('topology_lclc', (n_lc, n_lc)), ('topology_lcte', (n_lc, n_te))):
        got = _shape_of(ann[key])
        if 0 in shape and got is not None and int(np.prod(got)) == 0:
            continue
        _check_matrix(f'{where}.{key}', ann[key], shape, errors)
    return errors


def validate_frame_info(info: Any, source: str = 'info') -> list[str]:
    """Problems of one frame info dict (JSON or collection entry); [] when valid."""
    if not isinstance(info, Mapping):
        return [f'{source}: expected a JSON object, got {type(info).__name__}']
    errors = [
        f'{source}: missing key "{k}"'
        for k in ('segment_id', 'timestamp', 'sensor', 'pose')
        if k not in info
    ]
    if errors:
        return errors
    if not isinstance(info['sensor'], Mapping) or not info['sensor']:
        errors.append(f'{source}: "sensor" must map camera names to calibration')
    else:
        for cam, calib in info['sensor'].items():
            w = f'{source}: sensor.{cam}'
            try:
                _check_matrix(
                    f'{w}.extrinsic.rotation', calib['extrinsic']['rotation'], (3, 3), errors
                )
                _check_matrix(
                    f'{w}.extrinsic.translation', calib['extrinsic']['translation'], (3,), errors
                )
                _check_matrix(f'{w}.intrinsic.K', calib['intrinsic']['K'], (3, 3), errors)
                if not isinstance(calib['image_path'], str):
                    errors.append(f'{w}.image_path: expected a str')
            except (KeyError, TypeError) as err:
                errors.append(f'{w}: missing {err} (needs image_path, extrinsic, intrinsic)')
    try:
        _check_matrix(f'{source}: pose.rotation', info['pose']['rotation'], (3, 3), errors)
        _check_matrix(f'{source}: pose.translation', info['pose']['translation'], (3,), errors)
    except (KeyError, TypeError):
        errors.append(f'{source}: pose must have rotation (3x3) and translation (3)')
    if 'annotation' in info:
        errors += validate_annotation(info['annotation'], f'{source}: annotation')
    return errors


def load_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path} does not exist')
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FormatError(f'{path} is not valid JSON: {err}') from err


def load_frame_info(path: str | Path) -> dict[str, Any]:
    """Loads and validates one info JSON."""
    info = load_json(path)
    errors = validate_frame_info(info, str(path))
    if errors:
        raise FormatError('\n'.join(errors))
    return info


def load_data_dict(path: str | Path) -> dict[str, dict[str, list[str]]]:
    """Loads a split file {split: {segment_id: ['<timestamp>.json', ...]}}."""
    data = load_json(path)
    ok = isinstance(data, dict) and all(
        isinstance(segs, dict)
        and all(
            isinstance(ts, list) and all(isinstance(t, str) for t in ts) for ts in segs.values()
        )
        for segs in data.values()
    )
    if not ok:
        raise FormatError(f'{path}: expected {{split: {{segment_id: ["<timestamp>.json", ...]}}}}')
    return data


def info_path(root: str | Path, split: str, segment_id: str, timestamp: str) -> Path:
    return Path(root) / split / segment_id / 'info' / f'{timestamp.split(".")[0]}.json'


def load_collection(
    path: str | Path, require_annotation: bool = True
) -> dict[Token, dict[str, Any]]:
    """Loads a preprocessed collection pickle (the ground truth the metric scores against)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f'ground-truth collection {path} does not exist; build it from the raw data with '
            '`interndrive openlane convert`'
        )
    try:
        with open(path, 'rb') as f:
            data = pickle.load(f)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as err:
        raise FormatError(f'{path} is not a readable collection pickle: {err}') from err
    check_collection(data, path, require_annotation)
    return data


def check_collection(data: Any, path: str | Path, require_annotation: bool = True) -> None:
    """Raises FormatError naming `path` and the frame when `data` is not a valid collection
    ({(split, segment_id, timestamp): frame}; with `require_annotation`, valid annotations)."""
    if not isinstance(data, dict):
        raise FormatError(f'{path}: expected a dict keyed by (split, segment_id, timestamp)')
    for token, frame in data.items():
        if not (isinstance(token, tuple) and len(token) == 3):
            raise FormatError(
                f'{path}: key {token!r} is not a (split, segment_id, timestamp) tuple'
            )
        if require_annotation:
            if not isinstance(frame, Mapping) or 'annotation' not in frame:
                raise FormatError(f'{path}: frame {token} has no "annotation" (test split?)')
            errors = validate_annotation(frame['annotation'], f'{path}: {token} annotation')
            if errors:
                raise FormatError('\n'.join(errors[:20]))
