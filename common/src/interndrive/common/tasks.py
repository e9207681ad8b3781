"""The task-plugin contract between the `interndrive` CLI and the task packages.

Each task package (interndrive-occupancy, -hdmap, -openlane) exposes one `Task` object through the
`interndrive.tasks` entry-point group (see its pyproject.toml). The CLI discovers installed tasks
through that group, so installing one task alone gives a CLI that knows exactly that task.

Every callable is optional: a task that does not offer a capability yet leaves it as None and the CLI
says so instead of failing somewhere deep.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

ENTRY_POINT_GROUP = 'interndrive.tasks'


@dataclass(frozen=True)
class Task:
    """What one task package offers to the CLI.

    Args:
        name: Short task name used on the command line (`occupancy`, `hdmap`, `openlane`).
        description: One line for `interndrive info` and `--help`.
        config_dir: Folder holding the task's mmengine configs (shipped inside the wheel).
        register_modules: Imports the modules that register the task's models, datasets, transforms
            and metrics into the OpenMMLab registries. Called before a config is built.
        evaluate: `evaluate(submission, ground_truth, **options) -> metrics` scores a submission file
            offline (no model). Returns a flat mapping of metric name to value.
        format_metrics: Renders the mapping returned by `evaluate` as the table of the seed README.
        demo: `demo(work_dir) -> summary` runs the task's end-to-end demo on generated data.
        visualize: `visualize(args) -> list[Path]` renders PNGs; `add_visualize_arguments` declares its flags.
        add_visualize_arguments: Adds the task-specific flags of `interndrive visualize TASK`.
        add_commands: Adds task-specific subcommands under `interndrive TASK ...` (e.g. `convert`).
        reference_metrics: Published numbers of the seed models (for tables and documentation).
    """

    name: str
    description: str
    config_dir: Path
    register_modules: Callable[[], None] | None = None
    evaluate: Callable[..., Mapping[str, float]] | None = None
    format_metrics: Callable[[Mapping[str, float]], str] | None = None
    demo: Callable[[Path], Mapping[str, Any]] | None = None
    visualize: Callable[[argparse.Namespace], list[Path]] | None = None
    add_visualize_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    add_commands: Callable[[argparse._SubParsersAction], None] | None = None
    reference_metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


def discover_tasks() -> dict[str, Task]:
    """Loads every installed task package's `Task`, keyed by name."""
    tasks: dict[str, Task] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        task = ep.load()
        if not isinstance(task, Task):
            raise TypeError(
                f'entry point {ep.name!r} ({ep.value}) in group {ENTRY_POINT_GROUP!r} must be an '
                f'interndrive.common.tasks.Task, got {type(task).__name__}'
            )
        tasks[task.name] = task
    return tasks


def get_task(name: str) -> Task:
    """Returns the installed task `name`, or raises a clear error listing what is installed."""
    tasks = discover_tasks()
    if name not in tasks:
        installed = ', '.join(sorted(tasks)) or 'none'
        raise SystemExit(
            f'interndrive: task {name!r} is not installed (installed tasks: {installed}). '
            f'Install it with: pip install ./packages/{name}'
        )
    return tasks[name]
