"""Raw OpenLane-V2 → collection pickles (the official `data/OpenLane-V2/preprocess.py`, checked).

For a split file `data_dict_<subset>.json` and each of its splits this writes
`<out>/data_dict_<subset>_<split>.pkl` = {(split, segment_id, timestamp): frame meta} with poses
and calibration as float64 arrays, lane points subsampled every `point_interval` points
(1 for train, 20 for val/test: the val GT lanes then have 11 points) as float32, traffic-element
boxes float32 (2, 2) and topology int8 — what `openlanev2.preprocessing.collect` writes, which is
what the dataset (`Collection`) and the metric read.

Differences from running the upstream script: every info JSON is validated first and all problems
are reported with file names; images can be checked for existence; the pickle is written
atomically; the default backend is the official devkit `collect` (through `devkit_compat`) and an
equivalent built-in backend (tested to give the same pickle) is used when the devkit is absent.
"""

from __future__ import annotations

import functools
import os
import pickle
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from interndrive.common.engine.atomic_files import atomic_write
from interndrive.common.engine.progress import track

from .constants import POINT_INTERVAL
from .formats import FormatError, info_path, load_data_dict, load_json, validate_frame_info


def frame_to_collection_entry(info: dict[str, Any], point_interval: int) -> dict[str, Any]:
    """Converts one info JSON in place to the collection's array types (devkit `collect`)."""
    for k, v in info['pose'].items():
        info['pose'][k] = np.array(v, dtype=np.float64)
    for camera in info['sensor']:
        for part in ('intrinsic', 'extrinsic'):
            for k, v in info['sensor'][camera][part].items():
                info['sensor'][camera][part][k] = np.array(v, dtype=np.float64)
    if 'annotation' not in info:
        return info
    ann = info['annotation']
    for lane in ann['lane_centerline']:
        lane['points'] = np.array(lane['points'][::point_interval], dtype=np.float32)
    for te in ann['traffic_element']:
        te['points'] = np.array(te['points'], dtype=np.float32)
    ann['topology_lclc'] = np.array(ann['topology_lclc'], dtype=np.int8)
    ann['topology_lcte'] = np.array(ann['topology_lcte'], dtype=np.int8)
    return info


def check_split(
    root: Path, split: str, segments: Mapping[str, list[str]], check_images: bool = False
) -> list[str]:
    """Validates every info JSON (and optionally image) of one split; returns all problems."""
    errors: list[str] = []
    items = track(segments.items(), f'checking {split}', total=len(segments), unit='segment')
    for segment_id, timestamps in items:
        for ts in timestamps:
            path = info_path(root, split, segment_id, ts)
            try:
                info = load_json(path)
            except (FileNotFoundError, FormatError) as err:
                errors.append(str(err))
                continue
            errors += validate_frame_info(info, str(path))
            if check_images and isinstance(info.get('sensor'), Mapping):
                for camera, calib in info['sensor'].items():
                    image = root / str(calib.get('image_path', ''))
                    if not image.is_file():
                        errors.append(f'{path}: image of {camera} missing: {image}')
    return errors


def _collect_builtin(
    root: Path, split: str, segments: Mapping[str, list[str]], interval: int
) -> dict:
    meta = {}
    items = track(segments.items(), f'collecting {split}', total=len(segments), unit='segment')
    for segment_id, timestamps in items:
        for ts in timestamps:
            token = (split, segment_id, ts.split('.')[0])
            meta[token] = frame_to_collection_entry(load_json(info_path(root, *token)), interval)
    return meta


def _collect_devkit(
    root: Path, split: str, segments: Mapping[str, list[str]], interval: int
) -> dict:
    """Runs the official `collect` and reads its pickle back.

    `collect` writes `f'{root}/{collection}.pkl'`; a collection name relative to `root` that points
    into a private temp folder keeps a read-only dataset root untouched.
    """
    from openlanev2.centerline.preprocessing import collect

    from . import devkit_compat  # noqa: F401  (keeps the devkit importable on new OR-Tools)

    with tempfile.TemporaryDirectory(prefix='interndrive_collect_') as tmp:
        name = os.path.relpath(Path(tmp) / 'collection', root)
        collect(str(root), {split: dict(segments)}, name, point_interval=interval)
        with open(Path(tmp) / 'collection.pkl', 'rb') as f:
            return pickle.load(f)


def devkit_collect_available() -> bool:
    try:
        from openlanev2.centerline.preprocessing import collect  # noqa: F401
    except ImportError:
        return False
    return True


def convert(
    root: str | Path,
    data_dict: str | Path,
    out_dir: str | Path | None = None,
    splits: Iterable[str] | None = None,
    point_interval: int | None = None,
    check_images: bool = False,
    backend: str = 'auto',
) -> list[Path]:
    """Builds the collection pickles of a split file.

    Args:
        root: Dataset root holding `<split>/<segment_id>/info/*.json` (and images).
        data_dict: Split file (`data_dict_subset_A.json`).
        out_dir: Where to write the pickles (default: `root`, where the devkit expects them).
        splits: Splits to convert (default: all in the split file).
        point_interval: Lane point subsampling; default 1 for train and 20 for val/test.
        check_images: Also fail when an image listed in an info JSON is missing.
        backend: 'devkit' (official `collect`), 'builtin', or 'auto' (devkit when installed).

    Returns:
        Paths of the written `data_dict_<subset>_<split>.pkl` files.

    Raises:
        FormatError: listing every invalid or missing file, before anything is written.
    """
    if point_interval is not None and (
        isinstance(point_interval, bool)
        or not isinstance(point_interval, int)
        or point_interval < 1
    ):
        # 0 would silently mean "default" and a negative step would reverse every lane.
        raise ValueError(f'point_interval must be an int ≥ 1, got {point_interval!r}')
    root, data_dict = Path(root), Path(data_dict)
    if not root.is_dir():
        raise FileNotFoundError(f'dataset root {root} is not a directory')
    out_dir = Path(out_dir) if out_dir is not None else root
    subset = data_dict.name.split('.')[0]
    all_splits = load_data_dict(data_dict)
    chosen = list(splits) if splits is not None else list(all_splits)
    unknown = [s for s in chosen if s not in all_splits]
    if unknown:
        raise FormatError(f'{data_dict}: no split(s) {unknown}; it has {sorted(all_splits)}')
    errors: list[str] = []
    for split in chosen:
        errors += check_split(root, split, all_splits[split], check_images)
    if errors:
        more = f'\n... and {len(errors) - 20} more' if len(errors) > 20 else ''
        raise FormatError(f'{len(errors)} problems in {root}:\n' + '\n'.join(errors[:20]) + more)
    if backend == 'auto':
        backend = 'devkit' if devkit_collect_available() else 'builtin'
    if backend not in ('devkit', 'builtin'):
        raise ValueError(f'backend must be "devkit", "builtin" or "auto", got {backend!r}')
    collect_fn = _collect_devkit if backend == 'devkit' else _collect_builtin
    written = []
    for split in chosen:
        interval = point_interval or POINT_INTERVAL.get(split, 1)
        meta = collect_fn(root, split, all_splits[split], interval)
        path = out_dir / f'{subset}_{split}.pkl'
        atomic_write(path, functools.partial(pickle.dump, meta))
        written.append(path)
    return written
