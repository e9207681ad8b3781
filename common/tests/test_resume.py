"""A run stopped mid-epoch and resumed from its last checkpoint ends with the same weights.

Toy setup (test_engine_toys): 6 samples, batch 2 → 3 iterations per epoch, 3 epochs = 9 iterations,
checkpoints every 2 iterations, shuffled per epoch, dropout in the model, SGD with momentum and a
step LR schedule. The interrupted run dies after iteration 5 (epoch 2, batch 2), resumes from
iter_4.pth (epoch 2, batch 1) and must reproduce the uninterrupted weights bit for bit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.dataset import DefaultSampler
from mmengine.registry import DATA_SAMPLERS, LOOPS
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from test_engine_toys import ToyCrash, subprocess_env, toy_config_text, toy_task

from interndrive.common.engine.workflow import run_train


@LOOPS.register_module(force=True)
class PlainEpochLoopForControl(EpochBasedTrainLoop):
    """mmengine's own epoch loop under another name (apply_runtime_defaults keeps custom loops)."""


@DATA_SAMPLERS.register_module(force=True)
class DefaultSamplerWithoutSkip(DefaultSampler):
    """mmengine's sampler under a name the CLI does not swap: exercises the replay-and-discard path."""


@LOOPS.register_module(force=True)
class PlainIterLoopForControl(IterBasedTrainLoop):
    """mmengine's own iteration loop under another name."""


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _train(config: Path, work: Path, name: str, tmp: Path, resume=None, **options) -> None:
    run_train(
        str(config),
        work_dir=work,
        resume=resume,
        tasks={'toy': toy_task(tmp)},
        cfg_options={'experiment_name': name, **options},
    )


def _interrupted_then_resumed(config: Path, work: Path, tmp: Path, tag: str, **options) -> Path:
    with pytest.raises(ToyCrash):
        _train(
            config,
            work,
            f'{tag}_crash',
            tmp,
            custom_hooks=[dict(type='ToyCrashHook', at_iter=5)],
            **options,
        )
    assert not (work / 'iter_6.pth').exists()
    _train(config, work, f'{tag}_resume', tmp, resume='auto', **options)
    return work / 'iter_9.pth'


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / 'toy.py'
    path.write_text(toy_config_text(max_epochs=3, batch_size=2, train_scene_lengths=(6,)))
    return path


@pytest.mark.parametrize('sampler', ['ResumableTrainSampler', 'DefaultSamplerWithoutSkip'])
def test_resume_mid_epoch_reproduces_uninterrupted_weights(
    config: Path, tmp_path: Path, sampler: str
) -> None:
    # DefaultSampler has no skip(): the loop replays and discards the trained batches instead.
    config.write_text(
        config.read_text().replace("type='ResumableTrainSampler'", f'type={sampler!r}')
    )
    assert sampler in config.read_text()
    _train(config, tmp_path / 'full', 'full', tmp_path)
    resumed = _interrupted_then_resumed(config, tmp_path / 'cut', tmp_path, 'cut')
    full = _weights(tmp_path / 'full' / 'iter_9.pth')
    assert _equal(full, _weights(resumed))
    # The run really trained: weights moved away from the initial ones of the same seed.
    assert not _equal(full, _weights(tmp_path / 'full' / 'iter_2.pth'))


def test_explicit_checkpoint_path_resumes_too(config: Path, tmp_path: Path) -> None:
    _train(config, tmp_path / 'full', 'full2', tmp_path)
    work = tmp_path / 'cut'
    with pytest.raises(ToyCrash):
        _train(
            config, work, 'x_crash', tmp_path, custom_hooks=[dict(type='ToyCrashHook', at_iter=5)]
        )
    # Resume from the *older* checkpoint on purpose: still exact.
    _train(config, work, 'x_resume', tmp_path, resume=str(work / 'iter_2.pth'))
    assert _equal(_weights(tmp_path / 'full' / 'iter_9.pth'), _weights(work / 'iter_9.pth'))


def test_controls_without_the_fixes_diverge(config: Path, tmp_path: Path) -> None:
    """The test above can fail: mmengine's loop, or no reseeding, gives different final weights."""
    _train(config, tmp_path / 'full', 'ctl_full', tmp_path)
    full = _weights(tmp_path / 'full' / 'iter_9.pth')
    plain_config = tmp_path / 'plain.py'
    plain_config.write_text(
        config.read_text().replace(
            'train_cfg = dict(by_epoch=True,', "train_cfg = dict(type='PlainEpochLoopForControl',"
        )
    )
    assert 'PlainEpochLoopForControl' in plain_config.read_text()
    plain = _interrupted_then_resumed(plain_config, tmp_path / 'plain', tmp_path, 'ctl_plain')
    assert not _equal(full, _weights(plain))
    no_reseed = _interrupted_then_resumed(
        config,
        tmp_path / 'noreseed',
        tmp_path,
        'ctl_noreseed',
        **{'train_cfg.reseed_every_iter': False},
    )
    assert not _equal(full, _weights(no_reseed))


