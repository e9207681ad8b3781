"""End-to-end offline scoring throughput (`evaluate_submission`): frames/s with 1, 2 and 4 loader threads.

Offline scoring is dominated by decompressing the `.npz` files (ground truth and prediction), not by the
metric. zlib releases the GIL, so `evaluate_submission(workers=N)` decompresses up to 2·N frames ahead on
a thread pool while scoring stays streaming. The ground truth is the real Occ3D sample (../shared/data)
when present, else a synthetic frame, written `--frames` times under a temporary Occ3D root; predictions
are the ground truth with 10 % noise. The mIoU must be identical in every row.

Run: python packages/occupancy/benchmarks/evaluate_throughput.py [--frames 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=40)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = build(root, args.frames)
        best: dict[int, float] = {}
        results: dict[int, float] = {}
        for _ in range(args.repeats):  # interleaved repeats: a noisy machine slows all rows alike
            for workers in (1, 2, 4):
                start = time.perf_counter()
                metrics = evaluate_submission(root / 'submission', root, workers=workers)
                best[workers] = min(best.get(workers, float('inf')), time.perf_counter() - start)
                results[workers] = metrics['mIoU']
    print(f'offline scoring of {args.frames} frames ({source}), best of {args.repeats}')
    print(
        f'{"loader threads":>15s} {"ms/frame":>9s} {"frames/s":>9s} {"ratio":>7s} {"mIoU":>9s} identical'
    )
    for workers, elapsed in best.items():
        print(
            f'{workers:15d} {elapsed / args.frames * 1e3:9.2f} {args.frames / elapsed:9.1f} '
            f'{best[1] / elapsed:6.2f}x {results[workers]:9.4f} {"yes" if results[workers] == results[1] else "NO"}'
        )


if __name__ == '__main__':
    main()
