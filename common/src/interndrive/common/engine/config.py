"""Config lookup (path or `TASK/NAME`), task identification, and the runtime defaults of the CLI.

A config belongs to a task when it says so (`task = 'occupancy'`) or when it lives in the task's
`config_dir`. `TASK/NAME` (with or without `.py`) is looked up in that task's `config_dir`, so
`interndrive train occupancy/bevformer_intern-s_occ` works from any folder once the task is installed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmengine.config import Config, DictAction

from ..tasks import Task
from .checks import ConfigError, MissingPathError

CONFIG_SUFFIXES = ('.py', '.json', '.yaml', '.yml')


def _with_suffix_candidates(path: Path) -> list[Path]:
    if path.suffix in CONFIG_SUFFIXES:
        return [path]
    return [path, *(path.with_name(path.name + s) for s in CONFIG_SUFFIXES)]


def resolve_config_path(spec: str, tasks: Mapping[str, Task]) -> tuple[Path, Task | None]:
    """Finds the config file meant by `spec`.

    Args:
        spec: A path to a config file, or `TASK/NAME` naming a config inside the task's config_dir.
        tasks: Installed tasks (from `discover_tasks()`).

    Returns:
        The config path and the task named by `TASK/NAME` (None for a plain path).
    """
    for candidate in _with_suffix_candidates(Path(spec).expanduser()):
        if candidate.is_file():
            return candidate.resolve(), None
    head, sep, rest = spec.partition('/')
    if sep and head in tasks:
        config_dir = Path(tasks[head].config_dir)
        for candidate in _with_suffix_candidates(config_dir / rest):
            if candidate.is_file():
                return candidate.resolve(), tasks[head]
        available = sorted(p.stem for p in config_dir.glob('*.py')) if config_dir.is_dir() else []
        raise MissingPathError(
            f'config {spec!r}: no {rest!r} in task {head!r} configs ({config_dir}); '
            f'available: {", ".join(available) or "none"}'
        )
    if sep and not Path(head).exists() and tasks and head not in tasks:
        raise ConfigError(
            f'config {spec!r}: no such file, and {head!r} is not an installed task '
            f'(installed: {", ".join(sorted(tasks))})'
        )
    raise MissingPathError(f'config {spec!r} does not exist (give a file path or TASK/NAME)')


def _is_inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def task_of_config(cfg: Config, path: Path, tasks: Mapping[str, Task]) -> Task:
    """The task a loaded config belongs to (its `task` key, else the config_dir containing it)."""
    name = cfg.get('task')
    if name is not None:
        if name not in tasks:
            installed = ', '.join(sorted(tasks)) or 'none'
            raise ConfigError(
                f'config {str(path)!r} is for task {name!r}, which is not installed '
                f'(installed tasks: {installed}); install it with: pip install ./packages/{name}'
            )
        return tasks[name]
    owners = [t for t in tasks.values() if _is_inside(path, Path(t.config_dir))]
    if len(owners) == 1:
        return owners[0]
    raise ConfigError(
        f'cannot tell which task config {str(path)!r} belongs to: add e.g. '
        f"task = 'occupancy' to it (installed tasks: {', '.join(sorted(tasks)) or 'none'})"
    )


def parse_cfg_options(items: Sequence[str] | None) -> dict[str, Any]:
    """Parses `k=v` strings as mmengine's `--cfg-options` does (`a.b=1`, `l=[1,2]`, `s=x,y`)."""
    if not items:
        return {}
    namespace: dict[str, Any] = {}
    action = DictAction(option_strings=['--cfg-options'], dest='cfg_options')
    for item in items:
        if '=' not in item:
            raise ConfigError(f'--cfg-options {item!r}: expected KEY=VALUE')
    action(None, _Namespace(namespace), list(items))
    return namespace['cfg_options']


class _Namespace:
    def __init__(self, store: dict[str, Any]) -> None:
        object.__setattr__(self, '_store', store)

    def __setattr__(self, key: str, value: Any) -> None:
        self._store[key] = value

    def __getattr__(self, key: str) -> Any:
        return self._store.get(key)


