"""The train and test workflows behind `interndrive train/test` and the torchrun entry points.

Both build an mmengine Runner (`Runner.from_cfg`) from a task config after applying the tooling's
defaults (`config.apply_runtime_defaults`), the launcher/backend (`distributed.configure_launcher`)
and the command-line switches.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmengine.dist import is_main_process
from mmengine.logging import print_log

from .. import tasks as task_registry
from ..tasks import Task
from . import amp as _amp
from . import atomic_io, distributed, registration  # noqa: F401  (registration: side effects)
from .checkpoint_match import check_checkpoint_matches
from .checks import ConfigError, require_file
from .config import apply_runtime_defaults, default_work_dir, load_task_config
from .resume import find_last_checkpoint

#: `--resume` given without a path.
AUTO = 'auto'

# mmengine names loggers/visualizers after the experiment (config stem + second-resolution time);
# two runners built in one process within a second would share them, so number the later ones.
_RUNS_IN_PROCESS = itertools.count()


@dataclass
class TestResult:
    """What `run_test` returns: the metrics, the task, and where outputs went."""

    metrics: dict[str, Any]
    task: Task
    work_dir: Path
    out: Path | None = None
    submission: Path | None = None


def _tasks(tasks: Mapping[str, Task] | None) -> Mapping[str, Task]:
    # Looked up at call time so tests (and embedding tools) can swap the discovery function.
    return task_registry.discover_tasks() if tasks is None else tasks


def _prepare(
    config: str,
    *,
    work_dir: str | os.PathLike[str] | None,
    cfg_options: Mapping[str, Any] | None,
    launcher: str,
    seed: int | None,
    tasks: Mapping[str, Task] | None,
):
    cfg, task, path = load_task_config(config, _tasks(tasks), cfg_options)
    if work_dir is not None:
        chosen = Path(work_dir)
    elif cfg.get('work_dir'):
        chosen = Path(cfg.work_dir)
    else:
        chosen = default_work_dir(path)
    apply_runtime_defaults(cfg, chosen)
    run = next(_RUNS_IN_PROCESS)
    if run and not cfg.get('experiment_name'):
        # Only later runs: the first keeps mmengine's name, which is synchronised across ranks.
        cfg.experiment_name = f'{path.stem}_{time.strftime("%Y%m%d_%H%M%S")}_{run}'

    if seed is not None:
        randomness = dict(cfg.get('randomness') or {})
        randomness['seed'] = seed
        cfg.randomness = randomness
    resolved = distributed.resolve_launcher(launcher)
    distributed.configure_launcher(cfg, resolved)
    if resolved == 'pytorch':
        timeout = cfg.env_cfg.dist_cfg.get('timeout', 1800)
        distributed.init_distributed(cfg.env_cfg.dist_cfg.backend, timeout)
    return cfg, task, path


def _build_runner(cfg):
    from mmengine.runner import Runner

    return Runner.from_cfg(cfg)


def run_train(
    config: str,
    *,
    work_dir: str | os.PathLike[str] | None = None,
    resume: str | None = None,
    amp: bool = False,
    cfg_options: Mapping[str, Any] | None = None,
    launcher: str = 'auto',
    seed: int | None = None,
    tasks: Mapping[str, Task] | None = None,
) -> Path:
    """Trains the model of `config`; returns the work dir.

    Args:
        config: Config path or `TASK/NAME`.
        work_dir: Output folder; default the config's `work_dir`, else `work_dirs/<config stem>`.
        resume: A checkpoint path, `'auto'` for the newest checkpoint in the work dir, or None.
        amp: Mixed precision (float16 on CUDA, bfloat16 autocast on CPU).
        cfg_options: Overrides as parsed from `--cfg-options`.
        launcher: `'auto'` (torchrun env vars → pytorch), `'none'`, `'pytorch'` or `'slurm'`.
        seed: Overrides `randomness.seed`.
        tasks: Installed tasks; default `discover_tasks()`.
    """
    cfg, _task, _path = _prepare(
        config,
        work_dir=work_dir,
        cfg_options=cfg_options,
        launcher=launcher,
        seed=seed,
        tasks=tasks,
    )
    if amp:
        _amp.configure_amp(cfg)
    if resume is None and cfg.get('resume') and not cfg.get('load_from'):
        resume = AUTO  # `resume = True` in the config: same validated lookup as a bare --resume
    if resume is not None:
        if resume == AUTO:
            found = find_last_checkpoint(cfg.work_dir)
            if found is None:
                print_log(
                    f'--resume: no checkpoint in {cfg.work_dir}, training from scratch',
                    logger='current',
                    level=logging.WARNING,
                )
            else:
                cfg.resume, cfg.load_from = True, str(found)
        else:
            cfg.resume, cfg.load_from = True, str(require_file(resume, 'checkpoint to resume from'))
    runner = _build_runner(cfg)
    if cfg.get('resume') and cfg.get('load_from'):
        # mmengine resumes with strict=False, silently keeping random weights for missing keys.
        check_checkpoint_matches(
            runner.model, cfg.load_from, config_name=f'config {_path.name}', task_name=_task.name
        )
    runner.train()
    return Path(cfg.work_dir)


def _as_metric_list(evaluator_cfg) -> list:
    if evaluator_cfg is None:
        return []
    if isinstance(evaluator_cfg, dict) and 'metrics' in evaluator_cfg:
        metrics = evaluator_cfg['metrics']
        return list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
    return list(evaluator_cfg) if isinstance(evaluator_cfg, (list, tuple)) else [evaluator_cfg]


def run_test(
    config: str,
    checkpoint: str | os.PathLike[str],
    *,
    work_dir: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    format_only: bool = False,
    submission: str | os.PathLike[str] | None = None,
    metrics_json: str | os.PathLike[str] | None = None,
    cfg_options: Mapping[str, Any] | None = None,
    launcher: str = 'auto',
    tasks: Mapping[str, Task] | None = None,
) -> TestResult:
    """Tests `checkpoint` with the test split of `config`; returns the metrics.

    Args:
        config: Config path or `TASK/NAME`.
        checkpoint: Weights to test; must match the config's model (checked, one-line error).
        work_dir: Output folder for logs; default as for training.
        out: Pickle every sample's prediction (dataset order) to this `.pkl` file.
        format_only: Write the challenge submission file instead of computing metrics.
        submission: Destination of the submission file (required with `format_only`).
        metrics_json: Also write the metrics to this JSON file.
        cfg_options: Overrides as parsed from `--cfg-options`.
        launcher: As for `run_train`.
        tasks: Installed tasks; default `discover_tasks()`.
    """
    if format_only and submission is None:
        raise ConfigError('--format-only needs --submission PATH (where to write the submission)')
    if submission is not None and not format_only:
        raise ConfigError('--submission PATH is only used with --format-only')
    checkpoint = require_file(checkpoint, 'checkpoint')
    cfg, task, path = _prepare(
        config,
        work_dir=work_dir,
        cfg_options=cfg_options,
        launcher=launcher,
        seed=None,
        tasks=tasks,
    )
    for key in ('test_dataloader', 'test_cfg', 'test_evaluator'):
        if cfg.get(key) is None:
            raise ConfigError(f'config {str(path)!r} has no {key}; it cannot be tested')
    metrics_cfg = _as_metric_list(cfg.test_evaluator)
    if format_only:
        submission = Path(submission)
        if task.prepare_submission is not None:
            task.prepare_submission(cfg, submission)
        else:
            for metric in metrics_cfg:
                metric['format_only'] = True
                metric['submission_path'] = str(submission)
    if out is not None:
        metrics_cfg.append(dict(type='AtomicDumpResults', out_file_path=str(out)))
    if out is not None or (format_only and task.prepare_submission is None):
        cfg.test_evaluator = metrics_cfg
    cfg.load_from = str(checkpoint)
    cfg.resume = False
    runner = _build_runner(cfg)
    check_checkpoint_matches(
        runner.model, checkpoint, config_name=f'config {path.name}', task_name=task.name
    )
    metrics = dict(runner.test())
    if metrics_json is not None and is_main_process():
        plain = {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in metrics.items()}
        text = json.dumps(plain, indent=2, sort_keys=True, default=_json_default)
        atomic_io.atomic_write_text(metrics_json, text + '\n')
    return TestResult(
        metrics=metrics,
        task=task,
        work_dir=Path(cfg.work_dir),
        out=Path(out) if out is not None else None,
        submission=Path(submission) if submission is not None else None,
    )


def _json_default(value: object) -> object:
    if hasattr(value, 'item'):
        return value.item()
    if hasattr(value, 'tolist'):
        return value.tolist()
    return str(value)


def strip_common_prefix(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Drops a `prefix/` shared by all keys (mmengine metrics prefix their keys, e.g. `occ/mIoU`).

    `Task.format_metrics` then sees the same keys from `interndrive test` as from `Task.evaluate`.
    """
    prefixes = {k.split('/', 1)[0] for k in metrics if '/' in k}
    if len(prefixes) != 1 or not all('/' in k for k in metrics):
        return dict(metrics)
    return {k.split('/', 1)[1]: v for k, v in metrics.items()}


def _generic_table(metrics: Mapping[str, Any]) -> str:
    width = max(len(k) for k in metrics)
    lines = [f'| {"metric".ljust(width)} | value |', f'|{"-" * (width + 2)}|-------|']
    for key, value in metrics.items():
        shown = f'{value:.4f}' if isinstance(value, float) and math.isfinite(value) else str(value)
        lines.append(f'| {key.ljust(width)} | {shown} |')
    return '\n'.join(lines)


def format_metric_table(metrics: Mapping[str, Any], task: Task | None = None) -> str:
    """The task's table (`Task.format_metrics`, keys without a common prefix) or a generic table.

    Falls back to the generic table, with a note, when the task's formatter does not accept the
    mapping (e.g. a config whose metric reports other keys).
    """
    if not metrics:
        return '(no metrics: format-only run or the metric returned nothing)'
    if task is not None and task.format_metrics is not None:
        try:
            return task.format_metrics(strip_common_prefix(metrics))
        except (KeyError, ValueError, TypeError) as e:
            note = f'({task.name} table not available: {e})\n'
            return note + _generic_table(metrics)
    return _generic_table(metrics)
