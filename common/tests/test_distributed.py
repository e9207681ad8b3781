"""Two gloo processes on CPU under torchrun: identical weights on both ranks, and evaluation over
2 ranks (scene sampler, uneven shares of 8 and 6 frames) equal to evaluation in one process."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_engine_toys import subprocess_env, write_toy_task_package

pytestmark = [pytest.mark.distributed, pytest.mark.slow]  # ~1 min on 2 busy cores

TIMEOUT_S = 300


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, f'{" ".join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}'
    return done


def _torchrun(nproc: int, module: str, *args: str) -> list[str]:
    # The documented launch (`torchrun --nproc-per-node N -m interndrive.train ...`), through
    # torch.distributed.run so the test uses this interpreter.
    return [
        sys.executable,
        '-m',
        'torch.distributed.run',
        '--standalone',
        f'--nproc-per-node={nproc}',
        '-m',
        module,
        *args,
    ]


@pytest.fixture(scope='module')
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp('dist')
    env = subprocess_env(write_toy_task_package(root / 'pkg'))
    _run(
        _torchrun(2, 'interndrive.train', 'toy/toy_small', '--work-dir', str(root / 'work')),
        env,
        root,
    )
    return root, env


def test_two_ranks_end_with_identical_weights(trained: tuple[Path, dict[str, str]]) -> None:
    root, _ = trained
    work = root / 'work'
    rank0 = torch.load(work / 'weights_rank0.pth')
    rank1 = torch.load(work / 'weights_rank1.pth')
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    # Training happened: the checkpoint of the last iteration holds the same (moved) weights.
    final = torch.load(work / 'iter_6.pth', weights_only=False)['state_dict']
    first = torch.load(work / 'iter_2.pth', weights_only=False)['state_dict']
    assert all(torch.equal(final[k], rank0[k]) for k in rank0)
    assert not all(torch.equal(final[k], first[k]) for k in final)


def test_evaluation_on_two_ranks_equals_one(trained: tuple[Path, dict[str, str]]) -> None:
    root, env = trained
    ckpt = str(root / 'work' / 'iter_6.pth')
    outputs = {}
    for nproc in (1, 2):
        tag = f'n{nproc}'
        args = [
            'toy/toy_small',
            ckpt,
            '--work-dir',
            str(root / f'test_{tag}'),
            '--out',
            str(root / f'{tag}.pkl'),
            '--metrics-json',
            str(root / f'{tag}.json'),
        ]
        if nproc == 1:
            done = _run([sys.executable, '-m', 'interndrive.common.test', *args], env, root)
        else:
            done = _run(_torchrun(2, 'interndrive.test', *args), env, root)
        assert '| toy |' in done.stdout  # the task's format_metrics table was printed
        outputs[nproc] = (
            json.loads((root / f'{tag}.json').read_text()),
            pickle.loads((root / f'{tag}.pkl').read_bytes()),
        )
    (metrics1, preds1), (metrics2, preds2) = outputs[1], outputs[2]
    assert metrics2 == metrics1
    assert metrics1['toy/in_order'] == 1.0
    assert [p['index'] for p in preds2] == list(range(14))
    assert preds2 == preds1


def test_rank_without_scenes_does_not_hang_or_change_results(
    trained: tuple[Path, dict[str, str]],
) -> None:
    """3 ranks, 2 scenes (3 + 5 frames): the middle rank gets nothing; metrics equal 1 process."""
    root, env = trained
    ckpt = str(root / 'work' / 'iter_6.pth')
    option = ['--cfg-options', 'test_dataloader.dataset.scene_lengths=[3,5]']
    results = {}
    for nproc in (1, 3):
        tag = f'idle{nproc}'
        args = [
            'toy/toy_small',
            ckpt,
            '--work-dir',
            str(root / tag),
            '--metrics-json',
            str(root / f'{tag}.json'),
            *option,
        ]
        if nproc == 1:
            _run([sys.executable, '-m', 'interndrive.common.test', *args], env, root)
        else:
            _run(_torchrun(3, 'interndrive.test', *args), env, root)
        results[nproc] = json.loads((root / f'{tag}.json').read_text())
    assert results[3] == results[1]
