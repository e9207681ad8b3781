"""TensorBoard logging switched on from the config / --tensorboard, and progress-bar settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_engine_toys import toy_config_text, toy_task

from interndrive.common.engine import progress
from interndrive.common.engine.workflow import run_train


def _train(tmp_path: Path, work: str, tensorboard: bool) -> Path:
    config = tmp_path / 'toy.py'
    config.write_text(toy_config_text(max_epochs=1))
    run_train(
        str(config),
        work_dir=tmp_path / work,
        tasks={'toy': toy_task(tmp_path)},
        cfg_options={'tensorboard': tensorboard, 'default_hooks.logger.interval': 1},
    )
    return tmp_path / work


def test_tensorboard_events_written_only_when_enabled(tmp_path: Path) -> None:
    pytest.importorskip('tensorboard')
    on = _train(tmp_path, 'on', True)
    assert list(on.glob('*/vis_data/events.out.tfevents.*')), sorted(p.name for p in on.rglob('*'))
    assert list(on.glob('*/vis_data/scalars.json'))  # the local backend keeps logging too
    off = _train(tmp_path, 'off', False)
    assert not list(off.glob('*/vis_data/events.out.tfevents.*'))


def test_progress_bars_follow_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('INTERNDRIVE_PROGRESS', '0')
    assert not progress.progress_enabled()
    monkeypatch.setenv('INTERNDRIVE_PROGRESS', '1')
    assert progress.progress_enabled()
    assert list(progress.track(range(3), 'x')) == [0, 1, 2]
    monkeypatch.setenv('RANK', '1')  # a non-zero torchrun rank never draws, even when forced
    assert not progress.progress_enabled()


def test_progress_module_imports_no_torch() -> None:
    # Converters and `interndrive evaluate` use the bars; they must not pay for a torch import.
    code = (
        'import sys; from interndrive.common.engine import progress; '
        'list(progress.track(range(2))); print("torch" in sys.modules)'
    )
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == 'False'
