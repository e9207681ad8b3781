"""`interndrive demo hdmap`: synthetic data → train the tiny config → evaluate → submission → PNGs.

Everything goes through the entry points users run (`run_train` / `run_test`, behind `interndrive train`
/ `interndrive test`) on `vectormapnet_tiny_cpu`, so the demo checks that generator, dataset, transforms,
model, engine, metric, submission writer and visualiser fit together. Budget: < 5 min on 2 CPU cores.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

TINY_CONFIG = 'hdmap/vectormapnet_tiny_cpu'


def data_options(root: str | os.PathLike[str]) -> dict[str, Any]:
    """`--cfg-options` pointing a config's dataloaders and evaluators at a generated dataset in `root`."""
    root = Path(root).resolve()
    return {
        'train_dataloader.dataset.data_root': f'{root / "train"}{os.sep}',
        'val_dataloader.dataset.data_root': f'{root / "val"}{os.sep}',
        'test_dataloader.dataset.data_root': f'{root / "val"}{os.sep}',
        'val_evaluator.ann_file': str(root / 'val_annotations.json'),
        'test_evaluator.ann_file': str(root / 'val_annotations.json'),
    }


def make_demo_data(
    root: str | os.PathLike[str],
    train_segments: int = 2,
    val_segments: int = 1,
    frames: int = 4,
    seed: int = 0,
) -> dict[str, Path]:
    """Synthetic train/val splits (annotations + 7 camera JPEGs per frame) in `root`."""
    from .synthetic import generate_dataset

    return {
        'train': generate_dataset(root, split='train', num_segments=train_segments, frames_per_segment=frames,
                                  seed=seed),
        'val': generate_dataset(root, split='val', num_segments=val_segments, frames_per_segment=frames,
                                seed=seed + 1000),
    }  # fmt: skip


def run_demo(
    work_dir: str | os.PathLike[str], epochs: int = 8, config: str = TINY_CONFIG, frames: int = 4
) -> dict[str, Any]:
    """Runs the demo in `work_dir` and returns a summary (metrics, paths, timings in seconds).

    Args:
        work_dir: Output folder (data, training run, test run, submission, PNGs).
        epochs: Training epochs over the synthetic train split (batch 2).
        config: Config to train (a path or `hdmap/NAME`).
        frames: Frames per synthetic segment (2 train segments, 1 val segment).
    """
    from interndrive.common.engine.resume import find_last_checkpoint
    from interndrive.common.engine.workflow import run_test, run_train

    from .annotations import load_annotations
    from .evaluation import format_metrics
    from .submission import load_submission
    from .visualize import visualize_files

    work_dir = Path(work_dir)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    data = make_demo_data(work_dir / 'data', frames=frames)
    timings['data'] = time.perf_counter() - start

    options = {**data_options(work_dir / 'data'), 'train_cfg.max_epochs': epochs,
               'train_cfg.val_interval': epochs, 'default_hooks.checkpoint.interval': epochs}  # fmt: skip
    tick = time.perf_counter()
    train_dir = run_train(config, work_dir=work_dir / 'train', cfg_options=options, launcher='none')
    timings['train'] = time.perf_counter() - tick
    checkpoint = find_last_checkpoint(train_dir)
    if checkpoint is None:
        raise RuntimeError(f'training in {train_dir} wrote no checkpoint')

    tick = time.perf_counter()
    result = run_test(config, checkpoint, work_dir=work_dir / 'test', cfg_options=options,
                      metrics_json=work_dir / 'metrics.json', launcher='none')  # fmt: skip
    timings['test'] = time.perf_counter() - tick
    table = format_metrics(result.metrics)
    print(table)

    tick = time.perf_counter()
    submission = work_dir / 'submission.json'
    run_test(config, checkpoint, work_dir=work_dir / 'test_submission', cfg_options=options,
             format_only=True, submission=submission, launcher='none')  # fmt: skip
    tokens = [f['timestamp'] for frames_ in load_annotations(data['val']).values() for f in frames_]
    _, report = load_submission(submission, tokens, strict_tokens=True)
    timings['submission'] = time.perf_counter() - tick

    tick = time.perf_counter()
    pngs = visualize_files(
        data['val'], work_dir / 'vis', submission=submission, max_frames=1, score_thr=0.0
    )
    timings['png'] = time.perf_counter() - tick
    timings['total'] = time.perf_counter() - start
    return {
        'metrics': {k: float(v) for k, v in result.metrics.items()},
        'table': table,
        'checkpoint': str(checkpoint),
        'submission': str(submission),
        'submission_warnings': list(report.warnings),
        'pngs': [str(p) for p in pngs],
        'timings_s': timings,
    }
