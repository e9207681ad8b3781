"""The CLI plug-in: Task fields and the commands end to end on a small synthetic dataset."""

from __future__ import annotations

import json

import pytest

from interndrive.common.tasks import Task
from interndrive.hdmap.task import TASK


def test_task_contract():
    assert isinstance(TASK, Task) and TASK.name == 'hdmap'
    assert TASK.evaluate and TASK.format_metrics and TASK.visualize and TASK.add_commands
    assert TASK.register_modules is None and TASK.demo is None  # model phase
    intern = TASK.reference_metrics['vectormapnet_intern']
    assert intern['mAP'] == pytest.approx(0.4935)
    assert intern['mAP'] == pytest.approx(
        sum(intern[f'AP_{c}'] for c in ('ped_crossing', 'divider', 'boundary')) / 3, abs=1e-4
    )


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
