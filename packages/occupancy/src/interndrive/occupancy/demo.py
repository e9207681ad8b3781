"""`interndrive demo occupancy`: synthetic data → train the tiny config → evaluate → submission → PNG.

Everything goes through the same entry points users run (`run_train` / `run_test` behind
`interndrive train` / `interndrive test`), on the tiny CPU config, so the demo also checks that the
whole stack (converter, dataset, transforms, model, engine, metric, submission writer, visualizer)
fits together. Budget: under 5 minutes on 2 CPU cores.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TINY_CONFIG = 'occupancy/bevformer_tiny_occ_cpu'


def data_options(root: str | os.PathLike[str]) -> dict[str, Any]:
    """`--cfg-options` that point the train/val/test dataloaders of a config at `root`."""
    root = str(Path(root).resolve()) + os.sep
    return {f'{split}_dataloader.dataset.data_root': root for split in ('train', 'val', 'test')}


def run_demo(
    work_dir: str | os.PathLike[str],
    epochs: int = 4,
    num_scenes: int = 2,
    samples_per_scene: int = 3,
    config: str = TINY_CONFIG,
) -> dict[str, Any]:
    """Runs the demo in `work_dir` and returns a summary (metrics, paths, timings in seconds).

    Args:
        work_dir: Output folder (data, training run, test run, submission, PNG).
        epochs: Training epochs over the synthetic train split (one iteration per sample).
        num_scenes: Synthetic scenes (alternately train and val).
        samples_per_scene: Key frames per scene.
        config: Config to train (a path or `occupancy/NAME`).
    """
    from interndrive.common.engine.resume import find_last_checkpoint
    from interndrive.common.engine.workflow import run_test, run_train
    from interndrive.occupancy.demo_data import make_demo_data
    from interndrive.occupancy.formats import load_infos, load_labels
    from interndrive.occupancy.metric import format_metrics
    from interndrive.occupancy.submission import iter_submission, validate_submission
    from interndrive.occupancy.visualization import load_camera_images, render_frame

    work_dir = Path(work_dir)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    data = make_demo_data(work_dir, num_scenes=num_scenes, samples_per_scene=samples_per_scene)
    timings['data'] = time.perf_counter() - start

    # No validation inside training: the test run below evaluates the same split once.
    options = {**data_options(data.root), 'train_cfg.max_epochs': epochs,
               'train_cfg.val_interval': epochs + 1}  # fmt: skip
    tick = time.perf_counter()
    train_dir = run_train(config, work_dir=work_dir / 'train', cfg_options=options, launcher='none')
    timings['train'] = time.perf_counter() - tick
    checkpoint = find_last_checkpoint(train_dir)
    if checkpoint is None:
        raise RuntimeError(f'training in {train_dir} wrote no checkpoint')

    tick = time.perf_counter()
    result = run_test(
        config, checkpoint, work_dir=work_dir / 'test', cfg_options=options,
        metrics_json=work_dir / 'metrics.json', launcher='none',
    )  # fmt: skip
    timings['test'] = time.perf_counter() - tick
    table = format_metrics(result.metrics)
    print(table)

    tick = time.perf_counter()
    submission = work_dir / 'submission.zip'
    run_test(
        config, checkpoint, work_dir=work_dir / 'test_submission', cfg_options=options,
        format_only=True, submission=submission, launcher='none',
    )  # fmt: skip
    report = validate_submission(submission, expected_tokens=data.val_tokens)
    report.raise_if_invalid()
    timings['submission'] = time.perf_counter() - tick

    tick = time.perf_counter()
    info = load_infos(data.val_infos)['infos'][0]
    [(_, prediction)] = list(iter_submission(submission, [info['token']]))
    labels = load_labels(data.root / info['occ_gt_path'])
    png = render_frame(
        work_dir / f'{info["token"]}.png',
        gt=labels.semantics,
        pred=prediction,
        images=load_camera_images({n: data.root / c['data_path'] for n, c in info['cams'].items()}),
        mask_camera=labels.mask_camera,
        title=f'{info["scene_name"]} frame {info["frame_idx"]} (tiny model, synthetic data)',
    )
    timings['png'] = time.perf_counter() - tick
    timings['total'] = time.perf_counter() - start
    return {
        'mIoU': float(result.metrics['mIoU']),
        'IoU_geometry': float(result.metrics.get('IoU_geometry', float('nan'))),
        'metrics': dict(result.metrics),
        'table': table,
        'checkpoint': str(checkpoint),
        'metrics_json': str(work_dir / 'metrics.json'),
        'submission': str(submission),
        'png': str(png),
        'timings_s': {k: round(v, 1) for k, v in timings.items()},
    }


def demo(work_dir: Path) -> Mapping[str, Any]:
    """`Task.demo`: `run_demo` with the defaults; the printed summary omits the long entries."""
    summary = run_demo(work_dir)
    return {k: v for k, v in summary.items() if k not in ('metrics', 'table')}
