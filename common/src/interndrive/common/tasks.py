"""The task-plugin contract between the `interndrive` CLI and the task packages.

Each task package (interndrive-occupancy, -hdmap, -openlane) exposes one `Task` object through the
`interndrive.tasks` entry-point group (see its pyproject.toml). The CLI discovers installed tasks
through that group, so installing one task alone gives a CLI that knows exactly that task.

Every callable is optional: a task that does not offer a capability yet leaves it as None and the CLI
says so instead of failing somewhere deep.

Discovery also finds task packages that are importable but not installed as distributions (a source
checkout on PYTHONPATH): any `interndrive.<name>.task` module exporting `TASK` counts, so entry points
and PYTHONPATH development give the same CLI.

Conventions the CLI relies on (see common/docs/tooling.md):
- Configs name their task with `task = '<name>'` or live in the task's `config_dir`.
- `interndrive test --format-only --submission PATH` calls `prepare_submission(cfg, PATH)` when given;
  otherwise it sets `format_only=True` and `submission_path=PATH` on every `test_evaluator` metric.
- Metrics used with `SceneContiguousSampler` append exactly one entry to `self.results` per sample.
- Subcommands added by `add_commands` set `func=<callable(args) -> int | None>` with `set_defaults`.
- User errors are raised as `interndrive.common.engine.checks.InterndriveError` subclasses (the CLI
  prints them in one line and exits with status 2).
"""

from __future__ import annotations

import argparse
import importlib
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
        prepare_submission: `prepare_submission(cfg, path)` edits a loaded mmengine Config so that
            `interndrive test --format-only` writes the challenge submission file to `path` instead
            of computing metrics. When None the CLI sets `format_only=True` and
            `submission_path=str(path)` on each test_evaluator metric.
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
    prepare_submission: Callable[[Any, Path], None] | None = None

    def capabilities(self) -> list[str]:
        """Names of the optional capabilities this task provides (for `interndrive info`)."""
        names = (
            'register_modules',
            'evaluate',
            'format_metrics',
            'demo',
            'visualize',
            'add_commands',
        )
        return [n for n in names if getattr(self, n) is not None]


def _check_task(task: object, origin: str) -> Task:
    if not isinstance(task, Task):
        raise TypeError(
            f'{origin} must be an interndrive.common.tasks.Task, got {type(task).__name__}'
        )
    return task


def _namespace_task_modules() -> list[str]:
    """`interndrive.<name>.task` modules present in the `interndrive` namespace package's folders.

    Found by looking for the files, without importing anything: a package whose `__init__` fails must
    show up as a broken task, not disappear.
    """
    try:
        import interndrive
    except ImportError:  # pragma: no cover - this module itself lives in the namespace
        return []
    names = set()
    for folder in map(Path, interndrive.__path__):
        if not folder.is_dir():
            continue
        for child in folder.iterdir():
            if child.name == 'common' or not (child / '__init__.py').is_file():
                continue
            if (child / 'task.py').is_file() or (child / 'task' / '__init__.py').is_file():
                names.add(f'interndrive.{child.name}.task')
    return sorted(names)


def discover_tasks_with_errors(
    strict: bool = False,
) -> tuple[dict[str, Task], dict[str, str]]:
    """Like `discover_tasks`, but a task that fails to load is reported instead of raised.

    Args:
        strict: Re-raise the first loading error instead of reporting it.

    Returns:
        The loaded tasks keyed by name, and `{name or module: one-line error}` for broken ones.
    """
    tasks: dict[str, Task] = {}
    errors: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            task = _check_task(
                ep.load(), f'entry point {ep.name!r} ({ep.value}) in group {ENTRY_POINT_GROUP!r}'
            )
        except Exception as e:  # a broken plug-in must not take the whole CLI down
            if strict:
                raise
            errors[ep.name] = f'{type(e).__name__}: {e}'
            continue
        tasks[task.name] = task
    for module in _namespace_task_modules():
        short = module.split('.')[1]
        if short in tasks or short in errors:
            continue
        try:
            task = _check_task(importlib.import_module(module).TASK, f'{module}.TASK')
        except Exception as e:
            if strict:
                raise
            errors[short] = f'{type(e).__name__}: {e}'
            continue
        tasks.setdefault(task.name, task)
    return tasks, errors


def discover_tasks() -> dict[str, Task]:
    """Loads every installed task package's `Task`, keyed by name.

    Tasks come from the `interndrive.tasks` entry points, then from `interndrive.<name>.task`
    modules on the import path (source checkouts). A task that fails to load raises.
    """
    return discover_tasks_with_errors(strict=True)[0]
