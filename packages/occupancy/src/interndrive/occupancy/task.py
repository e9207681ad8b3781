"""The occupancy task's plug-in object for the `interndrive` CLI (entry point `interndrive.tasks`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from interndrive.common.tasks import Task
from interndrive.occupancy.cli import add_commands, add_visualize_arguments, visualize
from interndrive.occupancy.constants import REFERENCE_METRICS
from interndrive.occupancy.metric import format_metrics


def _config_dir() -> Path:
    installed = Path(__file__).resolve().parent / 'configs'  # wheel: force-included here
    return installed if installed.is_dir() else Path(__file__).resolve().parents[3] / 'configs'


def register_data_modules() -> None:
    """Registers this package's dataset, transforms and metric in mmdet3d's registries (imports them).

    The model phase's `register_modules` should call this and then import the model modules.
    """
    import interndrive.occupancy.dataset
    import interndrive.occupancy.evaluation
    import interndrive.occupancy.transforms  # noqa: F401


def register_modules() -> None:
    """Registers the data side, the model (BEVFormerOcc), InternImage, the BEV layers and the engine."""
    register_data_modules()
    import interndrive.occupancy.registration  # noqa: F401


def demo(work_dir: Path) -> Mapping[str, Any]:
    """Synthetic data → tiny model trained a few iterations → metrics table, submission, PNG."""
    from interndrive.occupancy.demo import demo as run

    return run(work_dir)


def prepare_submission(cfg: Any, path: Path) -> None:
    """`interndrive test --format-only --submission PATH`: write `<token>.npz` files (zipped when
    PATH ends with .zip) instead of scoring, without loading ground truth, so the same command
    works for the test split (`--cfg-options test_dataloader.dataset.ann_file=occ_infos_temporal_test.pkl`),
    which has none.
    """
    dataset = cfg.test_dataloader.dataset
    dataset.pipeline = [step for step in dataset.pipeline if step['type'] != 'LoadOccupancyGT']
    evaluator = cfg.test_evaluator
    if isinstance(evaluator, Mapping) and 'metrics' in evaluator:
        evaluator = evaluator['metrics']
    for metric in evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]:
        metric['format_only'] = True
        metric['submission_path'] = str(path)


def evaluate(submission: Any, ground_truth: Any, **options: Any) -> Mapping[str, float]:
    """Scores a submission folder/zip against an Occ3D root or info .pkl (see evaluate.py)."""
    from interndrive.occupancy.evaluate import evaluate_submission

    return evaluate_submission(submission, ground_truth, **options)


TASK = Task(
    name='occupancy',
    description='3D occupancy prediction on Occ3D-nuScenes (BEVFormer-Occ + InternImage)',
    config_dir=_config_dir(),
    register_modules=register_modules,
    evaluate=evaluate,
    format_metrics=format_metrics,
    demo=demo,
    visualize=visualize,
    add_visualize_arguments=add_visualize_arguments,
    add_commands=add_commands,
    reference_metrics=REFERENCE_METRICS,
    prepare_submission=prepare_submission,
)
