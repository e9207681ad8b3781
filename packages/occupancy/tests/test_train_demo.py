"""End to end through the user's code path: `run_train` / `run_test` (behind `interndrive train` /
`interndrive test`) on generated data via the demo, plus clear errors for bad data paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip('mmdet3d')

from interndrive.occupancy.constants import CLASS_NAMES


@pytest.mark.slow
def test_demo_trains_evaluates_and_writes_submission_and_png(tmp_path: Path, capsys) -> None:
    from interndrive.occupancy.demo import run_demo
    from interndrive.occupancy.submission import validate_submission

    summary = run_demo(tmp_path, epochs=1, num_scenes=2, samples_per_scene=2)
    printed = capsys.readouterr().out
    metrics = summary['metrics']
    assert 0.0 <= summary['mIoU'] <= 100.0
    assert metrics['num_frames'] == 2  # the val scene's frames, each scored once
    # The seed README's table: mIoU then the 17 classes in order (free is not in the mean).
    header = next(line for line in printed.splitlines() if 'mIoU' in line and 'others' in line)
    positions = [header.index(name) for name in ('mIoU', *CLASS_NAMES[:17])]
    assert positions == sorted(positions)
    assert json.loads(Path(summary['metrics_json']).read_text())['mIoU'] == pytest.approx(
        summary['mIoU']
    )
    report = validate_submission(summary['submission'])
    assert report.ok and len(report.tokens) == 2
    png = Path(summary['png'])
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert Path(summary['checkpoint']).is_file()
    assert set(summary['timings_s']) >= {'data', 'train', 'test', 'submission', 'png', 'total'}


def test_missing_info_file_is_a_clear_error(tmp_path: Path) -> None:
    from interndrive.common.engine.workflow import run_train
    from interndrive.occupancy.demo import data_options

    with pytest.raises(Exception, match=r'occ_infos_temporal_train\.pkl.*does not exist') as info:
        run_train(
            'occupancy/bevformer_tiny_occ_cpu',
            work_dir=tmp_path / 'work',
            cfg_options=data_options(tmp_path / 'no_data'),
            launcher='none',
        )
    from interndrive.common.engine.checks import InterndriveError

    assert isinstance(info.value, InterndriveError)  # the CLI prints it as one line, exit 2


def test_prepare_submission_drops_ground_truth_loading() -> None:
    from mmengine.config import Config

    from interndrive.occupancy.task import TASK

    cfg = Config.fromfile(str(TASK.config_dir / 'bevformer_intern-s_occ.py'))
    TASK.prepare_submission(cfg, Path('out.zip'))
    steps = [step['type'] for step in cfg.test_dataloader.dataset.pipeline]
    assert 'LoadOccupancyGT' not in steps and steps[0] == 'OccLoadMultiViewImages'
    assert cfg.test_evaluator.format_only and cfg.test_evaluator.submission_path == 'out.zip'
