"""Config lookup (path, TASK/NAME), task identification, --cfg-options and runtime defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config
from test_engine_toys import toy_config_text

from interndrive.common.engine.amp import configure_amp
from interndrive.common.engine.checks import (
    ConfigError,
    MissingPathError,
    SplitError,
    require_dir,
    require_file,
    require_split,
)
from interndrive.common.engine.config import (
    apply_runtime_defaults,
    load_task_config,
    parse_cfg_options,
    resolve_config_path,
    task_of_config,
)
from interndrive.common.engine.distributed import configure_launcher, detect_launcher
from interndrive.common.tasks import Task


@pytest.fixture
def tasks(tmp_path: Path) -> dict[str, Task]:
    calls: list[str] = []
    occ_dir = tmp_path / 'occ_configs'
    occ_dir.mkdir()
    (occ_dir / 'small.py').write_text(toy_config_text(task=None))
    hd_dir = tmp_path / 'hd_configs'
    hd_dir.mkdir()
    return {
        'occupancy': Task(
            'occupancy', 'occ', occ_dir, register_modules=lambda: calls.append('occ')
        ),
        'hdmap': Task('hdmap', 'hd', hd_dir),
        '_calls': calls,  # type: ignore[dict-item]
    }


def _real(tasks: dict) -> dict[str, Task]:
    return {k: v for k, v in tasks.items() if not k.startswith('_')}


def test_task_slash_name_resolves_inside_config_dir(tasks: dict) -> None:
    path, task = resolve_config_path('occupancy/small', _real(tasks))
    assert path.name == 'small.py' and task is tasks['occupancy']
    path2, _ = resolve_config_path('occupancy/small.py', _real(tasks))
    assert path2 == path


def test_unknown_config_in_task_lists_available(tasks: dict) -> None:
    with pytest.raises(MissingPathError, match=r"no 'big' in task 'occupancy'.*available: small"):
        resolve_config_path('occupancy/big', _real(tasks))


def test_unknown_task_prefix_is_named(tasks: dict) -> None:
    with pytest.raises(ConfigError, match=r"'lidar' is not an installed task"):
        resolve_config_path('lidar/x', _real(tasks))


def test_missing_path(tasks: dict, tmp_path: Path) -> None:
    with pytest.raises(MissingPathError, match='does not exist'):
        resolve_config_path(str(tmp_path / 'nope.py'), _real(tasks))


def test_task_from_key_or_location(tasks: dict, tmp_path: Path) -> None:
    inside = tasks['occupancy'].config_dir / 'small.py'
    assert task_of_config(Config.fromfile(inside), inside, _real(tasks)).name == 'occupancy'
    outside = tmp_path / 'mine.py'
    outside.write_text("task = 'hdmap'\n")
    assert task_of_config(Config.fromfile(outside), outside, _real(tasks)).name == 'hdmap'
    outside.write_text("task = 'lidar'\n")
    with pytest.raises(ConfigError, match="task 'lidar', which is not installed"):
        task_of_config(Config.fromfile(outside), outside, _real(tasks))
    outside.write_text('x = 1\n')
    with pytest.raises(ConfigError, match='cannot tell which task'):
        task_of_config(Config.fromfile(outside), outside, _real(tasks))


def test_load_applies_cfg_options_and_registers(tasks: dict) -> None:
    options = parse_cfg_options(
        ['train_dataloader.batch_size=5', 'optim_wrapper.optimizer.lr=0.5', 'model.hidden=3']
    )
    cfg, task, path = load_task_config('occupancy/small', _real(tasks), options)
    assert task.name == 'occupancy' and tasks['_calls'] == ['occ']
    assert cfg.train_dataloader.batch_size == 5
    assert cfg.optim_wrapper.optimizer.lr == 0.5
    assert cfg.model.hidden == 3
    assert path.name == 'small.py'


def test_parse_cfg_options_types_and_errors() -> None:
    assert parse_cfg_options(['a=1', 'b=[1,2]', 'c=x', 'd=True']) == {
        'a': 1,
        'b': [1, 2],
        'c': 'x',
        'd': True,
    }
    with pytest.raises(ConfigError, match='expected KEY=VALUE'):
        parse_cfg_options(['novalue'])


def test_runtime_defaults(tmp_path: Path) -> None:
    path = tmp_path / 'c.py'
    path.write_text(toy_config_text() + '\ntensorboard = True\n')
    cfg = Config.fromfile(path)
    apply_runtime_defaults(cfg, tmp_path / 'w')
    assert cfg.work_dir == str(tmp_path / 'w')
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    assert cfg.default_hooks.checkpoint.interval == 2  # arguments kept
    assert cfg.train_cfg.type == 'ResumableEpochBasedTrainLoop' and 'by_epoch' not in cfg.train_cfg
    assert cfg.test_cfg.type == 'SceneOrderedTestLoop'
    assert cfg.train_dataloader.sampler.type == 'ResumableTrainSampler'  # was already
    assert [b['type'] for b in cfg.visualizer.vis_backends] == [
        'LocalVisBackend',
        'TensorboardVisBackend',
    ]


def test_default_sampler_becomes_resumable_with_same_arguments(tmp_path: Path) -> None:
    loader = dict(batch_size=2, sampler=dict(type='DefaultSampler', shuffle=False, round_up=False))
    cfg = Config(dict(train_dataloader=loader))
    apply_runtime_defaults(cfg, tmp_path)
    assert cfg.train_dataloader.sampler == dict(
        type='ResumableTrainSampler', shuffle=False, round_up=False
    )


def test_explicit_custom_loop_is_kept(tmp_path: Path) -> None:
    cfg = Config(dict(train_cfg=dict(type='MyLoop', max_iters=3)))
    apply_runtime_defaults(cfg, tmp_path)
    assert cfg.train_cfg.type == 'MyLoop'


def test_launcher_detection_and_cpu_ddp() -> None:
    assert detect_launcher({}) == 'none'
    env = dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='2', MASTER_ADDR='h', MASTER_PORT='1')
    assert detect_launcher(env) == 'pytorch'
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    configure_launcher(cfg, 'pytorch')
    assert cfg.launcher == 'pytorch'
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'  # CPU machine
    assert cfg.model_wrapper_cfg.device_ids is None


def test_amp_on_cpu_uses_bf16_wrapper_and_trains() -> None:
    import torch
    from mmengine.optim import build_optim_wrapper

    cfg = Config(
        dict(
            optim_wrapper=dict(
                type='AmpOptimWrapper', loss_scale='dynamic', optimizer=dict(type='SGD', lr=0.1)
            )
        )
    )
    assert configure_amp(cfg, cuda=False) == 'CpuBF16OptimWrapper'
    assert 'loss_scale' not in cfg.optim_wrapper
    model = torch.nn.Linear(4, 2)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    with wrapper.optim_context(model):
        out = model(torch.ones(3, 4))
    assert out.dtype == torch.bfloat16
    before = model.weight.detach().clone()
    wrapper.update_params(out.float().pow(2).mean())
    assert not torch.equal(before, model.weight)
    cuda_cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1))))
    assert configure_amp(cuda_cfg, cuda=True) == 'AmpOptimWrapper'
    with pytest.raises(ConfigError, match='custom'):
        configure_amp(Config(dict(optim_wrapper=dict(type='Mine'))), cuda=False)


def test_require_helpers(tmp_path: Path) -> None:
    f = tmp_path / 'info.pkl'
    f.write_bytes(b'x')
    assert require_file(f, 'info file') == f
    assert require_dir(tmp_path, 'data root') == tmp_path
    with pytest.raises(
        MissingPathError, match=r"info file '.*missing.pkl' does not exist \(run convert\)"
    ):
        require_file(tmp_path / 'missing.pkl', 'info file', hint='run convert')
    with pytest.raises(MissingPathError, match='is a folder, expected a file'):
        require_file(tmp_path, 'info file')
    with pytest.raises(MissingPathError, match=r"data root '.*nowhere' does not exist"):
        require_dir(tmp_path / 'nowhere', 'data root')
    assert require_split('val', ('train', 'val')) == 'val'
    with pytest.raises(SplitError, match=r"unknown split 'valid'; expected one of: 'train', 'val'"):
        require_split('valid', ('train', 'val'))


def test_errors_survive_mmengine_registry_rewrap() -> None:
    """mmengine re-raises constructor errors as type(e)(f'class ...: {e}'): ours must allow that."""
    err = MissingPathError('data root x does not exist')
    rewrapped = type(err)(f'class `Foo` in mod: {err}')
    assert isinstance(rewrapped, MissingPathError) and 'data root x' in str(rewrapped)
