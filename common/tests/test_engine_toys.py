"""Tiny model, dataset, metric and task used by the tooling tests (no task model exists yet).

Imported by the other test_engine*/test_resume*/test_distributed*/test_cli* modules and, inside
subprocesses, through a config's `custom_imports = dict(imports=['test_engine_toys'])`.

- ToyDataset: samples grouped into scenes of uneven lengths; inputs are a fixed function of the index.
- ToyTemporalModel: an MLP with dropout (so exact resume needs the per-iteration reseeding); in predict
  mode it adds half of the previous frame's prediction when the previous frame belongs to the same
  scene, like BEVFormer's prev_bev. Splitting a scene across ranks would change its predictions.
- ToyMetric: MSE plus an order-sensitive checksum of the predictions in dataset order.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import ClassVar

import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS
from torch import nn
from torch.utils.data import Dataset

import interndrive.common.engine.registration  # noqa: F401  (the tooling's loops, samplers, hooks)
from interndrive.common.engine.checks import require_dir, require_split

COMMON_SRC = Path(__file__).resolve().parents[1] / 'src'
TESTS_DIR = Path(__file__).resolve().parent


def toy_input(index: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 + index)
    return torch.randn(4, generator=g)


@DATASETS.register_module(force=True)
class ToyDataset(Dataset):
    """`sum(scene_lengths)` samples; sample i belongs to scene `s<k>` by consecutive runs."""

    metainfo: ClassVar[dict] = {'classes': ('toy',)}

    def __init__(
        self,
        scene_lengths: tuple[int, ...] = (3, 5, 2, 4),
        data_root: str | None = None,
        split: str = 'train',
    ) -> None:
        # The same checks a real task dataset makes (and the CLI reports in one line).
        if data_root is not None:
            require_dir(data_root, 'data root', hint='set it with --cfg-options')
        require_split(split, ('train', 'val', 'test'))
        self.scene_of = [f's{k}' for k, n in enumerate(scene_lengths) for _ in range(n)]

    def __len__(self) -> int:
        return len(self.scene_of)

    def get_data_info(self, index: int) -> dict:
        return {'scene_token': self.scene_of[index], 'sample_idx': index}

    def __getitem__(self, index: int) -> dict:
        x = toy_input(index)
        return {
            'inputs': x,
            'target': x[:1] * 2.0 - x[1:2],
            'index': torch.tensor(index),
            'scene_token': self.scene_of[index],
        }


@MODELS.register_module(force=True)
class ToyTemporalModel(BaseModel):
    def __init__(self, hidden: int = 8, dropout: float = 0.5) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(4, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )
        self._prev: tuple[str, torch.Tensor] | None = None

    def forward(self, inputs, target=None, index=None, scene_token=None, mode: str = 'tensor'):
        out = self.net(inputs)
        if mode == 'loss':
            return {'loss': ((out - target) ** 2).mean()}
        if mode == 'predict':
            preds = []
            for i in range(out.shape[0]):
                value = out[i, 0]
                if self._prev is not None and self._prev[0] == scene_token[i]:
                    value = value + 0.5 * self._prev[1]
                self._prev = (scene_token[i], value)
                preds.append(
                    {'index': int(index[i]), 'pred': float(value), 'target': float(target[i, 0])}
                )
            return preds
        return out


@METRICS.register_module(force=True)
class ToyMetric(BaseMetric):
    """Follows the tooling's submission contract: `format_only` + `submission_path`."""

    default_prefix = 'toy'

    def __init__(
        self, format_only: bool = False, submission_path: str | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.format_only = format_only
        self.submission_path = submission_path

    def process(self, data_batch, data_samples) -> None:
        self.results.extend(data_samples)

    def compute_metrics(self, results: list) -> dict:
        if self.format_only:
            import json

            from interndrive.common.engine.atomic_io import atomic_write_text

            atomic_write_text(
                self.submission_path, json.dumps({r['index']: r['pred'] for r in results})
            )
            return {}
        indices = [r['index'] for r in results]
        preds = torch.tensor([r['pred'] for r in results], dtype=torch.float64)
        targets = torch.tensor([r['target'] for r in results], dtype=torch.float64)
        weights = torch.arange(1, len(results) + 1, dtype=torch.float64)
        return {
            'mse': float(((preds - targets) ** 2).mean()),
            'checksum': float((preds * weights).sum()),
            'in_order': float(indices == sorted(indices)),
        }


@HOOKS.register_module(force=True)
class ToyRankWeightsHook(Hook):
    """Saves every rank's final weights to `<work_dir>/weights_rank<r>.pth` (to compare ranks)."""

    def after_train(self, runner) -> None:
        model = getattr(runner.model, 'module', runner.model)
        torch.save(model.state_dict(), Path(runner.work_dir) / f'weights_rank{runner.rank}.pth')


class ToyCrash(RuntimeError):
    """Raised by ToyCrashHook to simulate a training run dying mid-epoch."""


@HOOKS.register_module(force=True)
class ToyCrashHook(Hook):
    """Stops training after iteration `at_iter` (counted from 1): raises, or SIGKILLs the process."""

    priority = 'LOWEST'  # after the CheckpointHook of the same iteration

    def __init__(self, at_iter: int | None = None, sigkill: bool = False) -> None:
        # Subprocess tests set TOY_SIGKILL_AT_ITER (--cfg-options cannot express a hook dict).
        env = os.environ.get('TOY_SIGKILL_AT_ITER')
        if at_iter is None and env:
            at_iter, sigkill = int(env), True
        self.at_iter = at_iter
        self.sigkill = sigkill

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.at_iter is not None and runner.iter + 1 == self.at_iter:
            if self.sigkill:
                import signal

                os.kill(os.getpid(), signal.SIGKILL)
            raise ToyCrash(f'simulated crash after iteration {self.at_iter}')


def toy_config_text(
    *,
    max_epochs: int = 3,
    batch_size: int = 2,
    scene_lengths: tuple[int, ...] = (3, 5, 2, 4),
    train_scene_lengths: tuple[int, ...] = (6,),
    checkpoint_interval: int = 2,
    extra: str = '',
    task: str | None = 'toy',
) -> str:
    """An mmengine config for the toy model (iteration checkpoints inside an epoch-based loop)."""
    task_line = f'task = {task!r}\n' if task else ''
    return (
        task_line
        + textwrap.dedent(
            f"""
        custom_imports = dict(imports=['test_engine_toys'], allow_failed_imports=False)
        model = dict(type='ToyTemporalModel')
        train_dataloader = dict(
            batch_size={batch_size}, num_workers=0,
            sampler=dict(type='ResumableTrainSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type='ToyDataset', scene_lengths={tuple(train_scene_lengths)!r}))
        train_cfg = dict(by_epoch=True, max_epochs={max_epochs}, val_interval=1000)
        optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
        param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[3, 7], gamma=0.5)]
        test_dataloader = dict(
            batch_size=1, num_workers=0,
            sampler=dict(type='SceneContiguousSampler', scene_key='scene_token'),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type='ToyDataset', scene_lengths={tuple(scene_lengths)!r}))
        test_cfg = dict()
        test_evaluator = dict(type='ToyMetric')
        default_hooks = dict(
            checkpoint=dict(type='CheckpointHook', interval={checkpoint_interval}, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1000))
        randomness = dict(seed=7)
        log_level = 'WARNING'
        """
        )
        + textwrap.dedent(extra)
    )


TASK_MODULE = """
from pathlib import Path
from interndrive.common.tasks import Task

CONFIG_DIR = Path(__file__).resolve().parent / 'configs'


def _register():
    import test_engine_toys  # noqa: F401


def _evaluate(submission, ground_truth, **options):
    pred = [float(v) for v in Path(submission).read_text().split()]
    gt = [float(v) for v in Path(ground_truth).read_text().split()]
    if len(pred) != len(gt):
        from interndrive.common.engine.checks import ConfigError
        raise ConfigError(f'submission has {len(pred)} values, ground truth {len(gt)}')
    scale = float(options.get('scale', 1.0))
    return {'abs_err': scale * sum(abs(p - g) for p, g in zip(pred, gt)) / len(gt)}


def _format(metrics):
    return '| toy | ' + ' | '.join(f'{k}={v:.3f}' for k, v in metrics.items()) + ' |'


def _add_commands(subparsers):
    hello = subparsers.add_parser('hello', help='prints hello')
    hello.add_argument('--name', default='world')
    hello.set_defaults(func=lambda args: print(f'hello {args.name}'))


TASK = Task(
    name='toy',
    description='toy task for the tooling tests',
    config_dir=CONFIG_DIR,
    register_modules=_register,
    evaluate=_evaluate,
    format_metrics=_format,
    add_commands=_add_commands,
)
"""


def write_toy_task_package(root: Path) -> Path:
    """Writes a fake `interndrive.toy` task (namespace package, no interndrive/__init__.py) under root.

    Returns the folder to put on PYTHONPATH. Its config_dir holds `toy_small.py`.
    """
    pkg = root / 'interndrive' / 'toy'
    (pkg / 'configs').mkdir(parents=True, exist_ok=True)
    (pkg / '__init__.py').write_text('')
    (pkg / 'task.py').write_text(TASK_MODULE)
    hooks = "custom_hooks = [dict(type='ToyCrashHook'), dict(type='ToyRankWeightsHook')]\n"
    (pkg / 'configs' / 'toy_small.py').write_text(toy_config_text(task=None, extra=hooks))
    return root


def toy_task(config_dir: Path):
    """An in-process `Task` for the toy model (for monkeypatched discovery)."""
    from interndrive.common.tasks import Task

    return Task(
        name='toy',
        description='toy task for the tooling tests',
        config_dir=config_dir,
        register_modules=lambda: None,
    )


def subprocess_env(*extra_paths: Path) -> dict[str, str]:
    """Environment for a subprocess that imports interndrive.common and the toys."""
    env = dict(os.environ)
    paths = [str(p) for p in extra_paths] + [str(COMMON_SRC), str(TESTS_DIR)]
    if env.get('PYTHONPATH'):
        paths.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env['INTERNDRIVE_PROGRESS'] = '0'
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


# --------------------------------------------------------------------------- tests of the toys


def test_toy_dataset_scenes_are_consecutive_runs() -> None:
    ds = ToyDataset((2, 3))
    assert [ds.get_data_info(i)['scene_token'] for i in range(len(ds))] == [
        's0',
        's0',
        's1',
        's1',
        's1',
    ]
    assert torch.equal(ds[3]['inputs'], toy_input(3))


def test_toy_model_carries_state_within_a_scene_only() -> None:
    model = ToyTemporalModel().eval()
    x = torch.stack([toy_input(0), toy_input(0)])
    batch = dict(
        inputs=x, target=torch.zeros(2, 1), index=torch.tensor([0, 1]), scene_token=['a', 'a']
    )
    with torch.no_grad():
        same = model(**batch, mode='predict')
        model._prev = None
        batch['scene_token'] = ['a', 'b']
        split = model(**batch, mode='predict')
    assert same[0]['pred'] == split[0]['pred']
    assert same[1]['pred'] != split[1]['pred']  # the scene change reset the carried state
