"""End-to-end offline scoring throughput (`evaluate_submission`) vs the official per-frame path.

Offline scoring is dominated by decompressing the `.npz` files (ground truth and prediction), not by the
metric. zlib releases the GIL, so `evaluate_submission(workers=N)` decompresses up to 2·N frames ahead on
a thread pool while scoring stays streaming. The ground truth is the real Occ3D sample (../shared/data)
when present, else a synthetic frame, written `--frames` times under a temporary Occ3D root; predictions
are the ground truth with 10 % noise. Baseline row: the official path (np.load of all three label
arrays and the prediction, per-frame `Metric_mIoU`); then `evaluate_submission` with 1, 2 and 4 loader
threads; a last table splits the single-threaded time into decompression and metric. The mIoU must
be identical in every row (exit status 1 if not).

Run: python packages/occupancy/benchmarks/bench_evaluate_throughput.py [--frames 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from interndrive.occupancy.evaluate import evaluate_submission
from interndrive.occupancy.formats import (
    OccupancyLabels,
    gt_relative_path,
    load_labels,
    save_labels,
)
from interndrive.occupancy.io_utils import atomic_json
from interndrive.occupancy.metric import OccupancyMIoU, active_backend, confusion_matrix
from interndrive.occupancy.metric_reference import ReferenceMIoU
from interndrive.occupancy.submission import save_prediction

REAL_LABELS = Path(__file__).resolve().parents[3].parent / 'shared/data/occ3d-frame/labels.npz'


def build(root: Path, frames: int) -> str:
    if REAL_LABELS.is_file():
        labels, source = load_labels(REAL_LABELS), 'real Occ3D frame'
    else:
        from interndrive.occupancy.synthetic import synthetic_occupancy

        labels, source = (
            OccupancyLabels(**synthetic_occupancy(np.random.default_rng(0))),
            'synthetic frame',
        )
    rng = np.random.default_rng(1)
    scene_infos = {}
    for i in range(frames):
        token = f'{i:032x}'
        gt_path = gt_relative_path('scene-0003', token)
        save_labels(root / gt_path, labels)
        scene_infos[token] = {'gt_path': gt_path}
        noise = rng.integers(0, 18, labels.semantics.shape)
        pred = np.where(rng.random(noise.shape) < 0.1, noise, labels.semantics)
        save_prediction(root / 'submission', token, pred)
    atomic_json(
        root / 'annotations.json',
        {'val_split': ['scene-0003'], 'scene_infos': {'scene-0003': scene_infos}},
    )
    return source


def official_path(root: Path, tokens: list[str]) -> float:
    """Baseline: what the official evaluation does per frame (np.load of every labels.npz array,
    the prediction file, `Metric_mIoU.add_batch`), one frame after the other. Returns mIoU in %."""
    metric = ReferenceMIoU()
    for token in tokens:
        with np.load(root / gt_relative_path('scene-0003', token)) as labels:
            semantics = labels['semantics']
            labels['mask_lidar'].astype(bool)  # read (and discarded) by the official loader too
            mask_camera = labels['mask_camera'].astype(bool)
        with np.load(root / 'submission' / f'{token}.npz') as prediction:
            pred = prediction['arr_0']
        metric.add_batch(pred, semantics, mask_camera)
    return metric.count_miou()[1] * 100


def stage_times(root: Path, tokens: list[str]) -> dict[str, float]:
    """ms per frame of each part of the single-threaded streamed path (and of the baseline's)."""
    gt_paths = [root / gt_relative_path('scene-0003', token) for token in tokens]
    pred_paths = [root / 'submission' / f'{token}.npz' for token in tokens]
    times: dict[str, float] = {}

    def timed(name: str, function) -> list:
        start = time.perf_counter()
        out = [function(i) for i in range(len(tokens))]
        times[name] = (time.perf_counter() - start) / len(tokens) * 1e3
        return out

    timed('decompress labels.npz, all 3 arrays (official)', lambda i: load_labels(gt_paths[i]))
    labels = timed(
        'decompress labels.npz, semantics + mask_camera (ours)',
        lambda i: load_labels(gt_paths[i], ('semantics', 'mask_camera')),
    )
    preds = timed('decompress the prediction .npz', lambda i: np.load(pred_paths[i])['arr_0'])
    reference = ReferenceMIoU()
    timed(
        'metric: official per-frame path',
        lambda i: reference.add_batch(preds[i], labels[i].semantics, labels[i].mask_camera),
    )
    fast = OccupancyMIoU()
    timed(
        'metric: fast streaming path',
        lambda i: fast.update(preds[i], labels[i].semantics, mask_camera=labels[i].mask_camera),
    )
    return times


def warm_up() -> str:
    """Imports numba and loads (or compiles, ~0.5 s) the kernel once, outside the timed runs."""
    tick = time.perf_counter()
    frame = np.ones(16, np.uint8)
    confusion_matrix(frame, frame, frame)
    return f'metric backend {active_backend()} (one-time import + kernel load {time.perf_counter() - tick:.2f} s, not timed)'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=40)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    print(warm_up())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = build(root, args.frames)
        tokens = [f'{i:032x}' for i in range(args.frames)]
        rows = {'official path (all arrays, per-frame metric)': None, 1: 1, 2: 2, 4: 4}
        best: dict = {}
        results: dict = {}
        for _ in range(args.repeats):  # interleaved repeats: a noisy machine slows all rows alike
            for name, workers in rows.items():
                start = time.perf_counter()
                if workers is None:
                    results[name] = official_path(root, tokens)
                else:
                    metric = evaluate_submission(root / 'submission', root, workers=workers)
                    results[name] = metric['mIoU']
                best[name] = min(best.get(name, float('inf')), time.perf_counter() - start)
        stages = stage_times(root, tokens)
    print(f'offline scoring of {args.frames} frames ({source}), best of {args.repeats}')
    print(
        f'{"implementation":46s} {"ms/frame":>9s} {"frames/s":>9s} {"ratio":>7s} {"mIoU":>9s} identical'
    )
    baseline = next(iter(rows))
    for name, elapsed in best.items():
        label = name if isinstance(name, str) else f'evaluate_submission, {name} loader thread(s)'
        same = 'yes' if results[name] == results[baseline] else 'NO'
        print(
            f'{label:46s} {elapsed / args.frames * 1e3:9.2f} {args.frames / elapsed:9.1f} '
            f'{best[baseline] / elapsed:6.2f}x {results[name]:9.4f} {same}'
        )
    print('\nwhere the time goes (one thread, ms/frame)')
    for name, ms in stages.items():
        print(f'{name:56s} {ms:7.2f}')
    if any(miou != results[baseline] for miou in results.values()):
        print('FAILED: the mIoU differs between rows', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
