"""The CLI plug-in: Task fields and the commands end to end on a small synthetic dataset."""

from __future__ import annotations

import json

import pytest

from interndrive.common.tasks import Task
from interndrive.hdmap.task import TASK


def test_task_contract():
    assert isinstance(TASK, Task) and TASK.name == 'hdmap'
    assert TASK.evaluate and TASK.format_metrics and TASK.visualize and TASK.add_commands
    assert callable(TASK.register_modules) and callable(TASK.demo)  # wired by the model phase
    intern = TASK.reference_metrics['vectormapnet_intern']
    assert intern['mAP'] == pytest.approx(0.4935)
    assert intern['mAP'] == pytest.approx(
        sum(intern[f'AP_{c}'] for c in ('ped_crossing', 'divider', 'boundary')) / 3, abs=1e-4
    )


def _run(argv):
    """Runs `interndrive hdmap ...` through the task's own sub-parsers (no full CLI start-up)."""
    import argparse

    parser = argparse.ArgumentParser()
    TASK.add_commands(parser.add_subparsers(dest='cmd', required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_task_commands_and_functions(tmp_path, capsys):
    import argparse

    from interndrive.hdmap.submission import write_submission
    from interndrive.hdmap.synthetic import generate_predictions

    assert _run(['generate', str(tmp_path), '--segments', '1', '--frames', '2', '--no-images']) == 0
    ann_file = tmp_path / 'val_annotations.json'
    preds = generate_predictions(json.loads(ann_file.read_text()), num_preds=4)
    write_submission(tmp_path / 'sub.json', preds)
    assert _run(['validate', str(ann_file), '--submission', str(tmp_path / 'sub.json')]) == 0
    (tmp_path / 'bad.json').write_text(json.dumps({'meta': {}, 'results': {}}))
    assert _run(['validate', str(ann_file), '--submission', str(tmp_path / 'bad.json')]) == 1
    assert 'meta.use_lidar: missing' in capsys.readouterr().out
    metrics = TASK.evaluate(tmp_path / 'sub.json', ann_file)
    table = TASK.format_metrics(metrics)
    assert table.splitlines()[0] == '| mAP | AP_pc | AP_div | AP_bound |'
    assert f'{100 * metrics["mAP"]:.2f}' in table.splitlines()[2]
    vis = argparse.ArgumentParser()
    TASK.add_visualize_arguments(vis)
    written = TASK.visualize(
        vis.parse_args([str(ann_file), '--out-dir', str(tmp_path / 'v'), '--max-frames', '1'])
    )
    assert [p.suffix for p in written] == ['.png']


@pytest.mark.slow
def test_cli_generate_validate_evaluate_visualize(tmp_path, capsys):
    cli = pytest.importorskip('interndrive.common.cli')
    from interndrive.hdmap.submission import write_submission
    from interndrive.hdmap.synthetic import generate_predictions

    assert (
        cli.main(
            ['hdmap', 'generate', str(tmp_path), '--segments', '1', '--frames', '3', '--no-images']
        )
        == 0
    )
    ann_file = tmp_path / 'val_annotations.json'
    ann = json.loads(ann_file.read_text())
    preds = generate_predictions(ann, num_preds=5)
    preds.pop(next(iter(preds)))  # one frame missing: warned about, scored as empty
    write_submission(tmp_path / 'sub.json', preds)
    assert (
        cli.main(['hdmap', 'validate', str(ann_file), '--submission', str(tmp_path / 'sub.json')])
        == 0
    )
    assert (
        cli.main(
            [
                'hdmap',
                'validate',
                str(ann_file),
                '--submission',
                str(tmp_path / 'sub.json'),
                '--strict-tokens',
            ]
        )
        == 1
    )
    capsys.readouterr()
    out_json = tmp_path / 'metrics.json'
    assert (
        cli.main(
            [
                'evaluate',
                'hdmap',
                str(tmp_path / 'sub.json'),
                str(ann_file),
                '--json',
                str(out_json),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert '| mAP | AP_pc | AP_div | AP_bound |' in captured.out
    assert 'have no entry in results' in captured.err
    metrics = json.loads(out_json.read_text())
    assert 0.0 < metrics['mAP'] < 1.0
    assert (
        cli.main(
            [
                'visualize',
                'hdmap',
                str(ann_file),
                '--out-dir',
                str(tmp_path / 'vis'),
                '--max-frames',
                '1',
            ]
        )
        == 0
    )
    assert len(list((tmp_path / 'vis').glob('*_bev.png'))) == 1


def test_evaluate_rejects_unknown_option(tmp_path):
    with pytest.raises(ValueError, match='unknown option'):
        TASK.evaluate(tmp_path / 'a.json', tmp_path / 'b.json', foo=1)
