"""`interndrive demo hdmap` end to end (shortened): synthetic data → `run_train` on the tiny config →
`run_test` (Chamfer AP on val and on the training frames) → `--format-only` submission → PNGs, i.e. the
engine path users take."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip('mmdet3d.datasets', reason='mmdet3d (built by the lead) is not installed')
pytest.importorskip('mmcv.ops', reason='mmcv with ops (built by the lead) is not installed')


@pytest.mark.slow
def test_demo_trains_tests_writes_submission_and_pngs(tmp_path):
    from interndrive.hdmap.annotations import load_annotations
    from interndrive.hdmap.constants import CLASSES
    from interndrive.hdmap.demo import run_demo
    from interndrive.hdmap.submission import load_submission

    summary = run_demo(tmp_path, epochs=2, frames=2)

    metrics = summary['metrics']
    assert {'mAP', *(f'AP_{c}' for c in CLASSES)} <= set(metrics)
    assert all(0.0 <= metrics[f'AP_{c}'] <= 1.0 for c in CLASSES)
    val = load_annotations(tmp_path / 'data' / 'val_annotations.json')
    num_gts = sum(
        len(f['annotation'][c]) for frames in val.values() for f in frames for c in CLASSES
    )
    assert sum(metrics[f'num_gts_{c}'] for c in CLASSES) == num_gts  # the real val GT was scored
    assert json.loads((tmp_path / 'metrics.json').read_text())['mAP'] == pytest.approx(
        metrics['mAP']
    )

    tokens = [f['timestamp'] for frames in val.values() for f in frames]
    data, report = load_submission(summary['submission'], tokens, strict_tokens=True)
    assert report.ok and set(data['results']) == set(tokens)  # one entry per val frame
    assert Path(summary['checkpoint']).is_file()
    pngs = [Path(p) for p in summary['pngs']]
    assert {p.name.split('_')[-1] for p in pngs} == {'bev.png', 'cameras.png'}
    assert all(p.stat().st_size > 1000 for p in pngs)
    assert summary['timings_s']['total'] > 0
    # fit check on the training frames and the per-epoch training loss from mmengine's scalars
    assert 0.0 <= summary['train_split_mAP'] <= 1.0
    assert (tmp_path / 'test_train_split').is_dir()
    assert summary['train_loss_first_epoch'] > 0 and summary['train_loss_last_epoch'] > 0