def load_task_config(
    spec: str, tasks: Mapping[str, Task], cfg_options: Mapping[str, Any] | None = None
) -> tuple[Config, Task, Path]:
    """Loads a config by path or `TASK/NAME`, applies `--cfg-options`, and finds its task.

    The task's `register_modules()` is called before returning, so the config's types resolve.
    """
    path, named_task = resolve_config_path(spec, tasks)
    try:
        cfg = Config.fromfile(str(path))
    except (SyntaxError, FileNotFoundError, ImportError) as e:
        raise ConfigError(f'config {str(path)!r} cannot be loaded: {e}') from e
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options))
    task = named_task or task_of_config(cfg, path, tasks)
    if named_task is not None and cfg.get('task') not in (None, named_task.name):
        raise ConfigError(
            f'config {spec!r} is in task {named_task.name!r} but says task = {cfg.task!r}'
        )
    if task.register_modules is not None:
        task.register_modules()
    return cfg, task, path


def default_work_dir(config_path: Path) -> Path:
    """`work_dirs/<config stem>` under the current folder, as OpenMMLab tools do."""
    return Path('work_dirs') / config_path.stem


def apply_runtime_defaults(cfg: Config, work_dir: str | os.PathLike[str]) -> None:
    """Fills in the tooling's defaults without overriding anything the config sets explicitly.

    - `work_dir`;
    - atomic checkpoints: a CheckpointHook becomes an AtomicCheckpointHook (same arguments);
    - `EpochBasedTrainLoop`/`IterBasedTrainLoop` (or `by_epoch=True/False`) become the Resumable
      loops of `loops.py`;
    - the train dataloader's `DefaultSampler` becomes `ResumableTrainSampler` (same order);
    - val/test loops become the scene-ordered loops (identical to mmengine's for other samplers);
    - a visualizer with a local backend, plus TensorBoard when the config has `tensorboard = True`
      (also added to a visualizer the config defines).
    """
    cfg.work_dir = str(work_dir)
    hooks = dict(cfg.get('default_hooks') or {})
    checkpoint = dict(hooks.get('checkpoint') or dict(type='CheckpointHook', interval=1))
    if checkpoint.get('type') in ('CheckpointHook', None):
        checkpoint['type'] = 'AtomicCheckpointHook'
    hooks['checkpoint'] = checkpoint
    cfg.default_hooks = hooks

    train_cfg = cfg.get('train_cfg')
    if isinstance(train_cfg, dict):
        kind = train_cfg.get('type')
        if kind is None and 'by_epoch' in train_cfg:
            kind = 'EpochBasedTrainLoop' if train_cfg['by_epoch'] else 'IterBasedTrainLoop'
        replacement = {
            'EpochBasedTrainLoop': 'ResumableEpochBasedTrainLoop',
            'IterBasedTrainLoop': 'ResumableIterBasedTrainLoop',
        }.get(kind)
        if replacement is not None:
            train_cfg = dict(train_cfg)
            train_cfg.pop('by_epoch', None)
            train_cfg['type'] = replacement
            cfg.train_cfg = train_cfg
    loader = cfg.get('train_dataloader')
    if isinstance(loader, dict) and isinstance(loader.get('sampler'), dict):
        if loader['sampler'].get('type') == 'DefaultSampler':
            # Same permutations (seed + epoch) and rank split, plus skip(): resuming mid-epoch then
            # does not load the already trained part of the epoch again.
            loader = dict(loader)
            loader['sampler'] = dict(loader['sampler'], type='ResumableTrainSampler')
            cfg.train_dataloader = loader
    for key, loop in (('val_cfg', 'SceneOrderedValLoop'), ('test_cfg', 'SceneOrderedTestLoop')):
        loop_cfg = cfg.get(key)
        if isinstance(loop_cfg, dict) and loop_cfg.get('type') in (None, 'ValLoop', 'TestLoop'):
            loop_cfg = dict(loop_cfg)
            loop_cfg['type'] = loop
            cfg[key] = loop_cfg

    tensorboard = {'type': 'TensorboardVisBackend'}
    if 'visualizer' not in cfg:
        backends = [dict(type='LocalVisBackend')]
        if cfg.get('tensorboard', False):
            backends.append(tensorboard)
        cfg.visualizer = dict(type='Visualizer', vis_backends=backends)
    elif cfg.get('tensorboard', False):
        visualizer = dict(cfg.visualizer)
        backends = list(visualizer.get('vis_backends') or [])
        if not any(b.get('type') == 'TensorboardVisBackend' for b in backends):
            backends.append(tensorboard)
        visualizer['vis_backends'] = backends
        cfg.visualizer = visualizer
