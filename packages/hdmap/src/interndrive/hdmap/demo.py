"""`interndrive demo hdmap`: synthetic data → train the tiny config → evaluate → submission → PNGs.

Everything goes through the entry points users run (`run_train` / `run_test`, behind `interndrive train`
/ `interndrive test`) on `vectormapnet_tiny_cpu`, so the demo checks that generator, dataset, transforms,
model, engine, metric, submission writer and visualiser fit together. Budget: < 5 min on 2 CPU cores.

Besides the val metrics (unseen scenes: ~0 after seconds of training), the summary reports the training
loss of the first and last epoch and the Chamfer AP on the training frames themselves, the evidence that
the model learns at all.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
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


@contextmanager
def _torch_threads(threads: int | None):
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def epoch_losses(train_dir: str | os.PathLike[str]) -> dict[int, float]:
    """Mean training `loss` per epoch from the run's `vis_data/scalars.json` (mmengine's log)."""
    per_epoch: dict[int, list[float]] = {}
    for path in sorted(Path(train_dir).glob('*/vis_data/scalars.json')):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if 'loss' in row and 'epoch' in row:
                per_epoch.setdefault(int(row['epoch']), []).append(float(row['loss']))
    return {e: sum(v) / len(v) for e, v in sorted(per_epoch.items())}


def run_demo(
    work_dir: str | os.PathLike[str],
    epochs: int = 40,
    config: str = TINY_CONFIG,
    frames: int = 4,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Runs the demo in `work_dir` and returns a summary (metrics, paths, timings in seconds).

    Args:
        work_dir: Output folder (data, training run, test run, submission, PNGs).
        epochs: Training epochs over the synthetic train split (8 frames, batch 2: 4 iterations each).
        config: Config to train (a path or `hdmap/NAME`).
        frames: Frames per synthetic segment (2 train segments, 1 val segment).
        threads: torch intra-op threads during the demo (restored afterwards); None keeps torch's
            default. 1 by default: the tiny model's tensors are too small for a second thread to pay for
            its synchronisation, and on a busy shared CPU two threads made the demo ~2x slower.
    """
    with _torch_threads(threads):
        return _run_demo(Path(work_dir), epochs, config, frames)


def _run_demo(work_dir: Path, epochs: int, config: str, frames: int) -> dict[str, Any]:
    from interndrive.common.engine.resume import find_last_checkpoint
    from interndrive.common.engine.workflow import run_test, run_train

    from .annotations import load_annotations
    from .evaluation import format_metrics
    from .submission import load_submission
    from .visualize import visualize_files

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

    # Fit check: the same checkpoint on the frames it was trained on (the val scenes are unseen).
    tick = time.perf_counter()
    root = (work_dir / 'data').resolve()
    fit_options = {**options, 'test_dataloader.dataset.data_root': f'{root / "train"}{os.sep}',
                   'test_dataloader.dataset.ann_file': '../train_annotations.json',
                   'test_evaluator.ann_file': str(root / 'train_annotations.json')}  # fmt: skip
    fit = run_test(config, checkpoint, work_dir=work_dir / 'test_train_split',
                   cfg_options=fit_options, launcher='none')  # fmt: skip
    timings['test_train_split'] = time.perf_counter() - tick
    print('Chamfer AP on the training frames (fit check):')
    print(format_metrics(fit.metrics))
    losses = epoch_losses(train_dir)

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
        'train_split_mAP': float(fit.metrics['mAP']),
        'train_loss_first_epoch': losses[min(losses)] if losses else None,
        'train_loss_last_epoch': losses[max(losses)] if losses else None,
        'checkpoint': str(checkpoint),
        'submission': str(submission),
        'submission_warnings': list(report.warnings),
        'pngs': [str(p) for p in pngs],
        'timings_s': timings,
    }