def test_resume_auto_without_checkpoint_starts_from_scratch(config: Path, tmp_path: Path) -> None:
    _train(config, tmp_path / 'fresh', 'fresh', tmp_path, resume='auto')
    assert (tmp_path / 'fresh' / 'iter_9.pth').is_file()


def test_resume_skips_pointer_to_deleted_checkpoint(config: Path, tmp_path: Path) -> None:
    from interndrive.common.engine.resume import find_last_checkpoint

    work = tmp_path / 'w'
    work.mkdir()
    assert find_last_checkpoint(work) is None
    (work / 'iter_2.pth').write_bytes(b'a')
    (work / 'iter_4.pth').write_bytes(b'b')
    (work / 'last_checkpoint').write_text(str(work / 'iter_6.pth'))  # deleted by max_keep_ckpts
    assert find_last_checkpoint(work) == work / 'iter_4.pth'
    (work / 'last_checkpoint').write_text('')  # emptied by a kill during the write
    assert find_last_checkpoint(work) == work / 'iter_4.pth'
    (work / 'last_checkpoint').write_text(str(work / 'iter_2.pth'))
    assert find_last_checkpoint(work) == work / 'iter_2.pth'


@pytest.mark.slow
def test_sigkill_mid_epoch_then_cli_resume(config: Path, tmp_path: Path) -> None:
    """The real thing: the training process is SIGKILLed, `interndrive train --resume` continues."""
    pkg_root = tmp_path / 'pkg'
    from test_engine_toys import write_toy_task_package

    write_toy_task_package(pkg_root)
    env = subprocess_env(pkg_root)
    cli = [sys.executable, '-m', 'interndrive.common.cli', 'train', 'toy/toy_small']
    killed = subprocess.run(
        [*cli, '--work-dir', str(tmp_path / 'k')],
        env={**env, 'TOY_SIGKILL_AT_ITER': '5'},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    resumed = subprocess.run(
        [*cli, '--work-dir', str(tmp_path / 'k'), '--resume'],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    full = subprocess.run(
        [*cli, '--work-dir', str(tmp_path / 'f')],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert full.returncode == 0, full.stderr[-2000:]
    assert _equal(_weights(tmp_path / 'f' / 'iter_9.pth'), _weights(tmp_path / 'k' / 'iter_9.pth'))


def test_resume_from_checkpoint_of_another_model_is_refused(config: Path, tmp_path: Path) -> None:
    from interndrive.common.engine.checks import CheckpointMismatchError

    _train(config, tmp_path / 'small', 'small', tmp_path, **{'model.hidden': 3})
    with pytest.raises(
        CheckpointMismatchError, match=r'shape mismatches \(net\.0\.bias \(3,\) vs model \(8,\)'
    ):
        _train(
            config, tmp_path / 'big', 'big', tmp_path, resume=str(tmp_path / 'small' / 'iter_9.pth')
        )


@pytest.mark.parametrize(
    'loop', [None, pytest.param('PlainIterLoopForControl', marks=pytest.mark.slow)]
)
def test_iteration_based_resume(config: Path, tmp_path: Path, loop: str | None) -> None:
    """Iteration-based training (mmengine replays the dataloader) is exact only with reseeding."""
    head = f'type={loop!r}, ' if loop else 'by_epoch=False, '
    # 18 samples = 9 batches: no epoch wrap, where mmengine's infinite iterator sleeps 2 s.
    text = (
        config.read_text()
        .replace(
            'train_cfg = dict(by_epoch=True, max_epochs=3,', f'train_cfg = dict({head}max_iters=9,'
        )
        .replace('scene_lengths=(6,)', 'scene_lengths=(18,)')
    )
    assert 'max_iters=9' in text and '(18,)' in text
    config.write_text(text)
    _train(config, tmp_path / 'full', f'it_full_{loop}', tmp_path)
    resumed = _interrupted_then_resumed(config, tmp_path / 'cut', tmp_path, f'it_{loop}')
    same = _equal(_weights(tmp_path / 'full' / 'iter_9.pth'), _weights(resumed))
    assert same is (loop is None)
