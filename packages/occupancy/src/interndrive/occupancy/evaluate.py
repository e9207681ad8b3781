"""Offline scoring of a submission against Occ3D ground truth (`interndrive evaluate occupancy ...`).

Streams one frame at a time through `OccupancyMIoU` (and optionally `OccupancyFScore`), so memory
does not grow with the number of frames.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from interndrive.common.engine.progress import track
from interndrive.occupancy.errors import OccupancyDataError
from interndrive.occupancy.formats import load_annotations, load_infos, load_labels
from interndrive.occupancy.metric import OccupancyFScore, OccupancyMIoU
from interndrive.occupancy.submission import iter_submission_loaders, validate_submission

SPLITS = ('val', 'train', 'all')
T = TypeVar('T')
R = TypeVar('R')


def bounded_map(function: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """`map` on a thread pool, in order, with at most 2·workers results in flight (bounded memory).

    Loading a frame is mostly zlib decompression of two .npz files, which releases the GIL, so a few
    threads overlap it; scoring stays in the caller's thread.
    """
    if workers <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _nuscenes_split(split: str, ground_truth: Path) -> list[str]:
    """Scene names of nuScenes' standard train/val split (the Occ3D-nuScenes splits)."""
    try:
        from nuscenes.utils import splits
    except ImportError as error:
        raise OccupancyDataError(
            f"{ground_truth}/annotations.json has no '{split}_split' and nuscenes-devkit (for the "
            f'standard split) is not installed; pass split=all to score every scene'
        ) from error
    return list(splits.train if split == 'train' else splits.val)


def ground_truth_index(
    ground_truth: str | os.PathLike[str], split: str = 'val', occ_root: str | None = None
) -> dict[str, Path]:
    """sample token -> labels.npz path.

    Args:
        ground_truth: The Occ3D data root (holding annotations.json and gts/), or an info pickle
            written by `interndrive occupancy convert` (its `occ_gt_path` entries are used).
        split: For an Occ3D root: 'val' (scenes of `val_split` in annotations.json, else of
            nuScenes' standard val split), 'train' or 'all'. Ignored for an info pickle, which is
            already one split.
        occ_root: For an info pickle: folder its `occ_gt_path` entries are relative to (default: the
            pickle's folder).
    """
    ground_truth = Path(ground_truth)
    if ground_truth.is_dir():
        if split not in SPLITS:
            raise OccupancyDataError(f'split {split!r}: expected one of {SPLITS}')
        annotations = load_annotations(ground_truth)
        scenes = annotations['scene_infos']
        if split != 'all':
            names = annotations.get(f'{split}_split')
            if names is None:  # an index without split lists: Occ3D uses nuScenes' own splits
                names = _nuscenes_split(split, ground_truth)
            scenes = {name: scenes[name] for name in names if name in scenes}
        return {
            token: ground_truth / sample['gt_path']
            for samples in scenes.values()
            for token, sample in samples.items()
        }
    if ground_truth.suffix == '.pkl':
        root = Path(occ_root) if occ_root else ground_truth.parent
        infos = load_infos(ground_truth)['infos']
        without = [info['token'] for info in infos if not info.get('occ_gt_path')]
        if without:
            raise OccupancyDataError(
                f'{ground_truth}: {len(without)} sample(s) have no occ_gt_path (test split?), e.g. {without[0]}'
            )
        return {info['token']: root / info['occ_gt_path'] for info in infos}
    raise OccupancyDataError(
        f'ground truth {str(ground_truth)!r}: expected the Occ3D data root (with annotations.json) '
        f'or an info .pkl'
    )


def expected_tokens(
    ground_truth: str | os.PathLike[str], split: str = 'val', occ_root: str | None = None
) -> list[str]:
    """Sample tokens a complete submission must cover: those of an info pickle (any split, also the
    test split, which has no ground truth), or of `split` in an Occ3D root."""
    if Path(ground_truth).suffix == '.pkl':
        return [info['token'] for info in load_infos(ground_truth)['infos']]
    return list(ground_truth_index(ground_truth, split, occ_root))


def evaluate_submission(
    submission: str | os.PathLike[str],
    ground_truth: str | os.PathLike[str],
    split: str = 'val',
    fscore: bool = False,
    mask: str = 'camera',
    allow_missing: bool = False,
    occ_root: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Scores a submission folder/zip; returns mIoU and per-class IoU in %, plus F-score if asked.

    Args:
        submission: Folder or .zip of `<sample_token>.npz` (see `submission.py`).
        ground_truth: Occ3D data root or info pickle (see `ground_truth_index`).
        split: Which scenes of an Occ3D root are scored ('val', 'train', 'all').
        fscore: Also compute the challenge F-score (slower: KD-trees per frame).
        mask: 'camera' (challenge protocol), 'lidar' or 'none'.
        allow_missing: Score only the tokens present instead of rejecting an incomplete submission.
        occ_root: Root for the `occ_gt_path` of an info pickle.
        workers: Threads that load (decompress) frames ahead of scoring; 1 loads in the caller;
            None = min(4, CPU count).
    """
    index = ground_truth_index(ground_truth, split, occ_root)
    if not index:
        raise OccupancyDataError(
            f'ground truth {str(ground_truth)!r}: no samples in split {split!r}'
        )
    report = validate_submission(submission, None if allow_missing else index, check_contents=False)
    report.raise_if_invalid()
    tokens = sorted(report.tokens & set(index))
    if not tokens:
        raise OccupancyDataError(
            f'submission {str(submission)!r}: no prediction matches the ground truth'
        )
    miou = OccupancyMIoU(mask=mask)
    fscore_metric = OccupancyFScore(mask=mask) if fscore else None
    predictions = dict(iter_submission_loaders(submission))

    keys = {'camera': ('mask_camera',), 'lidar': ('mask_lidar',), 'none': ()}.get(mask, ())

    def load(token: str) -> tuple[np.ndarray, Any]:
        return predictions[token](), load_labels(index[token], keys)

    workers = min(4, os.cpu_count() or 1) if workers is None else workers
    frames = track(bounded_map(load, tokens, workers), 'scoring', total=len(tokens), unit='frame')
    for pred, labels in frames:
        miou.update(pred, labels.semantics, labels.mask_camera, labels.mask_lidar)
        if fscore_metric is not None:
            fscore_metric.update(pred, labels.semantics, labels.mask_camera, labels.mask_lidar)
    result: dict[str, Any] = miou.compute()
    if fscore_metric is not None:
        result.update(fscore_metric.compute())
    return result
