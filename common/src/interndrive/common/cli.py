"""`interndrive`: one command line for training, testing, evaluating and inspecting all tasks.

    interndrive train CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
    interndrive test CONFIG CHECKPOINT [--out results.pkl] [--format-only --submission PATH]
    interndrive evaluate TASK SUBMISSION GROUND_TRUTH [--option k=v ...]
    interndrive visualize TASK ...
    interndrive demo TASK [--work-dir DIR]
    interndrive convert-checkpoint ...
    interndrive info
    interndrive TASK SUBCOMMAND ...        (commands a task package adds, e.g. data converters)

Multi-GPU / multi-node training goes through torchrun: see `python -m interndrive.common.train -h`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from . import __version__
from . import tasks as task_registry
from .engine.checks import (
    USER_ERROR_EXIT_CODE,
    ConfigError,
    InterndriveError,
    MissingPathError,
    run_reporting_user_errors,
)
from .tasks import Task
from .test import add_test_arguments, test_from_args
from .train import add_train_arguments, train_from_args

PROG = 'interndrive'
_INFO_PACKAGES = (
    ('torch', 'torch'),
    ('mmengine', 'mmengine'),
    ('mmcv', 'mmcv'),
    ('mmdet', 'mmdet'),
    ('mmdet3d', 'mmdet3d'),
    ('dcnv3', 'dcnv3'),
    ('interndrive-common', 'interndrive.common'),
)


class TaskNotInstalledError(ConfigError):
    """A task name that no installed task package provides."""


def _load_tasks() -> tuple[dict[str, Task], dict[str, str]]:
    return task_registry.discover_tasks_with_errors()


def _require_task(name: str, tasks: Mapping[str, Task], errors: Mapping[str, str]) -> Task:
    if name in tasks:
        return tasks[name]
    if name in errors:
        raise TaskNotInstalledError(f'task {name!r} is installed but fails to load: {errors[name]}')
    installed = ', '.join(sorted(tasks)) or 'none'
    raise TaskNotInstalledError(
        f'unknown task {name!r} (installed tasks: {installed}); '
        f'install one with: pip install ./packages/<task>'
    )


def _require_capability(task: Task, attribute: str, command: str) -> Callable[..., Any]:
    func = getattr(task, attribute)
    if func is None:
        raise ConfigError(f'task {task.name!r} does not offer `interndrive {command}` yet')
    return func


# ---------------------------------------------------------------------------------------- info


def _distribution_version(dist_name: str, module_name: str) -> str:
    try:
        return version(dist_name)
    except PackageNotFoundError:
        pass
    try:
        module = importlib.import_module(module_name)
    except Exception:  # not installed, or broken at import: both mean "not usable"
        return 'not installed'
    return f'{getattr(module, "__version__", "unknown")} (source, not installed)'


def _probe(func: Callable[[], Any]) -> str:
    try:
        value = func()
    except Exception as e:  # info must report problems, never die of them
        return f'no ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""})'
    return 'yes' if value is True else ('no' if value is False else str(value))


def _mmcv_ops() -> bool:
    importlib.import_module('mmcv.ops')
    return True


def _dcnv3_compiled() -> str:
    import dcnv3

    if dcnv3.has_compiled_ops():
        return 'yes'
    error = dcnv3.load_error() if callable(getattr(dcnv3, 'load_error', None)) else None
    return f'no (pure-PyTorch fallback{f": {error}" if error else ""})'


def _dcnv3_cuda() -> bool:
    import dcnv3

    return bool(dcnv3.has_cuda_kernel())


def collect_info() -> dict[str, Any]:
    """Versions, compiled ops, CUDA devices and installed tasks, as a JSON-friendly dict."""
    import torch

    tasks, errors = _load_tasks()
    devices = (
        [f'{i}: {torch.cuda.get_device_name(i)}' for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else []
    )
    return {
        'interndrive': __version__,
        'python': f'{platform.python_version()} ({sys.executable})',
        'platform': platform.platform(),
        'versions': {d: _distribution_version(d, m) for d, m in _INFO_PACKAGES},
        'compiled': {
            'mmcv.ops': _probe(_mmcv_ops),
            'dcnv3 C++ ops': _probe(_dcnv3_compiled),
            'dcnv3 CUDA kernel': _probe(_dcnv3_cuda),
        },
        'cuda': {
            'available': torch.cuda.is_available(),
            'torch built with CUDA': torch.version.cuda or 'no (CPU build)',
            'devices': devices,
        },
        'tasks': {
            name: {
                'description': t.description,
                'config_dir': str(t.config_dir),
                'capabilities': t.capabilities(),
            }
            for name, t in sorted(tasks.items())
        },
        'broken_tasks': errors,
    }


def _print_info(info: Mapping[str, Any]) -> None:
    print(f'interndrive {info["interndrive"]}')
    print(f'python       {info["python"]}')
    print(f'platform     {info["platform"]}')
    print('\nversions')
    for name, value in info['versions'].items():
        print(f'  {name:<20} {value}')
    print('\ncompiled ops')
    for name, value in info['compiled'].items():
        print(f'  {name:<20} {value}')
    cuda = info['cuda']
    print('\nCUDA')
    print(f'  {"available":<20} {"yes" if cuda["available"] else "no"}')
    print(f'  {"torch CUDA":<20} {cuda["torch built with CUDA"]}')
    for device in cuda['devices']:
        print(f'  device {device}')
    print('\ntasks')
    if not info['tasks'] and not info['broken_tasks']:
        print(
            '  none installed (pip install ./packages/occupancy, ./packages/hdmap, ./packages/openlane)'
        )
    for name, task in info['tasks'].items():
        print(f'  {name:<12} {task["description"]}')
        print(f'  {"":<12} configs: {task["config_dir"]}')
        print(f'  {"":<12} offers: {", ".join(task["capabilities"]) or "nothing yet"}')
    for name, error in info['broken_tasks'].items():
        print(f'  {name:<12} BROKEN: {error}')


def cmd_info(args: argparse.Namespace) -> int:
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_info(info)
    return 0


# ------------------------------------------------------------------------------------ evaluate


def _parse_options(items: Sequence[str] | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition('=')
        if not sep or not key:
            raise ConfigError(f'--option {item!r}: expected KEY=VALUE')
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw  # plain strings need no quoting
    return options


def _require_exists(path: str, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise MissingPathError(f'{what} {str(p)!r} does not exist')
    return p


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .engine.atomic_io import atomic_write_text
    from .engine.workflow import format_metric_table

    tasks, errors = _load_tasks()
    task = _require_task(args.task, tasks, errors)
    evaluate = _require_capability(task, 'evaluate', 'evaluate')
    submission = _require_exists(args.submission, 'submission')
    ground_truth = _require_exists(args.ground_truth, 'ground truth')
    metrics = dict(evaluate(submission, ground_truth, **_parse_options(args.option)))
    print(format_metric_table(metrics, task))
    if args.json:
        atomic_write_text(
            args.json, json.dumps(metrics, indent=2, sort_keys=True, default=float) + '\n'
        )
    return 0


# ------------------------------------------------------------------------ visualize / demo


def cmd_visualize(args: argparse.Namespace) -> int:
    tasks, errors = _load_tasks()
    task = _require_task(args.task, tasks, errors)
    visualize = _require_capability(task, 'visualize', f'visualize {task.name}')
    written = visualize(args)
    for path in written:
        print(path)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    tasks, errors = _load_tasks()
    task = _require_task(args.task, tasks, errors)
    demo = _require_capability(task, 'demo', f'demo {task.name}')
    work_dir = Path(args.work_dir) if args.work_dir else Path('work_dirs') / f'demo_{task.name}'
    summary = demo(work_dir)
    for key, value in dict(summary or {}).items():
        print(f'{key}: {value}')
    return 0


# --------------------------------------------------------------------------- convert-checkpoint


def cmd_convert_checkpoint(argv: Sequence[str]) -> int:
    """Delegates to `interndrive.common.convert_checkpoint.main(argv)` (the backbone's converter)."""
    try:
        module = importlib.import_module('interndrive.common.convert_checkpoint')
    except ImportError as e:
        raise ConfigError(f'convert-checkpoint is not available in this installation ({e})') from e
    main = getattr(module, 'main', None)
    if not callable(main):
        raise ConfigError('interndrive.common.convert_checkpoint has no main(argv) function')
    result = main(list(argv))
    return 0 if result is None else int(result)


# ------------------------------------------------------------------------------------- parser


def _guarded(add: Callable[[Any], None], target: Any, what: str) -> None:
    """Runs a task's parser hook; a failing plug-in costs its own commands, not the whole CLI."""
    try:
        add(target)
    except Exception as e:
        print(
            f'interndrive: warning: {what} failed to load: {type(e).__name__}: {e}', file=sys.stderr
        )


def build_parser(
    tasks: Mapping[str, Task] | None = None, errors: Mapping[str, str] | None = None
) -> argparse.ArgumentParser:
    """The `interndrive` argument parser, with the subcommands of the given (default: installed) tasks."""
    if tasks is None:
        tasks, errors = _load_tasks()
    errors = errors or {}
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Train, test, evaluate and inspect the interndrive driving tasks.',
        epilog='Multi-GPU: torchrun --nproc-per-node 8 -m interndrive.train CONFIG',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)

    train = commands.add_parser('train', help='train a model from a config')
    add_train_arguments(train).set_defaults(func=train_from_args)

    test = commands.add_parser('test', help='test a checkpoint and print the metric table')
    add_test_arguments(test).set_defaults(func=test_from_args)

    task_names = sorted(tasks)
    evaluate = commands.add_parser(
        'evaluate', help='score a submission file against ground truth (no model needed)'
    )
    evaluate.add_argument(
        'task', metavar='TASK', help=f'task name ({", ".join(task_names) or "none installed"})'
    )
    evaluate.add_argument('submission', help='submission file in the challenge format')
    evaluate.add_argument('ground_truth', help='ground-truth file or folder')
    evaluate.add_argument(
        '--option',
        action='append',
        metavar='KEY=VALUE',
        help='task-specific evaluation option (repeatable)',
    )
    evaluate.add_argument('--json', metavar='PATH', help='also write the metrics as JSON')
    evaluate.set_defaults(func=cmd_evaluate)

    visualize = commands.add_parser('visualize', help='render predictions / ground truth to images')
    vis_tasks = visualize.add_subparsers(dest='task', metavar='TASK', required=True)
    for name, task in sorted(tasks.items()):
        sub = vis_tasks.add_parser(name, help=task.description)
        if task.add_visualize_arguments is not None:
            _guarded(task.add_visualize_arguments, sub, f'{name} visualize arguments')
        sub.set_defaults(func=cmd_visualize)

    demo = commands.add_parser('demo', help="run a task's end-to-end demo on generated data")
    demo.add_argument(
        'task', metavar='TASK', help=f'task name ({", ".join(task_names) or "none installed"})'
    )
    demo.add_argument('--work-dir', help='output folder (default: work_dirs/demo_<task>)')
    demo.set_defaults(func=cmd_demo)

    commands.add_parser(
        'convert-checkpoint',
        help='convert released upstream weights (arguments go to the converter; try -h)',
        add_help=False,
    )

    info = commands.add_parser('info', help='versions, compiled ops, CUDA devices, installed tasks')
    info.add_argument('--json', action='store_true', help='print machine-readable JSON')
    info.set_defaults(func=cmd_info)

    for name, task in sorted(tasks.items()):
        if task.add_commands is None or name in commands.choices:
            continue
        task_parser = commands.add_parser(name, help=f'{task.description} (task commands)')
        _guarded(
            task.add_commands,
            task_parser.add_subparsers(dest='task_command', metavar='SUBCOMMAND', required=True),
            f'{name} commands',
        )
    return parser


def _dispatch(argv: Sequence[str]) -> int:
    if argv and argv[0] == 'convert-checkpoint':
        # Passed through untouched: the converter owns its flags (argparse would eat its -h).
        return cmd_convert_checkpoint(argv[1:])
    if argv and argv[0] in ('evaluate', 'demo', 'visualize') and len(argv) > 1:
        # Unknown task names get the one-line error, not argparse's usage dump.
        tasks, errors = _load_tasks()
        if not argv[1].startswith('-'):
            _require_task(argv[1], tasks, errors)
        parser = build_parser(tasks, errors)
    else:
        parser = build_parser()
    args = parser.parse_args(list(argv))
    func = getattr(args, 'func', None)
    if func is None:
        parser.print_help()
        return USER_ERROR_EXIT_CODE
    return func(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point (`interndrive = interndrive.common.cli:main`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return run_reporting_user_errors(_dispatch, argv)
    finally:
        from .engine.distributed import destroy_distributed

        destroy_distributed()


__all__ = ['InterndriveError', 'build_parser', 'collect_info', 'main']

if __name__ == '__main__':
    raise SystemExit(main())
