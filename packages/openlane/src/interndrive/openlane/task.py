"""The OpenLane-V2 task's plug-in object for the `interndrive` CLI (entry point `interndrive.tasks`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from interndrive.common.tasks import Task
from interndrive.openlane.cli import add_commands, add_visualize_arguments, visualize
from interndrive.openlane.evaluation import REFERENCE_METRICS, format_metrics


def _config_dir() -> Path:
    installed = Path(__file__).resolve().parent / 'configs'  # wheel: force-included here
    return installed if installed.is_dir() else Path(__file__).resolve().parents[3] / 'configs'


EVALUATE_OPTIONS = ('version',)


def evaluate(submission: Any, ground_truth: Any, **options: Any) -> Mapping[str, float]:
    """Scores a submission pickle against a collection pickle; option `version` = 1.0 | 1.1."""
    from interndrive.openlane.cli import user_errors
    from interndrive.openlane.evaluation import evaluate_submission

    unknown = sorted(set(options) - set(EVALUATE_OPTIONS))
    if unknown:
        from interndrive.common.engine.checks import InterndriveError

        raise InterndriveError(
            f'interndrive evaluate openlane: unknown --option {", ".join(unknown)}; '
            f'the options are {", ".join(EVALUATE_OPTIONS)} (e.g. --option version=1.1)'
        )
    with user_errors():
        return evaluate_submission(submission, ground_truth, **options)


def register_modules() -> None:
    """Registers the dataset, transforms, metric, model (RoadBEVFormer and its heads), InternImage,
    the BEV layers and the engine's hooks/loops."""
    import interndrive.openlane.registration  # noqa: F401


def demo(work_dir: Path) -> Mapping[str, Any]:
    """Synthetic data → tiny model trained a few iterations → OLS table, submission, PNG."""
    from interndrive.openlane.demo import run_demo

    return run_demo(work_dir)


TASK = Task(
    name='openlane',
    description='OpenLane-V2 subset_A: lane centerlines, traffic elements, topology (OLS v1.0/v1.1)',
    config_dir=_config_dir(),
    register_modules=register_modules,
    evaluate=evaluate,
    format_metrics=format_metrics,
    demo=demo,
    visualize=visualize,
    add_visualize_arguments=add_visualize_arguments,
    add_commands=add_commands,
    reference_metrics=REFERENCE_METRICS,
)
