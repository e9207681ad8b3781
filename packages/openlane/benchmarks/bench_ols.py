"""Benchmark: our vectorised OLS vs the official devkit's `evaluate`, same inputs, same run.

Goal (issue): ≥ 20× faster than the devkit on a val-sized synthetic set (300 frames, 40 GT and
50 predicted lanes per frame, 11 points per lane) with identical scores. Prints one row per metric
version with both wall and CPU times, the ratios and the largest absolute difference over the six
scores. With the defaults it takes 2–4 minutes on 2 shared cores, almost all of it the devkit.

    python packages/openlane/benchmarks/bench_ols.py [--frames 300] [--versions 1.0 1.1]

Needs `openlanev2` 2.1.0 (v1.1) and, for v1.0, the openlanev2 1.0.0 wheel (fetched with pip into
the cache on first use; the v1.0 row says why when it cannot be obtained).

Exit status: 0 when every compared version gives the same six scores as the devkit (≤ 1e-6);
1 when any score differs; 2 when no devkit version could be run (nothing was compared). The speed
goal is reported (the `goal` column, on CPU time) but not enforced: on a shared machine the timing
of a single run is noise-prone, while a score difference is always a bug.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import numpy as np

from interndrive.openlane import devkit_compat
from interndrive.openlane.metric.ols import METRIC_KEYS, evaluate_frames
from interndrive.openlane.submission import devkit_metrics_to_flat, make_submission
from interndrive.openlane.synthetic import make_collection, make_predictions


def build_inputs(frames: int, gt_lanes: int, pred_lanes: int, points: int, seed: int):
    roads = max(1, gt_lanes // 4)
    collection = make_collection(
        frames, seed=seed, num_roads=roads, segments_per_road=gt_lanes // roads, num_tes=6
    )
    # GT lanes have 201 points; the val preprocessing keeps every 20th → 11 points.
    rng = np.random.default_rng(seed + 1)
    preds = {
        token: make_predictions(rng, frame['annotation'], num_points=points, total_lanes=pred_lanes)
        for token, frame in collection.items()
    }
    return collection, preds


GOAL_SPEEDUP = 20.0
TOLERANCE = 1e-6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--gt-lanes', type=int, default=40)
    parser.add_argument('--pred-lanes', type=int, default=50)
    parser.add_argument('--points', type=int, default=11)
    parser.add_argument('--versions', nargs='+', default=['1.0', '1.1'], choices=['1.0', '1.1'])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--repeat', type=int, default=3, help='runs of ours (median is reported)')
    args = parser.parse_args()

    collection, preds = build_inputs(
        args.frames, args.gt_lanes, args.pred_lanes, args.points, args.seed
    )
    gts = {token: frame['annotation'] for token, frame in collection.items()}
    submission = make_submission(preds)
    n_gt = sum(len(g['lane_centerline']) for g in gts.values())
    n_pred = sum(len(p['lane_centerline']) for p in preds.values())
    print(
        f'{args.frames} frames, {n_gt / args.frames:.0f} GT / {n_pred / args.frames:.0f} predicted '
        f'lanes per frame, {args.points} points per predicted lane'
    )
    # Wall time is what users wait; CPU time (this process) is far less disturbed by other jobs on a
    # shared machine, and both implementations are single-threaded NumPy, so both are reported.
    header = (
        '| metric | devkit wall / CPU (s) | ours wall / CPU, median (s) | speed-up wall | '
        f'speed-up CPU | goal ≥{GOAL_SPEEDUP:.0f}× (CPU) | max abs diff | identical ({TOLERANCE:g}) |'
    )
    rows = [header, '|---|---|---|---|---|---|---|---|']
    compared, differing = 0, []
    for version in args.versions:
        try:
            official = devkit_compat.load_devkit_evaluate(version, download=True)
        except ImportError as err:
            rows.append(f'| v{version} | unavailable: {" ".join(str(err).split())} | | | | | | |')
            continue
        # The devkit mutates its inputs (confidence/match keys): give it copies, untimed.
        gt_copy, sub_copy = copy.deepcopy(collection), copy.deepcopy(submission)
        w0, c0 = time.perf_counter(), time.process_time()
        theirs = devkit_metrics_to_flat(official(gt_copy, sub_copy, verbose=False))
        w_dev, c_dev = time.perf_counter() - w0, time.process_time() - c0
        # Ours takes a few seconds: the median of a few runs right after.
        walls, cpus = [], []
        for _ in range(args.repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            ours = evaluate_frames(gts, preds, version)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        w_ours, c_ours = float(np.median(walls)), float(np.median(cpus))
        diff = max(abs(ours[k] - theirs[k]) for k in METRIC_KEYS)
        compared += 1
        if not diff <= TOLERANCE:  # also catches NaN
            differing.append(version)
        cpu_ratio = c_dev / c_ours
        rows.append(
            f'| v{version} | {w_dev:.1f} / {c_dev:.1f} | {w_ours:.2f} / {c_ours:.2f} | '
            f'{w_dev / w_ours:.1f}× | {cpu_ratio:.1f}× | '
            f'{"met" if cpu_ratio >= GOAL_SPEEDUP else "missed"} | {diff:.1e} | '
            f'{"yes" if diff <= TOLERANCE else "NO"} |'
        )
        print('  ours  ', {k: round(ours[k], 6) for k in METRIC_KEYS})
        print('  devkit', {k: round(theirs[k], 6) for k in METRIC_KEYS})
    print('\n'.join(rows))
    if differing:
        print(f'FAILED: scores differ from the devkit for metric version(s) {differing}')
        return 1
    if not compared:
        print('FAILED: no devkit version could be run, nothing was compared')
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
