"""`interndrive demo openlane`: synthetic data → a few training iterations → evaluation → submission
→ PNG, with the tiny CPU config and the same entry points users run (`run_train` / `run_test`).

The numbers it prints are those of a 0.5 M-parameter model trained for a handful of iterations on
a few synthetic frames: they show that the pipeline runs end to end, not what the baseline reaches.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

TINY_CONFIG = 'olv2_tiny_cpu.py'
# 1/16 of the real 2048×1550 images (128×97; front 97×128): the tiny config is meant for these.
DEMO_IMAGE_SCALE = 0.0625


def make_demo_data(
    root: str | Path,
    train_segments: int = 2,
    val_segments: int = 1,
    frames_per_segment: int = 2,
    image_scale: float = DEMO_IMAGE_SCALE,
    seed: int = 0,
) -> dict[str, Path]:
    """Writes a synthetic dataset in the OpenLane-V2 layout and its collection pickles.

    Returns:
        {'root', 'split_file', 'train', 'val'}: the dataset root, the data_dict JSON and the two
        collection pickles.
    """
    from .convert import convert
    from .synthetic import write_dataset

    root = Path(root)
    split_file = write_dataset(
        root,
        splits={'train': train_segments, 'val': val_segments},
        frames_per_segment=frames_per_segment,
        image_scale=image_scale,
        seed=seed,
    )
    convert(root, split_file)
    paths = {'root': root, 'split_file': split_file}
    for split in ('train', 'val'):
        paths[split] = root / f'data_dict_subset_A_{split}.pkl'
    return paths


def data_cfg_options(data_root: str | Path, version: str = '1.0') -> dict[str, Any]:
    """`--cfg-options` pointing every dataloader and evaluator of a config at `data_root`."""
    root = str(data_root).rstrip('/') + '/'
    return {
        'train_dataloader.dataset.data_root': root,
        'val_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.data_root': root,
        'val_evaluator.ann_file': root + 'data_dict_subset_A_val.pkl',
        'test_evaluator.ann_file': root + 'data_dict_subset_A_val.pkl',
        'val_evaluator.version': version,
        'test_evaluator.version': version,
    }


def run_demo(
    work_dir: str | Path,
    *,
    epochs: int = 2,
    version: str = '1.0',
    seed: int = 0,
    config: str | Path | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Generates data, trains the tiny config, evaluates, writes a submission and a PNG.

    Args:
        work_dir: Output folder (data/, train/, test/, submission.pkl, vis/).
        epochs: Training epochs over the 4 synthetic training frames (batch 1).
        version: Metric version '1.0' (seed numbers) or '1.1'.
        seed: Data and training seed.
        config: Config to train (default: the tiny CPU config shipped with the package).
        verbose: Print the metric table.

    Returns:
        {'metrics', 'table', 'checkpoint', 'submission', 'png', 'work_dir', 'timings'} (timings in s).
    """
    from interndrive.common.engine.workflow import run_test, run_train, strip_common_prefix

    from .evaluation import format_metrics
    from .formats import load_collection
    from .submission import load_submission, validate_submission
    from .task import TASK
    from .visualize import render_frame

    work_dir = Path(work_dir).resolve()
    config = str(config or TASK.config_dir / TINY_CONFIG)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    data = make_demo_data(work_dir / 'data', seed=seed)
    timings['data'] = time.perf_counter() - start

    options = data_cfg_options(data['root'], version)
    tasks = {'openlane': TASK}
    t0 = time.perf_counter()
    train_options = {
        **options,
        'train_cfg.max_epochs': epochs,
        # No validation during the demo's training: the test below evaluates the final weights.
        'val_cfg': None,
        'val_dataloader': None,
        'val_evaluator': None,
        'default_hooks.checkpoint.interval': epochs,
    }
    train_dir = run_train(
        config, work_dir=work_dir / 'train', cfg_options=train_options, seed=seed, tasks=tasks
    )
    timings['train'] = time.perf_counter() - t0
    checkpoint = train_dir / f'epoch_{epochs}.pth'

    t0 = time.perf_counter()
    result = run_test(
        config,
        checkpoint,
        work_dir=work_dir / 'test',
        metrics_json=work_dir / 'metrics.json',
        cfg_options=options,
        tasks=tasks,
    )
    metrics = {k: float(v) for k, v in strip_common_prefix(result.metrics).items()}
    timings['evaluate'] = time.perf_counter() - t0

    t0 = time.perf_counter()
    submission = work_dir / 'submission.pkl'
    run_test(
        config,
        checkpoint,
        work_dir=work_dir / 'test',
        format_only=True,
        submission=submission,
        cfg_options=options,
        tasks=tasks,
    )
    ground_truth = load_collection(data['val'])
    sub = load_submission(submission)
    validate_submission(sub, ground_truth.keys()).raise_if_invalid(str(submission))
    token = next(iter(ground_truth))
    png = render_frame(
        ground_truth[token],
        work_dir / 'vis' / ('_'.join(token) + '.png'),
        root=data['root'],
        prediction=sub['results'][token]['predictions'],
        # A few iterations leave the tiny model's confidences low: draw every prediction.
        score_threshold=0.0,
    )
    timings['submission_and_png'] = time.perf_counter() - t0
    timings['total'] = time.perf_counter() - start
    table = format_metrics(metrics, name=f'tiny CPU demo, v{version}')
    if verbose:
        print(table)
        print(f'submission: {submission}\npng: {png}')
        print('timings (s): ' + ', '.join(f'{k} {v:.1f}' for k, v in timings.items()))
    return {
        'metrics': metrics,
        'table': table,
        'checkpoint': checkpoint,
        'submission': submission,
        'png': png,
        'work_dir': work_dir,
        'timings': timings,
    }
