"""Atomic writes: a failure in the middle of writing never leaves a truncated or half-new file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from test_engine_toys import ToyCrash, toy_config_text, toy_task

from interndrive.common.engine.atomic_io import (
    ATOMIC_BACKEND_NAME,
    AtomicLocalBackend,
    atomic_torch_save,
    atomic_write_bytes,
)
from interndrive.common.engine.workflow import run_train


class _InjectedFailure(Exception):
    pass


def _fail_on_fsync(monkeypatch: pytest.MonkeyPatch, after_calls: int = 0) -> None:
    """Makes the (after_calls+1)-th fsync raise: the data is in the temp file, not renamed."""
    calls = {'n': 0}
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        calls['n'] += 1
        if calls['n'] > after_calls:
            raise _InjectedFailure('disk vanished mid-write')
        real_fsync(fd)

    monkeypatch.setattr(os, 'fsync', fsync)


def test_atomic_write_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / 'sub' / 'file.bin'
    atomic_write_bytes(target, b'old')
    atomic_write_bytes(target, b'new content')
    assert target.read_bytes() == b'new content'
    assert sorted(p.name for p in target.parent.iterdir()) == ['file.bin']


def test_failure_mid_write_keeps_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / 'ckpt.pth'
    atomic_torch_save({'w': torch.ones(3)}, target)
    old = target.read_bytes()
    _fail_on_fsync(monkeypatch)
    with pytest.raises(_InjectedFailure):
        atomic_torch_save({'w': torch.zeros(1000)}, target)
    # An in-place write would have truncated the file at open() or left the new bytes behind.
    assert target.read_bytes() == old
    assert torch.equal(torch.load(target)['w'], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ckpt.pth']


def test_keyboard_interrupt_mid_write_cleans_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, 'fsync', interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / 'x', b'data')
    assert list(tmp_path.iterdir()) == []


def test_backend_is_registered_and_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmengine.fileio import get_file_backend

    backend = get_file_backend(
        str(tmp_path / 'a.pth'), backend_args={'backend': ATOMIC_BACKEND_NAME}
    )
    assert isinstance(backend, AtomicLocalBackend)
    backend.put_text('first', tmp_path / 'pointer')
    _fail_on_fsync(monkeypatch)
    with pytest.raises(_InjectedFailure):
        backend.put_text('second, longer text', tmp_path / 'pointer')
    assert (tmp_path / 'pointer').read_text() == 'first'


def test_checkpoint_hook_write_failure_keeps_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training whose second checkpoint write dies: iter_2 stays loadable, no iter_4 is left behind."""
    config = tmp_path / 'toy.py'
    config.write_text(toy_config_text(max_epochs=2))
    # Each checkpoint is one atomic write (the pointer file is a second one): fail the 3rd fsync,
    # i.e. the write of iter_4.pth.
    _fail_on_fsync(monkeypatch, after_calls=2)
    work = tmp_path / 'work'
    with pytest.raises(_InjectedFailure):
        run_train(
            str(config),
            work_dir=work,
            tasks={'toy': toy_task(tmp_path)},
            cfg_options={'experiment_name': 'atomic_fail'},
        )
    names = sorted(p.name for p in work.iterdir() if p.is_file())
    assert names == ['iter_2.pth', 'last_checkpoint', 'toy.py']
    assert Path((work / 'last_checkpoint').read_text()).name == 'iter_2.pth'
    state = torch.load(work / 'iter_2.pth', weights_only=False)
    assert state['meta']['iter'] == 2


def test_crash_hook_stops_training(tmp_path: Path) -> None:
    """Sanity check of the toy crash hook used by the resume tests."""
    config = tmp_path / 'toy.py'
    config.write_text(toy_config_text(max_epochs=1))
    with pytest.raises(ToyCrash):
        run_train(
            str(config),
            work_dir=tmp_path / 'w',
            tasks={'toy': toy_task(tmp_path)},
            cfg_options={
                'experiment_name': 'crash_check',
                'custom_hooks': [dict(type='ToyCrashHook', at_iter=1)],
            },
        )


def test_atomic_files_get_umask_permissions_not_mkstemp_0600(tmp_path: Path) -> None:
    plain = tmp_path / 'plain'
    plain.write_bytes(b'x')
    atomic_write_bytes(tmp_path / 'atomic', b'x')
    assert (tmp_path / 'atomic').stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
