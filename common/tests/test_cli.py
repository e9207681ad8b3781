"""The `interndrive` command line: help, info, task discovery, one-line errors, evaluate, test."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from test_engine_toys import (
    TESTS_DIR,
    ToyTemporalModel,
    subprocess_env,
    toy_config_text,
    write_toy_task_package,
)

from interndrive.common import cli
from interndrive.common import tasks as task_registry
from interndrive.common.tasks import Task


def _evaluate(submission: Path, ground_truth: Path, **options) -> dict[str, float]:
    pred = [float(v) for v in submission.read_text().split()]
    gt = [float(v) for v in ground_truth.read_text().split()]
    scale = float(options.get('scale', 1.0))
    return {'abs_err': scale * sum(abs(p - g) for p, g in zip(pred, gt)) / len(gt)}


def _add_commands(subparsers) -> None:
    hello = subparsers.add_parser('hello')
    hello.add_argument('--name', default='world')
    hello.set_defaults(func=lambda args: print(f'hello {args.name}'))


@pytest.fixture
def fake_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Task]:
    """Replaces task discovery with a toy task (evaluate, table, subcommand) and a bare one."""
    config_dir = tmp_path / 'toy_configs'
    config_dir.mkdir()
    (config_dir / 'toy_small.py').write_text(toy_config_text(task=None))
    tasks = {
        'toy': Task(
            name='toy',
            description='toy task',
            config_dir=config_dir,
            evaluate=_evaluate,
            format_metrics=lambda m: (
                '| toy table | ' + ' | '.join(f'{k}={v:.2f}' for k, v in m.items())
            ),
            add_commands=_add_commands,
        ),
        'bare': Task(name='bare', description='offers nothing', config_dir=tmp_path),
    }
    monkeypatch.setattr(
        task_registry,
        'discover_tasks_with_errors',
        lambda strict=False: (dict(tasks), {'broken': 'ImportError: no module named x'}),
    )
    monkeypatch.chdir(tmp_path)
    return tasks


def _one_line_error(capsys: pytest.CaptureFixture[str], rc: int, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert rc == 2
    lines = [line for line in err.splitlines() if line.startswith('interndrive: error:')]
    assert len(lines) == 1, err
    assert 'Traceback' not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_help_lists_commands_and_task_commands(fake_tasks, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(['--help'])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in (
        'train',
        'test',
        'evaluate',
        'visualize',
        'demo',
        'convert-checkpoint',
        'info',
        'toy',
    ):
        assert command in out


def test_train_help_documents_resume_and_amp(fake_tasks, capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(['train', '--help'])
    out = capsys.readouterr().out
    assert '--resume [CKPT]' in out and '--amp' in out and '--cfg-options' in out


def test_info_reports_versions_ops_cuda_and_tasks(fake_tasks, capsys) -> None:
    assert cli.main(['info', '--json']) == 0
    info = json.loads(capsys.readouterr().out)
    assert info['versions']['torch'].startswith(torch.__version__.split('+')[0])
    assert set(info['compiled']) == {'mmcv.ops', 'dcnv3 C++ ops', 'dcnv3 CUDA kernel'}
    assert info['cuda']['available'] == torch.cuda.is_available()
    assert info['tasks']['toy']['capabilities'] == ['evaluate', 'format_metrics', 'add_commands']
    assert info['broken_tasks'] == {'broken': 'ImportError: no module named x'}
    assert cli.main(['info']) == 0
    text = capsys.readouterr().out
    assert 'compiled ops' in text and 'toy' in text and 'BROKEN' in text


def test_evaluate_prints_task_table_and_json(fake_tasks, tmp_path, capsys) -> None:
    (tmp_path / 'sub.txt').write_text('1 2 3')
    (tmp_path / 'gt.txt').write_text('1 2 5')
    rc = cli.main(
        ['evaluate', 'toy', 'sub.txt', 'gt.txt', '--option', 'scale=3', '--json', 'm.json']
    )
    assert rc == 0
    assert '| toy table | abs_err=2.00' in capsys.readouterr().out
    assert json.loads((tmp_path / 'm.json').read_text()) == {'abs_err': 2.0}


def test_unknown_task_is_one_line_error(fake_tasks, capsys) -> None:
    rc = cli.main(['evaluate', 'lidar', 'a', 'b'])
    _one_line_error(capsys, rc, "unknown task 'lidar'", 'installed tasks: bare, toy')
    rc = cli.main(['demo', 'broken'])
    _one_line_error(capsys, rc, "task 'broken' is installed but fails to load")


def test_missing_capability_and_files_are_one_line_errors(fake_tasks, tmp_path, capsys) -> None:
    rc = cli.main(['evaluate', 'bare', 'a', 'b'])
    _one_line_error(capsys, rc, "task 'bare' does not offer `interndrive evaluate`")
    rc = cli.main(['evaluate', 'toy', 'missing.json', 'gt'])
    _one_line_error(capsys, rc, "submission 'missing.json' does not exist")
    rc = cli.main(['demo', 'bare'])
    _one_line_error(capsys, rc, 'does not offer `interndrive demo bare`')


def test_missing_and_unknown_configs(fake_tasks, capsys) -> None:
    _one_line_error(capsys, cli.main(['train', 'nope.py']), "config 'nope.py' does not exist")
    _one_line_error(capsys, cli.main(['train', 'lidar/x']), "'lidar' is not an installed task")
    _one_line_error(capsys, cli.main(['train', 'toy/big']), "no 'big' in task 'toy'", 'toy_small')


def test_task_subcommand(fake_tasks, capsys) -> None:
    assert cli.main(['toy', 'hello', '--name', 'drive']) == 0
    assert capsys.readouterr().out.strip() == 'hello drive'


def test_convert_checkpoint_delegates_argv(fake_tasks, monkeypatch) -> None:
    seen = {}
    fake = types.ModuleType('interndrive.common.convert_checkpoint')
    fake.main = lambda argv: seen.setdefault('argv', argv) and 0
    monkeypatch.setitem(sys.modules, 'interndrive.common.convert_checkpoint', fake)
    assert cli.main(['convert-checkpoint', 'in.pth', 'out.pth', '-h']) == 0
    assert seen['argv'] == ['in.pth', 'out.pth', '-h']


def test_convert_checkpoint_missing_is_clear(fake_tasks, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, 'interndrive.common.convert_checkpoint', None)  # import fails
    rc = cli.main(['convert-checkpoint', 'x'])
    _one_line_error(capsys, rc, 'convert-checkpoint is not available')


def test_missing_data_root_and_wrong_split_from_inside_the_dataset(
    fake_tasks, tmp_path, capsys
) -> None:
    # The error is raised in the dataset constructor, deep inside Runner.from_cfg/build_dataloader.
    rc = cli.main(
        [
            'train',
            'toy/toy_small',
            '--cfg-options',
            f'train_dataloader.dataset.data_root={tmp_path}/nodata',
        ]
    )
    _one_line_error(capsys, rc, 'data root', 'nodata', 'does not exist')
    rc = cli.main(
        ['train', 'toy/toy_small', '--cfg-options', 'train_dataloader.dataset.split=valid']
    )
    _one_line_error(capsys, rc, "unknown split 'valid'", "'train', 'val', 'test'")


def test_unregistered_type_is_one_line_error(fake_tasks, capsys) -> None:
    rc = cli.main(['train', 'toy/toy_small', '--cfg-options', 'model.type=NoSuchModel'])
    _one_line_error(capsys, rc, 'unknown type', 'NoSuchModel')


def test_test_command_prints_table_and_checks_checkpoint(fake_tasks, tmp_path, capsys) -> None:
    good = ToyTemporalModel().state_dict()
    torch.save({'state_dict': good}, tmp_path / 'good.pth')
    rc = cli.main(
        ['test', 'toy/toy_small', 'good.pth', '--metrics-json', 'm.json', '--out', 'p.pkl']
    )
    assert rc == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    # format_metrics gets the keys without mmengine's 'toy/' prefix, as from Task.evaluate
    assert '| toy table | mse=' in out and 'predictions written to p.pkl' in out
    assert json.loads((tmp_path / 'm.json').read_text())['toy/in_order'] == 1.0

    bad = dict(good)
    bad['net.3.weight'] = torch.zeros(1, 5)
    bad['extra.bias'] = torch.zeros(1)
    del bad['net.0.bias']
    torch.save({'state_dict': bad}, tmp_path / 'bad.pth')
    rc = cli.main(['test', 'toy/toy_small', 'bad.pth'])
    _one_line_error(
        capsys,
        rc,
        'does not match the model',
        '1 missing keys (net.0.bias)',
        '1 unexpected keys (extra.bias)',
        'net.3.weight (1, 5) vs model (1, 8)',
    )
    _one_line_error(
        capsys,
        cli.main(['test', 'toy/toy_small', 'none.pth']),
        "checkpoint 'none.pth' does not exist",
    )
    _one_line_error(
        capsys,
        cli.main(['test', 'toy/toy_small', 'good.pth', '--format-only']),
        '--format-only needs --submission',
    )


def test_format_only_passes_submission_path_to_metrics(fake_tasks, tmp_path, capsys) -> None:
    torch.save({'state_dict': ToyTemporalModel().state_dict()}, tmp_path / 'good.pth')
    rc = cli.main(
        ['test', 'toy/toy_small', 'good.pth', '--format-only', '--submission', 'sub.json']
    )
    assert rc == 0
    assert 'submission written to sub.json' in capsys.readouterr().out
    submission = json.loads((tmp_path / 'sub.json').read_text())  # ToyMetric's format-only branch
    assert sorted(int(k) for k in submission) == list(range(14))


def test_namespace_package_task_is_discovered_in_a_fresh_process(tmp_path: Path) -> None:
    """A task on PYTHONPATH (no entry point) appears in `interndrive --help` and `info --json`."""
    env = subprocess_env(write_toy_task_package(tmp_path / 'pkg'))
    done = subprocess.run(
        [sys.executable, '-m', 'interndrive.common.cli', '--help'],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=TESTS_DIR,
    )
    assert done.returncode == 0, done.stderr
    assert 'toy' in done.stdout and 'toy task for the tooling tests' in done.stdout


def test_cli_import_stays_light() -> None:
    """`interndrive --help` / `evaluate` must not pay for importing torch (seconds on a laptop)."""
    code = (
        'import sys, interndrive.common.cli, interndrive.common.engine.checks;'
        "print(sorted(m for m in ('torch', 'mmengine.runner') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, '-c', code],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '[]'


def test_metric_table_prefix_and_fallback() -> None:
    from interndrive.common.engine.workflow import format_metric_table, strip_common_prefix

    assert strip_common_prefix({'occ/mIoU': 1.0, 'occ/car': 2.0}) == {'mIoU': 1.0, 'car': 2.0}
    assert strip_common_prefix({'a/x': 1.0, 'b/x': 2.0}) == {'a/x': 1.0, 'b/x': 2.0}

    def strict(metrics):
        return f'mIoU={metrics["mIoU"]}'

    task = Task('occ', 'd', Path('.'), format_metrics=strict)
    assert format_metric_table({'occ/mIoU': 0.5}, task) == 'mIoU=0.5'
    fallback = format_metric_table({'occ/other': 0.5}, task)
    assert fallback.startswith('(occ table not available') and '| occ/other | 0.5000 |' in fallback
    assert 'no metrics' in format_metric_table({}, task)


def test_broken_namespace_task_is_reported_not_fatal(tmp_path: Path) -> None:
    """A task package whose import fails shows as BROKEN in `info`; other commands keep working."""
    root = write_toy_task_package(tmp_path / 'pkg')
    broken = root / 'interndrive' / 'wreck'
    broken.mkdir()
    (broken / '__init__.py').write_text('raise RuntimeError("half-installed")\n')
    (broken / 'task.py').write_text('')
    code = (
        'from interndrive.common.tasks import discover_tasks_with_errors as d;'
        'tasks, errors = d(); print("toy" in tasks, "wreck" in tasks, errors)'
    )
    done = subprocess.run(
        [sys.executable, '-c', code],
        env=subprocess_env(root),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # Real task packages may also be importable (a dev checkout's PYTHONPATH): only the toy and the
    # broken one matter here.
    assert "True False {'wreck': 'RuntimeError: half-installed'}" in done.stdout


def test_failing_task_parser_hook_only_costs_its_commands(fake_tasks, monkeypatch, capsys) -> None:
    def explode(subparsers) -> None:
        raise RuntimeError('bad plug-in')

    tasks = dict(fake_tasks)
    tasks['toy'] = Task('toy', 'toy', fake_tasks['toy'].config_dir, add_commands=explode)
    monkeypatch.setattr(
        task_registry, 'discover_tasks_with_errors', lambda strict=False: (tasks, {})
    )
    assert cli.main(['info', '--json']) == 0
    err = capsys.readouterr().err
    assert 'warning: toy commands failed to load: RuntimeError: bad plug-in' in err


def test_format_only_uses_task_prepare_submission(
    fake_tasks, monkeypatch, tmp_path, capsys
) -> None:
    seen = {}

    def prepare(cfg, path: Path) -> None:
        seen['path'] = path
        cfg.test_evaluator = dict(
            type='ToyMetric', format_only=True, submission_path=str(path) + '.task'
        )

    tasks = dict(fake_tasks)
    tasks['toy'] = Task('toy', 'toy', fake_tasks['toy'].config_dir, prepare_submission=prepare)
    monkeypatch.setattr(
        task_registry, 'discover_tasks_with_errors', lambda strict=False: (tasks, {})
    )
    torch.save({'state_dict': ToyTemporalModel().state_dict()}, tmp_path / 'good.pth')
    rc = cli.main(
        ['test', 'toy/toy_small', 'good.pth', '--format-only', '--submission', 'sub.json']
    )
    assert rc == 0, capsys.readouterr().err
    assert seen['path'] == Path('sub.json')
    assert (tmp_path / 'sub.json.task').is_file() and not (tmp_path / 'sub.json').exists()
